/**
 * Tar a tree, gzip it, hash it: one pipeline (tar -> gzip -> file, hashed on
 * the way, so nothing is read twice) for the image layers (image/layer.ts)
 * and the build cache; the slug is written in parts by slug-parts.ts with the
 * same compressor. One pinned gzip level keeps them all byte-stable.
 * The compressor is libdeflate-gzip's processes where the tool is on PATH,
 * else Node's zlib (SLUGKIT_GZIP).
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode, errorMessage, UsageError, UserError } from '../shared/errors.js';
import { createLibdeflateGzip, findLibdeflateGzip, SEGMENT_SIZE, SMALL } from '../shared/libdeflate-gzip.js';
import { createParallelGzip, DEFAULT_BLOCK_SIZE } from '../shared/pgzip.js';
import { type PackOptions, packTree } from '../shared/tar/pack.js';
import { HashingStream } from './image/blobs.js';
import { APP_DIR_MARKER } from './source/app-dir.js';

/** Pinned so the same compressor always gives the same bytes and digests. */
export const GZIP_LEVEL = 6;

/** SLUGKIT_GZIP: which deflate makes the slug and the image layers. */
type GzipMode = 'auto' | 'zlib' | 'libdeflate';
const GZIP_MODES: readonly GzipMode[] = ['auto', 'zlib', 'libdeflate'];

type Compressor = { kind: 'zlib' } | { kind: 'libdeflate'; tool: string; version: string };
let compressor: Compressor | undefined;

/** libdeflate-gzip's version (`-V`: "gzip compression program v1.14"), or undefined when it does not run. */
function libdeflateVersion(tool: string): string | undefined {
  const run = spawnSync(tool, ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  return run.status === 0 ? /v(\d+(?:\.\d+)+)/.exec(run.stdout)?.[1] : undefined;
}

function chooseCompressor(mode: GzipMode): Compressor {
  if (mode === 'zlib') return { kind: 'zlib' };
  const tool = findLibdeflateGzip();
  const version = tool && libdeflateVersion(tool);
  if (tool && version) return { kind: 'libdeflate', tool, version };
  if (mode === 'libdeflate')
    throw new UserError(
      `SLUGKIT_GZIP=libdeflate: ${tool ? `${tool} does not run` : 'libdeflate-gzip is not on PATH'} (apt-get install libdeflate-tools), or use auto or zlib`,
    );
  return { kind: 'zlib' };
}

/**
 * SLUGKIT_GZIP (auto, the default: libdeflate-gzip where it is on PATH, else
 * Node's zlib), taken once; the CLI calls this first, so a bad value fails
 * before any work.
 */
export function configureGzip(value = process.env.SLUGKIT_GZIP): void {
  const mode = value || 'auto';
  if (!(GZIP_MODES as readonly string[]).includes(mode)) throw new UsageError(`SLUGKIT_GZIP "${mode}": use auto, zlib or libdeflate`);
  compressor = chooseCompressor(mode as GzipMode);
}

function currentCompressor(): Compressor {
  if (!compressor) configureGzip();
  return compressor as Compressor;
}

/** What decides the gzip bytes besides the tar, for keys of kept compressed bytes. */
export function compressorId(): string {
  const c = currentCompressor();
  return c.kind === 'libdeflate'
    ? `libdeflate-gzip ${c.version} level ${GZIP_LEVEL} segment ${SEGMENT_SIZE} small ${SMALL} zlib ${process.versions.zlib}`
    : `pgzip level ${GZIP_LEVEL} block ${DEFAULT_BLOCK_SIZE} zlib ${process.versions.zlib}`;
}

/** The compressor in words, for reports: `libdeflate-gzip 1.14` or `zlib 1.3.0.1-motley (shared/pgzip)`. */
export function compressorName(): string {
  const c = currentCompressor();
  return c.kind === 'libdeflate' ? `libdeflate-gzip ${c.version}` : `zlib ${process.versions.zlib} (shared/pgzip)`;
}

/**
 * Gzip `tar` through `stages` (the last a sink), one chunk at a time: each
 * chunk is written and its write called back before the next is asked for,
 * so the tar's producer may fill the same buffers again (PackOptions.reuse):
 * both compressors are done with a chunk when its write calls back.
 * `seen` sees each chunk first.
 */
export async function gzipInto(
  tar: AsyncIterable<Buffer>,
  stages: Array<NodeJS.ReadWriteStream | NodeJS.WritableStream>,
  seen?: (chunk: Buffer) => void,
): Promise<void> {
  const gz = createSlugCompressor();
  const flowing = pipeline([gz, ...stages]);
  try {
    for await (const chunk of tar) {
      seen?.(chunk);
      await new Promise<void>((resolve, reject) => gz.write(chunk, (err) => (err ? reject(err) : resolve())));
    }
    gz.end();
  } catch (err) {
    gz.destroy(err as Error);
    // The stream's own failure (the sink's, say) is the cause of a failed write.
    const cause = await flowing.then(
      () => undefined,
      (failure: unknown) => failure,
    );
    throw cause ?? err;
  }
  await flowing;
}

export function createSlugCompressor(): Transform {
  const c = currentCompressor();
  // libdeflate: segments deflated by child processes in parallel, each a gzip
  // member (shared/libdeflate-gzip.ts). zlib: blocks deflated on the thread
  // pool (pigz-style), joined into one member. Either way a pinned level and
  // cut sizes and a fixed header keep the bytes stable from run to run.
  if (c.kind === 'libdeflate') return createLibdeflateGzip({ tool: c.tool, level: GZIP_LEVEL });
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
  try {
    await gzipInto(packTree(dir, { ...opts.pack, reuse: true }), [gzMeter, createWriteStream(file, { mode: 0o644 })], tarMeter?.see);
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
