/**
 * The slug: a deterministic gzip tar of the build dir, entries `./...`,
 * `.git` left out. Written to a temp file and hashed on the way, so nothing
 * is read twice and a failure never leaves a partial artifact behind.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError, errnoCode } from '../shared/errors.js';
import { createParallelGzip } from '../shared/pgzip.js';
import { formatSize } from '../shared/tar/extract.js';
import { packTree } from '../shared/tar/pack.js';

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

/** Counts and hashes the bytes that reach the file, and stops at the size limit. */
class Meter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly maxBytes: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      done(new UserError(`slug is larger than the ${formatSize(this.maxBytes)} limit: remove files with .slugignore or raise --max-slug-size`));
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

export async function writeSlug(buildDir: string, file: string, opts: SlugOptions): Promise<SlugInfo> {
  const meter = new Meter(opts.maxBytes);
  const tar = Readable.from(packTree(buildDir, { prefix: './', mtime: opts.mtime, exclude: (rel) => rel === '.git' }), { objectMode: false });
  try {
    await pipeline(tar, createSlugCompressor(), meter, createWriteStream(file, { mode: 0o644 }));
  } catch (err) {
    await rm(file, { force: true });
    if (err instanceof UserError) throw err;
    if (errnoCode(err) === 'ENOSPC') throw new UserError(`no space left on the device while writing the slug to ${file}`);
    throw err;
  }
  return { path: file, size: meter.bytes, sha256: meter.hash.digest('hex') };
}
