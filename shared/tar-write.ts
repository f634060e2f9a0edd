/**
 * Deterministic tar of a directory tree. Headers come from node-tar's Header
 * and Pax classes; walking and ordering are ours, because node-tar has no sort
 * option and its portable mode drops directory mtimes. Every header field is
 * pinned: sorted entries, one mtime, fixed owner, no names, normalised modes.
 */
import { createReadStream, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { Header, Pax, type HeaderData } from 'tar';

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
}

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** Byte-wise name order, identical on every machine and locale. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function headerBlocks(data: HeaderData): Buffer[] {
  const header = new Header(data);
  const needPax = header.encode();
  const blocks: Buffer[] = [];
  if (needPax) {
    blocks.push(new Pax({ path: data.path, linkpath: data.linkpath, size: data.size, mtime: data.mtime, uid: data.uid, gid: data.gid }).encode());
  }
  blocks.push(header.block as Buffer);
  return blocks;
}

/** Small pieces (headers, small files) are joined into chunks of about this size. */
const CHUNK = 256 * 1024;
/** Files up to this size are read in one call; larger ones are streamed. */
const SMALL_FILE = 1024 * 1024;

/**
 * Yields the archive as buffers of about 256 KB, reading each file once as it
 * goes, so memory stays flat whatever the tree's size. Joining the 512-byte
 * headers and small files keeps per-chunk stream overhead off the hot path.
 */
export async function* packTree(root: string, opts: PackOptions = {}): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of tarPieces(root, opts)) {
    if (piece.length >= CHUNK) {
      if (pendingBytes) yield Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      yield piece;
      continue;
    }
    pending.push(piece);
    pendingBytes += piece.length;
    if (pendingBytes >= CHUNK) {
      yield Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pendingBytes) yield Buffer.concat(pending, pendingBytes);
}

async function* tarPieces(root: string, opts: PackOptions): AsyncGenerator<Buffer> {
  const prefix = opts.prefix ?? './';
  const base = { uid: opts.uid ?? 0, gid: opts.gid ?? 0, mtime: opts.mtime ?? DEFAULT_MTIME, uname: '', gname: '' };
  const [dirMode, execMode, fileMode] = opts.groupWritable ? [0o775, 0o775, 0o664] : [0o755, 0o755, 0o644];

  yield* headerBlocks({ ...base, path: prefix, type: 'Directory', mode: dirMode, size: 0 });

  // Metadata calls and small reads are synchronous on purpose: a slug is
  // mostly thousands of small files, and a thread-pool round trip per call
  // costs more than the call, while the pool is busy deflating (measured in
  // docs/BENCHMARKS.md, P1). Large files still stream.
  async function* walk(rel: string): AsyncGenerator<Buffer> {
    const dir = path.join(root, rel);
    const names = readdirSync(dir).sort(byteOrder);
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      if (opts.exclude?.(childRel)) continue;
      const full = path.join(root, childRel);
      const st = lstatSync(full);
      const entryPath = prefix + childRel;
      if (st.isDirectory()) {
        opts.onEntry?.(childRel, 0);
        yield* headerBlocks({ ...base, path: entryPath + '/', type: 'Directory', mode: dirMode, size: 0 });
        yield* walk(childRel);
      } else if (st.isSymbolicLink()) {
        opts.onEntry?.(childRel, 0);
        const target = readlinkSync(full);
        yield* headerBlocks({ ...base, path: entryPath, type: 'SymbolicLink', mode: 0o777, size: 0, linkpath: target });
      } else if (st.isFile()) {
        opts.onEntry?.(childRel, st.size);
        const mode = st.mode & 0o111 ? execMode : fileMode;
        yield* headerBlocks({ ...base, path: entryPath, type: 'File', mode, size: st.size });
        yield* fileBody(full, st.size);
      }
      // Sockets, fifos and devices have no place in a slug: left out.
    }
  }

  yield* walk('');
  yield ZERO_BLOCK;
  yield ZERO_BLOCK;
}

async function* fileBody(full: string, size: number): AsyncGenerator<Buffer> {
  let seen = 0;
  if (size > 0 && size <= SMALL_FILE) {
    const body = readFileSync(full);
    seen = body.length;
    yield body;
  } else if (size > 0) {
    for await (const chunk of createReadStream(full, { highWaterMark: 256 * 1024 })) {
      const buf = chunk as Buffer;
      seen += buf.length;
      if (seen > size) throw new Error(`${full} grew while it was being archived`);
      yield buf;
    }
  }
  if (seen !== size) throw new Error(`${full} changed size while it was being archived`);
  const pad = (BLOCK - (size % BLOCK)) % BLOCK;
  if (pad) yield ZERO_BLOCK.subarray(0, pad);
}
