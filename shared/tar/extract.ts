/**
 * Safe extraction of untrusted archives (source tarballs, slugs): node-tar's
 * Parser reads the tar, DiskWriter (disk-writer.ts) writes each entry inside
 * the target and never through a link. This module decides what an archive
 * may hold:
 *  - stop at the first unsafe or broken entry (one error line, nothing used);
 *  - skip device, fifo and unknown entries (DiskWriter never restores
 *    owners and strips setuid/setgid/sticky bits);
 *  - cap the unpacked bytes (hardlinks count as the bytes they will cost),
 *    the raw tar stream (a tiny gzip can expand to terabytes, and node-tar
 *    would buffer whatever follows the end marker) and the entry count;
 *  - refuse archives without an end-of-archive marker (a cut-off download).
 */
import { createReadStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Header, Parser, Pax, type ReadEntry } from 'tar';
import { errnoCode, errorMessage, UserError } from '../errors.js';
import { formatSize } from '../units.js';
import { DiskWriter, type PlannedEntry, printable } from './disk-writer.js';

export interface ExtractLimits {
  /** Largest total of file sizes, in bytes. */
  maxBytes?: number;
  /** Largest number of entries. */
  maxFiles?: number;
}

export interface ExtractResult {
  files: number;
  bytes: number;
  /** The commit `git archive` records in its pax global header, when the archive has one. */
  commit?: string;
}

/**
 * Takes an entry the extractor checked and counted instead of writing it
 * (image/slug-layers.ts streams a slug's dependency trees into image layers):
 * true when it took the entry (it then consumes the body). Throwing stops the
 * extraction like any unsafe entry.
 */
export type DivertEntry = (entry: ReadEntry, planned: PlannedEntry, fail: (message: string) => void) => boolean;

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/**
 * Peek at the first bytes so an empty input, or one that is neither gzip nor
 * tar, fails with one clear line before anything is written.
 */
async function sniff(input: Readable, what: string): Promise<{ stream: Readable; gzip: boolean }> {
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
  if (!gzip && isZeroBlock(first)) throw new UserError(`${what} holds no entries: expected at least one file`);
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
  return { stream: Readable.from(rest(), { objectMode: false }), gzip };
}

/** A pre-POSIX tar header: its checksum field matches its bytes. */
function looksLikeV7Header(block: Buffer): boolean {
  const stored = parseInt(
    block
      .subarray(148, 156)
      .toString('latin1')
      .replace(/[\0 ]+$/, '')
      .trim(),
    8,
  );
  if (!Number.isFinite(stored)) return false;
  let sum = 8 * 0x20;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += block[i];
  return sum === stored;
}

/**
 * Extract `input` (tar or tar.gz, sniffed by its bytes) into `cwd`, which must
 * exist. Throws a UserError naming `what` when the archive is unusable or
 * unsafe; the caller removes `cwd` then, so nothing half-unpacked is used.
 *
 * The stream runs: sniff -> gunzip (ours, so we can count what it yields) ->
 * ArchiveGuard (byte budget, end-of-archive tracking) -> node-tar's Parser,
 * whose entries DiskWriter (disk-writer.ts) puts on disk synchronously: when
 * we stop at a bad entry nothing is still in flight, so the caller can remove
 * the target right away and no late write lands after it.
 */
export async function extractArchive(
  input: Readable,
  cwd: string,
  what: string,
  limits: ExtractLimits = {},
  divert?: DivertEntry,
): Promise<ExtractResult> {
  const { stream: source, gzip } = await sniff(input, what);
  const result: ExtractResult = { files: 0, bytes: 0 };
  const writer = new DiskWriter(cwd, what);
  let entries = 0;
  let fatal: string | undefined;
  const fail = (message: string) => {
    if (fatal) return;
    fatal = message;
    writer.abort();
    parser.abort(new Error(message));
  };

  const onEntry = (entry: ReadEntry) => {
    if (fatal) return void entry.resume();
    entries += 1;
    if (limits.maxFiles !== undefined && entries > limits.maxFiles) {
      fail(`${what} has more than ${limits.maxFiles} entries: remove files or raise the limit`);
      return void entry.resume();
    }
    // Devices, fifos and unknown types never reach the disk.
    if (!ALLOWED_TYPES.has(entry.type)) return void entry.resume();
    try {
      const planned = writer.plan(entry);
      result.files += 1;
      result.bytes += planned.bytes;
      if (limits.maxBytes !== undefined && result.bytes > limits.maxBytes) throw new UserError(tooBig(what, limits.maxBytes));
      if (divert?.(entry, planned, fail)) return;
      writer.write(entry, planned, fail);
    } catch (err) {
      fail(err instanceof UserError ? err.message : describeError(what, err));
      entry.resume();
    }
  };

  const parser = new Parser({
    onReadEntry: onEntry,
    onwarn: (code: string, message: string | Error, data: unknown) => {
      if (code === 'TAR_ENTRY_INFO') return;
      fail(describeProblem(what, code, String(message instanceof Error ? message.message : message), data));
    },
  });

  let sawEnd = false;
  parser.on('nullBlock', () => (sawEnd = true));
  parser.on('eof', () => (sawEnd = true));
  const guard = new ArchiveGuard({
    what,
    checkTarHeader: gzip,
    budget: () => (limits.maxBytes === undefined ? Infinity : limits.maxBytes + HEADER_SLACK + PER_ENTRY_SLACK * entries),
    tooBig: () => tooBig(what, limits.maxBytes ?? 0),
    afterEnd: () => sawEnd,
  });

  const sink = parser as unknown as NodeJS.WritableStream;
  const commitReader = new GitArchiveCommit();
  try {
    // 1 MiB output chunks: a sixteenth of the thread-pool round trips of the
    // default 64 KiB, each one a turn of the main thread that gunzip waits for.
    if (gzip) await pipeline(source, createGunzip({ chunkSize: ARCHIVE_CHUNK }), new HandOff(), guard, commitReader, sink);
    else await pipeline(source, guard, commitReader, sink);
  } catch (err) {
    if (!fatal) fatal = err instanceof UserError ? err.message : describeError(what, err);
  }
  if (fatal) {
    writer.abort();
    throw new UserError(fatal);
  }
  if (!sawEnd) throw new UserError(`${what} is truncated: it ends without the end-of-archive marker`);
  if (entries === 0) throw new UserError(`${what} holds no entries: expected at least one file`);
  writer.finish();
  if (commitReader.commit) result.commit = commitReader.commit;
  return result;
}

/** gunzip's output chunk, and the read size for archive files (each read becomes one gunzip job). */
export const ARCHIVE_CHUNK = 1024 * 1024;

/** An archive file opened for extractArchive, read in ARCHIVE_CHUNK pieces. */
export function openArchiveFile(file: string): Readable {
  return createReadStream(file, { highWaterMark: ARCHIVE_CHUNK });
}

/**
 * Passes chunks on in a later turn of the event loop. Without it, gunzip's
 * callback pushes each chunk straight into the synchronous file writes and
 * only then starts inflating the next one: the thread pool and this thread
 * take turns. With it, the next chunk inflates while this one is written.
 */
class HandOff extends Transform {
  constructor() {
    // Room for a few chunks, so gunzip can run ahead while files are written.
    super({ writableHighWaterMark: 4 * ARCHIVE_CHUNK });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    setImmediate(done, null, chunk);
  }
}

/**
 * Reads the commit id `git archive` writes into a leading pax global header
 * (`comment=<sha>`), so `git archive HEAD | slugbuilder` knows its
 * SOURCE_VERSION without being told. Passes every byte through unchanged.
 */
class GitArchiveCommit extends Transform {
  commit?: string;
  private head: Buffer[] | undefined = [];
  private headLength = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.head) {
      this.head.push(chunk);
      this.headLength += chunk.length;
      // A header block plus a one-block body holds git's record (52 bytes).
      if (this.headLength >= 1024) this.read1024();
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.head) this.read1024();
    done();
  }

  private read1024(): void {
    const block = Buffer.concat(this.head ?? []);
    this.head = undefined;
    // Only a pax global header ('g') can carry it; anything else is node-tar's to judge.
    if (block.length < 1024 || block[156] !== 0x67) return;
    try {
      const header = new Header(block.subarray(0, 512));
      if (!header.cksumValid || header.type !== 'GlobalExtendedHeader' || !header.size || header.size > 512) return;
      const comment = Pax.parse(block.subarray(512, 512 + header.size).toString('utf8'), undefined, true).comment;
      if (comment && /^([0-9a-f]{40}|[0-9a-f]{64})$/.test(comment)) this.commit = comment;
    } catch {
      // A malformed header carries no commit; the extraction reports what is wrong with it.
    }
  }
}

/** Budget on the unpacked tar stream beyond the file bytes: headers, PAX records, padding. */
const HEADER_SLACK = 1024 * 1024;
const PER_ENTRY_SLACK = 8 * 1024;

function tooBig(what: string, maxBytes: number): string {
  return `${what} expands to more than ${formatSize(maxBytes)}: make it smaller or raise the limit`;
}

/**
 * Counts the uncompressed tar bytes (a gzip bomb fails here, before node-tar
 * buffers it), drops whatever follows the end-of-archive marker (node-tar
 * would keep it in memory), and, behind a gzip layer, checks that a tar
 * header comes out.
 */
class ArchiveGuard extends Transform {
  private bytes = 0;
  private head: Buffer[] | undefined;
  private headLength = 0;
  constructor(
    private readonly opts: {
      what: string;
      checkTarHeader: boolean;
      budget: () => number;
      tooBig: () => string;
      afterEnd: () => boolean;
    },
  ) {
    super();
    this.head = opts.checkTarHeader ? [] : undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.opts.budget()) {
      done(new UserError(this.opts.tooBig()));
      return;
    }
    if (this.opts.afterEnd()) {
      done();
      return;
    }
    if (this.head) {
      // Hold bytes until a whole header block is here, then judge it once.
      this.head.push(chunk);
      this.headLength += chunk.length;
      if (this.headLength < 512) {
        done();
        return;
      }
      const first = Buffer.concat(this.head);
      this.head = undefined;
      const problem = tarHeaderProblem(first, this.opts.what);
      done(problem ? new UserError(problem) : null, problem ? undefined : first);
      return;
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.head) {
      const first = Buffer.concat(this.head);
      this.head = undefined;
      if (first.length === 0) {
        done(new UserError(`${this.opts.what} is empty once decompressed: expected a tar archive inside the gzip`));
        return;
      }
      const problem = tarHeaderProblem(first, this.opts.what);
      if (problem) {
        done(new UserError(problem));
        return;
      }
      this.push(first);
    }
    done();
  }
}

function tarHeaderProblem(first: Buffer, what: string): string | undefined {
  if (first[0] === 0x1f && first[1] === 0x8b)
    return `${what} is not a tar archive inside its gzip (it is compressed twice): send a plain .tar.gz`;
  if (isTarHeader(first)) return undefined;
  if (isZeroBlock(first)) return `${what} holds no entries: expected at least one file`;
  return `${what} is not a tar or tar.gz archive: its gzip holds something else`;
}

function isTarHeader(block: Buffer): boolean {
  const ustar = block.length >= 263 && block.subarray(257, 262).toString('latin1') === 'ustar';
  return ustar || (block.length >= 512 && looksLikeV7Header(block));
}

function isZeroBlock(block: Buffer): boolean {
  return block.length >= 512 && block.subarray(0, 512).every((b) => b === 0);
}

/**
 * What we tell the user about one of node-tar's Parser warnings, all of which
 * stop the unpack. (File-system errors are DiskWriter's to describe.)
 */
function describeProblem(what: string, code: string, message: string, data: unknown): string {
  const info = (data ?? {}) as { entry?: { path?: string }; path?: string; header?: { path?: string } };
  const entryPath = info.entry?.path ?? info.path ?? info.header?.path;
  const named = entryPath === undefined ? '' : ` "${printable(entryPath)}"`;
  // node's own messages can span lines and quote the attacker's bytes: keep one short, printable line.
  message = printable(
    String(message)
      .split('\n')[0]
      .replace(/^TAR_[A-Z_]+: /, ''),
    160,
  );
  if (code === 'TAR_BAD_ARCHIVE' && /truncated/i.test(message)) return `${what} is truncated: ${message}`;
  if (code === 'TAR_BAD_ARCHIVE') return `${what} is not a usable tar archive: ${message}`;
  if (code === 'TAR_ENTRY_INVALID') return `${what} is damaged: ${message}${named}`;
  return `${what} is damaged: ${message}`;
}

function describeError(what: string, err: unknown): string {
  const code = errnoCode(err);
  const tarCode = err && typeof err === 'object' && 'tarCode' in err ? String((err as { tarCode: unknown }).tarCode) : undefined;
  const message = printable(errorMessage(err).split('\n')[0], 160);
  if (code === 'Z_BUF_ERROR') return `${what} is truncated: the gzip stream ends early`;
  if (code?.startsWith('Z_')) return `${what} is damaged: ${message}`;
  if (tarCode) return describeProblem(what, tarCode, message, err);
  return `${what} is damaged: ${message}`;
}
