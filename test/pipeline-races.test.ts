/**
 * The git-push pipeline on its worst day, through real pushes to a real bare
 * repository with the hook installed (examples/git-push/pre-receive as
 * pre-receive and post-receive) and the real CLIs: two pushes to one app at
 * once, pushes SIGKILLed at each point of a deploy, a restart that leaves the
 * app running in the background, and staging left by dead pushes. Every
 * point a test acts at is a gate it has seen on the pushing client (see
 * helpers/git-push.ts), never a sleep.
 */

import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type Clone, gateScript, outputShows, Pipeline } from './helpers/git-push.js';
import { requireTools } from './helpers/tools.js';

const WAITING = /^remote: -----> another deploy of hello is running \(pid \d+, since \d{4}-\d\d-\d\dT[\d:]+Z\); waiting \(up to \d+s\)/m;

/** Processes whose command line contains `text` (to check that none survived a kill). */
async function processesWith(text: string): Promise<string[]> {
  const r = await execa('pgrep', ['-af', '--', text], { reject: false });
  return r.stdout.split('\n').filter((l) => l && !l.includes('pgrep'));
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('git-push pipeline: races and kills', function () {
  this.timeout(60_000);
  let p: Pipeline;
  let alice: Clone;
  let v1: string;

  before(function () {
    requireTools(this, 'git', 'flock');
  });

  beforeEach(async () => {
    p = await Pipeline.create();
    await p.repo('hello');
    alice = await p.clone('hello', 'alice');
    v1 = await alice.commit({ Procfile: 'web: sleep 1000\n' }, 'v1');
    const first = await p.push(alice);
    expect(first.exitCode, first.all).to.equal(0);
  });

  afterEach(async () => {
    await p.close();
  });

  it('two pushes to one app at once: the second waits, is rejected because main moved, and what git says is what runs (3 rounds)', async () => {
    const bob = await p.clone('hello', 'bob');
    for (let round = 1; round <= 3; round++) {
      await alice.sync();
      await bob.sync();
      const a = await alice.commit({ '.gate': `a${round}`, A: `${round}\n` }, `alice ${round}`);
      const b = await bob.commit({ '.gate': `b${round}`, B: `${round}\n` }, `bob ${round}`);
      const pushA = p.push(alice);
      await outputShows(pushA, new RegExp(`gate a${round}: waiting`));
      const pushB = p.push(bob);
      await outputShows(pushB, WAITING);
      await p.open(`a${round}`);
      await p.open(`b${round}`); // if bob's build ever started, it must not wait
      const [ra, rb] = await Promise.all([pushA, pushB]);
      expect(ra.exitCode, ra.all).to.equal(0);
      expect(rb.exitCode, rb.all).to.not.equal(0);
      expect(rb.all).to.match(
        /^remote: {2}! {5}main moved while this push waited \(it is at [0-9a-f]{12} now\): push rejected, nothing built; fetch, merge and push again/m,
      );
      // Bob's build never ran: one deploy (and one release phase) at a time.
      expect(rb.all).to.not.include('Building hello');
      expect(await p.ref('hello')).to.equal(a);
      expect((await p.current('hello')).sha).to.equal(a);
      expect(a).to.not.equal(b);
    }
    expect((await readdir(p.appDir('hello', 'releases'))).sort()).to.deep.equal(['v1', 'v2', 'v3', 'v4']);
  });

  it('a second push is refused at once when slugkit.locktimeout is 0, and gives up after the timeout otherwise', async () => {
    const bob = await p.clone('hello', 'bob');
    await alice.commit({ '.gate': 'a', A: '1\n' }, 'alice');
    await bob.commit({ B: '1\n' }, 'bob');
    const pushA = p.push(alice);
    await outputShows(pushA, /gate a: waiting/);

    const refused = await p.push(bob, { SLUGKIT_LOCK_TIMEOUT: '0' });
    expect(refused.exitCode).to.not.equal(0);
    expect(refused.all).to.match(
      /^remote: {2}! {5}another deploy of hello is running \(pid \d+, since [\dT:Z-]+\): push refused \(slugkit\.locktimeout is 0: pushes do not wait\)/m,
    );
    const gaveUp = await p.push(bob, { SLUGKIT_LOCK_TIMEOUT: '1' });
    expect(gaveUp.exitCode).to.not.equal(0);
    expect(gaveUp.all).to.match(WAITING);
    expect(gaveUp.all).to.match(
      /^remote: {2}! {5}another deploy of hello is running \(pid \d+, since [\dT:Z-]+\), still after 1s: push rejected/m,
    );

    await p.open('a');
    expect((await pushA).exitCode).to.equal(0);
    expect((await p.current('hello')).release).to.equal('v2');
  });

  it('SIGKILL during the build: the ref and current stay, the build is gone, nothing is left staged, the next push is v2', async () => {
    const old = await p.ref('hello');
    await alice.commit({ '.gate': 'build' }, 'killed in the build');
    const push = p.push(alice);
    await outputShows(push, /gate build: waiting/);
    await p.kill(push);
    await p.settled('hello');

    expect(await p.ref('hello')).to.equal(old);
    expect(await p.current('hello')).to.deep.equal({ release: 'v1', sha: v1 });
    await eventually(async () => (await processesWith(join(p.buildpack, 'bin/compile'))).length === 0, 'the build is still running');
    expect((await readdir(p.appDir('hello'))).sort()).to.deep.equal(['.lock', 'current', 'releases', 'repo']);
    expect(await readdir(p.appDir('hello', 'releases'))).to.deep.equal(['v1']);

    const next = await alice.commit({ '.gate': null }, 'v2');
    const result = await p.push(alice);
    expect(result.exitCode, result.all).to.equal(0);
    expect(await p.current('hello')).to.deep.equal({ release: 'v2', sha: next });
  });

  it('SIGKILL during the release phase takes the release command with it and leaves no scratch dir', async () => {
    const old = await p.ref('hello');
    await alice.commit(
      { Procfile: `web: sleep 1000\nrelease: ${gateScript(p.gates, 'migration')}; sleep 29.75; echo migrated\n` },
      'a release phase that is killed',
    );
    const push = p.push(alice);
    await outputShows(push, /gate migration: waiting/);
    await p.kill(push);
    await p.settled('hello');
    await p.open('migration'); // a release command that survived would now go on and "migrate"

    await eventually(
      async () => (await processesWith('sleep 29.75')).length === 0 && (await processesWith(`${p.gates}/migration.go`)).length === 0,
      'the release command still runs',
    );
    expect(await p.ref('hello')).to.equal(old);
    expect(await p.current('hello')).to.deep.equal({ release: 'v1', sha: v1 });
    expect(await readdir(join(p.work, 'tmp'))).to.deep.equal([]);
    expect((await readdir(p.appDir('hello'))).sort()).to.deep.equal(['.lock', 'current', 'releases', 'repo']);
  });

  it('SIGKILL during the restart, after git moved the ref: current is the pushed commit and the restart is run again', async () => {
    const restarts = join(p.work, 'restarts.log');
    const restart = `${gateScript(p.gates, `restart-$SLUGKIT_RELEASE`)}; echo "$SLUGKIT_RELEASE $SLUGKIT_SHA" >> '${restarts}'`;
    const sha = await alice.commit({ V: '2\n' }, 'v2');
    const push = p.push(alice, { SLUGKIT_RESTART: restart });
    await outputShows(push, /gate restart-v2: waiting/);
    await p.kill(push);
    await p.open('restart-v2');
    await p.settled('hello');

    expect(await p.ref('hello')).to.equal(sha);
    expect(await p.current('hello')).to.deep.equal({ release: 'v2', sha });
    expect(await readFile(restarts, 'utf8')).to.equal(`v2 ${sha}\n`);
    expect((await readdir(p.appDir('hello'))).sort()).to.deep.equal(['.lock', 'current', 'releases', 'repo', 'restart.log']);
  });

  it('SIGKILL of the hook and its guardian after git moved the ref: nothing lists the staged release, and the next push finishes it first', async () => {
    // git's reference-transaction hook runs once the ref has moved, before post-receive.
    const gate = join(p.work, 'bare-gate');
    const hook = join(p.work, 'hello.git', 'hooks', 'reference-transaction');
    await writeFile(
      hook,
      `#!/bin/sh\n[ "$1" = committed ] || exit 0\ncat >/dev/null\n: > '${gate}.reached'\nwhile [ ! -e '${gate}.go' ]; do sleep 0.05; done\n`,
    );
    await chmod(hook, 0o755);
    const sha = await alice.commit({ V: '2\n' }, 'v2');
    const push = p.push(alice);
    await eventually(async () => existsSync(`${gate}.reached`), 'the ref never moved');
    const owner = await readFile(p.appDir('hello', '.staging', 'owner'), 'utf8');
    const guardian = Number(/guardian=(\d+)/.exec(owner)?.[1]);
    process.kill(guardian, 'SIGKILL');
    await p.kill(push);
    await writeFile(`${gate}.go`, '');
    await p.settled('hello');

    // git moved main; the release waits, staged, and is neither listed nor a rollback target.
    expect(await p.ref('hello')).to.equal(sha);
    const listed = await p.slugkitApp(['releases', 'hello']);
    expect(listed.stdout.split('\n').slice(1)).to.have.length(1);
    expect(listed.stdout).to.match(/^v1 .*\(current\)$/m);
    const rollback = await p.slugkitApp(['rollback', 'hello', 'v2']);
    expect(rollback.exitCode).to.equal(1);
    expect(rollback.all).to.match(/^ ! +hello has no release v2 in the store/);

    const next = await alice.commit({ V: '3\n' }, 'v3');
    const result = await p.push(alice);
    expect(result.exitCode, result.all).to.equal(0);
    expect(result.all).to.include(
      `remote: -----> Finishing the deploy of main at ${sha.slice(0, 12)}: git took it, but its hook was killed before publishing`,
    );
    expect(result.all.indexOf('Finishing the deploy')).to.be.below(result.all.indexOf('Building hello'));
    expect((await readFile(p.appDir('hello', 'releases', 'v2', 'info'), 'utf8')).split('\n')[0]).to.equal(`sha=${sha}`);
    expect(await p.current('hello')).to.deep.equal({ release: 'v3', sha: next });
    expect(await p.ref('hello')).to.equal(next);
  });

  it('a restart that leaves the app running in the background holds up neither the push nor the next deploy', async () => {
    const pids = join(p.work, 'app.pids');
    const restart = `sleep 300.5 & echo $! >> '${pids}'; echo "app started in the background"`;
    try {
      await alice.commit({ V: '2\n' }, 'v2');
      const first = await p.push(alice, { SLUGKIT_RESTART: restart });
      expect(first.exitCode, first.all).to.equal(0);
      expect(first.all).to.include('remote: app started in the background');
      await alice.commit({ V: '3\n' }, 'v3');
      const second = await p.push(alice, { SLUGKIT_RESTART: restart, SLUGKIT_LOCK_TIMEOUT: '5' });
      expect(second.exitCode, second.all).to.equal(0);
      expect(second.all).to.not.match(WAITING);
      const restarted = await p.slugkitApp(['restart', 'hello'], { SLUGKIT_RESTART: restart, SLUGKIT_LOCK_TIMEOUT: '5' });
      expect(restarted.exitCode, restarted.all).to.equal(0);
      expect(restarted.all).to.include('app started in the background');
    } finally {
      const started = (await readFile(pids, 'utf8').catch(() => '')).split('\n').filter(Boolean);
      for (const pid of started) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {}
      }
    }
  });

  it('the next push removes what dead pushes left staged, of this hook and of older ones', async () => {
    const app = p.appDir('hello');
    // As a push killed with its guardian leaves them, and as older hooks and slugkit-app named them.
    await mkdir(join(app, '.staging', 'build', 'tmp'), { recursive: true });
    await writeFile(join(app, '.staging', 'owner'), 'receive-pack=999999 hook=999998 guardian=999997\n');
    await writeFile(join(app, '.staging', 'deadbeef.tgz'), 'a whole slug');
    await writeFile(join(app, '.0123456789abcdef0123456789abcdef01234567.Ab12Cd.tmp'), 'a whole slug');
    await writeFile(join(app, '.0123456789abcdef0123456789abcdef01234567.Ab12Cd.json'), '{}');
    await mkdir(join(app, 'releases', '.v9.Xy34Zw'));
    await writeFile(join(app, 'releases', '.v9.Xy34Zw', 'slug.tgz'), 'a whole slug');
    await mkdir(join(app, 'config'), { mode: 0o700 });
    await writeFile(join(app, 'config', '.TOKEN.Qw12Er'), 'half a secret');

    const sha = await alice.commit({ V: '2\n' }, 'v2');
    const result = await p.push(alice);
    expect(result.exitCode, result.all).to.equal(0);
    expect((await readdir(app)).sort()).to.deep.equal(['.lock', 'config', 'current', 'releases', 'repo']);
    expect((await readdir(join(app, 'releases'))).sort()).to.deep.equal(['v1', 'v2']);
    expect(await readdir(join(app, 'config'))).to.deep.equal([]);
    expect(await p.current('hello')).to.deep.equal({ release: 'v2', sha });
  });
});
