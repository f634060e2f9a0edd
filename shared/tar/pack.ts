/**
 * Deterministic tar of a directory tree. Headers come from node-tar's Header
 * and Pax classes; walking and ordering are ours, because node-tar has no sort
 * option and its portable mode drops directory mtimes. Every header field is
 * pinned: sorted entries, one mtime, fixed owner, no names, normalised modes.
 */
import { closeSync, createReadStream, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { Header, type HeaderData, Pax } from 'tar';

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

/** One entry's header blocks (a pax header first when a field does not fit ustar), as packTree writes them. */
export function headerBlocks(data: HeaderData): Buffer[] {
  const header = new Header(data);
  const needPax = header.encode();
  const blocks: Buffer[] = [];
  if (needPax) {
    blocks.push(
      new Pax({ path: data.path, linkpath: data.linkpath, size: data.size, mtime: data.mtime, uid: data.uid, gid: data.gid }).encode(),
    );
  }
  blocks.push(header.block as Buffer);
  return blocks;
}

/** The archive is yielded in chunks of this size (the last one shorter). */
const CHUNK = 256 * 1024;
/** Files up to this size are read straight into the chunk; larger ones are streamed. */
const SMALL_FILE = CHUNK;

/** An error for `full`, which changed size since it was listed. */
function changedSize(full: string): Error {
  return new Error(`${full} changed size while it was being archived`);
}

/** `full` opened for reading, refused unless it still has exactly `size` bytes. */
function openSized(full: string, size: number): number {
  const fd = openSync(full, 'r');
  if (fstatSync(fd).size !== size) {
    closeSync(fd);
    throw changedSize(full);
  }
  return fd;
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

  /** A whole file of more than a chunk, read a chunk at a time into reused buffers (reuse mode). */
  *readLarge(full: string, bytes: number): Generator<Buffer> {
    const fd = openSized(full, bytes);
    const buf = this.fresh();
    try {
      for (let got = 0; got < bytes; ) {
        const n = readSync(fd, buf, 0, Math.min(this.size, bytes - got), null);
        if (n === 0) throw changedSize(full);
        got += n;
        yield buf.subarray(0, n);
      }
    } finally {
      this.free.push(buf);
      closeSync(fd);
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

  /** Reads a whole file of `bytes` bytes (at most a chunk) into the chunk. */
  appendFile(full: string, bytes: number): void {
    if (bytes === 0) return; // an empty file is its header alone: nothing to open
    if (this.used + bytes > this.size) this.flush();
    const fd = openSized(full, bytes);
    try {
      for (let got = 0; got < bytes; ) {
        const n = readSync(fd, this.chunk, this.used + got, bytes - got, null);
        if (n === 0) throw changedSize(full);
        got += n;
      }
    } finally {
      closeSync(fd);
    }
    this.used += bytes;
    if (this.used === this.size) this.flush();
  }

  /** Moves what is filled so far to `ready` (a partial chunk only before a streamed file or at the end). */
  flush(): void {
    if (this.used === 0) return;
    this.ready.push(this.used === this.size ? this.chunk : this.chunk.subarray(0, this.used));
    this.chunk = this.fresh();
    this.used = 0;
  }
}

/**
 * Yields the archive as buffers of 256 KB, reading each file once as it
 * goes, so memory stays flat whatever the tree's size.
 *
 * Metadata calls and small reads are synchronous on purpose, and the walk is
 * one loop rather than nested generators: a slug is mostly thousands of small
 * files, and a thread-pool round trip or a generator hop per file costs more
 * than the file, while the pool is busy deflating (docs/BENCHMARKS.md, P1).
 * Large files still stream.
 */
export async function* packTree(root: string, opts: PackOptions = {}): AsyncGenerator<Buffer> {
  const prefix = opts.prefix ?? './';
  const { base, dirMode, execMode, fileMode } = entryFields(opts);
  const out = new ChunkFiller(opts.reuse);
  const header = (data: HeaderData) => {
    for (const block of headerBlocks({ ...base, ...data })) out.append(block);
  };

  header({ path: prefix, type: 'Directory', mode: dirMode, size: 0 });
  // Depth-first in byte order: each level is a sorted list of names and where we are in it.
  const stack: Array<{ rel: string; names: string[]; next: number }> = [{ rel: '', names: sortedNames(root), next: 0 }];
  while (stack.length > 0) {
    const level = stack[stack.length - 1];
    if (level.next === level.names.length) {
      stack.pop();
      continue;
    }
    const name = level.names[level.next++];
    const rel = level.rel ? `${level.rel}/${name}` : name;
    if (opts.exclude?.(rel)) continue;
    const full = `${root}/${rel}`;
    const st = lstatSync(full);
    const entryPath = prefix + rel;
    if (st.isDirectory()) {
      opts.onEntry?.(rel, 0);
      header({ path: entryPath + '/', type: 'Directory', mode: dirMode, size: 0 });
      stack.push({ rel, names: sortedNames(full), next: 0 });
    } else if (st.isSymbolicLink()) {
      opts.onEntry?.(rel, 0);
      header({ path: entryPath, type: 'SymbolicLink', mode: 0o777, size: 0, linkpath: readlinkSync(full) });
    } else if (st.isFile()) {
      opts.onEntry?.(rel, st.size);
      header({ path: entryPath, type: 'File', mode: st.mode & 0o111 ? execMode : fileMode, size: st.size });
      if (st.size <= SMALL_FILE) {
        out.appendFile(full, st.size);
      } else {
        out.flush();
        yield* out.drain();
        yield* opts.reuse ? out.readLarge(full, st.size) : streamFile(full, st.size);
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

/** A directory's names in byte order, the same on every machine and locale. */
function sortedNames(dir: string): string[] {
  return readdirSync(dir)
    .map((name) => ({ name, key: Buffer.from(name) }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map((e) => e.name);
}

async function* streamFile(full: string, size: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of createReadStream(full, { highWaterMark: CHUNK })) {
    const buf = chunk as Buffer;
    seen += buf.length;
    if (seen > size) throw new Error(`${full} grew while it was being archived`);
    yield buf;
  }
  if (seen !== size) throw changedSize(full);
}
