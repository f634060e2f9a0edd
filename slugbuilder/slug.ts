/**
 * The slug: a deterministic gzip tar of the build dir, entries `./...`,
 * `.git` left out. One pipeline (tar -> gzip -> file, hashed on the way, so
 * nothing is read twice) makes both the slug and the image layer
 * (image/layer.ts); one pinned gzip level keeps both byte-stable.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode, errorMessage, UserError } from '../shared/errors.js';
import { createParallelGzip } from '../shared/pgzip.js';
import { type PackOptions, packTree } from '../shared/tar/pack.js';
import { largestEntries, overLimitMessage } from './slug-size.js';
import { APP_DIR_MARKER } from './source/app-dir.js';

/** Pinned so the same zlib always gives the same bytes and digests. */
export const GZIP_LEVEL = 6;

export interface SlugInfo {
  path: string;
  size: number;
  sha256: string;
}

export interface SlugOptions {
  mtime: Date;
  /** Hard limit on the compressed size. */
  maxBytes: number;
}

/**
 * Counts and hashes the bytes passing through. Past `maxBytes` it passes
 * nothing on and only counts, so the whole size can be told without writing it.
 */
class Meter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {
    super();
  }
  get over(): boolean {
    return this.bytes > this.maxBytes;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.over) {
      done();
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
}

export function createSlugCompressor(): Transform {
  // Blocks deflated in parallel on the zlib thread pool (pigz-style), joined
  // into one standard gzip member. A pinned level and block size and a fixed
  // header (mtime 0, OS 3) keep the bytes stable from run to run.
  return createParallelGzip({ level: GZIP_LEVEL });
}

export interface CompressOptions {
  pack: PackOptions;
  /** For messages: "the slug", "the image layer". */
  what: string;
  /** Also hash the uncompressed tar (an image layer's diff_id). */
  hashTar?: boolean;
  /** Hard limit on the compressed size, and what to say when it is passed (given the whole compressed size). */
  limit?: { maxBytes: number; error: (size: number) => Promise<Error> };
}

export interface CompressedTree {
  /** Compressed size in bytes. */
  size: number;
  /** sha256 hex of the gzip bytes. */
  sha256: string;
  /** sha256 hex of the tar, with hashTar. */
  tarSha256?: string;
}

/** What a built app dir holds that is no part of the app: its git dir and the build's claim on the dir. */
export function notInApp(rel: string): boolean {
  return rel === '.git' || rel === APP_DIR_MARKER;
}

/** Tar `dir`, gzip it into `file`; a failure removes `file`. */
export async function compressTree(dir: string, file: string, opts: CompressOptions): Promise<CompressedTree> {
  const tarMeter = opts.hashTar ? new Meter() : undefined;
  const gzMeter = new Meter(opts.limit?.maxBytes);
  const stages: NodeJS.ReadWriteStream[] = [...(tarMeter ? [tarMeter] : []), createSlugCompressor(), gzMeter];
  try {
    await pipeline([Readable.from(packTree(dir, opts.pack), { objectMode: false }), ...stages, createWriteStream(file, { mode: 0o644 })]);
  } catch (err) {
    await rm(file, { force: true });
    if (err instanceof UserError) throw err;
    const code = errnoCode(err);
    if (code === 'ENOSPC') throw new UserError(`no space left on the device while writing ${opts.what} to ${file}: free some disk space`);
    if (code === 'EACCES' || code === 'EROFS') throw new UserError(`cannot write ${opts.what} to ${file}: ${code}; choose a writable path`);
    if (code) throw new UserError(`writing ${opts.what} failed: ${errorMessage(err)}`);
    throw err;
  }
  if (opts.limit && gzMeter.over) {
    await rm(file, { force: true });
    throw await opts.limit.error(gzMeter.bytes);
  }
  return { size: gzMeter.bytes, sha256: gzMeter.hash.digest('hex'), tarSha256: tarMeter?.hash.digest('hex') };
}

export async function writeSlug(buildDir: string, file: string, opts: SlugOptions): Promise<SlugInfo> {
  const limit = {
    maxBytes: opts.maxBytes,
    error: async (size: number) => {
      const largest = await largestEntries(buildDir, (rel) => !notInApp(rel));
      return new UserError(`${overLimitMessage(size, opts.maxBytes, largest)}: remove files with .slugignore or raise --max-slug-size`);
    },
  };
  const out = await compressTree(buildDir, file, { pack: { prefix: './', mtime: opts.mtime, exclude: notInApp }, what: 'the slug', limit });
  return { path: file, size: out.size, sha256: out.sha256 };
}
