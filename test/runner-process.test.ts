/**
 * slugrunner as a process supervisor, through bin/slugrunner:
 *  - as PID 1 of a PID namespace (`unshare --pid --fork --mount-proc`), the
 *    bash entry point reaps orphans the app leaves behind;
 *  - a storm of signals is forwarded to the app, which keeps running until
 *    SIGTERM, and the runner exits with the app's own code;
 *  - an app that ignores SIGTERM is SIGKILLed when the grace period ends;
 *  - 1,000 start/stop cycles of `slugrunner run true` leave no process and
 *    no file descriptor behind.
 * Processes are found by a marker in their environment, which every
 * descendant inherits, so other work on the machine does not blur the counts.
 */

import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { execa, type ResultPromise } from 'execa';
import { RUNNER, waitForFile } from './helpers/cli.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Pids of live (non-zombie) processes whose environment holds `marker`. */
function processesWithMarker(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const environ = readFileSync(`/proc/${name}/environ`, 'latin1');
      if (!environ.includes(marker)) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      found.push(Number(name));
    } catch {
      // gone while we looked, or not ours to read
    }
  }
  return found;
}

/** Waits (bounded) until no process carries `marker`; returns those still there. */
async function survivorsOf(marker: string): Promise<number[]> {
  for (let i = 0; i < 100 && processesWithMarker(marker).length > 0; i++) await sleep(50);
  return processesWithMarker(marker);
}

/** The host pid of the namespace's PID 1 (the child of `unshare --fork`). */
async function namespaceInit(unsharePid: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const children = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim();
    if (children) return Number(children.split(' ')[0]);
    await sleep(10);
  }
  throw new Error('unshare started no child');
}

describe('slugrunner as a process supervisor', function () {
  this.timeout(120_000);
  let root: string;
  let appDir: string;
  let canUnshare = false;
  let unshareProblem = '';

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'slugkit-runner-process-'));
    // A populated app dir is used as it is: no slug to unpack in every cycle.
    appDir = path.join(root, 'app');
    await mkdir(appDir);
    await writeFile(path.join(appDir, 'Procfile'), 'web: sleep 600\n');
    await writeFile(path.join(appDir, '.release'), '--- {}\n');
    const probe = await execa('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { reject: false });
    canUnshare = probe.exitCode === 0;
    unshareProblem = `unshare --pid --fork --mount-proc failed (${String(probe.stderr).trim() || `exit ${probe.exitCode}`}): needs root or CAP_SYS_ADMIN`;
  });

  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  function requireUnshare(ctx: Mocha.Context): void {
    if (canUnshare) return;
    if (process.env.CI) throw new Error(unshareProblem);
    console.log(`      skipping: ${unshareProblem}`);
    ctx.skip();
  }

  function runner(args: string[], opts: { pid1?: boolean; env?: Record<string, string> } = {}): ResultPromise {
    const argv = ['--app-dir', appDir, '-q', ...args];
    // --kill-child: if the test gives up on unshare, the namespace goes with it.
    const [file, fileArgs] = opts.pid1 ? ['unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', RUNNER, ...argv]] : [RUNNER, argv];
    return execa(file, fileArgs, { env: opts.env ?? {}, reject: false, stdin: 'ignore', timeout: 100_000 });
  }

  it('reaps orphans when it is PID 1 of a PID namespace', async function () {
    requireUnshare(this);
    // Eight double-forked sleeps become orphans of PID 1; each must disappear
    // from /proc once it exits, which only happens when PID 1 reaps it.
    const script = [
      'for i in 1 2 3 4 5 6 7 8; do (sleep 0.2 & echo $! >> orphans); done',
      'for t in $(seq 100); do left=0; for p in $(cat orphans); do [ -e /proc/$p ] && left=$((left + 1)); done; [ $left = 0 ] && break; sleep 0.1; done',
      'echo "orphans-left=$left"',
      'for p in $(cat orphans); do [ -e /proc/$p ] && grep State /proc/$p/status; done; true',
      'echo "pid1=$(cat /proc/1/comm)"',
    ].join('\n');
    const dir = await mkdtemp(path.join(root, 'orphans-'));
    const r = await execa(
      'unshare',
      ['--pid', '--fork', '--mount-proc', '--kill-child', RUNNER, '--app-dir', appDir, '-q', 'run', `cd ${dir} && ${script}`],
      { reject: false, stdin: 'ignore' },
    );
    expect(r.exitCode, String(r.stderr)).to.equal(0);
    expect(String(r.stdout)).to.include('orphans-left=0');
    // PID 1 is the bash entry point, not node: node cannot wait for children it did not spawn.
    expect(String(r.stdout)).to.include('pid1=bash');
  });

  for (const pid1 of [false, true]) {
    const where = pid1 ? 'as PID 1' : 'as a plain process';

    it(`forwards a storm of signals to the app and exits with its code (${where})`, async function () {
      if (pid1) requireUnshare(this);
      const dir = await mkdtemp(path.join(root, 'storm-'));
      const marker = `SLUGKIT_TEST_MARK_${randomBytes(6).toString('hex')}`;
      const log = path.join(dir, 'signals.log');
      const ready = path.join(dir, 'ready');
      // The app is a small Node program: bash drops traps of signals that
      // arrive together while it waits for a child, which would blur what the runner did.
      const js = [
        `const fs = require("fs");`,
        `for (const s of ["SIGUSR2", "SIGHUP", "SIGQUIT", "SIGINT"]) process.on(s, () => fs.appendFileSync(${JSON.stringify(log)}, s.slice(3).toLowerCase() + "\\n"));`,
        `process.on("SIGTERM", () => { fs.appendFileSync(${JSON.stringify(log)}, "term\\n"); process.exit(42); });`,
        `fs.writeFileSync(${JSON.stringify(ready)}, "ready"); setInterval(() => {}, 1000);`,
      ].join(' ');
      const app = `exec node -e '${js}'`;
      const child = runner(['--grace', '60s', 'run', app], { pid1, env: { [marker]: '1' } });
      await waitForFile(ready, { child });
      const target = pid1 ? await namespaceInit(child.pid as number) : (child.pid as number);

      for (let round = 0; round < 100; round++) {
        for (const signal of ['SIGUSR2', 'SIGHUP', 'SIGQUIT', 'SIGINT'] as const) process.kill(target, signal);
      }
      // Signals of one kind coalesce while pending; each kind must arrive at least once.
      for (let i = 0; i < 200; i++) {
        const seen = existsSync(log) ? new Set((await readFile(log, 'utf8')).split('\n')) : new Set<string>();
        if (['usr2', 'hup', 'quit', 'int'].every((s) => seen.has(s))) break;
        await sleep(50);
      }
      const seen = new Set((await readFile(log, 'utf8')).split('\n'));
      expect([...seen].filter(Boolean).sort()).to.deep.equal(['hup', 'int', 'quit', 'usr2']);
      expect(child.exitCode ?? null, 'the runner survived the storm').to.equal(null);

      for (let i = 0; i < 20; i++) process.kill(target, 'SIGTERM');
      const r = await child;
      expect(r.exitCode, String(r.stderr)).to.equal(42);
      expect(String(r.stderr)).to.not.match(/internal error|Error:/);
      expect(await survivorsOf(marker), 'processes left behind').to.deep.equal([]);
    });

    it(`SIGKILLs an app that ignores SIGTERM when the grace period ends (${where})`, async function () {
      if (pid1) requireUnshare(this);
      const dir = await mkdtemp(path.join(root, 'grace-'));
      const marker = `SLUGKIT_TEST_MARK_${randomBytes(6).toString('hex')}`;
      const ready = path.join(dir, 'ready');
      const got = path.join(dir, 'got-term');
      const app = `trap 'echo term > ${got}' TERM; echo ready > ${ready}; while :; do sleep 0.05; done`;
      const child = runner(['--grace', '1s', 'run', app], { pid1, env: { [marker]: '1' } });
      await waitForFile(ready, { child });
      const target = pid1 ? await namespaceInit(child.pid as number) : (child.pid as number);
      process.kill(target, 'SIGTERM');
      const r = await child;
      // The app saw SIGTERM, kept going, and was killed: 128 + 9.
      expect(existsSync(got), 'the app got SIGTERM first').to.equal(true);
      expect(r.exitCode, String(r.stderr)).to.equal(137);
      expect(await survivorsOf(marker), 'processes left behind').to.deep.equal([]);
    });
  }

  it('1,000 start/stop cycles of `slugrunner run true` leak no processes and no file descriptors', async function () {
    this.timeout(600_000);
    const marker = `SLUGKIT_TEST_MARK_${randomBytes(6).toString('hex')}`;
    const fdsBefore = readdirSync('/proc/self/fd').length;
    const cycles = 1000;
    const concurrency = 8;
    let next = 0;
    const failures: string[] = [];
    const worker = async () => {
      while (next < cycles) {
        next += 1;
        const r = await runner(['run', 'true'], { env: { [marker]: '1' } });
        if (r.exitCode !== 0) failures.push(`exit ${r.exitCode}: ${String(r.stderr)}`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    expect(failures.slice(0, 3)).to.deep.equal([]);
    expect(await survivorsOf(marker), 'processes left behind').to.deep.equal([]);
    // Our own descriptors: every pipe to every runner was closed.
    expect(readdirSync('/proc/self/fd').length).to.equal(fdsBefore);
  });
});
