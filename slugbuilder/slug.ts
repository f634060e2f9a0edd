/**
 * Tar a tree, gzip it, hash it: one pipeline (tar -> gzip -> file, hashed on
 * the way, so nothing is read twice) for the image layers (image/layer.ts)
 * and the build cache; the slug is written in parts by slug-parts.ts with the
 * same compressor. One pinned gzip level keeps them all byte-stable.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode, errorMessage, UserError } from '../shared/errors.js';
import { createParallelGzip } from '../shared/pgzip.js';
import { type PackOptions, packTree } from '../shared/tar/pack.js';
import { HashingStream } from './image/blobs.js';
import { APP_DIR_MARKER } from './source/app-dir.js';

/** Pinned so the same zlib always gives the same bytes and digests. */
export const GZIP_LEVEL = 6;

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
  const tarMeter = opts.hashTar ? new HashingStream() : undefined;
  const gzMeter = new HashingStream();
  const stages: NodeJS.ReadWriteStream[] = [...(tarMeter ? [tarMeter] : []), createSlugCompressor(), gzMeter];
  try {
    await pipeline([Readable.from(packTree(dir, opts.pack), { objectMode: false }), ...stages, createWriteStream(file, { mode: 0o644 })]);
  } catch (err) {
    await rm(file, { force: true });
    throw writeFailure(err, opts.what, file);
  }
  const hex = (h: HashingStream) => h.digest().slice('sha256:'.length);
  return { size: gzMeter.bytes, sha256: hex(gzMeter), tarSha256: tarMeter && hex(tarMeter) };
}

/** What to throw when writing `what` to `file` failed: one line for what a user can fix, else the error itself. */
export function writeFailure(err: unknown, what: string, file: string): unknown {
  if (err instanceof UserError) return err;
  const code = errnoCode(err);
  if (code === 'ENOSPC') return new UserError(`no space left on the device while writing ${what} to ${file}: free some disk space`);
  if (code === 'EACCES' || code === 'EROFS') return new UserError(`cannot write ${what} to ${file}: ${code}; choose a writable path`);
  if (code) return new UserError(`writing ${what} failed: ${errorMessage(err)}`);
  return err;
}
