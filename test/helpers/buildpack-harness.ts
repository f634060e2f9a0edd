/**
 * Shared steps of the bundled-buildpack suites (test/buildpack-*.test.ts):
 * copy a fixture app, build it with the real slugbuilder CLI, run a process
 * with the real slugrunner, and talk HTTP to it on 127.0.0.1.
 */
import { cp, readdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { execa } from 'execa';
import { freePort, ROOT, runBuilder, spawnRunner, tempDir, waitForHttp } from './cli.js';

export const BUILDPACKS = path.join(ROOT, 'buildpacks');
export const FIXTURES = path.join(ROOT, 'test/fixtures/apps');

/** A private copy of a fixture app, so a test may add files to it. */
export async function copyFixture(name: string): Promise<string> {
  const dir = path.join(await tempDir(`slugkit-${name}-`), 'src');
  await cp(path.join(FIXTURES, name), dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}

export interface Build {
  exitCode: number;
  stderr: string;
  slug: string;
}

/** `slugbuilder --source DIR -o SLUG --cache-dir CACHE [-e K=V ...]`. */
export async function buildSlug(source: string, cacheDir: string, config: Record<string, string> = {}): Promise<Build> {
  const slug = path.join(await tempDir('slugkit-slug-'), 'slug.tgz');
  const env = Object.entries(config).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const result = await runBuilder(['--source', source, '-o', slug, '--cache-dir', cacheDir, ...env]);
  return { exitCode: result.exitCode, stderr: result.stderr, slug };
}

export interface RunningApp {
  /** http://127.0.0.1:PORT */
  origin: string;
  appDir: string;
  /** Stops the dyno (SIGTERM) and returns everything it printed. */
  stop(): Promise<string>;
}

/**
 * `slugrunner --app-dir DIR [--slug SLUG] start web` with PORT set, waiting
 * until it answers HTTP. The app dir is never /app: slugs must run anywhere.
 */
export async function startWeb(opts: { slug?: string; appDir?: string; env?: Record<string, string> }): Promise<RunningApp> {
  const appDir = opts.appDir ?? path.join(await tempDir('slugkit-dyno-'), 'app');
  const port = await freePort();
  const args = ['--app-dir', appDir, ...(opts.slug ? ['--slug', opts.slug] : []), 'start', 'web'];
  const child = spawnRunner(args, { PORT: String(port), ...opts.env });
  const origin = `http://127.0.0.1:${port}`;
  const stop = async () => {
    child.kill('SIGTERM');
    const result = await child;
    return String(result.all ?? '');
  };
  try {
    const first = await Promise.race([
      waitForHttp(origin + '/', 60_000),
      child.then((r) => {
        throw new Error(`slugrunner exited with ${r.exitCode} before answering HTTP:\n${String(r.all)}`);
      }),
    ]);
    await first.body?.cancel();
  } catch (err) {
    await stop();
    throw err;
  }
  return { origin, appDir, stop };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request whose path goes on the wire exactly as given (fetch would normalise ".."). */
export function rawRequest(origin: string, rawPath: string, method = 'GET'): Promise<RawResponse> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path: rawPath, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Runs a buildpack script directly (bin/detect, bin/release) on a directory. */
export async function runScript(buildpack: string, script: string, ...args: string[]) {
  return execa(path.join(BUILDPACKS, buildpack, 'bin', script), args, { reject: false, stdin: 'ignore' });
}

/** Every file below dir, relative, sorted (to compare cache contents). */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
    .sort();
}
