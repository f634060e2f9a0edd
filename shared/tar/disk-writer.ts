/**
 * Puts the entries that node-tar's Parser reads onto disk, inside one
 * directory, without ever writing outside it. extract.ts decides what an
 * archive may hold (limits, entry types); this module decides where and how
 * each entry lands:
 *  - names: a leading "/" is dropped, "." parts are ignored, any ".." part,
 *    or more than 1,024 parts, is refused;
 *  - directories we made, or found as real directories, are remembered, so
 *    each is made or checked once per archive (node-tar 7.5 re-walks every
 *    parent of every entry: ~4 mkdir calls and as many exceptions per file);
 *  - files are created with O_EXCL|O_NOFOLLOW, so nothing is written through
 *    a link; a later entry replaces an earlier file, link or empty directory;
 *  - hardlinks point only at files this archive already wrote;
 *  - symlinks wait until everything else is on disk and are then made with
 *    their targets exactly as archived, so no entry can go through one.
 *    (node-tar would rewrite `/usr/bin/python3` to `usr/bin/python3`,
 *    breaking virtualenvs and vendored tools in real slugs.)
 *  - no owners are restored, setuid, setgid and sticky bits are dropped, and
 *    the process umask applies, as with a non-root `tar -x`.
 * Every method throws a UserError naming the archive and the entry.
 */
import {
  closeSync,
  constants,
  futimesSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  realpathSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { ReadEntry } from 'tar';
import { errnoCode, errorMessage, UserError } from '../errors.js';

/** node-tar's own default: deeper names are refused rather than walked. */
const MAX_DEPTH = 1024;

const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** An entry's name as it will land, checked but not yet written. */
export interface PlannedEntry {
  /** Path inside the target, without "./" or a trailing "/"; '' is the target itself. */
  name: string;
  /** For a hardlink: the file it shares, named the same way. */
  linkName?: string;
  /** Bytes the entry costs on disk: its size, or for a hardlink its target's size. */
  bytes: number;
}

export class DiskWriter {
  private readonly root: string;
  /** Directories known to be real directories inside root (made here or checked once). */
  private readonly dirs = new Set<string>(['']);
  /** Regular files this archive wrote, with their sizes: the only valid hardlink targets. */
  private readonly files = new Map<string, number>();
  /** Symlinks to make once everything else is on disk: name -> target, in archive order. */
  private readonly symlinks = new Map<string, string>();
  /** Directory times, set at the end (writing files into a directory changes its mtime). */
  private readonly dirTimes = new Map<string, { atime: Date; mtime: Date }>();
  private openFd: number | undefined;

  constructor(
    root: string,
    private readonly what: string,
  ) {
    this.root = realpathSync(root);
  }

  /** Checks an entry's names and says what it will cost; nothing is written yet. */
  plan(entry: ReadEntry): PlannedEntry {
    const name = this.safeName(entry.path, entry.path);
    if (entry.type === 'Link') {
      const linkName = this.safeName(String(entry.linkpath ?? ''), entry.path, 'link target');
      return { name, linkName, bytes: this.files.get(linkName) ?? 0 };
    }
    const bytes = entry.type === 'Directory' || entry.type === 'SymbolicLink' ? 0 : (entry.size ?? 0);
    return { name, bytes };
  }

  /**
   * Writes one planned entry. File bodies arrive as 'data' events after this
   * returns; a failure there goes to `fail`, since no caller is on the stack.
   */
  write(entry: ReadEntry, planned: PlannedEntry, fail: (message: string) => void): void {
    const { name } = planned;
    // Symlinks are made last, so an entry below one would land in a plain
    // directory here, where tar would have written through the link: refuse.
    const through = this.symlinkAbove(name) ?? (planned.linkName !== undefined ? this.symlinkAt(planned.linkName) : undefined);
    if (through !== undefined) {
      throw this.unsafe(name, `it goes through the symbolic link "${printable(through)}"`);
    }
    // A later entry at the same path replaces an earlier symlink, as in tar itself.
    this.symlinks.delete(name);
    if (name === '') {
      // The target itself: an archive may give it times, never replace it.
      if (entry.type === 'Directory' && entry.mtime) this.dirTimes.set('', { atime: entry.atime ?? new Date(), mtime: entry.mtime });
      entry.resume();
      return;
    }
    switch (entry.type) {
      case 'Directory':
        this.writeDirectory(entry, name);
        entry.resume();
        return;
      case 'SymbolicLink':
        this.symlinks.set(name, String(entry.linkpath ?? ''));
        this.forget(name);
        entry.resume();
        return;
      case 'Link':
        this.writeHardlink(name, planned.linkName ?? '', planned.bytes);
        entry.resume();
        return;
      default:
        this.writeFile(entry, name, planned.bytes, fail);
    }
  }

  /** Once every entry is written: the symlinks, then directory times (making a link changes its directory's). */
  finish(): void {
    for (const [name, target] of this.symlinks) {
      if (target === '' || target.includes('\0')) throw this.unsafe(name, 'empty or invalid symlink target');
      this.attempt(name, () => this.makeSymlink(name, target));
    }
    // A link never takes a directory's place (makeSymlink refuses), so each of
    // these, and every directory above it, is still one this archive made;
    // lutimes would not follow the last part even if it were not.
    for (const [name, { atime, mtime }] of this.dirTimes) {
      try {
        lutimesSync(this.abs(name), atime, mtime);
      } catch {
        // Times are a courtesy; a directory that cannot take them is still whole.
      }
    }
  }

  /** Closes a file left open by a failure mid-body. */
  abort(): void {
    if (this.openFd === undefined) return;
    try {
      closeSync(this.openFd);
    } catch {
      // Already failing; the caller removes the target.
    }
    this.openFd = undefined;
  }

  private writeDirectory(entry: ReadEntry, name: string): void {
    this.ensureParent(name);
    // Owner rwx always, as node-tar does, so a mode-0 directory cannot block its own entries.
    const mode = ((entry.mode ?? 0) & 0o777 || 0o777) | 0o700;
    if (!this.dirs.has(name)) {
      this.attempt(name, () => {
        this.makeDir(name, mode, () => {
          // A file or link stands here: a later entry replaces it, as in tar.
          unlinkSync(this.abs(name));
          this.files.delete(name);
          mkdirSync(this.abs(name), mode);
        });
      });
      this.dirs.add(name);
    }
    if (entry.mtime) this.dirTimes.set(name, { atime: entry.atime ?? new Date(), mtime: entry.mtime });
  }

  private writeFile(entry: ReadEntry, name: string, size: number, fail: (message: string) => void): void {
    this.ensureParent(name);
    const file = this.abs(name);
    const mode = entry.mode === undefined ? 0o666 : entry.mode & 0o777;
    let fd = -1;
    this.attempt(name, () => {
      this.replacing(name, () => (fd = openSync(file, CREATE_FILE, mode)));
    });
    this.openFd = fd;
    this.files.set(name, size);
    let failed = false;
    entry.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done, chunk.length - done);
      } catch (err) {
        failed = true;
        this.abort();
        fail(this.describe(name, err));
      }
    });
    entry.on('end', () => {
      if (failed) return;
      try {
        if (entry.mtime) futimesSync(fd, entry.atime ?? new Date(), entry.mtime);
        this.openFd = undefined;
        closeSync(fd);
      } catch (err) {
        this.abort();
        fail(this.describe(name, err));
      }
    });
  }

  private writeHardlink(name: string, linkName: string, size: number): void {
    if (!this.files.has(linkName)) {
      throw new UserError(`${this.what}: cannot unpack entry "${printable(name)}": its link target does not exist in the archive`);
    }
    if (linkName === name) return; // a link to itself is the file already there
    this.ensureParent(name);
    this.attempt(name, () => this.replacing(name, () => linkSync(this.abs(linkName), this.abs(name))));
    this.files.set(name, size);
  }

  /**
   * Runs `create`; if something already stands at `name`, removes it the way
   * tar replaces an earlier entry (a file or link is unlinked, a directory
   * only when empty) and runs `create` once more.
   */
  private replacing(name: string, create: () => void): void {
    try {
      create();
      return;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const full = this.abs(name);
    if (lstatSync(full).isDirectory()) {
      rmdirSync(full); // ENOTEMPTY: "it would replace a directory that is not empty"
      this.dirs.delete(name);
      this.dirTimes.delete(name);
    } else {
      unlinkSync(full);
    }
    create();
  }

  /** mkdir that accepts a real directory already there and calls `occupied` for anything else. */
  private makeDir(name: string, mode: number, occupied: () => void): void {
    try {
      mkdirSync(this.abs(name), mode);
      return;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const st = lstatSync(this.abs(name));
    if (st.isDirectory()) return;
    occupied();
  }

  /** Makes every missing parent of `name`; each is made or checked once per archive. */
  private ensureParent(name: string): void {
    const slash = name.lastIndexOf('/');
    if (slash < 0) return;
    const parent = name.slice(0, slash);
    if (this.dirs.has(parent)) return;
    this.ensureParent(parent);
    this.attempt(parent, () => {
      this.makeDir(parent, 0o777, () => {
        // Only reachable through content that was in the target before us.
        throw this.unsafe(name, 'a parent of it is a symlink or a file');
      });
    });
    this.dirs.add(parent);
  }

  /** The target no longer holds what an earlier entry at `name` put there. */
  private forget(name: string): void {
    this.files.delete(name);
    this.dirTimes.delete(name);
  }

  /** One link of finish(): parents checked and made without following links, then the link itself. */
  private makeSymlink(name: string, target: string): void {
    const parts = name.split('/');
    // Walk the parents one by one: the links made just before this one must not be followed.
    let parent = this.root;
    for (const part of parts.slice(0, -1)) {
      parent = path.join(parent, part);
      const st = lstatSync(parent, { throwIfNoEntry: false });
      if (!st) mkdirSync(parent, { mode: 0o755 });
      else if (!st.isDirectory()) throw this.unsafe(name, 'a parent of it is a symlink or a file');
    }
    const full = path.join(parent, parts[parts.length - 1]);
    const existing = lstatSync(full, { throwIfNoEntry: false });
    if (existing?.isDirectory()) {
      // Entries were written where this link stands: in the archive they went through it.
      throw this.unsafe(name, 'a symlink would replace a directory other entries were written into');
    }
    if (existing) unlinkSync(full);
    symlinkSync(target, full);
  }

  /** The name inside the target for an archived path; refuses ".." and endless depth. */
  private safeName(raw: string, entryPath: string, field = 'path'): string {
    const parts = raw.split('/');
    if (parts.length > MAX_DEPTH) throw this.unsafe(entryPath, `${field} excessively deep`);
    if (parts.includes('..')) throw this.unsafe(entryPath, `${field} contains '..'`);
    // A leading "/" is dropped: the entry lands inside the target, as with node-tar and GNU tar.
    return parts.filter((p) => p !== '' && p !== '.').join('/');
  }

  /** The pending symlink that is a parent of `name`, if any. */
  private symlinkAbove(name: string): string | undefined {
    for (let i = name.indexOf('/'); i > 0; i = name.indexOf('/', i + 1)) {
      if (this.symlinks.has(name.slice(0, i))) return name.slice(0, i);
    }
    return undefined;
  }

  /** The pending symlink at `name` or above it, if any (a hardlink's target). */
  private symlinkAt(name: string): string | undefined {
    return this.symlinks.has(name) ? name : this.symlinkAbove(name);
  }

  private abs(name: string): string {
    return name === '' ? this.root : `${this.root}/${name}`;
  }

  /** Runs one file-system step for `name`, turning its errors into one line. */
  private attempt(name: string, step: () => void): void {
    try {
      step();
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(this.describe(name, err));
    }
  }

  private unsafe(name: string, why: string): UserError {
    return new UserError(`${this.what} has an unsafe entry "${printable(name)}": ${why}; refusing to unpack it`);
  }

  private describe(name: string, err: unknown): string {
    const code = errnoCode(err);
    if (code === 'ENOSPC') return `no space left on the device while unpacking ${this.what}: free some space and try again`;
    return `${this.what}: cannot unpack entry "${printable(name)}": ${(code && ERRNO_TEXT[code]) ?? code ?? printable(errorMessage(err), 160)}`;
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENAMETOOLONG: 'name too long for the filesystem',
  ENOENT: 'its link target does not exist in the archive',
  ENOTEMPTY: 'it would replace a directory that is not empty',
  ENOTDIR: 'a parent of it is not a directory',
  EEXIST: 'it already exists',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it would replace a directory',
  ELOOP: 'too many levels of symbolic links',
};

/** Entry names come from the attacker: no control characters, no endless lines in our one-line errors. */
export function printable(name: string, max = 80): string {
  // eslint-disable-next-line no-control-regex
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this replaces
  const clean = name.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max / 2)}...${clean.slice(-(max / 2 - 3))}` : clean;
}
