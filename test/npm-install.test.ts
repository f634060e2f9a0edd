/**
 * The CLIs installed for use from any directory, as the README says: the
 * repo packed with `npm pack` (what `files` and `bin` in package.json ship),
 * installed with `npm install -g --prefix` into a temp dir, and run from
 * another directory. The bundles carry their dependencies; npm still
 * installs the declared ones, from npm's cache when `npm ci` filled it, else
 * from the registry (into a temp cache). No registry: skipped, saying so.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { makeApp, ROOT, removeTempDirs, slugPaths, tempDir } from './helpers/cli.js';
import { skipOrFail } from './helpers/tools.js';

/** npm's own answers when the registry cannot be reached. */
const UNREACHABLE = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH)\b/;

describe('npm pack, then npm install -g of the tarball: the CLIs run from any directory', function () {
  this.timeout(300_000);
  let prefix: string;
  let elsewhere: string;
  let version: string;

  before(async function () {
    version = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')).version;
    const work = await tempDir();
    // npm's logs and any new cache entries stay in the temp dir.
    const env = { npm_config_logs_dir: path.join(work, 'logs'), npm_config_update_notifier: 'false', npm_config_fund: 'false' };
    // dist/ is built already (the tests run from it): pack it as it is, without `prepare` building again.
    const pack = await execa('npm', ['pack', '--ignore-scripts', '--pack-destination', work, '--json'], { cwd: ROOT, env });
    const tarball = path.join(work, JSON.parse(pack.stdout)[0].filename);
    prefix = path.join(work, 'prefix');
    const install = (more: string[]) =>
      execa('npm', ['install', '-g', '--prefix', prefix, '--ignore-scripts', '--no-audit', ...more, tarball], {
        cwd: work,
        env,
        reject: false,
      });
    let r = await install(['--offline']);
    if (r.exitCode !== 0) r = await install(['--prefer-online', '--cache', path.join(work, 'npm-cache')]);
    if (r.exitCode !== 0 && UNREACHABLE.test(r.stderr))
      skipOrFail(this, `needs the npm registry, which cannot be reached (${UNREACHABLE.exec(r.stderr)?.[0]})`);
    expect(r.exitCode, r.stderr).to.equal(0);
    elsewhere = await tempDir();
  });
  after(removeTempDirs);

  it('ships both bins: --version from another directory', async () => {
    const b = await execa(path.join(prefix, 'bin/slugbuilder'), ['--version'], { cwd: elsewhere });
    expect(b.stdout.split('\n')[0]).to.match(new RegExp(`^slugbuilder\\b.*\\b${version.replace(/\./g, '\\.')}\\b`));
    const r = await execa(path.join(prefix, 'bin/slugrunner'), ['--version'], { cwd: elsewhere });
    expect(r.stdout.split('\n')[0]).to.match(new RegExp(`^slugrunner\\b.*\\b${version.replace(/\./g, '\\.')}\\b`));
  });

  it('builds with the bundled buildpacks and runs the slug, from another directory', async () => {
    const app = await makeApp({ Procfile: 'web: echo hello from $0\n' });
    const slug = path.join(elsewhere, 'slug.tgz');
    const b = await execa(path.join(prefix, 'bin/slugbuilder'), ['--source', app, '-o', slug], { cwd: elsewhere, reject: false });
    expect(b.exitCode, b.stderr).to.equal(0);
    expect(await slugPaths(slug)).to.include('Procfile');
    const r = await execa(path.join(prefix, 'bin/slugrunner'), ['--slug', slug, 'types'], { cwd: elsewhere, reject: false });
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.include('web');
  });
});
