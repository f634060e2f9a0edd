/**
 * slugbuilder killed with SIGKILL mid-compile (no handler of its own runs):
 * the buildpack's processes die with it, sandboxed or not, and the next build
 * removes the workspace the killed one left in the temp dir, and only dirs
 * whose owner record says their process is gone.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { BUILDER, makeApp, makeBuildpack, removeTempDirs, runBuilder, tarOf, tempDir, waitForFile } from './helpers/cli.js';
import { requireBwrap } from './helpers/tools.js';

/** Pids of the processes whose command line holds `marker`. */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(marker)) pids.push(Number(name));
    } catch {
      // ended meanwhile
    }
  }
  return pids;
}

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The owner record the builder writes, for a process: what a live (or a reused) pid looks like. */
async function ownerRecord(pid: number, start: string): Promise<string> {
  const ns = await readlink('/proc/self/ns/pid');
  const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  return `slugkit-owner 1\n${pid} ${start} ${ns} ${boot}\n`;
}

function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

describe('slugbuilder killed with SIGKILL mid-compile', function () {
  this.timeout(120_000);
  after(removeTempDirs);

  for (const mode of ['off', 'on'] as const) {
    it(`--sandbox ${mode}: the buildpack's sleep 300 dies within two seconds, and the next build removes the dead build's workspace`, async function () {
      if (mode === 'on') requireBwrap(this);
      const tmp = await tempDir('slugkit-tmpdir-');
      const marker = `slugkit-kill-test-${process.pid}-${mode}-${Date.now()}`;
      const appDir = path.join(await tempDir(), 'app');
      // The sleep runs under a name of its own, so the test finds it inside or outside the sandbox.
      const bp = await makeBuildpack({
        detect: 'echo Test',
        compile: `(exec -a ${marker} sleep 300) & touch "$1/compiling"; wait`,
      });
      const env = { ...process.env, TMPDIR: tmp };
      const builder = execa(
        process.execPath,
        [
          '--',
          BUILDER,
          '--buildpack',
          bp,
          '--sandbox',
          mode,
          '--app-dir',
          appDir,
          '--cache-dir',
          path.join(tmp, 'cache1'),
          '-o',
          path.join(tmp, 'never.tgz'),
        ],
        { input: await tarOf(await makeApp({ a: 'a' })), env, reject: false },
      );
      await waitForFile(path.join(appDir, 'compiling'), { child: builder });
      await until('the sleep started', () => processesWith(marker).length > 0, 5_000);
      const workspaces = (await readdir(tmp)).filter((n) => n.startsWith('slugbuilder-'));
      expect(workspaces).to.have.length(1);

      process.kill(builder.pid!, 'SIGKILL');
      await builder;
      await until('the sleep was not killed', () => processesWith(marker).length === 0, 2_000);
      expect(await readdir(tmp)).to.include(workspaces[0]);

      // Dirs the next build must leave: no owner record; a live owner; a record it did not write.
      const keep = ['slugbuilder-no-record', 'slugbuilder-live-owner', 'slugbuilder-bad-record'];
      for (const d of keep) await mkdir(path.join(tmp, d));
      await writeFile(path.join(tmp, 'slugbuilder-live-owner/.slugkit-owner'), await ownerRecord(process.pid, startTime(process.pid)));
      await writeFile(path.join(tmp, 'slugbuilder-bad-record/.slugkit-owner'), `${builder.pid} whatever\n`);
      // A pid that lives again in another process (its start time differs): its owner is gone.
      await mkdir(path.join(tmp, 'slugbuilder-reused-pid'));
      await writeFile(path.join(tmp, 'slugbuilder-reused-pid/.slugkit-owner'), await ownerRecord(process.pid, '1'));

      const next = await runBuilder(
        [
          '--buildpack',
          await makeBuildpack({ detect: 'echo Test', compile: 'true' }),
          '--sandbox',
          mode,
          '--cache-dir',
          path.join(tmp, 'cache2'),
          '-o',
          path.join(tmp, 's.tgz'),
        ],
        {
          input: await tarOf(await makeApp({ a: 'a' })),
          env,
        },
      );
      expect(next.exitCode, next.stderr).to.equal(0);
      const left = (await readdir(tmp)).filter((n) => n.startsWith('slugbuilder-')).sort();
      expect(left).to.deep.equal([...keep].sort());
    });
  }

  it('--sandbox on, SIGTERM mid-compile: exit 143, one line, the sandboxed sleep is gone and no workspace is left', async function () {
    requireBwrap(this);
    const tmp = await tempDir('slugkit-tmpdir-');
    const marker = `slugkit-term-test-${process.pid}-${Date.now()}`;
    const appDir = path.join(await tempDir(), 'app');
    const bp = await makeBuildpack({ detect: 'echo Test', compile: `(exec -a ${marker} sleep 300) & touch "$1/compiling"; wait` });
    const builder = execa(
      process.execPath,
      [
        '--',
        BUILDER,
        '--buildpack',
        bp,
        '--sandbox',
        'on',
        '--app-dir',
        appDir,
        '--cache-dir',
        path.join(tmp, 'cache'),
        '-o',
        path.join(tmp, 'never.tgz'),
      ],
      { input: await tarOf(await makeApp({ a: 'a' })), env: { ...process.env, TMPDIR: tmp }, reject: false },
    );
    await waitForFile(path.join(appDir, 'compiling'), { child: builder });
    await until('the sleep started', () => processesWith(marker).length > 0, 5_000);
    builder.kill('SIGTERM');
    const result = await builder;
    expect(result.exitCode, String(result.stderr)).to.equal(143);
    expect(
      String(result.stderr)
        .split('\n')
        .filter((l) => l.startsWith(' !')),
    ).to.deep.equal([' !     Build interrupted by SIGTERM']);
    await until('the sleep was not killed', () => processesWith(marker).length === 0, 2_000);
    expect((await readdir(tmp)).filter((n) => n.startsWith('slugbuilder-'))).to.deep.equal([]);
  });
});
