/**
 * slugkit-app and the hook when things go wrong, through real pushes and
 * the real examples/git-push/slugkit-app: rollback, config:set and restart
 * racing a deploy wait for its lock and read `current` after it; a damaged
 * release is listed as such; a full slug store (a small tmpfs, as root) fails
 * in one line naming what filled up, leaving nothing staged.
 */

import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type Clone, outputShows, Pipeline } from './helpers/git-push.js';
import { requireTools, skipOrFail } from './helpers/tools.js';

describe('git-push pipeline: slugkit-app under a running deploy, damaged releases, a full disk', function () {
  this.timeout(60_000);
  let p: Pipeline;
  let alice: Clone;

  before(function () {
    requireTools(this, 'git', 'flock');
  });

  afterEach(async () => {
    await p?.close();
  });

  describe('with a store on disk', () => {
    beforeEach(async () => {
      p = await Pipeline.create();
      await p.repo('hello');
      alice = await p.clone('hello', 'alice');
      await alice.commit({ Procfile: 'web: sleep 1000\n' }, 'v1');
      const first = await p.push(alice);
      expect(first.exitCode, first.all).to.equal(0);
    });

    it('rollback, config:set and restart wait for a running deploy, then act on what it left (a pruned release is one line)', async () => {
      const restarts = join(p.work, 'restarts.log');
      const env = { SLUGKIT_KEEP: '1', SLUGKIT_RESTART: `echo "$SLUGKIT_RELEASE \${GREETING:-unset}" >> '${restarts}'` };
      const sha = await alice.commit({ '.gate': 'deploy', V: '2\n' }, 'v2');
      const push = p.push(alice, env);
      await outputShows(push, /gate deploy: waiting/);

      // Started while the deploy holds the app's lock: each waits, saying for what.
      const rollback = p.slugkitApp(['rollback', 'hello', 'v1'], env);
      const set = p.slugkitApp(['config:set', 'hello', 'GREETING=hi'], env);
      const waiting = /^-----> another deploy of hello is running \(pid \d+, since [\dT:Z-]+\); waiting \(up to 600s\)$/m;
      await p.open('deploy');
      const [pushed, rolled, setResult] = await Promise.all([push, rollback, set]);
      expect(pushed.exitCode, pushed.all).to.equal(0);
      expect(pushed.all).to.include('remote:        removed old release v1');

      // The deploy pruned v1: rollback says so in one line and moves nothing.
      expect(rolled.all).to.match(waiting);
      expect(rolled.exitCode).to.equal(1);
      expect(rolled.all.split('\n').filter((l) => l.startsWith(' !'))).to.deep.equal([
        ' !     hello has no release v1 in the store: slugkit-app releases hello lists them',
      ]);
      expect(setResult.all).to.match(waiting);
      expect(setResult.exitCode, setResult.all).to.equal(0);
      expect(setResult.all).to.include('-----> Restarting hello on v2');
      expect(await p.current('hello')).to.deep.equal({ release: 'v2', sha });
      // The deploy's restart, then config:set's, both on v2; none on the pruned v1.
      expect((await readFile(restarts, 'utf8')).split('\n').filter(Boolean)).to.deep.equal(['v2 unset', 'v2 hi']);

      const restarted = await p.slugkitApp(['restart', 'hello'], env);
      expect(restarted.exitCode, restarted.all).to.equal(0);
      expect((await readFile(restarts, 'utf8')).split('\n').filter(Boolean).at(-1)).to.equal('v2 hi');
    });

    it('a release without its info file is listed as damaged, and the others are still listed', async () => {
      const v2 = await alice.commit({ V: '2\n' }, 'v2');
      expect((await p.push(alice)).exitCode).to.equal(0);
      await alice.commit({ V: '3\n' }, 'v3');
      expect((await p.push(alice)).exitCode).to.equal(0);
      await unlink(p.appDir('hello', 'releases', 'v3', 'info'));

      const listed = await p.slugkitApp(['releases', 'hello']);
      expect(listed.exitCode, listed.all).to.equal(0);
      const lines = listed.stdout.split('\n');
      expect(lines[0]).to.equal('=== hello releases');
      expect(lines[1]).to.equal(`v3    damaged: no info in ${p.appDir('hello', 'releases', 'v3')}  (current)`);
      expect(lines[2]).to.match(new RegExp(`^v2 +${v2.slice(0, 12)}  main  `));
      expect(lines[3]).to.match(/^v1 +[0-9a-f]{12}  main  /);
      expect(lines).to.have.length(4);
    });
  });

  describe('with the store on a small tmpfs', () => {
    let mount: string;

    beforeEach(async function () {
      if (process.getuid?.() !== 0) skipOrFail(this, 'mounts a tmpfs for a full disk, which needs root');
      mount = await mkdtemp(join(tmpdir(), 'slugkit-full-store-'));
      const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount], { reject: false, all: true });
      if (mounted.exitCode !== 0) skipOrFail(this, `cannot mount a tmpfs here (${mounted.all.trim()})`);
      p = await Pipeline.create(mount);
      await p.repo('hello');
      alice = await p.clone('hello', 'alice');
      await alice.commit({ Procfile: 'web: sleep 1000\n' }, 'v1');
      const first = await p.push(alice);
      expect(first.exitCode, first.all).to.equal(0);
    });

    afterEach(async () => {
      // The last push's guardian holds the store's lock until it has settled.
      await p?.settled('hello').catch(() => undefined);
      await p?.close();
      execFileSync('umount', [mount]);
      await rm(mount, { recursive: true, force: true });
    });

    it('a push and a config:set on a full store fail in one line saying what filled up, remove what they staged, and keep current', async () => {
      const before = await p.current('hello');
      const old = await p.ref('hello');
      // A build command that builds, then fills the store's disk (as another
      // app's slugs or logs would) before the hook writes the release.
      const filler = join(mount, 'filler');
      const fill = join(p.bin, 'filling-builder');
      await writeFile(fill, `#!/bin/sh\nslugbuilder "$@" || exit $?\nhead -c 100000000 /dev/zero > '${filler}' 2>/dev/null\nexit 0\n`, {
        mode: 0o755,
      });
      await alice.commit({ V: '2\n' }, 'v2');
      const result = await p.push(alice, { SLUGBUILDER: 'filling-builder', SLUGKIT_SANDBOX: 'off' });
      expect(result.exitCode).to.not.equal(0);
      const errors = result.all.split('\n').filter((l) => /^remote: {2}! /.test(l));
      expect(errors.map((l) => l.trim())).to.deep.equal([
        `remote:  !     no space left on ${mount} (the slug store) while writing .staging/release/info: push rejected, staged files removed, v1 stays live`,
      ]);
      expect(await p.ref('hello')).to.equal(old);
      expect(await p.current('hello')).to.deep.equal(before);
      expect((await readdir(p.appDir('hello'))).sort()).to.deep.equal(['.lock', 'current', 'releases', 'repo']);
      expect(await readdir(p.appDir('hello', 'releases'))).to.deep.equal(['v1']);

      await p.settled('hello');
      // What the push removed freed a few pages: fill them again.
      await execa('sh', ['-c', `head -c 100000000 /dev/zero >> '${filler}'`], { reject: false });
      const set = await p.slugkitApp(['config:set', 'hello', 'TOKEN=abc']);
      expect(set.exitCode).to.equal(1);
      expect(set.all.split('\n').filter(Boolean)).to.deep.equal([
        ` !     no space left on ${mount} (the slug store) while writing config var TOKEN: nothing changed`,
      ]);
      expect(await readdir(p.appDir('hello', 'config'))).to.deep.equal([]);

      // Space again: the next push goes through.
      await rm(filler);
      const again = await p.push(alice);
      expect(again.exitCode, again.all).to.equal(0);
      expect((await p.current('hello')).release).to.equal('v2');
    });
  });
});
