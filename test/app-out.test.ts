/**
 * `slugbuilder --app-out DIR`, through the real CLIs: the built app left on
 * disk exactly as the slug holds it (entries, bytes, modes, times, links),
 * no walk through a link the build made, nothing the slug leaves out, no
 * inode shared with the cache; the runner starts it as it is; bad targets
 * refused before any buildpack runs; a failed build leaves no DIR.
 */

import { lstat, mkdir, readdir, readFile, readlink, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import {
  BUILDER,
  makeApp,
  makeBuildpack,
  removeTempDirs,
  runBuilder,
  runRunner,
  type SlugEntry,
  slugEntries,
  tarOf,
  tempDir,
} from './helpers/cli.js';
import { skipOrFail } from './helpers/tools.js';

/** The slug's one mtime when SOURCE_DATE_EPOCH is unset (shared/tar/pack.ts DEFAULT_MTIME). */
const SLUG_MTIME = Date.UTC(1980, 0, 1, 0, 0, 1);
const isRoot = process.getuid?.() === 0;

interface TreeEntry {
  path: string;
  type: string;
  mode: number;
  mtime: number;
  body: string;
  linkpath: string;
}

/** Every entry below `root` as the slug lists it: `./rel`, a directory with a trailing slash. */
async function treeEntries(root: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const walk = async (rel: string) => {
    for (const name of (await readdir(path.join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const full = path.join(root, r);
      const st = await lstat(full);
      const common = { mode: st.mode & 0o7777, mtime: st.mtimeMs };
      if (st.isDirectory()) {
        out.push({ path: `./${r}/`, type: 'Directory', ...common, body: '', linkpath: '' });
        await walk(r);
      } else if (st.isSymbolicLink()) {
        out.push({ path: `./${r}`, type: 'SymbolicLink', mode: 0o777, mtime: -1, body: '', linkpath: await readlink(full) });
      } else {
        // A FIFO is named, never opened: reading one would wait for a writer.
        const body = st.isFile() ? await readFile(full, 'utf8') : '';
        out.push({ path: `./${r}`, type: st.isFile() ? 'File' : 'other', ...common, body, linkpath: '' });
      }
    }
  };
  await walk('');
  return out;
}

/** The slug's entries in the same form (the root entry and link times left out: a tree has no such thing to compare). */
function asTree(entries: SlugEntry[]): TreeEntry[] {
  return entries
    .filter((e) => e.path !== './')
    .map((e) => ({
      path: e.path,
      type: e.type,
      mode: e.type === 'SymbolicLink' ? 0o777 : e.mode,
      mtime: e.type === 'SymbolicLink' ? -1 : e.mtime,
      body: e.type === 'File' ? e.body : '',
      linkpath: e.linkpath,
    }))
    .sort((a, b) => (a.path.replace(/\/$/, '') < b.path.replace(/\/$/, '') ? -1 : 1));
}

const byPath = (a: TreeEntry, b: TreeEntry) => (a.path.replace(/\/$/, '') < b.path.replace(/\/$/, '') ? -1 : 1);

describe('slugbuilder --app-out', () => {
  let source: Buffer;
  let outside: string;
  let buildpack: string;
  let work: string;

  before(async () => {
    source = await tarOf(await makeApp({ Procfile: 'web: ./tool\n', 'index.html': '<h1>hi</h1>\n' }));
    work = await tempDir('slugkit-app-out-');
    // A dir outside the app a link of the build points into: the walk must not touch it.
    outside = path.join(work, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'keep'), 'not the app\n', { mode: 0o600 });
    await utimes(path.join(outside, 'keep'), new Date('2020-02-02T00:00:00Z'), new Date('2020-02-02T00:00:00Z'));
    // What buildpacks leave: private modes, setuid, links in and out, a FIFO, hard links (one into the cache), a git dir.
    buildpack = await makeBuildpack({
      compile: [
        'cd "$1"',
        'mkdir -p private/deep && echo secret > private/deep/key && chmod 600 private/deep/key && chmod 700 private',
        `printf '#!/bin/sh\\necho ran from the tree\\n' > tool && chmod 4750 tool`,
        `ln -s ${outside} outside-dir && ln -s /etc/passwd outside-file && ln -s tool tool-link`,
        'mkfifo pipe',
        'echo shared > "$2/shared" && ln "$2/shared" from-cache',
        'echo pair > a && ln a b',
        'mkdir .git && echo ref > .git/HEAD',
      ].join('\n'),
    });
  });
  after(removeTempDirs);

  const build = (args: string[], cache = path.join(work, 'cache')) =>
    runBuilder(['--buildpack', buildpack, '--cache-dir', cache, ...args], {
      input: source,
      env: { ...process.env, SLUGKIT_SANDBOX: 'off', SOURCE_DATE_EPOCH: '' },
    });

  it('leaves the app as the slug holds it, without following a link, and the runner starts it as it is', async () => {
    const dir = await tempDir();
    const out = path.join(dir, 'app');
    const cache = path.join(dir, 'cache');
    const res = await build(['--app-out', out, '-o', path.join(dir, 'slug.tgz'), '--summary', path.join(dir, 's.json')], cache);
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stderr).to.include(`The app is also in ${out} (moved there, not unpacked)`);

    const slug = asTree(await slugEntries(path.join(dir, 'slug.tgz')));
    const tree = (await treeEntries(out)).sort(byPath);
    expect(tree).to.deep.equal(slug);
    // What that comparison means: the slug's modes and one mtime, no FIFO, no .git, no claim marker.
    const paths = tree.map((e) => e.path);
    expect(paths).to.include.members(['./private/', './private/deep/key', './tool', './outside-dir', './from-cache', './a', './b']);
    expect(paths.filter((p) => /pipe|\.git|slugbuilder-app-dir/.test(p))).to.deep.equal([]);
    expect(tree.find((e) => e.path === './tool')?.mode).to.equal(0o755);
    expect(tree.find((e) => e.path === './private/')?.mode).to.equal(0o755);
    expect(tree.find((e) => e.path === './private/deep/key')?.mode).to.equal(0o644);
    expect(new Set(tree.filter((e) => e.type !== 'SymbolicLink').map((e) => e.mtime))).to.deep.equal(new Set([SLUG_MTIME]));
    expect((await stat(out)).mode & 0o777).to.equal(0o755);

    // Nothing outside was changed through the links, and no file is shared with the cache or with another name.
    const kept = await stat(path.join(outside, 'keep'));
    expect([kept.mode & 0o777, kept.mtime.toISOString()]).to.deep.equal([0o600, '2020-02-02T00:00:00.000Z']);
    for (const name of ['from-cache', 'a', 'b']) expect((await stat(path.join(out, name))).nlink, name).to.equal(1);
    await writeFile(path.join(out, 'from-cache'), 'written by the dyno\n');
    expect(await readFile(path.join(cache, 'shared'), 'utf8')).to.equal('shared\n');

    const summary = JSON.parse(await readFile(path.join(dir, 's.json'), 'utf8'));
    expect(summary.app_out).to.deep.equal({ path: out });
    // Nothing but DIR beside it: the temp dir was renamed into place.
    expect((await readdir(dir)).sort()).to.deep.equal(['app', 'cache', 's.json', 'slug.tgz']);

    const run = await runRunner(['-q', '--app-dir', out, 'start', 'web']);
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(String(run.stdout).trim()).to.equal('ran from the tree');
  });

  it('unpacks the slug into DIR when DIR is on another file system (as root: a tmpfs in a mount namespace)', async function () {
    if (!isRoot) skipOrFail(this, 'needs root (mount -t tmpfs in unshare -m)');
    const dir = await tempDir();
    const mnt = path.join(dir, 'mnt');
    await mkdir(mnt);
    // The mount lives as long as the namespace: the tree is copied out (cp -a keeps modes, times and links) before it ends.
    const script = [
      'set -e',
      `mount -t tmpfs tmpfs '${mnt}'`,
      `node '${BUILDER}' --buildpack '${buildpack}' --cache-dir '${path.join(dir, 'cache')}' --app-out '${mnt}/app' -o '${dir}/slug.tgz'`,
      `cp -a '${mnt}/app' '${dir}/copy'`,
    ].join('\n');
    const res = await execa('unshare', ['-m', 'sh', '-c', script], {
      input: source,
      env: { ...process.env, SLUGKIT_SANDBOX: 'off', SOURCE_DATE_EPOCH: '' },
      reject: false,
    });
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stderr).to.include('(unpacked from the slug: another file system)');
    // slugrunner's unpacker made it: the same entries, bytes, modes, times and links as the slug.
    const slug = asTree(await slugEntries(path.join(dir, 'slug.tgz')));
    const tree = (await treeEntries(path.join(dir, 'copy'))).sort(byPath);
    expect(tree).to.deep.equal(slug);
  });

  for (const [name, setup] of [
    ['a directory that holds files', async (d: string) => writeFile(path.join(d, 'app', 'x'), 'x').then(() => undefined)],
    ['a file', async (d: string) => writeFile(path.join(d, 'app-file'), 'x')],
  ] as const) {
    it(`refuses ${name} before any buildpack runs, in one line, exit 2`, async () => {
      const dir = await tempDir();
      await mkdir(path.join(dir, 'app'));
      await setup(dir);
      const target = path.join(dir, name === 'a file' ? 'app-file' : 'app');
      const res = await build(['--app-out', target, '-o', path.join(dir, 'slug.tgz')]);
      expect(res.exitCode).to.equal(2);
      expect(res.stderr).to.match(new RegExp(`^ ! +--app-out ${target} is not (empty|a directory): name a new or empty directory\\n$`));
      expect(await readdir(dir)).to.not.include('slug.tgz');
    });
  }

  it('refuses --app-out inside --app-dir, or around it, before any buildpack runs, exit 2', async () => {
    const dir = await tempDir();
    for (const [appDir, out] of [
      [path.join(dir, 'app'), path.join(dir, 'app', 'out')],
      [path.join(dir, 'out', 'app'), path.join(dir, 'out')],
    ]) {
      const res = await build(['--app-dir', appDir, '--app-out', out, '-o', path.join(dir, 's.tgz')]);
      expect(res.exitCode, res.stderr).to.equal(2);
      expect(res.stderr).to.match(/^ ! +--app-out .+ and --app-dir .+ are inside one another: name a directory apart from it\n$/);
    }
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it('refuses --app-out with --slug (nothing is built), exit 2', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'slug.tgz'), 'x');
    const res = await runBuilder([
      '--slug',
      path.join(dir, 'slug.tgz'),
      '--layer',
      path.join(dir, 'l.tgz'),
      '--app-out',
      path.join(dir, 'app'),
    ]);
    expect(res.exitCode).to.equal(2);
    expect(res.stderr).to.include('--app-out does not apply');
  });

  it('leaves no DIR and nothing beside it when the build fails', async () => {
    const dir = await tempDir();
    const failing = await makeBuildpack({ compile: 'echo half > "$1/half"\nexit 3' });
    const res = await runBuilder(
      ['--buildpack', failing, '--cache-dir', path.join(dir, 'cache'), '--app-out', path.join(dir, 'app'), '-o', path.join(dir, 's.tgz')],
      {
        input: source,
        env: { ...process.env, SLUGKIT_SANDBOX: 'off' },
      },
    );
    expect(res.exitCode).to.equal(1);
    expect(await readdir(dir)).to.deep.equal(['cache']);
  });
});
