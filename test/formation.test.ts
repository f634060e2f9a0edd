/**
 * Several process types at once (`slugrunner start web worker`,
 * `--formation web=2,worker=1`) through the real bin/slugrunner, and as
 * PID 1 of the runner image under `docker stop`.
 */

import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { makeApp, RUNNER, removeTempDirs, runRunner, tarOf, tempDir, waitForFile } from './helpers/cli.js';
import {
  buildSlugkitImages,
  containerName,
  docker,
  dockerBinary,
  RUNNER_IMAGE,
  removeContainers,
  requireDocker,
} from './helpers/docker.js';

/** A worker that says which dyno it is, then waits; on SIGTERM it says so and exits 0. */
const WORKER = `trap 'echo "$DYNO got SIGTERM"; exit 0' TERM; echo "$DYNO up PORT=$PORT"; touch "up-$DYNO"; while :; do sleep 0.1; done`;

async function slugOf(procfile: string): Promise<string> {
  const app = await makeApp({ Procfile: procfile });
  const slug = join(await tempDir(), 'slug.tgz');
  await writeFile(slug, await tarOf(app, true));
  return slug;
}

describe('slugrunner formation: several process types at once', function () {
  this.timeout(120_000);
  after(removeTempDirs);

  it('start web worker: prefixed output, DYNO and PORT per process; when web exits 3 the worker gets SIGTERM and the runner exits 3', async () => {
    // web waits until the worker is up, so both have printed before it fails.
    const slug = await slugOf(
      `web: echo "$DYNO up PORT=$PORT"; while [ ! -e up-worker.1 ]; do sleep 0.05; done; echo 'web failing' >&2; exit 3\nworker: ${WORKER}\n`,
    );
    const appDir = join(await tempDir(), 'app');
    const result = await runRunner(['--slug', slug, '--app-dir', appDir, 'start', 'web', 'worker'], {
      env: { ...process.env, PORT: '7000' },
    });
    const stdout = result.stdout.toString();
    expect(result.exitCode, result.stderr).to.equal(3);
    expect(stdout).to.include('web.1    | web.1 up PORT=7000\n');
    expect(stdout).to.include('worker.1 | worker.1 up PORT=7100\n');
    expect(stdout).to.include('worker.1 | worker.1 got SIGTERM\n');
    expect(result.stderr).to.include('web.1    | web failing\n');
    expect(result.stderr).to.include('-----> Stopping all processes with SIGTERM (web.1 exited with code 3)');
    // Not a TTY: no colour codes.
    expect(stdout).to.not.include('\x1b[');
  });

  it('--formation web=2,worker=1 starts three processes: web.2 gets PORT+1', async () => {
    const slug = await slugOf(`web: ${WORKER}\nworker: ${WORKER}\n`);
    const appDir = join(await tempDir(), 'app');
    const runner = execa(RUNNER, ['--slug', slug, '--app-dir', appDir, 'start', '--formation', 'web=2,worker=1'], {
      env: { ...process.env, PORT: '6000' },
      stdin: 'ignore',
      reject: false,
    });
    for (const dyno of ['web.1', 'web.2', 'worker.1']) await waitForFile(join(appDir, `up-${dyno}`), { timeoutMs: 30_000 });
    runner.kill('SIGTERM');
    const result = await runner;
    // Every process stopped cleanly on the runner's SIGTERM: exit 0.
    expect(result.exitCode, String(result.stderr)).to.equal(0);
    const lines = String(result.stdout).split('\n');
    expect(lines).to.include.members([
      'web.1    | web.1 up PORT=6000',
      'web.2    | web.2 up PORT=6001',
      'worker.1 | worker.1 up PORT=6100',
      'web.1    | web.1 got SIGTERM',
      'web.2    | web.2 got SIGTERM',
      'worker.1 | worker.1 got SIGTERM',
    ]);
  });

  it('a process that ignores SIGTERM is killed after --grace, and the runner reports the SIGKILL (137)', async () => {
    const slug = await slugOf(`web: ${WORKER}\nstubborn: trap '' TERM; touch up-stubborn; while :; do sleep 0.1; done\n`);
    const appDir = join(await tempDir(), 'app');
    const runner = execa(RUNNER, ['--slug', slug, '--app-dir', appDir, '--grace', '1s', 'start', 'web', 'stubborn'], {
      stdin: 'ignore',
      reject: false,
    });
    await waitForFile(join(appDir, 'up-web.1'), { timeoutMs: 30_000 });
    await waitForFile(join(appDir, 'up-stubborn'), { timeoutMs: 30_000 });
    runner.kill('SIGTERM');
    const result = await runner;
    expect(result.exitCode, String(result.stderr)).to.equal(137);
    expect(String(result.stdout)).to.include('web.1      | web.1 got SIGTERM');
    expect(String(result.stderr)).to.include('stubborn.1 was killed by SIGKILL');
  });

  it('refuses a malformed --formation (exit 2) and an unknown type (exit 1) with one line', async () => {
    const slug = await slugOf(`web: ${WORKER}\n`);
    const appDir = join(await tempDir(), 'app');
    const usage = await runRunner(['--slug', slug, '--app-dir', appDir, 'start', '--formation', 'web=two']);
    expect(usage.exitCode).to.equal(2);
    expect(usage.stderr).to.match(/^ ! +--formation "web=two": write it as TYPE=COUNT/);
    expect(usage.stderr.trimEnd().split('\n')).to.have.length(1);

    const unknown = await runRunner(['--slug', slug, '--app-dir', appDir, '-q', 'start', 'web', 'clock']);
    expect(unknown.exitCode).to.equal(1);
    expect(unknown.stderr.trimEnd()).to.match(/^ ! +unknown process type "clock": this app has web$/);
  });

  describe('PORT is a port number, for every process, or nothing starts', () => {
    const oneLine = (stderr: string) => stderr.trimEnd().split('\n');

    it('PORT=abc is one usage line (exit 2) for start and for a formation, before the slug is unpacked', async () => {
      const slug = await slugOf(`web: touch started; echo "PORT=$PORT"\nworker: ${WORKER}\n`);
      for (const args of [
        ['start', 'web'],
        ['start', '--formation', 'web=1,worker=1'],
      ]) {
        const appDir = join(await tempDir(), 'app');
        const res = await runRunner(['--slug', slug, '--app-dir', appDir, ...args], { env: { ...process.env, PORT: 'abc' } });
        expect(res.exitCode, res.stderr).to.equal(2);
        expect(oneLine(res.stderr)).to.deep.equal([' !     PORT="abc" is not a port number: set it to 1-65535, or unset it for 5000']);
        expect(existsSync(appDir), 'nothing unpacked').to.equal(false);
      }
    });

    it('PORT=abc is refused by the fast start too (an app dir with a current launch plan)', async () => {
      const slug = await slugOf('web: echo "PORT=$PORT"\n');
      const appDir = join(await tempDir(), 'app');
      const first = await runRunner(['--slug', slug, '--app-dir', appDir, '-q', 'start', 'web'], { env: { ...process.env, PORT: '5400' } });
      expect(first.exitCode, first.stderr).to.equal(0);
      expect(first.stdout.toString()).to.equal('PORT=5400\n');
      const res = await runRunner(['--app-dir', appDir, '-q', 'start', 'web'], { env: { ...process.env, PORT: 'abc' } });
      expect(res.exitCode, res.stderr).to.equal(2);
      expect(res.stdout.toString()).to.equal('');
      expect(oneLine(res.stderr)).to.deep.equal([' !     PORT="abc" is not a port number: set it to 1-65535, or unset it for 5000']);
    });

    it('PORT=65500 --formation web=1,worker=1 is one usage line: the worker would get 65600', async () => {
      const slug = await slugOf(`web: touch started; ${WORKER}\nworker: touch started; ${WORKER}\n`);
      const appDir = join(await tempDir(), 'app');
      const res = await runRunner(['--slug', slug, '--app-dir', appDir, 'start', '--formation', 'web=1,worker=1'], {
        env: { ...process.env, PORT: '65500' },
      });
      expect(res.exitCode, res.stderr).to.equal(2);
      expect(oneLine(res.stderr)).to.deep.equal([
        ' !     PORT=65500 leaves no port for worker.1 (it would get 65600, above 65535): set a lower PORT',
      ]);
      expect(existsSync(appDir), 'nothing unpacked, nothing started').to.equal(false);
    });

    it('PORT=70000 and PORT=0 are refused; a formation that ends at 65535 is not', async () => {
      const both = 'echo "$DYNO PORT=$PORT"; touch "up-$DYNO"; while [ ! -e up-web.1 ] || [ ! -e up-worker.1 ]; do sleep 0.05; done';
      const slug = await slugOf(`web: ${both}\nworker: ${both}\n`);
      for (const bad of ['70000', '0', '-1', '5000 ']) {
        const res = await runRunner(['--slug', slug, '--app-dir', join(await tempDir(), 'app'), 'start', 'web'], {
          env: { ...process.env, PORT: bad },
        });
        expect(res.exitCode, `PORT=${bad}: ${res.stderr}`).to.equal(2);
        expect(oneLine(res.stderr)).to.have.length(1);
      }
      const ok = await runRunner(
        ['--slug', slug, '--app-dir', join(await tempDir(), 'app'), '-q', 'start', '--formation', 'web=1,worker=1'],
        {
          env: { ...process.env, PORT: '65435' },
        },
      );
      expect(ok.stdout.toString()).to.include('worker.1 | worker.1 PORT=65535');
    });
  });

  describe('as PID 1 of the runner image', () => {
    const containers: string[] = [];
    before(async function () {
      this.timeout(1_500_000);
      await requireDocker(this);
      await buildSlugkitImages();
    });
    after(() => removeContainers(containers));

    it('reaps an orphan, and docker stop sends SIGTERM to every process: the container exits 0', async () => {
      // web leaves an orphan (its parent subshell exits at once) that ends when told to, for PID 1 to reap.
      const slug = await slugOf(
        `web: (sh -c 'while [ ! -e go ]; do sleep 0.05; done; touch orphan-done' &) ; ${WORKER}\nworker: ${WORKER}\n`,
      );
      const name = containerName('formation');
      containers.push(name);
      const client = execa(dockerBinary(), ['run', '-i', '--rm', '--name', name, RUNNER_IMAGE, 'start', 'web', 'worker'], {
        inputFile: slug,
        reject: false,
        timeout: 120_000,
      });
      let out = '';
      client.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
      for (let i = 0; i < 600 && !(out.includes('web.1 up') && out.includes('worker.1 up')); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(out).to.include('worker.1 up');

      await docker(['exec', name, 'touch', '/app/go']);
      const zombies = async () =>
        String((await docker(['exec', name, 'sh', '-c', "grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l"])).stdout).trim();
      let left = '';
      for (let i = 0; i < 100; i++) {
        const done = (await docker(['exec', name, 'test', '-e', '/app/orphan-done'], { reject: false })).exitCode === 0;
        left = await zombies();
        if (done && left === '0') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(left, 'zombie processes in the container').to.equal('0');

      await docker(['stop', name]);
      const result = await client;
      expect(result.exitCode, String(result.stderr)).to.equal(0);
      expect(String(result.stdout)).to.include('web.1    | web.1 got SIGTERM');
      expect(String(result.stdout)).to.include('worker.1 | worker.1 got SIGTERM');
    });
  });
});
