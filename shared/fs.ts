/**
 * File-system idioms the whole kit shares:
 *  - temp paths removed however the process ends (success, error, SIGTERM/SIGINT,
 *    which skip every `finally`, or a plain exit);
 *  - writing a file the user named so that a failure leaves nothing behind.
 *
 * The target rule: a regular file or a missing path is written beside itself
 * under a temp name and renamed into place; a character device, a FIFO or a
 * socket is written in place (opened for writing, never created, truncated or
 * replaced); a directory is refused. A symlink is followed: the file it points
 * at is what the user named, so that file is replaced and the link stays. A
 * dangling link creates its target, as a shell's `>` does, when the target's
 * directory exists.
 *
 * Inside an app, cache or layers dir the rule is the opposite, because a
 * hostile source, slug or buildpack made the links there: slugkit's own
 * writes, swaps and reads go through the `*Inside` helpers below, which never
 * follow a link out of the dir (docs/security.md). Every temp file is a fresh
 * random name created with O_EXCL|O_NOFOLLOW in the dir it is renamed in.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  createReadStream,
  createWriteStream,
  fstatSync,
  openSync,
  readSync,
  rmSync,
  type Stats,
  statSync,
  writeSync,
} from 'node:fs';
import {
  access,
  copyFile,
  type FileHandle,
  link,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readlink,
  realpath,
  rename,
  rm,
  stat,
} from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode, UsageError, UserError } from './errors.js';

const registered = new Set<string>();
let exitHooked = false;

/** Remove `p` (file or dir) when the process ends, unless forgotten first. */
export function removeOnExit(p: string): void {
  registered.add(p);
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', removeAllNow);
  }
}

/** `p` was kept (renamed into place) or already removed: leave it alone at exit. */
export function forget(p: string): void {
  registered.delete(p);
}

/** Remove every registered path now; the signal handlers and runCli call this. */
export function removeAllNow(): void {
  for (const p of registered) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // best effort while exiting
    }
  }
  registered.clear();
}

/** A new temp dir under `parent` (default: the system temp dir), removed at exit at the latest. */
export async function makeTempDir(prefix: string, parent = os.tmpdir()): Promise<string> {
  const dir = await mkdtemp(path.join(parent, prefix));
  removeOnExit(dir);
  return dir;
}

/** Remove a temp dir or file now (done with it, or it failed). */
export async function removeTemp(p: string): Promise<void> {
  await rm(p, { recursive: true, force: true });
  forget(p);
}

/** Whether `p` exists, links followed. */
export async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Whether `p` is a directory, links followed; false when it is absent. */
export async function isDir(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** isDir for the hot loops that walk launch layers synchronously. */
export function isDirSync(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/** What a named output path turns out to be, symlinks followed. */
export type TargetKind = 'missing' | 'file' | 'stream' | 'directory';

export interface ResolvedTarget {
  /** The path that is written: the symlink's target when `named` is a link. */
  path: string;
  kind: TargetKind;
  /** Set for kind 'stream': a socket is connected to, not opened. */
  socket?: boolean;
  /** Set for kind 'stream' when `named` is one of this process's open files (/dev/stdout): written through the fd. */
  fd?: number;
}

function kindOf(st: Stats): TargetKind {
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'file';
  return 'stream';
}

/** Follow `named` to the path that gets written, and say what is there. */
export async function resolveTarget(named: string): Promise<ResolvedTarget> {
  let current = path.resolve(named);
  // Links are followed one at a time so a dangling one still yields the path it names.
  for (let hops = 0; hops < 40; hops++) {
    let st: Stats;
    try {
      st = await lstat(current);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return { path: current, kind: 'missing' };
      throw err;
    }
    if (!st.isSymbolicLink()) return { path: current, kind: kindOf(st), socket: st.isSocket() || undefined };
    const link = await readlink(current);
    // /dev/stdout -> /proc/self/fd/1 -> "pipe:[123]": a /proc magic link names no path, but opening it
    // reaches the open file, so a pipe or terminal behind it is written in place.
    // A socket (what a parent process's pipe often is) cannot be opened by path: write to our own fd.
    if (!path.isAbsolute(link) && /^[a-z_]+:/.test(link) && current.startsWith('/proc/')) {
      const own = new RegExp(`^/proc/(?:self|${process.pid})/fd/(\\d+)$`).exec(current);
      if (own) return { path: current, kind: 'stream', fd: Number(own[1]) };
      const behind = await stat(current);
      if (behind.isFIFO() || behind.isCharacterDevice()) return { path: current, kind: 'stream' };
      throw new UserError(`${named} is a ${link.split(':')[0]} of another process: name a file, a FIFO or a terminal to write`);
    }
    current = path.resolve(path.dirname(current), link);
  }
  throw new UserError(`${named}: too many levels of symbolic links`);
}

/**
 * Check before a build that `named` can be written by `flag`: not a
 * directory, and writable (or its directory is, when it is missing).
 * Usage errors exit 2, file-system refusals exit 1.
 */
export async function checkWritableTarget(named: string, flag: string): Promise<ResolvedTarget> {
  const target = await resolveTarget(named);
  if (target.kind === 'directory') throw new UsageError(`${flag} ${named} is a directory: name a file to write`);
  if (target.fd !== undefined) return target;
  if (target.kind !== 'missing' && !target.socket) {
    // A regular file is replaced by a rename in its directory; a device or FIFO is opened for writing.
    const need = target.kind === 'file' ? path.dirname(target.path) : target.path;
    await access(need, constants.W_OK).catch(() => {
      throw new UserError(`cannot write ${flag} ${named}: ${need} is not writable; choose a writable path`);
    });
    return target;
  }
  if (target.socket) return target;
  const dir = path.dirname(target.path);
  let st: Stats;
  try {
    st = await stat(dir);
  } catch {
    throw new UserError(`cannot write ${flag} ${named}: the directory ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new UserError(`cannot write ${flag} ${named}: ${dir} is not a directory`);
  await access(dir, constants.W_OK).catch(() => {
    throw new UserError(`cannot write ${flag} ${named}: ${dir} is not writable; choose a writable path`);
  });
  return target;
}

/**
 * A file being prepared for `named`: write to `path`, then `commit` puts it
 * in place (a rename, or for a device/FIFO/socket a copy into it) and
 * `discard` drops it. Until one of them runs, the staged file is a temp path
 * removed at exit.
 */
export interface StagedFile {
  /** Where to write the bytes now. */
  readonly path: string;
  /** The resolved path that `commit` writes: what --summary reports. */
  readonly target: string;
  /** A device, FIFO or socket: what commit writes there cannot be taken back. */
  readonly inPlace: boolean;
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/** Stage a write of `named`, described as `what` in errors ("the slug", "--summary"). */
export async function stageFile(named: string, what: string): Promise<StagedFile> {
  const target = await resolveTarget(named);
  if (target.kind === 'directory') throw new UsageError(`${what} ${named} is a directory: name a file to write`);
  if (target.kind === 'stream') {
    // Nothing may be created beside a device: stage in the temp dir, copy in at commit.
    const dir = await makeTempDir('slugkit-out-');
    const staged = path.join(dir, 'staged');
    return {
      path: staged,
      target: target.path,
      inPlace: true,
      commit: async () => {
        try {
          await pipeline(createReadStream(staged), await openInPlace(target));
        } catch (err) {
          throw new UserError(`cannot write ${what} to ${named}: ${errnoCode(err) ?? err}`);
        } finally {
          await removeTemp(dir);
        }
      },
      discard: () => removeTemp(dir),
    };
  }
  const made = await createTempFile(target.path, 0o666);
  await made.handle.close();
  const staged = made.path;
  return {
    path: staged,
    target: target.path,
    inPlace: false,
    commit: async () => {
      try {
        await replaceWith(staged, target.path);
      } catch (err) {
        await removeTemp(staged);
        throw new UserError(`cannot write ${what} to ${named}: ${errnoCode(err) ?? err}`);
      }
    },
    discard: () => removeTemp(staged),
  };
}

/** A device or FIFO opened for writing as it is (no create, no truncate); a socket connected to. */
async function openInPlace(target: ResolvedTarget): Promise<Writable> {
  if (target.fd !== undefined) return createWriteStream('', { fd: target.fd, autoClose: false });
  if (target.socket) return net.createConnection({ path: target.path });
  const handle = await open(target.path, constants.O_WRONLY);
  return handle.createWriteStream();
}

/** Read size for copyToStdout. */
const STDOUT_COPY_CHUNK = 1024 * 1024;

/**
 * `source` written to stdout at its offset. Into a regular file (`> slug.tgz`)
 * with plain read and write calls on fd 1: a Node stream into a file's fd
 * costs several times that (docs/BENCHMARKS.md). A pipe or socket gets
 * process.stdout's stream, which waits for its reader.
 */
export async function copyToStdout(source: string): Promise<void> {
  if (!fstatSync(1).isFile()) {
    await pipeline(createReadStream(source, { highWaterMark: STDOUT_COPY_CHUNK }), process.stdout, { end: false });
    return;
  }
  const input = openSync(source, 'r');
  try {
    const buf = Buffer.allocUnsafe(STDOUT_COPY_CHUNK);
    for (let n = readSync(input, buf); n > 0; n = readSync(input, buf)) {
      for (let done = 0; done < n; ) done += writeSync(1, buf, done, n - done);
    }
  } finally {
    closeSync(input);
  }
}

/** Fill a staged file with a copy of `source`: a hard link when it can be, else a copy. */
export async function stageCopy(source: string, staged: StagedFile): Promise<void> {
  try {
    // link() never follows or replaces what is at its new name: the staged file goes first.
    await rm(staged.path, { force: true });
    await link(source, staged.path);
  } catch {
    await copyFile(source, staged.path);
  }
}

/**
 * Write `named` all at once: `write(tmpPath)` produces it beside the
 * target, then it is renamed (or copied into a device). A failure leaves
 * nothing at `named`.
 */
export async function writeAtomically(named: string, what: string, write: (file: string) => Promise<void>): Promise<void> {
  const staged = await stageFile(named, what);
  try {
    await write(staged.path);
  } catch (err) {
    await staged.discard();
    throw err;
  }
  await staged.commit();
}

/** A temp file just created beside `target` (same dir, so a rename swaps it in), removed at exit unless replaced. */
export interface TempFile {
  path: string;
  handle: FileHandle;
}

/**
 * A fresh temp file for `target`: a random name in `target`'s directory,
 * created with O_EXCL|O_NOFOLLOW, so nothing already there (a link a
 * hostile tree planted under a guessable name) is ever opened or followed.
 */
export async function createTempFile(target: string, mode = 0o600): Promise<TempFile> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  for (let attempt = 0; ; attempt++) {
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(8).toString('hex')}.tmp`);
    try {
      const handle = await open(temp, flags, mode);
      removeOnExit(temp);
      return { path: temp, handle };
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST' || attempt >= 8) throw err;
    }
  }
}

/** The one rename of the kit: `temp` (a file or dir made beside `target`) takes `target`'s place; a link at `target` is replaced, never followed. */
export async function replaceWith(temp: string, target: string): Promise<void> {
  await rename(temp, target);
  forget(temp);
}

function linkRefusal(component: string, what: string): UserError {
  return new UserError(`${component} is a link; refusing to write ${what === component ? '' : `${what} `}through it`);
}

/**
 * Checks that no directory between `root` and `root/rel` is a link (or not a
 * directory): a write there stays inside `root`. A missing one is fine (nothing
 * to follow). `what` names the file in the error.
 */
export async function checkNoLinksInside(root: string, rel: string, what = path.normalize(rel)): Promise<void> {
  const parts = path.normalize(rel).split(path.sep).filter(Boolean);
  if (parts.includes('..')) throw new UserError(`${what}: ${rel} leaves ${root}`);
  let current = root;
  for (const [i, part] of parts.slice(0, -1).entries()) {
    current = path.join(current, part);
    const st = await lstat(current).catch((err) => {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (!st) return;
    if (st.isSymbolicLink()) throw linkRefusal(parts.slice(0, i + 1).join('/'), what);
    if (!st.isDirectory()) throw new UserError(`${what}: ${parts.slice(0, i + 1).join('/')} is not a directory`);
  }
}

/** Makes `root/rel` and the dirs above it (up to `root`), each a real directory, never a link. */
export async function makeDirInside(root: string, rel: string, what = rel): Promise<string> {
  const parts = path.normalize(rel).split(path.sep).filter(Boolean);
  if (parts.includes('..')) throw new UserError(`${what}: ${rel} leaves ${root}`);
  let current = root;
  for (const [i, part] of parts.entries()) {
    current = path.join(current, part);
    await mkdir(current, { mode: 0o755 }).catch((err) => {
      if (errnoCode(err) !== 'EEXIST') throw err;
    });
    const st = await lstat(current);
    if (st.isSymbolicLink()) throw linkRefusal(parts.slice(0, i + 1).join('/'), what);
    if (!st.isDirectory()) throw new UserError(`${what}: ${parts.slice(0, i + 1).join('/')} is not a directory`);
  }
  return current;
}

/**
 * Writes `root/rel` through a fresh temp file renamed over it: a link at
 * `rel` is replaced (its target untouched) and a link above it refused.
 * Mode 0644 unless told.
 */
export async function writeFileInside(
  root: string,
  rel: string,
  data: string | Uint8Array,
  opts: { mode?: number; what?: string } = {},
): Promise<void> {
  await checkNoLinksInside(root, rel, opts.what);
  const target = path.join(root, rel);
  const temp = await createTempFile(target, opts.mode ?? 0o644);
  try {
    await temp.handle.writeFile(data);
    // The create mode went through the umask; the file's mode is what was asked for.
    await temp.handle.chmod(opts.mode ?? 0o644);
    await temp.handle.close();
    await replaceWith(temp.path, target);
  } catch (err) {
    await temp.handle.close().catch(() => undefined);
    await removeTemp(temp.path);
    throw err;
  }
}

/** Removes `root/rel` (a tree, a file or a link, which is unlinked, never followed), refusing a link above it. */
export async function removeInside(root: string, rel: string, what = rel): Promise<void> {
  await checkNoLinksInside(root, rel, what);
  // fs.rm lstat()s every entry: a link inside the tree is unlinked, not entered.
  await rm(path.join(root, rel), { recursive: true, force: true });
}

/** The largest file read whole from an app: a Procfile or TOML file is a few KiB. */
const MAX_INSIDE_READ = 8 * 1024 * 1024;

/**
 * Reads `root/rel`, a file slugkit reads from an app, cache or layers dir.
 * Links inside `root` are followed; a path that resolves outside it fails in
 * one line naming `what` ("Procfile is a link to a path outside the app;
 * refusing to read it"), and so does anything but a regular file (a FIFO
 * would hang the build). Undefined when there is no such file (a dangling
 * link included).
 */
export async function readFileInside(root: string, rel: string, what = rel, where = 'the app'): Promise<Buffer | undefined> {
  const file = path.join(root, rel);
  let real: string;
  try {
    real = await realpath(file);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') throw new UserError(`${what} is a link loop; refusing to read it`);
    throw cannotRead(err, what);
  }
  const realRoot = await realpath(root);
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
    throw new UserError(`${what} is a link to a path outside ${where}; refusing to read it`);
  }
  let handle: FileHandle;
  try {
    // O_NOFOLLOW: the resolved path must not have become a link since; O_NONBLOCK: a FIFO must not block the open.
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (errnoCode(err) === 'ELOOP') throw new UserError(`${what} changed into a link while being read; refusing to read it`);
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw cannotRead(err, what);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new UserError(`${what} is not a regular file; refusing to read it`);
    if (st.size > MAX_INSIDE_READ) throw new UserError(`${what} is larger than ${MAX_INSIDE_READ / 1024 / 1024} MiB; refusing to read it`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

function cannotRead(err: unknown, what: string): unknown {
  const code = errnoCode(err);
  return code ? new UserError(`cannot read ${what} (${code}): make it a readable file`) : err;
}

/** readFileInside as UTF-8 text. */
export async function readTextInside(root: string, rel: string, what = rel, where = 'the app'): Promise<string | undefined> {
  return (await readFileInside(root, rel, what, where))?.toString('utf8');
}
