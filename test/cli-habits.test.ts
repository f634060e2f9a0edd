/**
 * Habits users bring from docker, pack and Heroku, through the real CLI:
 * `-e NAME` takes NAME from slugbuilder's environment, a local --buildpack
 * path that is not there fails before the source is read, `cache clear
 * --all` leaves nothing slugkit cached, and counts in the log are plural
 * only when they are.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { create as tarCreate } from 'tar';
import { BUILDER, makeApp, makeBuildpack, removeTempDirs, runBuilder, tempDir } from './helpers/cli.js';

function oneErrorLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).to.have.length(1);
  expect(lines[0]).to.match(/^ ! {5}/);
  return lines[0].slice(7);
}

describe('command-line habits', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  describe('-e NAME without =', () => {
    it("takes NAME's value from slugbuilder's own environment, as docker run -e does", async () => {
      const bp = await makeBuildpack({ compile: 'echo "greeting=$(cat "$3/GREETING") other=$(cat "$3/OTHER")"' });
      const app = await makeApp({ Procfile: 'web: true\n' });
      const r = await runBuilder(
        ['--source', app, '--buildpack', bp, '-e', 'GREETING', '-e', 'OTHER=set', '-o', path.join(await tempDir(), 's.tgz')],
        {
          env: { ...process.env, GREETING: 'hello from the shell' },
        },
      );
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.include('greeting=hello from the shell other=set');
    });

    it('an unset NAME is one error line, before anything runs', async () => {
      const env = { ...process.env };
      delete env.SLUGKIT_NOT_SET;
      const r = await runBuilder(['-e', 'SLUGKIT_NOT_SET', '-o', path.join(await tempDir(), 's.tgz')], { env });
      expect(r.exitCode).to.equal(2);
      expect(oneErrorLine(r.stderr)).to.equal(
        "-e SLUGKIT_NOT_SET: SLUGKIT_NOT_SET is not set in slugbuilder's environment; export it or write it as SLUGKIT_NOT_SET=VALUE",
      );
    });
  });

  describe('a local --buildpack path that does not exist', () => {
    const hint = '(a buildpack is a directory, a .tgz file, a git or tarball URL, or a registry name like heroku/nodejs)';

    it('fails at once, before the source on stdin is read', async () => {
      const cwd = await tempDir();
      // stdin stays open: a build that read its source first would wait for it.
      const child = execa(process.execPath, ['--', BUILDER, '--buildpack', './nope', '-o', 's.tgz'], { cwd, reject: false, stdin: 'pipe' });
      const r = await child;
      expect(r.exitCode).to.equal(1);
      expect(oneErrorLine(String(r.stderr))).to.equal(`--buildpack ./nope: ./nope does not exist ${hint}`);
      expect(await readdir(cwd)).to.deep.equal([]);
    });

    it('BUILDPACK_URL and a missing .tgz path say the same', async () => {
      const cwd = await tempDir();
      const app = await makeApp({ Procfile: 'web: true\n' });
      const fromEnv = await runBuilder(['--source', app, '-o', 's.tgz'], { cwd, env: { ...process.env, BUILDPACK_URL: '../gone/bp' } });
      expect(fromEnv.exitCode).to.equal(1);
      expect(oneErrorLine(fromEnv.stderr)).to.equal(`BUILDPACK_URL ../gone/bp: ../gone/bp does not exist ${hint}`);
      const tgz = await runBuilder(['--source', app, '--buildpack', 'bp.tgz', '-o', 's.tgz'], { cwd });
      expect(oneErrorLine(tgz.stderr)).to.equal(`--buildpack bp.tgz: bp.tgz does not exist ${hint}`);
    });

    it('a registry name with no local dir of that name is not taken for a missing path', async () => {
      const cwd = await tempDir();
      const registry = await tempDir();
      const app = await makeApp({ Procfile: 'web: true\n' });
      const r = await runBuilder(['--source', app, '--buildpack', 'heroku/nodejs', '-o', 's.tgz'], {
        cwd,
        env: { ...process.env, SLUGKIT_BUILDPACK_REGISTRY: `file://${registry}` },
      });
      expect(r.exitCode).to.not.equal(0);
      expect(r.stderr).to.not.include('heroku/nodejs does not exist');
      expect(r.stderr).to.include(`${registry}/buildpacks/heroku/nodejs.tgz`);
    });
  });

  describe('cache clear --all', () => {
    it('removes every app cache, the shared one, the image layers and fetched buildpacks, never following a link out', async () => {
      const home = await tempDir('slugkit-home-');
      const xdg = path.join(home, 'xdg');
      const root = path.join(xdg, 'slugkit');
      const outside = await tempDir('slugkit-outside-');
      await writeFile(path.join(outside, 'keep'), 'not a cache');
      for (const dir of ['apps/shop', 'apps/blog', 'cache', 'layers', 'buildpacks/0123abcd/tree']) {
        await mkdir(path.join(root, dir), { recursive: true });
        await writeFile(path.join(root, dir, 'data'), 'cached');
      }
      await symlink(outside, path.join(root, 'layers', 'link-out'));
      await symlink(outside, path.join(root, 'buildpacks', '0123abcd', 'tree', 'link-out'));
      const env = { ...process.env, HOME: home, XDG_CACHE_HOME: xdg, SLUGBUILDER_CACHE_DIR: '', SLUGBUILDER_APP: '' };
      const r = await runBuilder(['cache', 'clear', '--all'], { env });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.equal(
        [
          `-----> Cleared the cache at ${path.join(root, 'cache')}`,
          `-----> Cleared the cache at ${path.join(root, 'apps', 'blog')}`,
          `-----> Cleared the cache at ${path.join(root, 'apps', 'shop')}`,
          `-----> Cleared the image layer cache at ${path.join(root, 'layers')}`,
          `-----> Cleared the buildpack cache at ${path.join(root, 'buildpacks')}`,
          '',
        ].join('\n'),
      );
      for (const dir of ['apps/shop', 'apps/blog', 'cache', 'layers', 'buildpacks'])
        expect(existsSync(path.join(root, dir)), dir).to.equal(false);
      expect(await readFile(path.join(outside, 'keep'), 'utf8')).to.equal('not a cache');
    });

    it('--help says what --all clears and where the caches are', async () => {
      const text = (await runBuilder(['cache', '--help'])).stdout.toString();
      expect(text).to.include('the image\n               layers (layers/) and the fetched buildpacks (buildpacks/)');
      expect(text).to.include('$XDG_CACHE_HOME/slugkit, else ~/.cache/slugkit');
    });
  });

  it('a one-file source is "1 entry", not "1 entries"', async () => {
    const app = await makeApp({ Procfile: 'web: true\n' });
    const bp = await makeBuildpack({ compile: 'true' });
    const chunks: Buffer[] = [];
    for await (const chunk of tarCreate({ cwd: app, portable: true }, ['Procfile'])) chunks.push(chunk as Buffer);
    const r = await runBuilder(['--buildpack', bp, '-o', path.join(await tempDir(), 's.tgz')], { input: Buffer.concat(chunks) });
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/^ {7}1 entry, /m);
  });
});
