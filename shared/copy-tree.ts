/**
 * Copies a directory tree: app sources, buildpacks and build caches. Node's
 * `fs.promises.cp` makes several async stat calls per entry and is a few
 * times slower than `cp -a` on a build cache (docs/BENCHMARKS.md); this walks
 * the tree with synchronous calls (one `readdir` per directory, one `copyFile`
 * per file, which reflinks where the filesystem can) and yields to the event
 * loop every few hundred entries, so a lock's heartbeat keeps beating while
 * a large cache is copied.
 *
 * Symlinks are copied as links with their targets as they are (a link never
 * pulls in files from outside the tree); sockets, fifos and devices are not
 * copied; modes are kept, and so are times when asked.
 */
import {
  chmodSync,
  constants,
  copyFileSync,
  type Dirent,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  type Stats,
  statSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';

export interface CopyTreeOptions {
  /** Entries to leave out, by path relative to `from` ("sub/dir"); a skipped directory is not entered. */
  skip?: (relative: string) => boolean;
  /** Keep modification and access times (files, directories and links). */
  preserveTimestamps?: boolean;
}

/** Entries copied between two yields to the event loop. */
const BATCH = 256;

/** Copies the contents of `from` into `to` (made if missing). */
export async function copyTree(from: string, to: string, opts: CopyTreeOptions = {}): Promise<void> {
  const madeRoot = mkdirSync(to, { recursive: true }) !== undefined;
  // Directory modes and times are set last, children before their parent (the
  // walk lists them in that order): a read-only directory must still take its
  // entries, and each entry changes its mtime.
  const dirs: Array<{ src: string; dst: string; setMode: boolean }> = [];
  let sinceYield = 0;
  const walk = async (src: string, dst: string, relative: string): Promise<void> => {
    for (const entry of readdirSync(src, { withFileTypes: true }) as Dirent[]) {
      const rel = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (opts.skip?.(rel)) continue;
      const s = path.join(src, entry.name);
      const d = path.join(dst, entry.name);
      if (entry.isDirectory()) {
        mkdirSync(d);
        await walk(s, d, rel);
        dirs.push({ src: s, dst: d, setMode: true });
      } else if (entry.isFile()) {
        // copyFile keeps the mode; it reflinks where the filesystem can.
        copyFileSync(s, d, constants.COPYFILE_FICLONE);
        if (opts.preserveTimestamps) copyTimes(s, d, utimesSync);
      } else if (entry.isSymbolicLink()) {
        symlinkSync(readlinkSync(s), d);
        if (opts.preserveTimestamps) copyTimes(s, d, lutimesSync, true);
      }
      if (++sinceYield >= BATCH) {
        sinceYield = 0;
        await nextTurn();
      }
    }
  };
  await walk(from, to, '');
  dirs.push({ src: from, dst: to, setMode: madeRoot });
  for (const { src, dst, setMode } of dirs) {
    const st = statSync(src);
    if (setMode) chmodSync(dst, st.mode & 0o7777);
    if (opts.preserveTimestamps) setTimes(dst, st, utimesSync);
  }
}

function copyTimes(src: string, dst: string, set: typeof utimesSync, link = false): void {
  setTimes(dst, link ? lstatSync(src) : statSync(src), set);
}

function setTimes(dst: string, st: Stats, set: typeof utimesSync): void {
  // Seconds as a fraction keep the sub-millisecond part a Date would drop.
  set(dst, st.atimeMs / 1000, st.mtimeMs / 1000);
}
