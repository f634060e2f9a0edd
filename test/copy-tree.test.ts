/**
 * shared/copy-tree.ts against GNU `cp -a` on the same tree: what a build sees
 * in its copied source, buildpack and cache must be what `cp -a` would give
 * (contents, modes, links as links, times), minus fifos and sockets.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { copyTree } from '../shared/copy-tree.js';

/** One line per entry: path, type, mode, size, mtime to the millisecond, link target. */
function listing(root: string): string[] {
  const out = execFileSync('find', ['.', '-printf', '%p %y %m %s %T@ %l\\n'], { cwd: root, encoding: 'utf8' });
  return out
    .trim()
    .split('\n')
    .map((line) => line.replace(/ (\d+)\.(\d{3})\d*( |$)/, ' $1.$2$3'))
    .sort();
}

describe('copyTree (shared/copy-tree.ts)', () => {
  let work: string;
  let src: string;

  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'slugkit-copytree-'));
    src = path.join(work, 'src');
    mkdirSync(path.join(src, 'bin'), { recursive: true });
    mkdirSync(path.join(src, 'lib/deep/deeper'), { recursive: true });
    mkdirSync(path.join(src, 'readonly'));
    mkdirSync(path.join(src, '.git/objects'), { recursive: true });
    mkdirSync(path.join(src, 'vendor/.git'), { recursive: true });
    writeFileSync(path.join(src, 'bin/run'), '#!/bin/sh\necho run\n', { mode: 0o755 });
    writeFileSync(path.join(src, 'lib/deep/deeper/data.bin'), Buffer.alloc(300_000, 7));
    writeFileSync(path.join(src, 'private.key'), 'secret\n', { mode: 0o600 });
    writeFileSync(path.join(src, 'empty'), '');
    writeFileSync(path.join(src, 'readonly/file'), 'kept\n', { mode: 0o444 });
    writeFileSync(path.join(src, '.git/HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(path.join(src, 'vendor/.git/HEAD'), 'ref: refs/heads/main\n');
    symlinkSync('/usr/bin/python3', path.join(src, 'python'));
    symlinkSync('lib/deep', path.join(src, 'deep-link'));
    symlinkSync('does/not/exist', path.join(src, 'dangling'));
    symlinkSync('../../etc/passwd', path.join(src, 'lib/climbing'));
    // Odd times, so a copy that does not keep them shows.
    utimesSync(path.join(src, 'bin/run'), new Date('2001-02-03T04:05:06.789Z'), new Date('2001-02-03T04:05:06.789Z'));
    utimesSync(path.join(src, 'lib/deep'), new Date('2002-01-01T00:00:00Z'), new Date('2002-01-01T00:00:00Z'));
    chmodSync(path.join(src, 'readonly'), 0o555);
    chmodSync(path.join(src, 'lib'), 0o750);
    execFileSync('mkfifo', [path.join(src, 'a-fifo')]);
  });

  after(() => {
    chmodSync(path.join(src, 'readonly'), 0o755);
    for (const dir of ['cp', 'ours', 'ours-skip', 'ours-plain']) {
      const ro = path.join(work, dir, 'readonly');
      try {
        chmodSync(ro, 0o755);
      } catch {
        // not made by this test run
      }
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('gives what cp -a gives: contents, modes, links as links, times (fifos left out)', async () => {
    execFileSync('cp', ['-a', src, path.join(work, 'cp')]);
    await copyTree(src, path.join(work, 'ours'), { preserveTimestamps: true });
    const expected = listing(path.join(work, 'cp')).filter((line) => !line.startsWith('./a-fifo '));
    expect(listing(path.join(work, 'ours'))).to.deep.equal(expected);
    expect(readFileSync(path.join(work, 'ours/lib/deep/deeper/data.bin')).equals(Buffer.alloc(300_000, 7))).to.equal(true);
  });

  it('copies links verbatim, never the files they point at', async () => {
    const dst = path.join(work, 'ours-plain');
    await copyTree(src, dst);
    expect(readlinkSync(path.join(dst, 'python'))).to.equal('/usr/bin/python3');
    expect(readlinkSync(path.join(dst, 'lib/climbing'))).to.equal('../../etc/passwd');
    expect(readlinkSync(path.join(dst, 'dangling'))).to.equal('does/not/exist');
    expect(lstatSync(path.join(dst, 'deep-link')).isSymbolicLink()).to.equal(true);
    // Modes are kept even without times, read-only directories included.
    expect(lstatSync(path.join(dst, 'readonly')).mode & 0o777).to.equal(0o555);
    expect(lstatSync(path.join(dst, 'private.key')).mode & 0o777).to.equal(0o600);
  });

  it('leaves out what skip names, without entering skipped directories', async () => {
    const dst = path.join(work, 'ours-skip');
    await copyTree(src, dst, { skip: (rel) => path.basename(rel) === '.git' });
    expect(() => lstatSync(path.join(dst, '.git'))).to.throw(/ENOENT/);
    expect(() => lstatSync(path.join(dst, 'vendor/.git'))).to.throw(/ENOENT/);
    expect(lstatSync(path.join(dst, 'vendor')).isDirectory()).to.equal(true);
    expect(readFileSync(path.join(dst, 'bin/run'), 'utf8')).to.equal('#!/bin/sh\necho run\n');
  });

  it('copies into an existing directory without changing its mode', async () => {
    const dst = path.join(work, 'existing');
    mkdirSync(dst, { mode: 0o700 });
    chmodSync(dst, 0o700);
    await copyTree(path.join(src, 'bin'), dst);
    expect(lstatSync(dst).mode & 0o777).to.equal(0o700);
    expect(lstatSync(path.join(dst, 'run')).mode & 0o777).to.equal(0o755);
  });
});
