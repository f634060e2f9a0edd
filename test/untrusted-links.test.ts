/**
 * A source tarball and a slug are hostile data (issue 19, items 1-4): the
 * links they ship into names the builder owns (.release, the launch plan,
 * .layers/config, .layers/<buildpack id>) or into files slugkit reads
 * (Procfile, project.toml, .buildpacks, .slugignore, package.json) never make
 * slugkit write or read outside the app. Each test goes through the real
 * slugbuilder and slugrunner with a sentinel dir outside the app whose bytes
 * must not change, and a host file whose secret must not show.
 */

import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { layersDirName } from '../shared/app/layout.js';
import { makeBuildpack, RUNNER, removeTempDirs, runBuilder, runRunner, slugEntries, tarOf, tempDir, writeTree } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';
import { makeRootfs, writeRunImage } from './helpers/image-fixtures.js';
import { skipOrFail } from './helpers/tools.js';

const BUILDPACKS = path.resolve(path.dirname(RUNNER), '..', 'buildpacks');
const SECRET = 'DATABASE_URL: postgres://app:pw@db/app';
const CNB_ID = 'example/web';

/** Every entry under `dir` with its bytes or link target: what must be byte-identical after a build. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const r = path.join(rel, name);
      const full = path.join(dir, r);
      const st = await lstat(full);
      if (st.isSymbolicLink()) out[r] = `link ${await readlink(full)}`;
      else if (st.isDirectory()) {
        out[r] = `dir ${st.mode.toString(8)}`;
        await walk(r);
      } else out[r] = `file ${st.mode.toString(8)} ${(await readFile(full)).toString('base64')}`;
    }
  };
  await walk('');
  return out;
}

/** Every regular file's bytes under `p` (or `p` itself), one buffer: where a secret must not be. */
async function allBytes(p: string): Promise<Buffer> {
  const st = await lstat(p);
  if (st.isFile()) return readFile(p);
  if (!st.isDirectory()) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for (const name of await readdir(p)) parts.push(await allBytes(path.join(p, name)));
  return Buffer.concat(parts);
}

/** A root holding `sentinel/` (a file and a dir other apps could own) and `src/`, the source to tar. */
async function scene() {
  const root = await tempDir('slugkit-links-');
  const sentinel = path.join(root, 'sentinel');
  await writeTree(sentinel, { 'file.txt': 'the other app\n', 'config/SECRET_KEY': 'k3y\n', 'cache/kept': 'cache\n' });
  const src = path.join(root, 'src');
  await writeTree(src, { Procfile: 'web: sh app.sh\n', 'app.sh': 'echo hi\n' });
  return { root, sentinel, src, appDir: path.join(root, 'app') };
}

/** Replaces `name` in the scene's source with a link to a host file holding SECRET. */
async function linkToHostSecret(s: { root: string; src: string }, name: string): Promise<void> {
  const host = path.join(s.root, 'host-secret');
  await writeFile(host, `${SECRET}\n`);
  await rm(path.join(s.src, name), { force: true });
  await symlink(host, path.join(s.src, name));
}

const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith(' !     '));

async function classicPack(): Promise<string> {
  return makeBuildpack({ detect: 'echo Test', compile: 'true', release: "echo '--- {}'" });
}

/** A CNB that writes a launch layer with a file and a launch.toml process, as real ones do. */
async function cnbPack(): Promise<string> {
  const dir = path.join(await tempDir('slugkit-cnb-'), 'web');
  return writeCnb(dir, {
    id: CNB_ID,
    api: '0.10',
    build: [
      'mkdir -p "$1/runtime/bin"',
      'echo layer > "$1/runtime/bin/tool"',
      `printf '[types]\\nlaunch = true\\n' > "$1/runtime.toml"`,
      `printf '[[processes]]\\ntype = "web"\\ncommand = ["sh", "app.sh"]\\n' > "$1/launch.toml"`,
    ].join('\n'),
  });
}

async function build(src: string, appDir: string, args: string[]) {
  return runBuilder(['--app-dir', appDir, '-o', path.join(path.dirname(appDir), 'slug.tgz'), ...args], { input: await tarOf(src) });
}

describe('links a hostile source or slug ships (issue 19)', function () {
  this.timeout(120_000);
  after(removeTempDirs);

  describe("a source's links into the builder's own names are removed, never written through", () => {
    const cases: Array<{ name: string; link: (s: { sentinel: string }) => string; cnb: boolean }> = [
      { name: '.release', link: (s) => path.join(s.sentinel, 'file.txt'), cnb: false },
      { name: '.release', link: () => '../sentinel/file.txt', cnb: false },
      { name: '.slugkit-launch', link: (s) => path.join(s.sentinel, 'config/SECRET_KEY'), cnb: false },
      { name: '.slugkit-launch', link: () => '../sentinel/config/SECRET_KEY', cnb: true },
      { name: '.layers/config', link: (s) => path.join(s.sentinel, 'config'), cnb: true },
      { name: '.layers/config', link: () => '../../sentinel/config', cnb: true },
      { name: `.layers/${layersDirName(CNB_ID)}`, link: (s) => path.join(s.sentinel, 'cache'), cnb: true },
      { name: `.layers/${layersDirName(CNB_ID)}`, link: () => '../../sentinel/cache', cnb: true },
    ];
    for (const c of cases) {
      it(`${c.name} -> ${c.link({ sentinel: '/SENTINEL' })}: the sentinel is byte-identical and the build succeeds without it`, async () => {
        const s = await scene();
        const linkPath = path.join(s.src, c.name);
        await mkdir(path.dirname(linkPath), { recursive: true });
        await symlink(c.link(s), linkPath);
        const before = await snapshot(s.sentinel);
        const res = await build(s.src, s.appDir, ['--buildpack', c.cnb ? await cnbPack() : await classicPack()]);
        expect(res.exitCode, res.stderr).to.equal(0);
        const top = c.name.split('/')[0];
        expect(res.stderr).to.include(`removed ${top} from the source: the builder writes it`);
        expect(await snapshot(s.sentinel)).to.deep.equal(before);
      });
    }
  });

  describe("a buildpack's links are not followed either", () => {
    it('a .release a buildpack made a link is replaced, its target untouched', async () => {
      const s = await scene();
      const bp = await makeBuildpack({
        detect: 'echo Test',
        compile: `ln -s ${JSON.stringify(path.join(s.sentinel, 'file.txt'))} "$1/.release"`,
        release: "echo '--- {}'",
      });
      const before = await snapshot(s.sentinel);
      const res = await build(s.src, s.appDir, ['--buildpack', bp]);
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(await snapshot(s.sentinel)).to.deep.equal(before);
      const release = (await slugEntries(path.join(s.root, 'slug.tgz'))).find((e) => e.path === './.release');
      expect(release?.type).to.equal('File');
    });

    it('a .layers/config a buildpack made a link fails in one line, its target untouched', async () => {
      const s = await scene();
      const classic = await makeBuildpack({
        detect: 'echo Test',
        compile: `mkdir -p "$1/.layers" && ln -s ${JSON.stringify(path.join(s.sentinel, 'config'))} "$1/.layers/config"`,
        release: "echo '--- {}'",
      });
      const before = await snapshot(s.sentinel);
      const res = await build(s.src, s.appDir, ['--buildpack', classic, '--buildpack', await cnbPack()]);
      expect(res.exitCode, res.stderr).to.equal(1);
      expect(errorLines(res.stderr)).to.deep.equal([' !     .layers/config is a link; refusing to write through it']);
      expect(await snapshot(s.sentinel)).to.deep.equal(before);
    });
  });

  describe('a Procfile linking to a host file', () => {
    it('fails in one line naming it; the secret is in no log, summary or image label', async () => {
      const s = await scene();
      await linkToHostSecret(s, 'Procfile');
      const rootfs = path.join(s.root, 'rootfs');
      await makeRootfs(rootfs, '1');
      const runLayout = path.join(s.root, 'run');
      await writeRunImage(runLayout, '1', { layers: [rootfs], version: '1' });
      const summary = path.join(s.root, 'summary.json');
      const image = path.join(s.root, 'image');
      const res = await build(s.src, s.appDir, [
        '--buildpack',
        await classicPack(),
        '--summary',
        summary,
        '--run-image',
        `oci:${runLayout}:1`,
        '--image',
        `oci:${image}:v1`,
      ]);
      expect(res.exitCode).to.not.equal(0);
      expect(errorLines(res.stderr)).to.deep.equal([' !     Procfile is a link to a path outside the app; refusing to read it']);
      for (const needle of ['postgres://', 'pw@db', 'DATABASE_URL']) expect(res.stderr).to.not.include(needle);
      // Whatever was written (nothing, with the fix), none of it holds the secret.
      for (const out of [summary, image]) {
        if (existsSync(out)) expect((await allBytes(out)).includes('pw@db'), out).to.equal(false);
      }
    });
  });

  describe('each other file slugkit reads from the app, as a link out: one error line naming it', () => {
    const cases = [
      { name: 'project.toml', content: '[_]\nschema-version = "0.2"\n', explicit: true },
      { name: '.buildpacks', content: 'https://example.invalid/bp.tgz\n', explicit: false },
      { name: '.slugignore', content: '*.sh\n', explicit: true },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const s = await scene();
        const host = path.join(s.sentinel, `host-${c.name}`);
        await writeFile(host, c.content);
        await symlink(host, path.join(s.src, c.name));
        const before = await snapshot(s.sentinel);
        const res = await build(s.src, s.appDir, c.explicit ? ['--buildpack', await classicPack()] : []);
        expect(res.exitCode, res.stderr).to.equal(1);
        expect(errorLines(res.stderr)).to.deep.equal([` !     ${c.name} is a link to a path outside the app; refusing to read it`]);
        expect(await snapshot(s.sentinel)).to.deep.equal(before);
      });
    }
  });

  describe('a slug whose Procfile links to a host file', () => {
    it('slugrunner types fails in one line and prints none of it', async () => {
      const s = await scene();
      await linkToHostSecret(s, 'Procfile');
      const slug = path.join(s.root, 'slug.tgz');
      await writeFile(slug, await tarOf(s.src, true));
      const res = await runRunner(['--app-dir', s.appDir, '--slug', slug, 'types', '--json']);
      expect(res.exitCode).to.equal(1);
      expect(errorLines(res.stderr)).to.deep.equal([' !     Procfile is a link to a path outside the app; refusing to read it']);
      expect(res.stdout.toString() + res.stderr).to.not.include('pw@db');
    });

    it('slugbuilder --slug --image fails in one line and writes no label from it', async () => {
      const s = await scene();
      await linkToHostSecret(s, 'Procfile');
      const slug = path.join(s.root, 'slug.tgz');
      await writeFile(slug, await tarOf(s.src, true));
      const rootfs = path.join(s.root, 'rootfs');
      await makeRootfs(rootfs, '1');
      await writeRunImage(path.join(s.root, 'run'), '1', { layers: [rootfs], version: '1' });
      const image = path.join(s.root, 'image');
      const res = await runBuilder(['--slug', slug, '--run-image', `oci:${path.join(s.root, 'run')}:1`, '--image', `oci:${image}:v1`]);
      expect(res.exitCode).to.equal(1);
      expect(errorLines(res.stderr)).to.deep.equal([
        " !     the slug's Procfile is a link to a path outside the slug; refusing to read it",
      ]);
      expect(res.stderr).to.not.include('pw@db');
      if (existsSync(image)) expect((await allBytes(image)).includes('pw@db')).to.equal(false);
    });
  });

  describe('the bundled buildpacks read no app file through a link out', () => {
    it('nodejs: a package.json linking out of the app fails in one line', async () => {
      const s = await scene();
      const host = path.join(s.sentinel, 'package.json');
      await writeFile(host, '{"name":"other-app","scripts":{"start":"node secret.js"}}\n');
      await symlink(host, path.join(s.src, 'package.json'));
      const res = await build(s.src, s.appDir, ['--buildpack', path.join(BUILDPACKS, 'nodejs')]);
      expect(res.exitCode, res.stderr).to.equal(1);
      expect(errorLines(res.stderr)).to.deep.equal([' !     package.json is a link to a path outside the app; refusing to read it']);
      expect(res.stderr).to.not.include('other-app');
    });

    it('python: a .python-version linking out of the app fails in one line', async () => {
      const s = await scene();
      await writeFile(path.join(s.src, 'requirements.txt'), '');
      await linkToHostSecret(s, '.python-version');
      const res = await build(s.src, s.appDir, ['--buildpack', path.join(BUILDPACKS, 'python')]);
      expect(res.exitCode, res.stderr).to.equal(1);
      expect(errorLines(res.stderr)).to.deep.equal([' !     .python-version is a link to a path outside the app; refusing to read it']);
      expect(res.stderr).to.not.include('pw@db');
    });

    it('static: a static.json linking out of the app fails in one line', async () => {
      const s = await scene();
      await writeFile(path.join(s.sentinel, 'static.json'), '{"root": "other-app-secret"}\n');
      await writeFile(path.join(s.src, 'index.html'), 'hi\n');
      await symlink(path.join(s.sentinel, 'static.json'), path.join(s.src, 'static.json'));
      const res = await build(s.src, s.appDir, ['--buildpack', path.join(BUILDPACKS, 'static')]);
      expect(res.exitCode, res.stderr).to.equal(1);
      expect(errorLines(res.stderr)).to.deep.equal([' !     static.json is a link to a path outside the app; refusing to read it']);
      expect(res.stderr).to.not.include('other-app-secret');
    });
  });

  describe('a slug shipping a stale launch plan and links at guessable temp names', () => {
    it('slugrunner start never writes through them (PIDs 1-300, as in a container)', async function () {
      const probe = await execa('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { reject: false });
      if (probe.exitCode !== 0) skipOrFail(this, `needs unshare --pid --fork --mount-proc (root or CAP_SYS_ADMIN): ${probe.stderr.trim()}`);
      const s = await scene();
      await writeFile(path.join(s.src, '.release'), '--- {}\n');
      await writeFile(path.join(s.src, '.slugkit-launch'), 'slugkit-launch 2\0slow\0');
      for (let pid = 1; pid <= 300; pid++) await symlink(path.join(s.sentinel, 'file.txt'), path.join(s.src, `.slugkit-launch.${pid}.tmp`));
      const slug = path.join(s.root, 'slug.tgz');
      await writeFile(slug, await tarOf(s.src, true));
      const before = await snapshot(s.sentinel);
      const res = await execa(
        'unshare',
        ['--pid', '--fork', '--mount-proc', RUNNER, '--app-dir', s.appDir, '--slug', slug, 'start', 'web'],
        {
          reject: false,
          stdin: 'ignore',
          env: { PATH: process.env.PATH },
        },
      );
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stdout).to.include('hi');
      expect(await snapshot(s.sentinel)).to.deep.equal(before);
      // The plan was refreshed in the app (a fresh temp file renamed over it), not through a link.
      expect((await readFile(path.join(s.appDir, '.slugkit-launch'))).toString('latin1')).to.include('sh app.sh');
    });
  });
});
