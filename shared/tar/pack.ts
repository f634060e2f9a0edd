/**
 * Deterministic tar of a directory tree. Headers come from node-tar's Header
 * and Pax classes; walking and ordering are ours, because node-tar has no sort
 * option and its portable mode drops directory mtimes. Every header field is
 * pinned: sorted entries, one mtime, fixed owner, no names, normalised modes.
 */
import {
  closeSync,
  constants,
  type Dirent,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  type Stats,
} from 'node:fs';
import type { HeaderData } from 'tar';
import { type EntryData, HeaderEncoder } from './header-encoder.js';

/** 1980-01-01T00:00:01Z: what CNB tools use when SOURCE_DATE_EPOCH is unset. */
export const DEFAULT_MTIME = new Date(Date.UTC(1980, 0, 1, 0, 0, 1));

export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): Date {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw && /^\d+$/.test(raw)) return new Date(Number(raw) * 1000);
  return DEFAULT_MTIME;
}

export interface PackOptions {
  /** Entry name prefix: './' for a slug, 'app/' for an image layer. */
  prefix?: string;
  uid?: number;
  gid?: number;
  mtime?: Date;
  /** Relative POSIX paths (no leading './') to leave out, with everything below them. */
  exclude?: (relPath: string) => boolean;
  /**
   * Group-writable modes (0775/0664): for image layers owned by group 0, so an
   * arbitrary UID in group 0 (OpenShift) can write where the owner can.
   */
  groupWritable?: boolean;
  /** Called once per entry; lets callers count files or enforce limits. */
  onEntry?: (relPath: string, size: number) => void;
  /** End with the two zero blocks that close an archive (default); false for one part of a larger archive. */
  end?: boolean;
  /**
   * The caller is done with each chunk before it asks for the next (it hashes
   * or compares, and keeps nothing): the same few buffers are filled again,
   * so a pass over a large tree touches no fresh memory. A first touch of
   * fresh memory costs a page fault per 4 KiB, about as much as the read.
   */
  reuse?: boolean;
}

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/**
 * The header fields packTree pins, for a writer that feeds entries from
 * elsewhere (image/slug-layers.ts) and must give the same bytes: owner, one
 * mtime, no names, and the three normalised modes.
 */
export function entryFields(opts: Pick<PackOptions, 'uid' | 'gid' | 'mtime' | 'groupWritable'>): {
  base: Pick<HeaderData, 'uid' | 'gid' | 'mtime' | 'uname' | 'gname'>;
  dirMode: number;
  execMode: number;
  fileMode: number;
} {
  const [dirMode, execMode, fileMode] = opts.groupWritable ? [0o775, 0o775, 0o664] : [0o755, 0o755, 0o644];
  return {
    base: { uid: opts.uid ?? 0, gid: opts.gid ?? 0, mtime: opts.mtime ?? DEFAULT_MTIME, uname: '', gname: '' },
    dirMode,
    execMode,
    fileMode,
  };
}

/** The archive is yielded in chunks of this size (the last one shorter). */
const CHUNK = 1024 * 1024;
/** Files up to this size are read straight into the chunk; larger ones a chunk at a time. */
const SMALL_FILE = CHUNK;

/** An error for `full`, which changed size since it was listed. */
function changedSize(full: string): Error {
  return new Error(`${full} changed size while it was being archived`);
}

/** Non-blocking, so a fifo put where a file was listed cannot hang the walk. */
const OPEN_ENTRY = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** An error for `full`, which is no longer the kind of entry it was listed as. */
function changedType(full: string): Error {
  return new Error(`${full} changed while it was being archived`);
}

/**
 * `full` opened for reading without following a link at its last step, and
 * its status: a link or a socket put where a file was listed fails the open
 * (ELOOP, ENXIO), so the archive never holds bytes from outside the tree.
 * An empty file this process may not read has nothing to read: it comes
 * back with no descriptor (-1) and is archived all the same.
 */
function openEntry(full: string): { fd: number; st: Stats } {
  try {
    const fd = openSync(full, OPEN_ENTRY);
    return { fd, st: fstatSync(fd) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENXIO') throw changedType(full);
    if (code === 'EACCES') {
      const st = lstatSync(full);
      if (st.isFile() && st.size === 0) return { fd: -1, st };
    }
    throw err;
  }
}

/**
 * Fills fixed-size chunks: headers are copied in and small files are read
 * straight into them, so a tree of thousands of small files costs one
 * allocation per chunk rather than one per file and per header. Also used by
 * writers that feed entries from elsewhere (image/slug-layers.ts), with
 * their own chunk size.
 */
export class ChunkFiller {
  /** Buffers the caller is done with (reuse mode only). */
  private readonly free: Buffer[] = [];
  private chunk: Buffer;
  private used = 0;
  /** Full chunks, ready to be yielded. */
  readonly ready: Buffer[] = [];

  constructor(
    private readonly reuse = false,
    private readonly size = CHUNK,
  ) {
    this.chunk = this.fresh();
  }

  private fresh(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  /**
   * Yields what is ready. In reuse mode a chunk's buffer is filled again once
   * the caller has asked for the next one.
   */
  *drain(): Generator<Buffer> {
    for (const chunk of this.ready.splice(0)) {
      yield chunk;
      if (this.reuse) this.free.push(Buffer.from(chunk.buffer, chunk.byteOffset, this.size));
    }
  }

  /** A whole open file of more than a chunk, a chunk at a time (into reused buffers in reuse mode). */
  *readLarge(fd: number, full: string, bytes: number): Generator<Buffer> {
    for (let got = 0; got < bytes; ) {
      const buf = this.fresh();
      const n = readSync(fd, buf, 0, Math.min(this.size, bytes - got), null);
      if (n === 0) throw changedSize(full);
      got += n;
      yield buf.subarray(0, n);
      if (this.reuse) this.free.push(buf);
    }
  }

  append(bytes: Buffer): void {
    let from = 0;
    while (from < bytes.length) {
      const n = bytes.copy(this.chunk, this.used, from);
      from += n;
      this.used += n;
      if (this.used === this.size) this.flush();
    }
  }

  /** Reads the whole of an open file of `bytes` bytes (at most a chunk) into the chunk. */
  appendFile(fd: number, full: string, bytes: number): void {
    if (bytes === 0) return;
    if (this.used + bytes > this.size) this.flush();
    for (let got = 0; got < bytes; ) {
      const n = readSync(fd, this.chunk, this.used + got, bytes - got, null);
      if (n === 0) throw changedSize(full);
      got += n;
    }
    this.used += bytes;
    if (this.used === this.size) this.flush();
  }

  /** Moves what is filled so far to `ready` (a partial chunk only before a large file or at the end). */
  flush(): void {
    if (this.used === 0) return;
    this.ready.push(this.used === this.size ? this.chunk : this.chunk.subarray(0, this.used));
    this.chunk = this.fresh();
    this.used = 0;
  }
}

/**
 * Yields the archive as buffers of 1 MiB, reading each file once as it
 * goes, so memory stays flat whatever the tree's size.
 *
 * Metadata calls and small reads are synchronous on purpose, and the walk is
 * one loop rather than nested generators: a slug is mostly thousands of small
 * files, and a thread-pool round trip or a generator hop per file costs more
 * than the file, while the pool is busy deflating (docs/BENCHMARKS.md, P1).
 */
export async function* packTree(root: string, opts: PackOptions = {}): AsyncGenerator<Buffer> {
  const prefix = opts.prefix ?? './';
  const { base, dirMode, execMode, fileMode } = entryFields(opts);
  const out = new ChunkFiller(opts.reuse);
  const encoder = new HeaderEncoder(base);
  const header = (data: EntryData) => {
    for (const block of encoder.blocks(data)) out.append(block);
  };

  header({ path: prefix, type: 'Directory', mode: dirMode, size: 0 });
  // Depth-first in byte order: each level is a sorted list of entries and where we are in it.
  const stack: Array<{ rel: string; entries: Dirent[]; next: number }> = [{ rel: '', entries: sortedEntries(root), next: 0 }];
  while (stack.length > 0) {
    const level = stack[stack.length - 1];
    if (level.next === level.entries.length) {
      stack.pop();
      continue;
    }
    const entry = level.entries[level.next++];
    const rel = level.rel ? `${level.rel}/${entry.name}` : entry.name;
    if (opts.exclude?.(rel)) continue;
    const full = `${root}/${rel}`;
    const entryPath = prefix + rel;
    // The listing's type spares a stat per directory and link; a file is
    // opened without following a link, and its own status decides.
    if (entry.isDirectory()) {
      opts.onEntry?.(rel, 0);
      header({ path: entryPath + '/', type: 'Directory', mode: dirMode, size: 0 });
      stack.push({ rel, entries: sortedEntries(full), next: 0 });
    } else if (entry.isSymbolicLink()) {
      opts.onEntry?.(rel, 0);
      header({ path: entryPath, type: 'SymbolicLink', mode: 0o777, size: 0, linkpath: readlinkSync(full) });
    } else if (entry.isFile()) {
      const { fd, st } = openEntry(full);
      try {
        if (!st.isFile()) throw changedType(full);
        opts.onEntry?.(rel, st.size);
        header({ path: entryPath, type: 'File', mode: st.mode & 0o111 ? execMode : fileMode, size: st.size });
        if (st.size <= SMALL_FILE) {
          out.appendFile(fd, full, st.size);
        } else {
          out.flush();
          yield* out.drain();
          yield* out.readLarge(fd, full, st.size);
        }
      } finally {
        if (fd >= 0) closeSync(fd);
      }
      const pad = (BLOCK - (st.size % BLOCK)) % BLOCK;
      if (pad) out.append(ZERO_BLOCK.subarray(0, pad));
    }
    // Sockets, fifos and devices have no place in a slug: left out.
    if (out.ready.length > 0) yield* out.drain();
  }
  if (opts.end !== false) {
    out.append(ZERO_BLOCK);
    out.append(ZERO_BLOCK);
  }
  out.flush();
  yield* out.drain();
}

/** A directory's entries in byte order of their names, the same on every machine and locale. */
function sortedEntries(dir: string): Dirent[] {
  return readdirSync(dir, { withFileTypes: true })
    .map((entry) => ({ entry, key: Buffer.from(entry.name) }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map((e) => e.entry);
}
