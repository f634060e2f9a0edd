/**
 * Builds sharing one `--cache-dir`, through the real CLI. The test buildpack
 * reads a counter from CACHE_DIR, waits a little (so unlocked builds would
 * overlap), and writes the counter + 1 into the cache (20 files) and into the
 * app. With the per-cache lock and the atomic publish (slugbuilder/buildpacks/cache-dir.ts):
 *  - eight builds at once each see a different, whole cache: their build
 *    numbers are exactly 1..8 and the cache ends at 8 in every file;
 *  - a build SIGKILLed half way through writing its cache leaves the
 *    published cache as it was, and its lock does not stop the next build.
 */

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { execa, type ResultPromise } from 'execa';
import { BUILDER, writeBuildpack } from './helpers/cli.js';
import { file, tar } from './helpers/tar-blocks.js';

const CACHE_FILES = 20;

const COUNTER_COMPILE = `
cache=$2
n=$(cat "$cache/counter" 2>/dev/null || echo 0)
# Widen the window in which two unlocked builds would read the same value.
sleep 0.5
n=$((n + 1))
mkdir -p "$cache/files"
half=$((${CACHE_FILES} / 2))
for i in $(seq 1 ${CACHE_FILES}); do
  echo "$n" > "$cache/files/f$i"
  if [ -n "\${KILL_MARK:-}" ] && [ "$i" = "$half" ]; then
    # Half the cache rewritten: tell the test, and wait to be killed.
    echo $$ > "$KILL_MARK"
    sleep 600
  fi
done
echo "$n" > "$cache/counter"
echo "$n" > "$1/build-number"
`;

describe('concurrent builds sharing one cache dir', function () {
  this.timeout(120_000);
  let root: string;
  let buildpack: string;
  let source: string;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'slugkit-concurrency-'));
    buildpack = await writeBuildpack(path.join(root, 'counter-buildpack'), { compile: COUNTER_COMPILE });
    source = path.join(root, 'app.tar');
    await writeFile(source, tar(file('Procfile', 'web: cat build-number\n')));
  });

  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  function startBuild(cacheDir: string, out: string, tmp: string, extraEnv: Record<string, string> = {}): ResultPromise {
    // The buildpack reads extraEnv: buildpacks get only what --pass-env names.
    const passEnv = Object.keys(extraEnv).flatMap((name) => ['--pass-env', name]);
    return execa('node', [BUILDER, '--source', source, '--buildpack', buildpack, '--cache-dir', cacheDir, '-o', out, ...passEnv], {
      // Unsandboxed: the killed build's buildpack writes its host pid outside its build (sandbox.test.ts covers the sandbox).
      env: { TMPDIR: tmp, PUT_URL: '', TAR_URL: '', BUILDPACK_URL: '', SLUGKIT_SANDBOX: 'off', ...extraEnv },
      reject: false,
      stdin: 'ignore',
      timeout: 100_000,
    });
  }

  async function buildNumberIn(slug: string): Promise<number> {
    const { stdout } = await execa('tar', ['-xzOf', slug, './build-number']);
    return Number(stdout.trim());
  }

  /** The cache's counter and every file of it: a consistent cache has one value everywhere. */
  async function cacheValues(cacheDir: string): Promise<Set<string>> {
    const values = new Set<string>();
    values.add((await readFile(path.join(cacheDir, 'counter'), 'utf8')).trim());
    for (let i = 1; i <= CACHE_FILES; i++) values.add((await readFile(path.join(cacheDir, 'files', `f${i}`), 'utf8')).trim());
    return values;
  }

  /** Nothing of the locking machinery may remain beside the cache once builds are over. */
  async function leftoversBeside(cacheDir: string): Promise<string[]> {
    return (await readdir(path.dirname(cacheDir))).filter((n) => n !== path.basename(cacheDir));
  }

  /** A fresh case dir: the shared cache dir inside it (not made) and an empty TMPDIR for the builds. */
  async function caseDirs(label: string): Promise<{ dir: string; cacheDir: string; tmp: string }> {
    const dir = await mkdtemp(path.join(root, `${label}-`));
    const tmp = path.join(dir, 'tmp');
    await mkdir(tmp);
    return { dir, cacheDir: path.join(dir, 'caches', 'shared'), tmp };
  }

  it('eight builds at once: build numbers 1..8, all slugs correct, cache consistent at 8', async () => {
    const { dir, cacheDir, tmp } = await caseDirs('eight');
    const outs = Array.from({ length: 8 }, (_, i) => path.join(dir, `slug-${i}.tgz`));
    const results = await Promise.all(outs.map((out) => startBuild(cacheDir, out, tmp)));
    for (const r of results) expect(r.exitCode, String(r.stderr)).to.equal(0);

    const numbers = await Promise.all(outs.map(buildNumberIn));
    expect(numbers.sort((a, b) => a - b)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const out of outs) {
      const { stdout } = await execa('tar', ['-tzf', out]);
      expect(stdout.split('\n')).to.include.members(['./', './Procfile', './build-number', './.release']);
    }
    expect([...(await cacheValues(cacheDir))]).to.deep.equal(['8']);
    expect(await leftoversBeside(cacheDir)).to.deep.equal([]);
    expect(await readdir(tmp)).to.deep.equal([]);
    // Builds that had to wait said so.
    expect(results.some((r) => /Waiting for another build using this cache/.test(String(r.stderr)))).to.equal(true);
  });

  it('a build SIGKILLed mid-compile leaves the cache as it was, and the next build takes over its lock', async () => {
    const { dir, cacheDir, tmp } = await caseDirs('killed');

    const first = await startBuild(cacheDir, path.join(dir, 'first.tgz'), tmp);
    expect(first.exitCode, String(first.stderr)).to.equal(0);
    expect([...(await cacheValues(cacheDir))]).to.deep.equal(['1']);

    const mark = path.join(dir, 'killed-build-pid');
    const doomed = startBuild(cacheDir, path.join(dir, 'doomed.tgz'), tmp, { KILL_MARK: mark });
    while (!existsSync(mark) || (await readFile(mark, 'utf8')).trim() === '') {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const orphanGroup = Number((await readFile(mark, 'utf8')).trim());
    // SIGKILL: no handler runs, the lock file and the staging copy stay behind.
    doomed.kill('SIGKILL');
    await doomed;
    try {
      expect(existsSync(cacheLock(cacheDir)), 'the killed build left its lock').to.equal(true);
      // Half of the killed build's writes went to its private copy, none to the cache.
      expect([...(await cacheValues(cacheDir))]).to.deep.equal(['1']);

      const next = await startBuild(cacheDir, path.join(dir, 'next.tgz'), tmp);
      expect(next.exitCode, String(next.stderr)).to.equal(0);
      expect(String(next.stderr)).to.match(/Taking over the cache lock of pid \d+ on .*, which is gone/);
      expect(await buildNumberIn(path.join(dir, 'next.tgz'))).to.equal(2);
      expect([...(await cacheValues(cacheDir))]).to.deep.equal(['2']);
      expect(await leftoversBeside(cacheDir)).to.deep.equal([]);
      expect(existsSync(path.join(dir, 'doomed.tgz'))).to.equal(false);
    } finally {
      // The killed build's buildpack was orphaned with its sleep: end it.
      try {
        process.kill(-orphanGroup, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  it('a lock whose heartbeat stopped long ago is stale even if its pid lives', async () => {
    const { dir, cacheDir, tmp } = await caseDirs('aged');
    await mkdir(cacheDir, { recursive: true });
    // Our own pid: alive, but the lock has not been touched for ten minutes.
    await writeFile(cacheLock(cacheDir), `${hostname()} ${process.pid} abcd\n`);
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(cacheLock(cacheDir), old, old);
    const r = await startBuild(cacheDir, path.join(dir, 'slug.tgz'), tmp);
    expect(r.exitCode, String(r.stderr)).to.equal(0);
    expect(String(r.stderr)).to.match(new RegExp(`Taking over the cache lock of pid ${process.pid}`));
    expect(existsSync(cacheLock(cacheDir))).to.equal(false);
  });

  it('a live, fresh lock makes the build wait until it is released', async () => {
    const { dir, cacheDir, tmp } = await caseDirs('held');
    await mkdir(cacheDir, { recursive: true });
    await writeFile(cacheLock(cacheDir), `${hostname()} ${process.pid} abcd\n`);
    const waiting = startBuild(cacheDir, path.join(dir, 'slug.tgz'), tmp);
    let stderr = '';
    waiting.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    while (!/Waiting for another build using this cache \(pid \d+/.test(stderr)) {
      if (waiting.exitCode !== undefined && waiting.exitCode !== null) throw new Error(`build ended while the lock was held:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(existsSync(path.join(dir, 'slug.tgz'))).to.equal(false);
    await rm(cacheLock(cacheDir));
    const r = await waiting;
    expect(r.exitCode, stderr).to.equal(0);
    expect(await buildNumberIn(path.join(dir, 'slug.tgz'))).to.equal(1);
  });
});

function cacheLock(cacheDir: string): string {
  return path.join(path.dirname(cacheDir), `.${path.basename(cacheDir)}.lock`);
}
