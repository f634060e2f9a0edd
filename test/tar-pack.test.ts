/**
 * The slug walk (shared/tar/pack.ts) against a tree that changes under it:
 * an entry listed as a file and swapped for a link or a fifo before it is
 * opened is refused in one line, never followed and never waited on. The
 * swap is made from the walk's own `exclude` callback, which runs between
 * the listing and the open, so the race is hit every time.
 */
import { execFileSync } from 'node:child_process';
import { rmSync, symlinkSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { packTree } from '../shared/tar/pack.js';
import { removeTempDirs, tempDir } from './helpers/cli.js';

async function pack(root: string, exclude?: (rel: string) => boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of packTree(root, { exclude })) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe('tar pack: a tree that changes while it is walked', () => {
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
