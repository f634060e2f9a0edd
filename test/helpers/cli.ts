/**
 * Test helpers for driving the real CLIs as child processes: fixture apps and
 * buildpacks written to temp dirs, tarballs made with node-tar, free ports and
 * HTTP polling. Nothing here stands in for the product's own code.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { type ReadEntry, create as tarCreate, list as tarList } from 'tar';

/** The repository root: this file runs from dist/test/helpers/. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
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

/** Writes each given phase as DIR/bin/PHASE, a bash script whose body runs under `set -euo pipefail`. */
async function writeScripts(dir: string, scripts: BuildpackScripts): Promise<string> {
  const files: Record<string, FileSpec> = {};
  for (const [phase, body] of Object.entries(scripts)) {
    if (body !== undefined) files[`bin/${phase}`] = { content: `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`, mode: 0o755 };
  }
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await writeTree(dir, files);
  return dir;
}

/** A buildpack named `name` in a fresh temp dir, holding only the phases given. */
export async function makeBuildpack(scripts: BuildpackScripts, name = 'testpack'): Promise<string> {
  return writeScripts(path.join(await tempDir('slugkit-bp-'), name), scripts);
}

/**
 * A complete buildpack written into `dir`: a phase not given detects as "Test",
 * compiles nothing, or releases a web process type.
 */
export async function writeBuildpack(dir: string, scripts: BuildpackScripts): Promise<string> {
  return writeScripts(dir, {
    detect: scripts.detect ?? 'echo Test',
    compile: scripts.compile ?? 'true',
    release: scripts.release ?? "cat <<'YAML'\n---\ndefault_process_types:\n  web: echo web\nYAML",
  });
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
  return {
    exitCode: result.exitCode ?? -1,
    stdout: Buffer.from(result.stdout as Uint8Array),
    stderr: Buffer.from(result.stderr as Uint8Array).toString('utf8'),
  };
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

/**
 * Waits until `file` exists (a test process writes it once it reached the point
 * under test); fails early when `child`, the process expected to write it, ends.
 */
export async function waitForFile(file: string, opts: { child?: ResultPromise; timeoutMs?: number } = {}): Promise<void> {
  const { child, timeoutMs = 30_000 } = opts;
  let exited = false;
  void child?.finally(() => (exited = true)).catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (exited) throw new Error(`the process ended before ${file} appeared`);
    if (Date.now() > deadline) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface SlugEntry {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  body: string;
  linkpath: string;
}

/** Every entry of a slug (its bytes, or the path of a slug file), with metadata and contents. */
export async function slugEntries(slug: Buffer | string): Promise<SlugEntry[]> {
  const bytes = typeof slug === 'string' ? await readFile(slug) : slug;
  const entries: SlugEntry[] = [];
  const parser = tarList({
    onReadEntry: (e: ReadEntry) => {
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () =>
        entries.push({
          path: e.path,
          type: e.type,
          mode: e.mode ?? -1,
          uid: e.uid ?? -1,
          gid: e.gid ?? -1,
          mtime: e.mtime?.getTime() ?? -1,
          uname: e.uname ?? '',
          body: Buffer.concat(chunks).toString('utf8'),
          linkpath: e.linkpath ?? '',
        }),
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    Readable.from([bytes]).pipe(parser);
  });
  return entries;
}

/** Entry names in a slug, without the leading "./" or a directory's trailing "/". */
export async function slugPaths(slug: Buffer | string): Promise<string[]> {
  return (await slugEntries(slug)).map((e) => e.path.replace(/^\.\//, '').replace(/\/$/, ''));
}
