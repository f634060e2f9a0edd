/**
 * Dockerfile.runner in real Docker, with slugs made by the builder image:
 *   docker run -i --rm -p 127.0.0.1::5000 slugrunner start web < slug.tgz
 *   docker run --rm -e SLUG_URL=http://.../slug.tgz -p 127.0.0.1::5000 slugrunner start web
 *   docker run -i --rm slugrunner run 'exit 7' < slug.tgz
 * plus PID 1 duties (docker stop, exit code) and an arbitrary UID (OpenShift).
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa, type ResultPromise } from 'execa';
import { ROOT } from './helpers/cli.js';
import {
  buildSlugkitImages,
  buildSlugWithDocker,
  containerName,
  docker,
  dockerBinary,
  fetchWhenUp,
  imageConfig,
  publishedPort,
  RUNNER_IMAGE,
  removeContainers,
  requireDocker,
} from './helpers/docker.js';

const HELLO = join(ROOT, 'examples/hello');
const SIGTERM_APP = join(ROOT, 'test/fixtures/docker/sigterm-app');
const PYTHON_APP = join(ROOT, 'test/fixtures/docker/python-app');

/** A foreground `docker run` (attached, as a user types it), still running. */
interface RunningContainer {
  name: string;
  client: ResultPromise<{ reject: false }>;
}

/**
 * The host's address on the default docker bridge: docker0's IPv4 address
 * (the daemon does not always list it in `docker network inspect bridge`).
 */
async function bridgeGateway(): Promise<string> {
  const docker0 = networkInterfaces().docker0?.find((a) => a.family === 'IPv4');
  if (docker0) return docker0.address;
  const inspect = await docker(['network', 'inspect', 'bridge', '--format', '{{range .IPAM.Config}}{{.Gateway}} {{end}}']);
  const gateway = String(inspect.stdout)
    .trim()
    .split(/\s+/)
    .find((ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip));
  if (!gateway) throw new Error('cannot find the docker bridge gateway address (no docker0 interface)');
  return gateway;
}

describe('Dockerfile.runner (real Docker)', () => {
  let work: string;
  let helloSlug: string;
  let sigtermSlug: string;
  const containers: string[] = [];

  /** Start `docker run [-i] --rm --name N ...args RUNNER_IMAGE ...command`, stdin from `slug` if given. */
  function runContainer(label: string, args: string[], command: string[], slug?: string): RunningContainer {
    const name = containerName(label);
    containers.push(name);
    const client = execa(dockerBinary(), ['run', ...(slug ? ['-i'] : []), '--rm', '--name', name, ...args, RUNNER_IMAGE, ...command], {
      reject: false,
      timeout: 120_000,
      ...(slug ? { inputFile: slug } : { stdin: 'ignore' as const }),
    });
    return { name, client };
  }

  /** PID 1's uid and command line, read from /proc inside the container. */
  async function pid1(name: string): Promise<{ uid: number; cmdline: string }> {
    const status = await docker(['exec', name, 'cat', '/proc/1/status']);
    const cmdline = await docker(['exec', name, 'cat', '/proc/1/cmdline']);
    const uid = Number(/^Uid:\s+(\d+)/m.exec(String(status.stdout))?.[1]);
    return { uid, cmdline: String(cmdline.stdout).replaceAll('\0', ' ').trim() };
  }

  before(async function () {
    this.timeout(1_500_000);
    await requireDocker(this);
    await buildSlugkitImages();
    work = await mkdtemp(join(tmpdir(), 'slugkit-docker-runner-'));
    helloSlug = join(work, 'hello.tgz');
    sigtermSlug = join(work, 'sigterm.tgz');
    for (const [app, slug] of [
      [HELLO, helloSlug],
      [SIGTERM_APP, sigtermSlug],
    ]) {
      const build = await buildSlugWithDocker(app, slug);
      if (build.exitCode !== 0) throw new Error(`building ${app} failed:\n${build.stderr}`);
    }
  });

  afterEach(async () => {
    await removeContainers(containers.splice(0));
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('is configured as documented: slugrunner entrypoint, "start web", /app, unprivileged user', async () => {
    const config = await imageConfig(RUNNER_IMAGE);
    expect(config.Entrypoint).to.deep.equal(['slugrunner']);
    expect(config.Cmd).to.deep.equal(['start', 'web']);
    expect(config.WorkingDir).to.equal('/app');
    expect(config.User).to.match(/^\d+:0$/);
    expect(config.User).not.to.match(/^0:/);
    expect(config.Env).to.include('HOME=/app');
  });

  it('docker run -i slugrunner start web < slug.tgz serves examples/hello; docker stop is quick and keeps the exit code', async function () {
    this.timeout(180_000);
    const run = runContainer('hello', ['-p', '127.0.0.1::5000'], ['start', 'web'], helloSlug);
    const port = await publishedPort(run.name, 5000);
    const response = await fetchWhenUp(`http://127.0.0.1:${port}/`);
    expect(response.status).to.equal(200);
    expect(response.body).to.equal('Hello from slugkit! (dyno web.1, GET /)\n');

    // slugrunner's entry point is PID 1 (no --init), running as the image's unprivileged user.
    const first = await pid1(run.name);
    expect(first.cmdline).to.include('slugrunner');
    expect(first.uid).to.equal(1500);

    const started = Date.now();
    await docker(['stop', run.name]);
    const stopMs = Date.now() - started;
    console.log(`      docker stop took ${stopMs} ms`);
    // The app exits on SIGTERM at once; docker's own 10 s SIGKILL fallback
    // would show as >= 10 s. 5 s leaves room for a loaded CI machine.
    expect(stopMs).to.be.below(5_000);
    const client = await run.client;
    expect(client.exitCode, String(client.stderr)).to.equal(0);
    expect(String(client.stderr)).to.include('-----> Starting web.1: node server.js');
  });

  it("the container's exit code after docker stop is the app's own", async function () {
    this.timeout(180_000);
    const run = runContainer('sigterm', ['-p', '127.0.0.1::5000'], [], sigtermSlug);
    const port = await publishedPort(run.name, 5000);
    expect((await fetchWhenUp(`http://127.0.0.1:${port}/`)).body).to.equal('up\n');
    await docker(['stop', run.name]);
    const client = await run.client;
    expect(String(client.stdout)).to.include('sigterm-app: got SIGTERM, exiting 42');
    expect(client.exitCode).to.equal(42);
  });

  it('builds and serves a Python app: the python buildpack in the builder, the stack python3 in the runner', async function () {
    this.timeout(300_000);
    const slug = join(work, 'python.tgz');
    const build = await buildSlugWithDocker(PYTHON_APP, slug);
    expect(build.exitCode, build.stderr).to.equal(0);
    expect(build.stderr).to.include('-----> Python app detected');
    const run = runContainer('python', ['-p', '127.0.0.1::5000'], ['start', 'web'], slug);
    const port = await publishedPort(run.name, 5000);
    const response = await fetchWhenUp(`http://127.0.0.1:${port}/`);
    expect(response.status).to.equal(200);
    expect(response.body).to.equal('python 3 from /app/.heroku/python\n');
    await docker(['stop', run.name]);
  });

  it('starts the slug from SLUG_URL served by an HTTP server on the host', async function () {
    this.timeout(180_000);
    // Containers reach the host through the docker bridge's gateway address;
    // the server listens on that address only, never on all interfaces.
    const gateway = await bridgeGateway();
    const slugBytes = await readFile(helloSlug);
    const requests: string[] = [];
    const server: Server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      if (req.url !== '/apps/hello/v1.tgz') return void res.writeHead(404).end('not found\n');
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': slugBytes.length }).end(slugBytes);
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, gateway, resolve));
    try {
      const address = server.address();
      if (!address || typeof address === 'string') throw new Error('server has no port');
      const slugUrl = `http://${gateway}:${address.port}/apps/hello/v1.tgz`;
      const run = runContainer('slug-url', ['-e', `SLUG_URL=${slugUrl}`, '-p', '127.0.0.1::5000'], ['start', 'web']);
      const port = await publishedPort(run.name, 5000);
      const response = await fetchWhenUp(`http://127.0.0.1:${port}/from-url`);
      expect(response.status).to.equal(200);
      expect(response.body).to.equal('Hello from slugkit! (dyno web.1, GET /from-url)\n');
      expect(requests).to.deep.equal(['GET /apps/hello/v1.tgz']);
      await docker(['stop', run.name]);
      expect((await run.client).exitCode).to.equal(0);

      // A URL the server does not have: one clear line, exit 1, nothing started.
      const missing = runContainer(
        'slug-url-404',
        ['-e', `SLUG_URL=http://${gateway}:${address.port}/apps/hello/v2.tgz`],
        ['start', 'web'],
      );
      const failed = await missing.client;
      expect(failed.exitCode).to.equal(1);
      expect(String(failed.stderr)).to.match(/^ ! .*404/m);
      expect(String(failed.stderr)).not.to.include('Starting web');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("docker run slugrunner run CMD exits with the command's own exit code", async function () {
    this.timeout(120_000);
    const run = runContainer('run', [], ['run', 'echo "$HOME $DYNO $(id -u)"; exit 7'], helloSlug);
    const client = await run.client;
    expect(client.exitCode).to.equal(7);
    expect(String(client.stdout)).to.equal('/app run.1 1500');
  });

  it('reaps orphaned processes as PID 1 (no --init needed)', async function () {
    this.timeout(120_000);
    // Three background processes whose parent shell exits at once: the kernel
    // hands them to PID 1 (slugrunner), which must wait() for them when they
    // end, or they stay zombies (state Z) for the container's whole life.
    // The loop ends as soon as none is left at all, so it takes no fixed time;
    // only a PID 1 that never reaps runs it out (10 s) and reports "ZZZ".
    const script = [
      'for i in 1 2 3; do (timeout 0.3 sleep 5 &); done',
      'orphans() { for f in /proc/[0-9]*/stat; do s=$(cat "$f" 2>/dev/null) || continue; case $s in *"(timeout) "*) s=${s#*) }; printf %s "${s%% *}";; esac; done; }',
      'for i in $(seq 1 100); do left=$(orphans); [ -z "$left" ] && break; sleep 0.1; done',
      'echo "orphans left: ${left:-none}"',
    ].join('\n');
    const run = runContainer('reap', [], ['run', script], helloSlug);
    const client = await run.client;
    expect(client.exitCode, String(client.stderr)).to.equal(0);
    expect(String(client.stdout)).to.equal('orphans left: none');
  });

  it('runs with an arbitrary UID in group 0 (docker run --user 12345:0, as OpenShift does)', async function () {
    this.timeout(180_000);
    const run = runContainer('uid', ['--user', '12345:0', '-p', '127.0.0.1::5000'], ['start', 'web'], helloSlug);
    const port = await publishedPort(run.name, 5000);
    const response = await fetchWhenUp(`http://127.0.0.1:${port}/`);
    expect(response.status).to.equal(200);
    expect(response.body).to.equal('Hello from slugkit! (dyno web.1, GET /)\n');
    expect((await pid1(run.name)).uid).to.equal(12345);
    await docker(['stop', run.name]);
    expect((await run.client).exitCode).to.equal(0);
  });
});
