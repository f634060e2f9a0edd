/**
 * The slug walk (shared/tar/pack.ts) against a tree that changes under it:
 * an entry listed as a file and swapped for a link or a fifo before it is
 * opened is refused in one line, never followed and never waited on. The
 * swap is made from the walk's own `exclude` callback, which runs between
 * the listing and the open, so the race is hit every time. And files it may
 * not open: an empty one is still archived, one with bytes fails the walk.
 */
import { execFileSync } from 'node:child_process';
import { rmSync, symlinkSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { packTree } from '../shared/tar/pack.js';
import { removeTempDirs, tempDir } from './helpers/cli.js';
import { requireTools } from './helpers/tools.js';

async function pack(root: string, exclude?: (rel: string) => boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of packTree(root, { exclude })) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe('tar pack: the slug walk', () => {
  let root: string;
  let outside: string;
  const SECRET = 'outside-the-app secret 7f3a';

  beforeEach(async () => {
    const dir = await tempDir();
    root = path.join(dir, 'app');
    outside = path.join(dir, 'secret.txt');
    await mkdir(path.join(root, 'lib'), { recursive: true });
    await writeFile(path.join(root, 'lib', 'a.js'), 'module.exports = 1;\n');
    await writeFile(path.join(root, 'lib', 'b.js'), 'module.exports = 2;\n');
    await writeFile(outside, SECRET);
  });
  after(removeTempDirs);

  it('packs the tree as GNU tar lists it when nothing changes', async () => {
    const tar = await pack(root);
    const file = path.join(path.dirname(root), 'a.tar');
    await writeFile(file, tar);
    expect(execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n')).to.deep.equal([
      './',
      './lib/',
      './lib/a.js',
      './lib/b.js',
    ]);
  });

  it('refuses a file swapped for a link out of the app after the listing, and reads nothing through it', async () => {
    const swap = (rel: string) => {
      if (rel === 'lib/b.js') {
        rmSync(path.join(root, rel));
        symlinkSync(outside, path.join(root, rel));
      }
      return false;
    };
    let failure: Error | undefined;
    const seen: Buffer[] = [];
    try {
      for await (const chunk of packTree(root, { exclude: swap })) seen.push(Buffer.from(chunk));
    } catch (err) {
      failure = err as Error;
    }
    expect(failure?.message).to.equal(`${root}/lib/b.js changed while it was being archived`);
    expect(Buffer.concat(seen).includes(SECRET)).to.equal(false);
    expect(await readFile(outside, 'utf8')).to.equal(SECRET);
  });

  it('refuses a file swapped for a fifo after the listing instead of waiting on it', async function () {
    this.timeout(10_000);
    const swap = (rel: string) => {
      if (rel === 'lib/a.js') {
        rmSync(path.join(root, rel));
        execFileSync('mkfifo', [path.join(root, rel)]);
      }
      return false;
    };
    let failure: Error | undefined;
    try {
      await pack(root, swap);
    } catch (err) {
      failure = err as Error;
    }
    expect(failure?.message).to.equal(`${root}/lib/a.js changed while it was being archived`);
  });

  it('archives an empty file it may not open as an empty file, and fails in one line on an unreadable one with bytes', async function () {
    // As root the walk is run without the capabilities that bypass file modes, so a 000 file is unreadable to it too.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) requireTools(this, 'setpriv');
    await writeFile(path.join(root, 'lib', 'empty'), '', { mode: 0 });
    const walk = `import { packTree } from ${JSON.stringify(new URL('../shared/tar/pack.js', import.meta.url).href)};
      for await (const chunk of packTree(process.argv[1])) process.stdout.write(chunk);`;
    const drop = asRoot ? ['setpriv', '--bounding-set', '-dac_override,-dac_read_search', '--'] : [];
    const run = (dir: string) =>
      execa(
        drop[0] ?? process.execPath,
        [...drop.slice(1), ...(asRoot ? [process.execPath] : []), '--input-type=module', '-e', walk, dir],
        {
          encoding: 'buffer',
          reject: false,
        },
      );
    const ok = await run(root);
    expect(ok.exitCode, Buffer.from(ok.stderr).toString()).to.equal(0);
    const file = path.join(path.dirname(root), 'c.tar');
    await writeFile(file, ok.stdout);
    const listed = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(listed.map((l) => l.split(/\s+/).pop())).to.deep.equal(['./', './lib/', './lib/a.js', './lib/b.js', './lib/empty']);
    expect(listed[4]).to.match(/^-rw-r--r-- 0\/0 +0 /);

    await writeFile(path.join(root, 'lib', 'locked.js'), 'secret', { mode: 0 });
    const refused = await run(root);
    expect(refused.exitCode).to.not.equal(0);
    expect(Buffer.from(refused.stderr).toString()).to.include(`EACCES: permission denied, open '${root}/lib/locked.js'`);
  });

  it('leaves out a fifo that was there when the directory was listed', async () => {
    execFileSync('mkfifo', [path.join(root, 'lib', 'pipe')]);
    const file = path.join(path.dirname(root), 'b.tar');
    await writeFile(file, await pack(root));
    expect(execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n')).to.deep.equal([
      './',
      './lib/',
      './lib/a.js',
      './lib/b.js',
    ]);
  });
});
