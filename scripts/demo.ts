/**
 * `npm run demo`: build a bundled example app into a slug with the real
 * slugbuilder CLI, start it with the real slugrunner on a free port, print
 * the HTTP response, and stop it. The default app, examples/node-express,
 * goes through the nodejs buildpack and installs Express from the npm
 * registry, and Node itself from NODEJS_ORG_MIRROR: when that is not set,
 * the demo serves a mirror on 127.0.0.1 made from the Node running it
 * (nodejs.org may be unreachable). Usage: npm run demo [-- examples/<app>]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type NodeMirror, RUNNING_VERSION, startNodeMirror } from './node-mirror.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const appDir = path.resolve(root, process.argv[2] ?? 'examples/node-express');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url: string, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fetch(url);
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function main(): Promise<number> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'slugkit-demo-'));
  let mirror: NodeMirror | undefined;
  try {
    if (!process.env.NODEJS_ORG_MIRROR) {
      mirror = await startNodeMirror();
      process.env.NODEJS_ORG_MIRROR = mirror.url;
      console.log(`==> NODEJS_ORG_MIRROR=${mirror.url}: a Node.js mirror serving this machine's node ${RUNNING_VERSION}`);
    }
    const slug = path.join(work, 'slug.tgz');
    console.log(`==> slugbuilder --source ${path.relative(root, appDir)} -o slug.tgz`);
    const built = await run(process.execPath, [
      path.join(root, 'dist/slugbuilder/cli.js'),
      '--source',
      appDir,
      '-o',
      slug,
      '--cache-dir',
      path.join(work, 'cache'),
    ]);
    if (built !== 0) return built;

    const port = await freePort();
    console.log(`\n==> PORT=${port} slugrunner --slug slug.tgz start web`);
    const runner = spawn(path.join(root, 'bin/slugrunner'), ['--app-dir', path.join(work, 'app'), '--slug', slug, 'start', 'web'], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, PORT: String(port) },
    });
    const exited = new Promise<number>((resolve) =>
      runner.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0))),
    );
    try {
      const res = await waitForHttp(`http://127.0.0.1:${port}/`, 30_000);
      console.log(`\n==> GET http://127.0.0.1:${port}/ -> HTTP ${res.status}`);
      console.log(await res.text());
    } finally {
      runner.kill('SIGTERM');
    }
    const code = await exited;
    console.log(`==> slugrunner stopped with SIGTERM, exit code ${code}`);
    return code;
  } finally {
    await mirror?.close();
    await rm(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`demo failed: ${err.message}`);
    process.exit(1);
  },
);
