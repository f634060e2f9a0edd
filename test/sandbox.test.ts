/**
 * The build sandbox (--sandbox, SLUGKIT_SANDBOX) through the real slugbuilder:
 * a hostile app's bin/pre-compile cannot read or write a store or another
 * app's cache outside its build under --sandbox on, and can under --sandbox
 * off (so these tests can fail); what a build needs (its app, cache, ENV_DIR,
 * HOME, TMPDIR, an earlier buildpack's `export`) still works inside, and so
 * does a real bundled buildpack; where bwrap is missing, `on` is one line.
 */

import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { makeApp, makeBuildpack, ROOT, removeTempDirs, runBuilder, slugEntries, tarOf, tempDir, writeBuildpack } from './helpers/cli.js';
import { requireBwrap } from './helpers/tools.js';

const SECRET = 'alpha-secret-key-7f3a9c1e5b';
const CACHED_SECRET = 'alpha-cache-token-41d2e8';

/** Every entry under `root` with its type, mode and content hash: equal snapshots mean byte-identical trees. */
async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const name of (await readdir(dir)).sort()) {
      const full = path.join(dir, name);
      const st = await lstat(full);
      const rel = path.relative(root, full);
      if (st.isDirectory()) {
        out.push(`d ${rel} ${st.mode.toString(8)}`);
        await walk(full);
      } else if (st.isSymbolicLink()) out.push(`l ${rel} -> ${await readlink(full)}`);
      else
        out.push(
          `f ${rel} ${st.mode.toString(8)} ${createHash('sha256')
            .update(await readFile(full))
            .digest('hex')}`,
        );
    }
  };
  await walk(root);
  return out;
}

/** A store like the git-push example's (two apps' releases and config), and alpha's cache under a cache root. */
async function makeVictims(): Promise<{ store: string; cacheRoot: string }> {
  const store = await tempDir('slugkit-store-');
  await mkdir(path.join(store, 'alpha/config'), { recursive: true });
  await mkdir(path.join(store, 'alpha/releases/v1'), { recursive: true });
  await writeFile(path.join(store, 'alpha/config/SECRET_KEY'), SECRET);
  await writeFile(path.join(store, 'alpha/releases/v1/slug.tgz'), 'the live slug of alpha');
  const cacheRoot = await tempDir('slugkit-cache-root-');
  await mkdir(path.join(cacheRoot, 'apps/alpha'), { recursive: true });
  await writeFile(path.join(cacheRoot, 'apps/alpha/token'), CACHED_SECRET);
  return { store, cacheRoot };
}

/** bin/pre-compile of app beta: reads alpha's secrets, writes over every file of the store, looks around. */
function hostileHook(store: string, cacheRoot: string): string {
  return `#!/usr/bin/env bash
store='${store}'
other='${cacheRoot}/apps/alpha'
echo "probe read: $(cat "$store/alpha/config/SECRET_KEY" 2>&1)"
echo "probe cache: $(cat "$other/token" 2>&1)"
while IFS= read -r -d '' f; do echo pwned 2>/dev/null > "$f" && echo "probe wrote $f"; done < <(find "$store" "$other" -type f -print0 2>/dev/null)
echo pwned 2>/dev/null > "$store/alpha/config/NEW" && echo "probe created a file in the store"
for d in /root /home /srv "$store" "$other"; do [ -e "$d" ] && echo "probe sees $d"; done
exit 0
`;
}

describe('build sandbox (--sandbox)', function () {
  this.timeout(120_000);
  after(removeTempDirs);

  describe('where bwrap can make namespaces', () => {
    before(function () {
      requireBwrap(this);
    });

    async function hostileBuild(mode: 'on' | 'off') {
      const { store, cacheRoot } = await makeVictims();
      const before = [await snapshot(store), await snapshot(cacheRoot)];
      const app = await makeApp({ 'bin/pre-compile': { content: hostileHook(store, cacheRoot), mode: 0o755 }, 'a.txt': 'beta' });
      const bp = await makeBuildpack({ detect: 'echo Test', compile: 'true' });
      const out = path.join(await tempDir(), 'slug.tgz');
      const res = await runBuilder(['--buildpack', bp, '--app', 'beta', '--sandbox', mode, '-o', out], {
        input: await tarOf(app),
        env: { ...process.env, SLUGBUILDER_CACHE_DIR: cacheRoot },
      });
      const after = [await snapshot(store), await snapshot(cacheRoot)];
      return { res, before, after, store, cacheRoot };
    }

    it('--sandbox on: bin/pre-compile cannot see, read or write the store or another app cache; both stay byte-identical', async () => {
      const { res, before, after, store } = await hostileBuild('on');
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.include(`probe read: cat: ${store}/alpha/config/SECRET_KEY: No such file or directory`);
      expect(res.stderr).not.to.include(SECRET);
      expect(res.stderr).not.to.include(CACHED_SECRET);
      expect(res.stderr).not.to.match(/probe (wrote|created|sees)/);
      // The cache root gains beta's own cache only.
      expect(after[0]).to.deep.equal(before[0]);
      expect(after[1].filter((e) => !/ apps\/beta\b| apps\/\.beta\./.test(e))).to.deep.equal(before[1]);
    });

    it('--sandbox off: the same hook reads and overwrites them (the test above can fail)', async () => {
      const { res, before, after } = await hostileBuild('off');
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.include(`probe read: ${SECRET}`);
      expect(res.stderr).to.include(`probe cache: ${CACHED_SECRET}`);
      expect(res.stderr).to.include('probe created a file in the store');
      expect(after[0]).not.to.deep.equal(before[0]);
    });

    it('inside: the app dir, CACHE_DIR, ENV_DIR, HOME, TMPDIR, /tmp and an earlier buildpack export all work, and the cache is kept', async () => {
      const first = await writeBuildpack(path.join(await tempDir('slugkit-bp-'), 'first'), {
        compile: [
          'echo compiled > "$1/compiled"',
          'cat "$3/GREETING" > "$1/greeting"',
          'n=$(cat "$2/count" 2>/dev/null || echo 0); echo $((n + 1)) > "$2/count"; cp "$2/count" "$1/count"',
          'echo home > "$HOME/h" && echo tmp > "$TMPDIR/t" && echo slash-tmp > /tmp/x && cat "$HOME/h" "$TMPDIR/t" /tmp/x > "$1/scratch"',
          'echo "export FROM_FIRST=exported" > "$(dirname "$0")/../export"',
        ].join('\n'),
      });
      const second = await writeBuildpack(path.join(await tempDir('slugkit-bp-'), 'second'), {
        compile: 'echo "$FROM_FIRST" > "$1/from-first"',
      });
      const app = await makeApp({ 'bin/post-compile': { content: '#!/usr/bin/env bash\necho "$FROM_FIRST" > post\n', mode: 0o755 } });
      const cacheDir = path.join(await tempDir(), 'cache');
      const build = async () => {
        const out = path.join(await tempDir(), 'slug.tgz');
        const res = await runBuilder(
          ['--buildpack', first, '--buildpack', second, '--sandbox', 'on', '-e', 'GREETING=hello', '--cache-dir', cacheDir, '-o', out],
          { input: await tarOf(app) },
        );
        expect(res.exitCode, res.stderr).to.equal(0);
        const files = Object.fromEntries((await slugEntries(out)).map((e) => [e.path.replace(/^\.\//, ''), e.body]));
        return files;
      };
      const one = await build();
      expect(one).to.include({
        compiled: 'compiled\n',
        greeting: 'hello',
        count: '1\n',
        scratch: 'home\ntmp\nslash-tmp\n',
        'from-first': 'exported\n',
        post: 'exported\n',
      });
      const two = await build();
      expect(two.count).to.equal('2\n');
    });

    it('a bundled buildpack builds a real app sandboxed: examples/node-express with npm ci from the registry', async () => {
      const out = path.join(await tempDir(), 'slug.tgz');
      const res = await runBuilder(
        [
          '--source',
          path.join(ROOT, 'examples/node-express'),
          '--sandbox',
          'on',
          '--cache-dir',
          path.join(await tempDir(), 'c'),
          '-o',
          out,
        ],
        {},
      );
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.include('-----> Node.js app detected');
      expect(res.stderr).to.match(/added \d+ packages/);
      const paths = (await slugEntries(out)).map((e) => e.path);
      expect(paths).to.include('./node_modules/express/package.json');
    });

    /** A bwrap on PATH that logs each start's arguments and runs the real one; `old` refuses --disable-userns as bwrap before 0.8 does. */
    async function loggingBwrap(old: boolean): Promise<{ dir: string; log: string }> {
      const dir = await tempDir('slugkit-bwrap-');
      const log = path.join(dir, 'starts.log');
      const real = (await execa('sh', ['-c', 'command -v bwrap'])).stdout.trim();
      const refuse = old
        ? `for a in "$@"; do [ "$a" = --disable-userns ] && { echo 'bwrap: Unknown option --disable-userns' >&2; exit 1; }; done\n`
        : '';
      await writeFile(path.join(dir, 'bwrap'), `#!/bin/sh\necho "$*" >> '${log}'\n${refuse}exec '${real}' "$@"\n`, { mode: 0o755 });
      return { dir, log };
    }

    it('bwrap is started once to check it works, with --disable-userns; one older than 0.8 is checked again without it and still sandboxes', async () => {
      for (const old of [false, true]) {
        const bwrap = await loggingBwrap(old);
        const bp = await makeBuildpack({
          detect: 'echo Test',
          compile: '[ -e /root ] && echo "compile sees /root" || echo "compile cannot see /root"',
        });
        const res = await runBuilder(['--buildpack', bp, '--sandbox', 'on', '-o', path.join(await tempDir(), 's.tgz')], {
          input: await tarOf(await makeApp({ a: 'a' })),
          env: { ...process.env, PATH: `${bwrap.dir}:${process.env.PATH}` },
        });
        expect(res.exitCode, res.stderr).to.equal(0);
        expect(res.stderr).to.include('compile cannot see /root');
        const starts = (await readFile(bwrap.log, 'utf8')).trimEnd().split('\n');
        const probes = starts.filter((s) => s.endsWith(' -- true'));
        expect(probes.map((s) => s.includes('--disable-userns'))).to.deep.equal(old ? [true, false] : [true]);
        // detect and compile (this buildpack has no bin/release), each with the flags the last probe passed.
        const builds = starts.filter((s) => !s.endsWith(' -- true'));
        expect(builds).to.have.length(2);
        for (const s of builds) expect(s.includes('--disable-userns')).to.equal(!old);
        expect(starts.some((s) => s.includes('--help'))).to.equal(false);
      }
    });

    it('a buildpack killed by a signal inside the sandbox is reported as killed', async () => {
      const bp = await makeBuildpack({ detect: 'echo Test', compile: 'echo compiling; kill -KILL $$' });
      const res = await runBuilder(['--buildpack', bp, '--sandbox', 'on', '-o', path.join(await tempDir(), 's.tgz')], {
        input: await tarOf(await makeApp({ a: 'a' })),
      });
      expect(res.exitCode).to.equal(1);
      expect(res.stderr).to.match(/ ! +Buildpack Test was killed by SIGKILL\n$/);
    });
  });

  describe('where bwrap is missing', () => {
    /** slugbuilder's own PATH without bwrap (buildpacks get the stack's PATH whatever it is). */
    const pathWithoutBwrap = () => tempDir('slugkit-nobwrap-');

    it('--sandbox on is one line, exit 1, before any buildpack runs', async () => {
      const marker = path.join(await tempDir(), 'detect-ran');
      const bp = await makeBuildpack({ detect: `touch '${marker}'; echo Test`, compile: 'true' });
      const res = await runBuilder(['--buildpack', bp, '--sandbox', 'on', '-o', path.join(await tempDir(), 's.tgz')], {
        input: await tarOf(await makeApp({ a: 'a' })),
        env: { ...process.env, PATH: await pathWithoutBwrap() },
      });
      expect(res.exitCode).to.equal(1);
      expect(res.stderr.trimEnd().split('\n')).to.deep.equal([
        ' !     --sandbox on: bwrap is not installed (apt-get install bubblewrap): install it or pass --sandbox off',
      ]);
      expect(await lstat(marker).catch(() => undefined)).to.equal(undefined);
    });

    it('auto (the default) warns in one line and builds unsandboxed; off says nothing', async () => {
      const bp = await makeBuildpack({ detect: 'echo Test', compile: 'true' });
      // Empty is unset: the default, auto (the test run pins SLUGKIT_SANDBOX otherwise).
      const env: NodeJS.ProcessEnv = { ...process.env, PATH: await pathWithoutBwrap(), SLUGKIT_SANDBOX: '' };
      const auto = await runBuilder(['--buildpack', bp, '-o', path.join(await tempDir(), 's.tgz')], {
        input: await tarOf(await makeApp({ a: 'a' })),
        env,
      });
      expect(auto.exitCode, auto.stderr).to.equal(0);
      expect(auto.stderr.split('\n').filter((l) => l.includes('sandbox'))).to.deep.equal([
        ' !     Warning: buildpacks run without a sandbox: bwrap is not installed (apt-get install bubblewrap); pass --sandbox off (or SLUGKIT_SANDBOX=off) if that is intended',
      ]);
      const off = await runBuilder(['--buildpack', bp, '-o', path.join(await tempDir(), 's.tgz')], {
        input: await tarOf(await makeApp({ a: 'a' })),
        env: { ...env, SLUGKIT_SANDBOX: 'off' },
      });
      expect(off.exitCode, off.stderr).to.equal(0);
      expect(off.stderr).not.to.include('sandbox');
    });
  });

  it('a value other than auto, on or off is one usage line (exit 2), from the flag or the environment', async () => {
    const out = path.join(await tempDir(), 'x.tgz');
    const flag = await runBuilder(['--sandbox', 'yes', '-o', out], {});
    expect(flag.exitCode).to.equal(2);
    expect(flag.stderr.trimEnd()).to.equal(' !     --sandbox "yes": use auto, on or off');
    const env = await runBuilder(['-o', out], { env: { ...process.env, SLUGKIT_SANDBOX: 'strict' } });
    expect(env.exitCode).to.equal(2);
    expect(env.stderr.trimEnd()).to.equal(' !     SLUGKIT_SANDBOX "strict": use auto, on or off');
  });
});
