/**
 * The nodejs buildpack installs the Node release the app asks for into the
 * slug, from a mirror laid out like nodejs.org/dist. The mirror here runs on
 * 127.0.0.1 and is made from the Node running the tests; its 18.20.4,
 * 16.20.2 and 22.0.0 are the same binary re-labelled (it still reports the
 * running version), which is enough to show how a range resolves, what is
 * downloaded and what is cached.
 */
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { execa } from 'execa';
import { type NodeMirror, RUNNING_VERSION, startNodeMirror } from '../scripts/node-mirror.js';
import { BUILDPACKS, buildSlug, startWeb } from './helpers/buildpack-harness.js';
import { freePort, makeApp, makeBuildpack, RUNNER, removeTempDirs, runBuilder, slugPaths, tempDir, waitForHttp } from './helpers/cli.js';
import { requireBwrap } from './helpers/tools.js';

const ARCH = process.arch;
const tarball = (v: string) => `/v${v}/node-v${v}-linux-${ARCH}.tar.gz`;

describe('buildpack nodejs: the Node.js runtime in the slug', function () {
  this.timeout(240_000);
  let mirror: NodeMirror;
  let saved: string | undefined;

  before(async () => {
    mirror = await startNodeMirror({
      releases: [
        { version: '22.0.0', lts: false },
        { version: '18.20.4', lts: 'Hydrogen' },
        { version: '16.20.2', lts: 'Gallium' },
        { version: '14.21.3', lts: 'Fermium' },
      ],
      badChecksum: ['16.20.2'],
      cannotRun: ['14.21.3'],
    });
    saved = process.env.NODEJS_ORG_MIRROR;
    process.env.NODEJS_ORG_MIRROR = mirror.url;
  });
  after(async () => {
    process.env.NODEJS_ORG_MIRROR = saved;
    await mirror.close();
    await removeTempDirs();
  });

  const app = (files: Record<string, string>) => makeApp({ 'package.json': '{"name":"rt","version":"1.0.0"}', ...files });

  it('installs the newest release matching engines.node, checked against SHASUMS256.txt, and a rebuild downloads nothing', async () => {
    const src = await app({ 'package.json': JSON.stringify({ name: 'rt', version: '1.0.0', engines: { node: '18.x' } }) });
    const cache = path.join(await tempDir(), 'cache');
    const cold = await buildSlug(src, cache);
    expect(cold.exitCode, cold.stderr).to.equal(0);
    expect(cold.stderr).to.contain(`       engines.node "18.x" resolves to node 18.20.4 (${mirror.url})\n`);
    expect(cold.stderr).to.contain(`       downloading node-v18.20.4-linux-${ARCH}.tar.gz\n       sha256 matches SHASUMS256.txt\n`);
    expect(mirror.count(tarball('18.20.4'))).to.equal(1);
    expect(await slugPaths(cold.slug)).to.include.members(['.heroku/node/bin/node', '.heroku/node/bin/npm']);
    // Kept uncompressed: a warm build unpacks it without inflating it again.
    expect(await readdir(path.join(cache, 'node'))).to.deep.equal([`node-v18.20.4-linux-${ARCH}.tar`]);

    const warm = await buildSlug(src, cache);
    expect(warm.exitCode, warm.stderr).to.equal(0);
    expect(warm.stderr).to.contain('       node 18.20.4 from the cache\n');
    expect(mirror.count(tarball('18.20.4'))).to.equal(1, 'no second download');
    expect(mirror.count('/v18.20.4/SHASUMS256.txt')).to.equal(1);
  });

  it('takes a tarball an older build kept compressed, and keeps it uncompressed from then on', async () => {
    const src = await app({ 'package.json': JSON.stringify({ name: 'rt', version: '1.0.0', engines: { node: '18.x' } }) });
    const cache = path.join(await tempDir(), 'cache');
    expect((await buildSlug(src, cache)).exitCode).to.equal(0);
    const plain = path.join(cache, 'node', `node-v18.20.4-linux-${ARCH}.tar`);
    await writeFile(`${plain}.gz`, gzipSync(await readFile(plain)));
    await rm(plain);
    const downloads = mirror.count(tarball('18.20.4'));
    const warm = await buildSlug(src, cache);
    expect(warm.exitCode, warm.stderr).to.equal(0);
    expect(warm.stderr).to.contain('       node 18.20.4 from the cache\n');
    expect(mirror.count(tarball('18.20.4'))).to.equal(downloads, 'no download');
    expect(await readdir(path.join(cache, 'node'))).to.deep.equal([`node-v18.20.4-linux-${ARCH}.tar`]);
    expect(await slugPaths(warm.slug)).to.include.members(['.heroku/node/bin/node', '.heroku/node/bin/npm']);
  });

  it('without engines.node takes .nvmrc, then .node-version, then the current LTS (not the newest release)', async () => {
    const nvmrc = await buildSlug(await app({ '.nvmrc': 'v18\n', '.node-version': '22' }), path.join(await tempDir(), 'cache'));
    expect(nvmrc.exitCode, nvmrc.stderr).to.equal(0);
    expect(nvmrc.stderr).to.contain('       .nvmrc "v18" resolves to node 18.20.4');
    const nodeVersion = await buildSlug(await app({ '.node-version': '22' }), path.join(await tempDir(), 'cache'));
    expect(nodeVersion.stderr).to.contain('       .node-version "22" resolves to node 22.0.0');
    const lts = await buildSlug(await app({}), path.join(await tempDir(), 'cache'));
    expect(lts.stderr).to.contain(
      `       the current LTS (no engines.node, .nvmrc or .node-version) resolves to node ${RUNNING_VERSION} (${mirror.url})\n`,
    );
  });

  it('fails with one line and no slug when the tarball does not match SHASUMS256.txt, caching nothing', async () => {
    const src = await app({ 'package.json': JSON.stringify({ name: 'rt', version: '1.0.0', engines: { node: '16' } }) });
    const cache = path.join(await tempDir(), 'cache');
    const r = await buildSlug(src, cache);
    expect(r.exitCode).to.equal(1);
    const name = `node-v16.20.2-linux-${ARCH}.tar.gz`;
    expect(r.stderr).to.match(
      new RegExp(
        ` !     ${mirror.url}/v16\\.20\\.2/${name.replaceAll('.', '\\.')} does not match its sha256 in SHASUMS256\\.txt \\(got [0-9a-f]{64}\\): `,
      ),
    );
    expect(existsSync(r.slug)).to.equal(false);
    expect(existsSync(path.join(cache, 'node', name))).to.equal(false);
  });

  it('fails with one line and no slug when the installed node cannot start on this machine', async () => {
    const src = await app({ 'package.json': JSON.stringify({ name: 'rt', version: '1.0.0', engines: { node: '14' } }) });
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(r.exitCode).to.equal(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith(' !     '));
    expect(errors[0]).to.match(
      /^ ! {5}the installed node 14\.21\.3 does not run on this stack \(.+\): the tarball is not for this machine$/,
    );
    expect(existsSync(r.slug)).to.equal(false);
  });

  it('fails naming the range and the mirror (a config var) when the mirror is unreachable and nothing is cached', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const src = await app({ 'package.json': JSON.stringify({ name: 'rt', version: '1.0.0', engines: { node: '^18.2' } }) });
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'), { NODEJS_ORG_MIRROR: closed });
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.contain(
      ` !     could not read ${closed}/index.json (ECONNREFUSED) and no cached Node.js matches engines.node "^18.2": set NODEJS_ORG_MIRROR to a reachable Node.js mirror, or try again\n`,
    );
    expect(existsSync(r.slug)).to.equal(false);
  });

  it('with the mirror gone, a cached release that matches is used', async () => {
    const src = await app({ 'package.json': JSON.stringify({ name: 'rt', version: '1.0.0', engines: { node: '18' } }) });
    const cache = path.join(await tempDir(), 'cache');
    expect((await buildSlug(src, cache)).exitCode).to.equal(0);
    const closed = `http://127.0.0.1:${await freePort()}`;
    const r = await buildSlug(src, cache, { NODEJS_ORG_MIRROR: closed });
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.contain(
      ` !     could not read ${closed}/index.json (ECONNREFUSED): using the cached node 18.20.4, which matches engines.node "18"\n`,
    );
  });

  it('the dyno runs the node in the slug, first on PATH through .profile.d', async () => {
    const src = await app({
      'package.json': JSON.stringify({ name: 'rt', version: '1.0.0', scripts: { start: 'node server.js' } }),
      'server.js':
        "require('http').createServer((q, s) => s.end(process.execPath + ' ' + require('child_process').execSync('command -v npm', {shell: '/bin/sh'}))).listen(process.env.PORT);",
    });
    const built = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(built.exitCode, built.stderr).to.equal(0);
    const dyno = await startWeb({ slug: built.slug });
    try {
      const body = await (await fetch(`${dyno.origin}/`)).text();
      expect(body).to.equal(`${path.join(dyno.appDir, '.heroku/node/bin/node')} ${path.join(dyno.appDir, '.heroku/node/bin/npm')}\n`);
    } finally {
      await dyno.stop();
    }
  });

  it("a later buildpack in the chain runs the installed node and npm (the nodejs buildpack's export)", async () => {
    const later = await makeBuildpack({
      detect: 'echo Later',
      compile: 'echo "later sees $(command -v node) $(command -v npm) $(node -p process.version)"',
      release: "echo '--- {}'",
    });
    const out = path.join(await tempDir(), 'slug.tgz');
    const r = await runBuilder([
      '--source',
      await app({}),
      '--buildpack',
      path.join(BUILDPACKS, 'nodejs'),
      '--buildpack',
      later,
      '--cache-dir',
      path.join(await tempDir(), 'cache'),
      '-o',
      out,
    ]);
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.match(
      new RegExp(`later sees /\\S+/\\.heroku/node/bin/node /\\S+/\\.heroku/node/bin/npm v${RUNNING_VERSION.replaceAll('.', '\\.')}\n`),
    );
  });

  it('the slug runs where the system has no node: the fast start, with every node on PATH hidden from the dyno', async function () {
    requireBwrap(this);
    const src = await app({
      'package.json': JSON.stringify({ name: 'rt', version: '1.0.0', engines: { node: '18.x' }, scripts: { start: 'node server.js' } }),
      'server.js': "require('http').createServer((q, s) => s.end(process.execPath)).listen(process.env.PORT, '127.0.0.1');",
    });
    const built = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(built.exitCode, built.stderr).to.equal(0);
    const appDir = path.join(await tempDir(), 'app');
    await mkdir(appDir);
    await execa('tar', ['-xzf', built.slug, '-C', appDir]);

    // The machine's own node (every one on the dyno's PATH) becomes an empty, non-executable file.
    const empty = path.join(await tempDir(), 'no-node');
    await writeFile(empty, '', { mode: 0o644 });
    const PATH = '/usr/local/bin:/usr/bin:/bin';
    const nodes = new Set(
      PATH.split(':').flatMap((dir) => (existsSync(path.join(dir, 'node')) ? [realpathSync(path.join(dir, 'node'))] : [])),
    );
    const hide = [...nodes].flatMap((n) => ['--ro-bind', empty, n]);
    const bwrap = ['--dev-bind', '/', '/', ...hide, '--unshare-pid', '--die-with-parent', '--'];
    const env = { PATH, SLUGKIT_DEBUG_START: '1' };
    const none = await execa('bwrap', [...bwrap, 'bash', '-c', 'node --version'], { env, extendEnv: false, reject: false });
    expect(none.exitCode, `the system's node still runs: ${none.stdout}`).to.be.oneOf([126, 127]);

    const port = await freePort();
    const dyno = execa('bwrap', [...bwrap, RUNNER, '--app-dir', appDir, 'start', 'web'], {
      env: { ...env, PORT: String(port) },
      extendEnv: false,
      reject: false,
      all: true,
      stdin: 'ignore',
    });
    try {
      const answered = await Promise.race([waitForHttp(`http://127.0.0.1:${port}/`, 60_000), dyno]);
      expect(answered, String((answered as { all?: string }).all)).to.be.instanceOf(Response);
      expect(await (answered as Response).text()).to.equal(path.join(appDir, '.heroku/node/bin/node'));
    } finally {
      dyno.kill('SIGTERM');
      const out = String((await dyno).all);
      expect(out).to.include('slugrunner: fast start');
    }
  });
});
