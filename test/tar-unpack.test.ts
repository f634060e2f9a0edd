/**
 * What an unpacked archive looks like when entries meet each other: later
 * entries replace earlier ones as in GNU tar, hardlinks share their file,
 * odd modes and times come out as a non-root `tar -x` would leave them.
 * (Hostile input is test/hostile.test.ts; this is the ordinary semantics of
 * shared/tar/disk-writer.ts, through extractArchive, the one entry point.)
 */
import { chmodSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { extractArchive } from '../shared/tar/extract.js';
import { dir, file, gzip, hardlink, header, symlink, TYPE, tar } from './helpers/tar-blocks.js';

const roots: string[] = [];

function target(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'slugkit-unpack-'));
  roots.push(root);
  return root;
}

async function unpack(bytes: Buffer): Promise<string> {
  const root = target();
  await extractArchive(Readable.from([bytes]), root, 'test archive');
  return root;
}

async function failure(bytes: Buffer): Promise<string> {
  try {
    await extractArchive(Readable.from([bytes]), target(), 'test archive');
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the archive to be refused');
}

describe('unpacking (shared/tar/disk-writer.ts)', () => {
  after(() => {
    for (const root of roots) {
      // A mode-0 or read-only directory must not stop the clean-up.
      for (const sub of ['locked', 'ro']) {
        try {
          chmodSync(path.join(root, sub), 0o755);
        } catch {
          // not in this archive
        }
      }
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a later file entry replaces an earlier one at the same path', async () => {
    const root = await unpack(tar(file('app.js', 'one\n'), file('app.js', 'two\n')));
    expect(readFileSync(path.join(root, 'app.js'), 'utf8')).to.equal('two\n');
  });

  it('a directory replaces an earlier file, and a file an earlier empty directory', async () => {
    const root = await unpack(tar(file('a', 'file\n'), dir('a'), file('a/inside', 'x\n'), dir('b'), file('b', 'now a file\n')));
    expect(lstatSync(path.join(root, 'a')).isDirectory()).to.equal(true);
    expect(readFileSync(path.join(root, 'a/inside'), 'utf8')).to.equal('x\n');
    expect(readFileSync(path.join(root, 'b'), 'utf8')).to.equal('now a file\n');
  });

  it('refuses a file that would replace a directory with entries in it', async () => {
    const message = await failure(tar(dir('lib'), file('lib/x.js'), file('lib', 'flat\n')));
    expect(message).to.equal('test archive: cannot unpack entry "lib": it would replace a directory that is not empty');
  });

  it('makes a hardlink share its file, gzip or not', async () => {
    for (const bytes of [
      tar(file('bin/tool', '#!/bin/sh\n', { mode: 0o755 }), hardlink('bin/alias', 'bin/tool')),
      gzip(tar(file('f', 'same\n'), hardlink('g', 'f'))),
    ]) {
      const root = await unpack(bytes);
      const names = readdirSync(root, { recursive: true }).map(String).sort();
      const [first, second] = names.includes('bin/tool') ? ['bin/tool', 'bin/alias'] : ['f', 'g'];
      expect(lstatSync(path.join(root, second)).ino).to.equal(lstatSync(path.join(root, first)).ino);
      expect(lstatSync(path.join(root, first)).nlink).to.equal(2);
    }
  });

  it('refuses a hardlink to a file the archive has not written', async () => {
    const message = await failure(tar(file('a'), hardlink('b', 'missing')));
    expect(message).to.equal('test archive: cannot unpack entry "b": its link target does not exist in the archive');
  });

  it('makes parent directories an archive leaves out, and keeps the modes it gives', async () => {
    const root = await unpack(tar(file('deep/er/still/file.txt', 'x\n', { mode: 0o600 }), file('run.sh', 'echo\n', { mode: 0o750 })));
    expect(lstatSync(path.join(root, 'deep/er/still')).isDirectory()).to.equal(true);
    expect(lstatSync(path.join(root, 'deep/er/still/file.txt')).mode & 0o777).to.equal(0o600);
    expect(lstatSync(path.join(root, 'run.sh')).mode & 0o777).to.equal(0o750 & ~process.umask());
  });

  it('keeps the owner rwx on a directory archived with mode 0, so its entries still unpack', async () => {
    const root = await unpack(tar(dir('locked', 0), file('locked/inside', 'kept\n')));
    expect(readFileSync(path.join(root, 'locked/inside'), 'utf8')).to.equal('kept\n');
    expect(lstatSync(path.join(root, 'locked')).mode & 0o700).to.equal(0o700);
  });

  it('restores file and directory times, directories after their entries are written', async () => {
    const mtime = 1_000_000_000; // 2001-09-09
    const root = await unpack(
      tar(header({ name: 'ro/', type: TYPE.directory, mode: 0o755, mtime }), file('ro/file', 'x\n', { mtime: mtime + 60 })),
    );
    expect(lstatSync(path.join(root, 'ro')).mtimeMs).to.equal(mtime * 1000);
    expect(lstatSync(path.join(root, 'ro/file')).mtimeMs).to.equal((mtime + 60) * 1000);
  });

  it('restores the time of a directory that holds a symlink (the links are made before the times are set)', async () => {
    const mtime = 1_000_000_000;
    const root = await unpack(
      tar(
        header({ name: 'bin/', type: TYPE.directory, mode: 0o755, mtime }),
        symlink('bin/npm', '../lib/npm-cli.js'),
        file('lib/npm-cli.js', 'x\n'),
      ),
    );
    expect(readlinkSync(path.join(root, 'bin/npm'))).to.equal('../lib/npm-cli.js');
    expect(lstatSync(path.join(root, 'bin')).mtimeMs).to.equal(mtime * 1000);
  });

  it('makes symlinks last, with targets as archived, even when their directory comes later', async () => {
    const root = await unpack(
      tar(symlink('venv/bin/python', '/usr/bin/python3'), dir('venv/bin'), file('venv/bin/activate', '# activate\n')),
    );
    expect(readlinkSync(path.join(root, 'venv/bin/python'))).to.equal('/usr/bin/python3');
    expect(readFileSync(path.join(root, 'venv/bin/activate'), 'utf8')).to.equal('# activate\n');
  });
});
