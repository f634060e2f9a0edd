/**
 * Safe extraction of untrusted archives (source tarballs, slugs) with node-tar.
 * node-tar already refuses absolute paths, `..` and writing through symlinks;
 * on top of that we skip device and fifo entries, never restore owners, strip
 * setuid/setgid/sticky bits, and cap total bytes and entry count, because a
 * tiny gzip can expand to terabytes.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract, type ReadEntry } from 'tar';
import { UserError } from './errors.js';

export interface ExtractLimits {
  /** Largest total of file sizes, in bytes. */
  maxBytes?: number;
  /** Largest number of entries. */
  maxFiles?: number;
}

export interface ExtractResult {
  files: number;
  bytes: number;
}

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/** Warnings that mean the archive itself is unusable, not one bad entry. */
const FATAL_WARNINGS = new Set(['TAR_BAD_ARCHIVE', 'TAR_ABORT', 'Z_BUF_ERROR', 'Z_DATA_ERROR', 'ZLIB_ERROR', 'TAR_ENTRY_ERROR']);

export function formatSize(bytes: number): string {
  if (bytes >= 1024 * 1024 * 1024) return `${(bytes / 1024 ** 3).toFixed(1)}G`;
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 ** 2).toFixed(1)}M`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)}K`;
  return `${bytes}B`;
}

/**
 * Peek at the first bytes so an empty input, or one that is neither gzip nor
 * tar, fails with one clear line before anything is written.
 */
export async function sniffArchive(input: Readable, what: string): Promise<Readable> {
  const iterator = input[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let length = 0;
  let done = false;
  while (length < 512) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    head.push(chunk);
    length += chunk.length;
  }
  const first = Buffer.concat(head);
  if (first.length === 0) throw new UserError(`${what} is empty: expected a tar or tar.gz archive`);
  const gzip = first[0] === 0x1f && first[1] === 0x8b;
  const ustar = first.length >= 263 && first.subarray(257, 262).toString('latin1') === 'ustar';
  const oldTar = first.length >= 512 && looksLikeV7Header(first);
  if (!gzip && !ustar && !oldTar) throw new UserError(`${what} is not a tar or tar.gz archive`);

  async function* rest(): AsyncGenerator<Buffer> {
    yield first;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    }
  }
  return Readable.from(rest(), { objectMode: false });
}

/** A pre-POSIX tar header: its checksum field matches its bytes. */
function looksLikeV7Header(block: Buffer): boolean {
  const stored = parseInt(block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 8 * 0x20;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += block[i];
  return sum === stored;
}

/**
 * Extract `input` (tar or tar.gz, sniffed by its bytes) into `cwd`, which must
 * exist. Throws a UserError naming `what` when the archive is unusable.
 */
export async function extractArchive(input: Readable, cwd: string, what: string, limits: ExtractLimits = {}): Promise<ExtractResult> {
  const source = await sniffArchive(input, what);
  const result: ExtractResult = { files: 0, bytes: 0 };
  let fatal: string | undefined;

  const unpack = tarExtract({
    cwd,
    preservePaths: false,
    preserveOwner: false,
    noChmod: false,
    unlink: false,
    filter: (_path: string, entry: unknown) => {
      const e = entry as ReadEntry;
      if (!ALLOWED_TYPES.has(e.type)) return false;
      result.files += 1;
      result.bytes += e.size ?? 0;
      if (limits.maxFiles !== undefined && result.files > limits.maxFiles) {
        fatal ??= `${what} has more than ${limits.maxFiles} entries`;
        unpack.abort(new Error(fatal));
        return false;
      }
      if (limits.maxBytes !== undefined && result.bytes > limits.maxBytes) {
        fatal ??= `${what} expands to more than ${formatSize(limits.maxBytes)}`;
        unpack.abort(new Error(fatal));
        return false;
      }
      if (e.mode !== undefined) e.mode &= 0o777;
      return true;
    },
    onwarn: (code: string, message: string) => {
      if (FATAL_WARNINGS.has(code) || code.startsWith('Z_')) fatal ??= `${what} is damaged: ${message}`;
    },
  });

  try {
    await pipeline(source, unpack);
  } catch (err) {
    fatal ??= `${what} is damaged: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (fatal) throw new UserError(fatal);
  return result;
}
