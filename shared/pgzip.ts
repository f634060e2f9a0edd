/**
 * Parallel gzip, the way pigz does it, inside the process.
 *
 * The input is cut into fixed-size blocks. Each block is deflated on its own
 * on Node's zlib thread pool (so several cores work at once), primed with the
 * previous 32 KiB of input as its dictionary so matches can still reach back
 * across the cut. Every block but the last ends with a sync flush, which
 * closes it on a byte boundary without marking the stream final; the last
 * block ends with Z_FINISH. Concatenated, the raw deflate bodies are one valid
 * deflate stream, framed as ONE standard gzip member: a fixed header, the
 * body, then the CRC32 and length of the whole input.
 *
 * Determinism: block boundaries depend only on the byte count (never on how
 * the input arrived in chunks or on thread timing), and the header is pinned,
 * so the same input, level and block size give the same bytes on every run
 * with the same Node (zlib) version. Concurrency only changes speed.
 *
 * Memory is bounded: at most `concurrency` blocks deflate at once and a
 * couple more wait (cut and ready, or done and waiting for their turn);
 * further input waits. Deflates share libuv's thread pool with file reads, so
 * by default they leave at least one pool thread free: a tar writer reading
 * thousands of small files would otherwise queue every open/read behind a
 * block's deflate and starve the compressor it feeds.
 */
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

export interface ParallelGzipOptions {
  /** gzip level 0-9; 6 is gzip's and zlib's default. */
  level?: number;
  /** Uncompressed bytes per independently deflated block (at least 32 KiB). */
  blockSize?: number;
  /** Most blocks deflating at once (default: the CPU count, leaving one thread-pool thread free). */
  concurrency?: number;
}

/** Deflate's window: the most a match can reach back, so the dictionary size. */
const WINDOW = 32 * 1024;
const EMPTY = Buffer.alloc(0);
/**
 * Each block but the first is primed with the 32 KiB before it, which deflate
 * must hash again: smaller blocks cost CPU, larger ones memory (figures in
 * docs/BENCHMARKS.md, "The parallel gzip").
 */
export const DEFAULT_BLOCK_SIZE = 512 * 1024;

/** Blocks cut ahead of the deflaters, so a freed thread never waits for input to be read. */
const READY_BLOCKS = 2;

/** OS byte 3 (Unix): what Node's own gzip writes, pinned so output is the same everywhere. */
const OS_UNIX = 3;

/** The gzip header: magic, deflate, no flags, mtime 0, XFL as zlib sets it for the level, OS. */
export function gzipHeader(level: number): Buffer {
  const xfl = level === 9 ? 2 : level < 2 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, OS_UNIX]);
}

/** One block's place in line: its output once deflated, or the error it hit. */
interface Job {
  input: Buffer;
  last: boolean;
  dictionary: Buffer | undefined;
  started: boolean;
  done: boolean;
  output?: Buffer;
  error?: Error;
}

class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly blockSize: number;
  private readonly concurrency: number;
  /** Input not yet cut into a block. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Last WINDOW bytes of the previous block: the next block's dictionary. */
  private dictionary: Buffer | undefined;
  private crc = 0;
  private totalLength = 0;
  /** Blocks in input order; the head is written out as soon as it is done. */
  private readonly jobs: Job[] = [];
  private running = 0;
  /** A write or flush waiting for the line of jobs to shrink. */
  private waiting: (() => void) | undefined;
  private failed = false;

  constructor(opts: ParallelGzipOptions) {
    super();
    this.level = opts.level ?? 6;
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.concurrency = opts.concurrency ?? defaultConcurrency();
    if (!Number.isInteger(this.level) || this.level < 0 || this.level > 9) {
      throw new RangeError(`gzip level must be an integer from 0 to 9, got ${opts.level}`);
    }
    if (!Number.isInteger(this.blockSize) || this.blockSize < WINDOW) {
      throw new RangeError(`gzip block size must be an integer of at least ${WINDOW} bytes, got ${opts.blockSize}`);
    }
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new RangeError(`gzip concurrency must be a positive integer, got ${opts.concurrency}`);
    }
    this.push(gzipHeader(this.level));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!Buffer.isBuffer(chunk)) chunk = Buffer.from(chunk as Uint8Array);
    if (chunk.length === 0) {
      callback();
      return;
    }
    this.crc = zlib.crc32(chunk, this.crc);
    this.totalLength += chunk.length;
    // A copy: blocks are cut from it and deflated after this write has called
    // back, when the writer may be filling the same buffer again.
    this.pending.push(Buffer.from(chunk));
    this.pendingLength += chunk.length;
    while (this.pendingLength >= this.blockSize) this.startBlock(this.takeBlock(), false);
    this.whenRoom(callback);
  }

  override _flush(callback: TransformCallback): void {
    // The rest (possibly empty) is the final block; Z_FINISH marks it last.
    this.startBlock(Buffer.concat(this.pending, this.pendingLength), true);
    this.pending = [];
    this.pendingLength = 0;
    const finish = (): void => {
      if (this.failed) return;
      if (this.jobs.length > 0) {
        this.waiting = finish;
        return;
      }
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.totalLength % 2 ** 32, 4);
      callback(null, trailer);
    };
    finish();
  }

  /** Cut exactly blockSize bytes off the front of the pending input. */
  private takeBlock(): Buffer {
    const all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLength);
    const block = all.subarray(0, this.blockSize);
    const rest = all.subarray(this.blockSize);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingLength = rest.length;
    return block;
  }

  private startBlock(block: Buffer, last: boolean): void {
    this.jobs.push({ input: block, last, dictionary: this.dictionary, started: false, done: false });
    // Keep a copy, not a view: the block's memory can then go once it is deflated.
    if (!last) this.dictionary = Buffer.from(block.subarray(block.length - WINDOW));
    this.startDeflates();
  }

  /** Start waiting blocks, oldest first, while fewer than `concurrency` are deflating. */
  private startDeflates(): void {
    for (const job of this.jobs) {
      if (this.running >= this.concurrency) return;
      if (job.started) continue;
      job.started = true;
      this.running += 1;
      this.deflate(job);
    }
  }

  private deflate(job: Job): void {
    const options: zlib.ZlibOptions = {
      level: this.level,
      finishFlush: job.last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
      // One output buffer big enough for the whole block keeps it to one
      // trip through the thread pool instead of one per 16 KiB of output.
      chunkSize: deflateBound(job.input.length),
    };
    if (job.dictionary) options.dictionary = job.dictionary;
    zlib.deflateRaw(job.input, options, (error, output) => {
      this.running -= 1;
      job.done = true;
      job.input = EMPTY;
      job.dictionary = undefined;
      if (error) job.error = error;
      else job.output = output;
      this.writeFinishedJobs();
      this.startDeflates();
    });
  }

  /** Push finished blocks in input order, then let waiting input in if there is room. */
  private writeFinishedJobs(): void {
    if (this.destroyed) return;
    while (this.jobs.length > 0 && this.jobs[0].done) {
      const job = this.jobs.shift()!;
      if (job.error) {
        this.failed = true;
        this.destroy(job.error);
        return;
      }
      if (job.output!.length > 0) this.push(job.output);
    }
    const waiting = this.waiting;
    if (waiting && this.jobs.length < this.maxJobs()) {
      this.waiting = undefined;
      waiting();
    }
  }

  private maxJobs(): number {
    return this.concurrency + READY_BLOCKS;
  }

  private whenRoom(callback: () => void): void {
    if (this.jobs.length < this.maxJobs()) callback();
    else this.waiting = callback;
  }
}

/** zlib's deflateBound for default settings, plus room for the sync-flush marker. */
function deflateBound(length: number): number {
  return Math.max(64, length + (length >>> 12) + (length >>> 14) + (length >>> 25) + 13 + 16);
}

/** One deflate per core, but never the whole thread pool (see the top of the file). */
function defaultConcurrency(): number {
  const poolSize = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(availableParallelism(), poolSize - 1));
}

/**
 * A Transform that gzips what is written to it, deflating blocks in parallel.
 * Use it wherever `zlib.createGzip()` would go, e.g. in `stream.pipeline`.
 */
export function createParallelGzip(opts: ParallelGzipOptions = {}): Transform {
  return new ParallelGzip(opts);
}
