/**
 * The bundled nodejs buildpack, through the real slugbuilder and slugrunner.
 * Dependencies come from the real npm registry (the one outside host these
 * machines reach); the warm rebuild proves the cache by building with npm's
 * proxy pointed at a closed port on 127.0.0.1, so any fetch would fail.
 */

import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { BUILDPACKS, buildSlug, copyFixture, FIXTURES, runScript, startWeb } from './helpers/buildpack-harness.js';
import { freePort, makeApp, ROOT, removeTempDirs, slugPaths, tempDir, writeTree } from './helpers/cli.js';

const nodeVersion = process.version.slice(1);
const PRUNE_SKIPPED = '       skipped: package-lock.json lists no devDependencies and no build script ran, so there is nothing to prune';

/**
 * An app depending on ms, with the nodejs-build fixture's real lockfile:
 * is-number stays a devDependency (flagged as `devFlag` in the lockfile)
 * unless `dev` is false, which drops it from package.json and the lockfile.
 */
async function lockedApp(opts: { dev: boolean; devFlag?: 'dev' | 'devOptional'; scripts?: Record<string, string> }): Promise<string> {
  const lock = JSON.parse(await readFile(path.join(FIXTURES, 'nodejs-build/package-lock.json'), 'utf8'));
  const pkg: Record<string, unknown> = {
    name: 'prune-check',
    version: '1.0.0',
    scripts: opts.scripts ?? {},
    dependencies: { ms: '2.1.3' },
  };
  lock.name = lock.packages[''].name = pkg.name;
  if (opts.dev) {
    pkg.devDependencies = { 'is-number': '7.0.0' };
    if (opts.devFlag === 'devOptional') {
      delete lock.packages['node_modules/is-number'].dev;
      lock.packages['node_modules/is-number'].devOptional = true;
    }
  } else {
    delete lock.packages[''].devDependencies;
    delete lock.packages['node_modules/is-number'];
  }
  delete lock.packages[''].engines;
  return makeApp({ 'package.json': JSON.stringify(pkg, null, 2), 'package-lock.json': JSON.stringify(lock, null, 2) });
}

/** The slug's node_modules packages (top level). */
async function slugPackages(slug: string): Promise<string[]> {
  return (await slugPaths(slug)).filter((e) => /^node_modules\/[^/.][^/]*$/.test(e)).sort();
}

/** The npm cache's content and index files, as saved in CACHE_DIR/npm.tar. */
async function cacheContents(cacheDir: string): Promise<string[]> {
  const { stdout } = await execa('tar', ['-tf', path.join(cacheDir, 'npm.tar')]);
  return stdout
    .split('\n')
    .map((f) => f.replace(/^\.\//, ''))
    .filter((f) => f.startsWith('_cacache/') && !f.endsWith('/'))
    .sort();
}

describe('buildpack nodejs', function () {
  this.timeout(240_000);
  after(removeTempDirs);

  describe('bin/detect and bin/release', () => {
    it('detects package.json and names itself Node.js', async () => {
      const app = await makeApp({ 'package.json': '{}' });
      const r = await runScript('nodejs', 'detect', app);
      expect(r.exitCode).to.equal(0);
      expect(r.stdout).to.equal('Node.js');
    });

    it('does not detect an app without package.json', async () => {
      const app = await makeApp({ 'index.html': '<h1>hi</h1>' });
      expect((await runScript('nodejs', 'detect', app)).exitCode).to.equal(1);
    });

    it('releases web: npm start when there is a start script', async () => {
      const app = await makeApp({ 'package.json': '{"scripts":{"start":"node index.js"}}' });
      const r = await runScript('nodejs', 'release', app);
      expect(r.exitCode).to.equal(0);
      expect(r.stdout).to.equal('---\ndefault_process_types:\n  web: npm start');
    });

    it('releases web: npm start for a server.js without a start script (npm runs it by default)', async () => {
      const app = await makeApp({ 'package.json': '{}', 'server.js': '' });
      expect((await runScript('nodejs', 'release', app)).stdout).to.contain('web: npm start');
    });

    it('releases no process types when npm would not know what to start', async () => {
      const app = await makeApp({ 'package.json': '{"scripts":{"build":"tsc"}}' });
      expect((await runScript('nodejs', 'release', app)).stdout).to.equal('---\ndefault_process_types: {}');
    });
  });

  describe('engines range check (lib/semver.cjs)', () => {
    const cases: Array<[string, string, number]> = [
      ['20.20.2', '20.x', 0],
      ['20.20.2', '20', 0],
      ['20.20.2', '^20.1.0', 0],
      ['20.20.2', '^18', 1],
      ['20.20.2', '~20.20.0', 0],
      ['20.20.2', '~20.19', 1],
      ['20.20.2', '>=18', 0],
      ['20.20.2', '>= 18 < 21', 0],
      ['20.20.2', '>=21', 1],
      ['20.20.2', '<20.20.2', 1],
      ['20.20.2', '<=20', 0],
      ['20.20.2', '>20', 1],
      ['20.20.2', '^18 || ^20', 0],
      ['20.20.2', '16.x || 18.x', 1],
      ['20.20.2', '18 - 20', 0],
      ['20.20.2', '18 - 20.1', 1],
      ['20.20.2', '*', 0],
      ['20.20.2', 'v20.20.2', 0],
      ['0.1.5', '^0.1', 0],
      ['0.2.0', '^0.1', 1],
      ['0.0.4', '^0.0.3', 1],
      ['20.20.2', 'latest', 2],
      ['20.20.2', '>=banana', 2],
    ];
    for (const [version, range, expected] of cases) {
      const meaning = ['satisfies', 'does not satisfy', 'is not understood:'][expected];
      it(`${version} ${meaning} "${range}"`, async () => {
        const r = await execa('node', [path.join(BUILDPACKS, 'nodejs/lib/semver.cjs'), version, range], { reject: false });
        expect(r.exitCode).to.equal(expected);
      });
    }
  });

  describe("npm's version (lib/inspect.cjs)", () => {
    /** inspect.cjs's answers for an empty app, with `binDir` first on PATH. */
    async function inspectWith(binDir: string): Promise<Record<string, string>> {
      const app = await makeApp({ 'package.json': '{}' });
      const env = { PATH: `${binDir}${path.delimiter}${process.env.PATH}` };
      const r = await execa('node', [path.join(BUILDPACKS, 'nodejs/lib/inspect.cjs'), app], { env, encoding: 'utf8' });
      const fields = r.stdout.split('\0');
      const facts: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) facts[fields[i]] = fields[i + 1];
      return facts;
    }

    it('is read from the package.json of the npm that PATH finds, through its symlink', async () => {
      const root = await tempDir();
      await writeTree(root, {
        'lib/node_modules/npm/package.json': '{"name": "npm", "version": "1.2.3"}',
        'lib/node_modules/npm/bin/npm-cli.js': { content: '#!/bin/sh\necho 9.9.9\n', mode: 0o755 },
      });
      await mkdir(path.join(root, 'bin'));
      await symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'bin/npm'));
      expect(await inspectWith(path.join(root, 'bin'))).to.include({ status: 'ok', npm_version: '1.2.3' });
    });

    it('is asked of npm --version when npm is a wrapper script', async () => {
      const root = await tempDir();
      await writeTree(root, { 'bin/npm': { content: '#!/bin/sh\necho 9.9.9\n', mode: 0o755 } });
      expect(await inspectWith(path.join(root, 'bin'))).to.include({ status: 'ok', npm_version: '9.9.9' });
    });
  });

  describe('building and running an app', () => {
    let cacheDir: string;
    let cold: Awaited<ReturnType<typeof buildSlug>>;
    let cacheAfterCold: string[];

    before(async () => {
      cacheDir = path.join(await tempDir('slugkit-npm-cache-'), 'cache');
      cold = await buildSlug(await copyFixture('nodejs-build'), cacheDir, { NPM_CONFIG_LOGLEVEL: 'http' });
      cacheAfterCold = await cacheContents(cacheDir);
    });

    it('builds with npm ci from the lockfile, runs the build script and prunes devDependencies', () => {
      expect(cold.exitCode, cold.stderr).to.equal(0);
      expect(cold.stderr).to.contain('-----> Node.js app detected');
      expect(cold.stderr).to.contain(`       engines.node ">=18" resolves to node ${nodeVersion} (${process.env.NODEJS_ORG_MIRROR})`);
      expect(cold.stderr).to.contain('       lockfile found: npm ci');
      expect(cold.stderr).to.contain('(cache miss)');
      expect(cold.stderr).to.contain('-----> Running build script');
      expect(cold.stderr).to.contain('       build script ran');
      expect(cold.stderr).to.contain('-----> Pruning devDependencies');
      expect(cacheAfterCold.filter((f) => f.startsWith('_cacache/content-v2/'))).to.have.length.greaterThan(
        0,
        'tarballs cached in CACHE_DIR/npm.tar',
      );
    });

    it('runs npm start on $PORT with NODE_ENV=production and without devDependencies', async () => {
      const app = await startWeb({ slug: cold.slug });
      try {
        const res = await fetch(app.origin + '/');
        expect(res.status).to.equal(200);
        expect(await res.json()).to.deep.equal({
          ms: '1m',
          nodeEnv: 'production',
          build: 'built with is-number: true',
          devDependencyPresent: false,
        });
        const profile = await readFile(path.join(app.appDir, '.profile.d/nodejs.sh'), 'utf8');
        expect(profile).to.contain('export NODE_ENV=${NODE_ENV:-production}');
      } finally {
        await app.stop();
      }
    });

    it('a warm rebuild with the same lockfile restores node_modules from the cache and fetches nothing', async () => {
      // npm's proxy points at a closed local port: any network fetch would fail the build.
      const deadProxy = `http://127.0.0.1:${await freePort()}`;
      const warm = await buildSlug(await copyFixture('nodejs-build'), cacheDir, {
        NPM_CONFIG_PROXY: deadProxy,
        NPM_CONFIG_HTTPS_PROXY: deadProxy,
        NPM_CONFIG_FETCH_RETRIES: '0',
      });
      expect(warm.exitCode, warm.stderr).to.equal(0);
      expect(warm.stderr).to.contain('node_modules restored from the cache');
      expect(warm.stderr).not.to.contain('lockfile found: npm ci');
      expect(warm.stderr).to.contain('       build script ran');
      expect(await cacheContents(cacheDir)).to.deep.equal(cacheAfterCold, 'the cache is unchanged');
      const app = await startWeb({ slug: warm.slug });
      try {
        expect(await (await fetch(app.origin + '/')).json()).to.include({
          build: 'built with is-number: true',
          devDependencyPresent: false,
        });
      } finally {
        await app.stop();
      }
    });

    it('without a cached node_modules, a warm rebuild runs npm ci taking every package from the npm cache', async () => {
      // As after a lockfile change: only the npm cache is left to help.
      await rm(path.join(cacheDir, 'node_modules.tar'), { force: true });
      await rm(path.join(cacheDir, 'node_modules.tar.key'), { force: true });
      // npm's proxy points at a closed local port: any network fetch would fail the build.
      const deadProxy = `http://127.0.0.1:${await freePort()}`;
      const warm = await buildSlug(await copyFixture('nodejs-build'), cacheDir, {
        NPM_CONFIG_LOGLEVEL: 'http',
        NPM_CONFIG_PROXY: deadProxy,
        NPM_CONFIG_HTTPS_PROXY: deadProxy,
        NPM_CONFIG_FETCH_RETRIES: '0',
      });
      expect(warm.exitCode, warm.stderr).to.equal(0);
      expect(warm.stderr).to.match(/ {7}\d+ cached entries found/);
      expect(warm.stderr).not.to.contain('(cache miss)');
      expect(warm.stderr).to.match(/\(cache (hit|stale)\)/);
      expect(await cacheContents(cacheDir)).to.deep.equal(cacheAfterCold, 'nothing new in the npm cache');
    });
  });

  it('fails naming the engines.node range asked for and the mirror that has no such release', async () => {
    const src = await copyFixture('nodejs-build');
    const pkg = JSON.parse(await readFile(path.join(src, 'package.json'), 'utf8'));
    pkg.engines.node = '14.x';
    await writeFile(path.join(src, 'package.json'), JSON.stringify(pkg));
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.contain(
      ` !     ${process.env.NODEJS_ORG_MIRROR} has no Node.js release for linux-${process.arch} that matches engines.node "14.x": change the range, or set NODEJS_ORG_MIRROR to a mirror that has one\n`,
    );
    expect(existsSync(r.slug)).to.equal(false, 'no slug after a failed build');
  });

  it('fails with one clear line on an invalid package.json', async () => {
    const src = await makeApp({ 'package.json': '{"name": "broken",' });
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.match(/package\.json is not valid JSON \(.*\): fix it and push again/);
  });

  it("an out-of-sync lockfile fails with npm's own error and the fix, without npm's usage text, and one error line", async () => {
    // Local file: dependencies, so npm needs no registry to find the mismatch.
    const lock = {
      name: 'drifted',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name: 'drifted', version: '1.0.0', dependencies: { a: 'file:a' } },
        a: { version: '1.0.0' },
        'node_modules/a': { resolved: 'a', link: true },
      },
    };
    const src = await makeApp({
      'package.json': JSON.stringify({ name: 'drifted', version: '1.0.0', dependencies: { a: 'file:a', b: 'file:b' } }),
      'package-lock.json': JSON.stringify(lock),
      'a/package.json': '{"name": "a", "version": "1.0.0"}',
      'b/package.json': '{"name": "b", "version": "1.0.0"}',
    });
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(r.stderr).to.match(/npm error `npm ci` can only install packages when your package\.json and package-lock\.json .* are in sync/);
    expect(r.stderr).to.include('npm error Missing: b@1.0.0 from lock file');
    expect(r.stderr).to.not.match(/Usage:|Clean install a project|--install-strategy|npm help ci|A complete log of this run/);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith(' !     '));
    expect(errors, r.stderr).to.deep.equal([
      ' !     npm ci failed (output above): if package-lock.json is out of sync with package.json, run npm install and commit the lockfile',
    ]);
    expect(r.stderr.split('\n').length, r.stderr).to.be.below(40);
  });

  it('fails the build, naming the script, when the build script fails', async () => {
    const src = await makeApp({ 'package.json': JSON.stringify({ name: 'broken-build', version: '1.0.0', scripts: { build: 'exit 3' } }) });
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.contain('the build script failed (output above): fix it in package.json and push again');
    expect(existsSync(r.slug)).to.equal(false);
  });

  it('uses npm install without a lockfile, and heroku-postbuild instead of build', async () => {
    const src = await makeApp({
      'package.json': JSON.stringify({
        name: 'no-lockfile',
        version: '1.0.0',
        scripts: {
          build: 'echo build-should-not-run',
          'heroku-postbuild': "node -e \"require('fs').writeFileSync('postbuild.txt', 'postbuild ran')\"",
          start: 'node index.js',
        },
      }),
      'index.js': "require('http').createServer((q, s) => s.end(require('fs').readFileSync('postbuild.txt'))).listen(process.env.PORT);\n",
    });
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.contain('       no lockfile: npm install');
    expect(r.stderr).to.contain('-----> Running heroku-postbuild script');
    expect(r.stderr).not.to.contain('build-should-not-run');
    const app = await startWeb({ slug: r.slug });
    try {
      expect(await (await fetch(app.origin + '/')).text()).to.equal('postbuild ran');
    } finally {
      await app.stop();
    }
  });

  describe('npm prune, skipped only when it would remove nothing', () => {
    it('is skipped, cold, warm and with NODE_MODULES_CACHE=false, for a lockfile without devDependencies when no build script ran', async () => {
      const cacheDir = path.join(await tempDir(), 'cache');
      const src = await lockedApp({ dev: false });
      const cold = await buildSlug(src, cacheDir);
      expect(cold.exitCode, cold.stderr).to.equal(0);
      expect(cold.stderr).to.contain('       lockfile found: npm ci');
      expect(cold.stderr).to.contain(`-----> Pruning devDependencies\n${PRUNE_SKIPPED}\n`);
      expect(await slugPackages(cold.slug)).to.deep.equal(['node_modules/ms']);

      const warm = await buildSlug(src, cacheDir);
      expect(warm.exitCode, warm.stderr).to.equal(0);
      expect(warm.stderr).to.contain('node_modules restored from the cache');
      expect(warm.stderr).to.contain(PRUNE_SKIPPED);
      expect(await slugPaths(warm.slug)).to.deep.equal(await slugPaths(cold.slug));

      const uncached = await buildSlug(src, cacheDir, { NODE_MODULES_CACHE: 'false' });
      expect(uncached.exitCode, uncached.stderr).to.equal(0);
      expect(uncached.stderr).to.contain(
        '       NODE_MODULES_CACHE=false: starting from an empty npm cache\n       lockfile found: npm ci\n',
      );
      expect(uncached.stderr).to.contain(PRUNE_SKIPPED);
      expect(await slugPaths(uncached.slug)).to.deep.equal(await slugPaths(cold.slug));
    });

    it('a package.json changed without its lockfile is not hidden by the cached node_modules: npm ci says so', async () => {
      const cacheDir = path.join(await tempDir(), 'cache');
      const src = await lockedApp({ dev: false });
      expect((await buildSlug(src, cacheDir)).exitCode).to.equal(0);
      const pkg = JSON.parse(await readFile(path.join(src, 'package.json'), 'utf8'));
      pkg.dependencies['is-number'] = '7.0.0';
      await writeFile(path.join(src, 'package.json'), JSON.stringify(pkg));
      const r = await buildSlug(src, cacheDir);
      expect(r.exitCode).to.equal(1);
      expect(r.stderr).not.to.contain('node_modules restored from the cache');
      expect(r.stderr).to.contain('npm ci failed (output above): if package-lock.json is out of sync with package.json');
    });

    it('still runs, cold and warm, when the lockfile has a devDependency: it is gone from the slug', async () => {
      const cacheDir = path.join(await tempDir(), 'cache');
      const src = await lockedApp({ dev: true });
      for (const round of ['cold', 'warm']) {
        const r = await buildSlug(src, cacheDir);
        expect(r.exitCode, r.stderr).to.equal(0);
        expect(r.stderr).to.contain(round === 'cold' ? 'lockfile found: npm ci' : 'node_modules restored from the cache');
        expect(r.stderr).to.contain('-----> Pruning devDependencies');
        expect(r.stderr).not.to.contain('skipped:');
        expect(await slugPackages(r.slug), round).to.deep.equal(['node_modules/ms']);
      }
    });

    it('still runs when the lockfile flags a package devOptional', async () => {
      const r = await buildSlug(await lockedApp({ dev: true, devFlag: 'devOptional' }), path.join(await tempDir(), 'cache'));
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('-----> Pruning devDependencies');
      expect(r.stderr).not.to.contain('skipped:');
      expect(await slugPackages(r.slug)).to.deep.equal(['node_modules/ms']);
    });

    it('still runs after a build script, which may have installed packages', async () => {
      const src = await lockedApp({ dev: false, scripts: { build: 'echo build ran' } });
      const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('-----> Running build script');
      expect(r.stderr).to.contain('-----> Pruning devDependencies');
      expect(r.stderr).not.to.contain('skipped:');
    });
  });

  describe('runtime versions and engines', () => {
    let npmVersion: string;
    before(async () => {
      npmVersion = (await execa('npm', ['--version'])).stdout.trim();
    });

    /** An app without dependencies (npm install fetches nothing) and the given engines. */
    const enginesApp = (engines: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      makeApp({ 'package.json': JSON.stringify({ name: 'engines-check', version: '1.0.0', engines, ...extra }) });

    it('reports the installed node and npm versions and accepts satisfied ranges, numbers included', async () => {
      const major = Number(nodeVersion.split('.')[0]);
      const r = await buildSlug(await enginesApp({ node: major, npm: '>=7' }), path.join(await tempDir(), 'cache'));
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.contain(
        `       node ${nodeVersion} installed into .heroku/node\n       node ${nodeVersion}, npm ${npmVersion}\n`,
      );
      expect(r.stderr).to.contain(`       engines.node "${major}" resolves to node ${nodeVersion}`);
      expect(r.stderr).to.contain(`       engines.npm ">=7" is satisfied by ${npmVersion}`);
    });

    it('fails naming the engines.npm range when the npm registry has no such npm', async () => {
      const r = await buildSlug(await enginesApp({ npm: '99.x' }), path.join(await tempDir(), 'cache'));
      expect(r.exitCode).to.equal(1);
      expect(r.stderr).to.contain(`       engines.npm "99.x": installing it over the bundled npm ${npmVersion}\n`);
      expect(r.stderr).to.contain(
        ` !     installing npm "99.x" (engines.npm) from the npm registry failed (output above): change engines.npm\n`,
      );
      expect(existsSync(r.slug)).to.equal(false);
    });

    it('fails on a range it does not understand, printing it as text, never running it', async () => {
      const marker = path.join(await tempDir(), 'pwned');
      const range = `$(touch ${marker}) \`touch ${marker}\` >=18`;
      const r = await buildSlug(await enginesApp({ node: range }), path.join(await tempDir(), 'cache'));
      expect(r.exitCode).to.equal(1);
      expect(r.stderr).to.contain(` !     engines.node "${range}" is not a version range slugkit understands`);
      expect(existsSync(marker)).to.equal(false);
    });

    it('reads package.json again after heroku-prebuild, which may rewrite it', async () => {
      const addBuild =
        "const f=require('fs');const p=JSON.parse(f.readFileSync('package.json'));p.scripts.build='echo added-by-prebuild';f.writeFileSync('package.json',JSON.stringify(p))";
      const src = await enginesApp({}, { scripts: { 'heroku-prebuild': `node -e "${addBuild}"` } });
      const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('-----> Running heroku-prebuild script');
      expect(r.stderr).to.contain('-----> Running build script');
      expect(r.stderr).to.contain('added-by-prebuild');
    });
  });

  it('builds and serves the node-express example (a real dependency from the npm registry)', async () => {
    const r = await buildSlug(path.join(ROOT, 'examples/node-express'), path.join(await tempDir(), 'cache'));
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/ {7}added \d+ packages/);
    const app = await startWeb({ slug: r.slug });
    try {
      const res = await fetch(app.origin + '/');
      expect(res.status).to.equal(200);
      expect(await res.text()).to.match(/^Hello from Express on slugkit \(NODE_ENV=production, dyno web\.1\)/);
      const health = await (await fetch(app.origin + '/health')).json();
      expect(health.express).to.match(/^4\./);
    } finally {
      await app.stop();
    }
  });
});
