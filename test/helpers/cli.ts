/**
 * Test helpers for driving the real CLIs as child processes: fixture apps and
 * buildpacks written to temp dirs, tarballs made with node-tar, free ports and
 * HTTP polling. Nothing here stands in for the product's own code.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { create as tarCreate } from 'tar';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BUILDER = path.join(ROOT, 'dist/slugbuilder/cli.js');
export const RUNNER = path.join(ROOT, 'bin/slugrunner');

const temps: string[] = [];

export async function tempDir(prefix = 'slugkit-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

export type FileSpec = string | { content: string; mode: number };

export async function writeTree(root: string, files: Record<string, FileSpec>): Promise<string> {
  for (const [rel, spec] of Object.entries(files)) {
    const full = path.join(root, rel);
    await mkdir(path.dirname(full), { recursive: true });
    const { content, mode } = typeof spec === 'string' ? { content: spec, mode: 0o644 } : spec;
    await writeFile(full, content);
    await chmod(full, mode);
  }
  return root;
}

export async function makeApp(files: Record<string, FileSpec>): Promise<string> {
  return writeTree(await tempDir('slugkit-app-'), files);
}

export interface BuildpackScripts {
  detect?: string;
  compile?: string;
  release?: string;
}

/** A tiny bash buildpack; each script body runs under `set -euo pipefail`. */
export async function makeBuildpack(scripts: BuildpackScripts, name = 'testpack'): Promise<string> {
  const dir = path.join(await tempDir('slugkit-bp-'), name);
  const files: Record<string, FileSpec> = {};
  for (const [phase, body] of Object.entries(scripts)) {
    if (body !== undefined) files[`bin/${phase}`] = { content: `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`, mode: 0o755 };
  }
  await writeTree(dir, files);
  return dir;
}

/** The app dir as a tarball, as `git archive` would pipe it. */
export async function tarOf(dir: string, gzip = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = tarCreate({ cwd: dir, gzip, portable: true }, ['.']);
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface CliResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

export interface CliOptions {
  input?: Buffer | string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export async function runCli(file: string, args: string[], opts: CliOptions = {}): Promise<CliResult> {
  // "--" as in slugbuilder's #! line: Node 20 would otherwise take its --env-file for its own.
  const result = await execa(file === BUILDER ? process.execPath : file, file === BUILDER ? ['--', file, ...args] : args, {
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : undefined,
    env: opts.env,
    cwd: opts.cwd,
    encoding: 'buffer',
    stripFinalNewline: false,
    reject: false,
    timeout: 120_000,
  });
  return { exitCode: result.exitCode ?? -1, stdout: Buffer.from(result.stdout as Uint8Array), stderr: Buffer.from(result.stderr as Uint8Array).toString('utf8') };
}

export const runBuilder = (args: string[], opts?: CliOptions) => runCli(BUILDER, args, opts);
export const runRunner = (args: string[], opts?: CliOptions) => runCli(RUNNER, args, opts);

/** Start slugrunner in the background (e.g. `start web`) for HTTP tests. */
export function spawnRunner(args: string[], env: NodeJS.ProcessEnv = {}) {
  return execa(RUNNER, args, { env: { ...process.env, ...env }, stdin: 'ignore', reject: false, all: true });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Poll until the URL answers (any status), or fail after `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs = 15_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await fetch(url);
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

export async function waitForFile(file: string, timeoutMs = 10_000): Promise<void> {
  const { access } = await import('node:fs/promises');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await access(file).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${file} did not appear within ${timeoutMs} ms`);
}
