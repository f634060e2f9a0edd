/**
 * The default build cache is per app (`--app`, SLUGBUILDER_APP), and
 * `slugbuilder cache clear` removes one app's cache, the shared one, or all,
 * refusing while a build holds it. Real builds with a buildpack that counts
 * its builds in CACHE_DIR.
 */
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { BUILDER, makeApp, makeBuildpack, removeTempDirs, runBuilder, tempDir, waitForFile } from './helpers/cli.js';

const COUNTER = 'n=$(cat "$2/count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$2/count"; echo "build number $n"';

describe('per-app build caches', function () {
  this.timeout(60_000);
  let root: string;
  let bp: string;
  let app: string;

  beforeEach(async () => {
    root = await tempDir('slugkit-cache-root-');
    bp = await makeBuildpack({ compile: COUNTER });
    app = await makeApp({ Procfile: 'web: true\n' });
  });
  after(removeTempDirs);

  const env = (extra: NodeJS.ProcessEnv = {}) => ({ ...process.env, SLUGBUILDER_CACHE_DIR: root, SLUGBUILDER_APP: '', ...extra });

  async function buildNumber(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<string> {
    const r = await runBuilder(['--source', app, '--buildpack', bp, '-o', path.join(await tempDir(), 's.tgz'), ...args], {
      env: env(extra),
    });
    expect(r.exitCode, r.stderr).to.equal(0);
    return /build number (\d+)/.exec(r.stderr)?.[1] ?? '';
  }

  it('keys the default cache by app: apps do not share or evict each other', async () => {
    expect(await buildNumber(['--app', 'shop'])).to.equal('1');
    expect(await buildNumber(['--app', 'shop'])).to.equal('2');
    expect(await buildNumber(['--app', 'blog'])).to.equal('1');
    expect(await buildNumber([], { SLUGBUILDER_APP: 'blog' })).to.equal('2');
    // No app named: the shared default cache.
    expect(await buildNumber([])).to.equal('1');
    expect((await readdir(path.join(root, 'apps'))).sort()).to.deep.equal(['blog', 'shop']);
    expect(existsSync(path.join(root, 'cache', 'count'))).to.equal(true);
  });

  it('an app name that is not one plain path component is a usage error', async () => {
    for (const [args, extra] of [[['--app', '../etc']], [['--app', '']], [[], { SLUGBUILDER_APP: 'a/b' }]] as const) {
      const r = await runBuilder(['--source', app, '-o', path.join(await tempDir(), 's.tgz'), ...args], { env: env(extra) });
      expect(r.exitCode, r.stderr).to.equal(2);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stderr).to.match(
        /^ ! {5}((--app|SLUGBUILDER_APP) ".*" is not an app name: use letters, digits, \. _ -|--app needs a value)/,
      );
    }
  });

  it('cache clear --app NAME removes that app only; --all removes every one', async () => {
    await buildNumber(['--app', 'shop']);
    await buildNumber(['--app', 'blog']);
    await buildNumber([]);
    const clear = await runBuilder(['cache', 'clear', '--app', 'shop'], { env: env() });
    expect(clear.exitCode, clear.stderr).to.equal(0);
    expect(clear.stderr).to.equal(`-----> Cleared the cache at ${path.join(root, 'apps', 'shop')}\n`);
    expect(await buildNumber(['--app', 'shop'])).to.equal('1');
    expect(await buildNumber(['--app', 'blog'])).to.equal('2');

    const all = await runBuilder(['cache', 'clear', '--all'], { env: env() });
    expect(all.exitCode, all.stderr).to.equal(0);
    // Three build caches, then the image layer cache and the buildpack cache (none here).
    expect(all.stderr.trim().split('\n')).to.have.length(5);
    for (const a of ['shop', 'blog']) expect(await buildNumber(['--app', a])).to.equal('1');
    expect(await buildNumber([])).to.equal('1');
  });

  it('cache clear refuses while a build holds the cache, and works after it', async () => {
    const marks = await tempDir();
    const waiting = await makeBuildpack({
      compile: `${COUNTER}\ntouch "${marks}/compiling"\nwhile [ ! -f "${marks}/go" ]; do sleep 0.05; done`,
    });
    const building = execa(
      process.execPath,
      [BUILDER, '--source', app, '--buildpack', waiting, '--app', 'shop', '-o', path.join(marks, 's.tgz')],
      // Unsandboxed: the buildpack talks to the test through files outside its build.
      { env: { ...env(), SLUGKIT_SANDBOX: 'off' }, reject: false, stdin: 'ignore' },
    );
    await waitForFile(path.join(marks, 'compiling'), { timeoutMs: 30_000 });
    const refused = await runBuilder(['cache', 'clear', '--app', 'shop'], { env: env() });
    await writeFile(path.join(marks, 'go'), '');
    const built = await building;
    expect(built.exitCode, String(built.stderr)).to.equal(0);
    expect(refused.exitCode).to.equal(1);
    expect(refused.stderr).to.match(
      new RegExp(
        `^ ! {5}the cache at ${path.join(root, 'apps', 'shop').replace(/[.]/g, '\\.')} is in use by a build \\(pid \\d+ on .+\\): clear it when the build has finished\\n$`,
      ),
    );
    expect(await buildNumber(['--app', 'shop'])).to.equal('2');
    const clear = await runBuilder(['cache', 'clear', '--app', 'shop'], { env: env() });
    expect(clear.exitCode, clear.stderr).to.equal(0);
    expect(await buildNumber(['--app', 'shop'])).to.equal('1');
  });

  it('cache clear with no cache says so; a bad subcommand is a usage error', async () => {
    const none = await runBuilder(['cache', 'clear', '--app', 'ghost'], { env: env() });
    expect(none.exitCode).to.equal(0);
    expect(none.stderr).to.equal(`-----> No cache at ${path.join(root, 'apps', 'ghost')}\n`);
    for (const args of [['cache'], ['cache', 'wipe'], ['cache', 'clear', '--app', 'a', '--all']]) {
      const r = await runBuilder(args, { env: env() });
      expect(r.exitCode, args.join(' ')).to.equal(2);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
    }
  });
});
