/**
 * The slug as an image layer: the app tree under `app/`, owned by the
 * runner's app user, with one fixed mtime, gzip-compressed at a pinned level.
 * One streaming pass computes both the diff_id (sha256 of the tar) and the
 * digest (sha256 of the gzip bytes) while the blob is written.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError, errnoCode, errorMessage } from '../../shared/errors.js';
import { createParallelGzip } from '../../shared/pgzip.js';
import { packTree } from '../../shared/tar/pack.js';
import { HashingStream } from './blobs.js';
import { keptTemp, removeTemp, tempFile } from './temp.js';

/** Pinned so the same zlib always gives the same blob bytes and digest. */
export const LAYER_GZIP_LEVEL = 6;

export interface LayerOptions {
  uid: number;
  gid: number;
  mtime: Date;
  outFile: string;
}

export interface LayerResult {
  path: string;
  /** sha256 of the gzip blob: the descriptor digest. */
  digest: string;
  /** sha256 of the uncompressed tar: the config's rootfs diff_id. */
  diffId: string;
  /** Size of the gzip blob in bytes. */
  size: number;
}

export async function writeLayer(appDir: string, opts: LayerOptions): Promise<LayerResult> {
  for (const [name, id] of [['uid', opts.uid], ['gid', opts.gid]] as const) {
    if (!Number.isInteger(id) || id < 0 || id > 0x1fffff) throw new UserError(`app ${name} ${id} is not a valid id (0 to 2097151)`);
  }
  const outFile = path.resolve(opts.outFile);
  await mkdir(path.dirname(outFile), { recursive: true });
  // Written beside the target and renamed, so a failure leaves no partial layer.
  const tmp = tempFile(outFile);
  const tarHash = new HashingStream();
  const gzHash = new HashingStream();
  try {
    await pipeline(
      // Group 0 ownership means "any UID in group 0 runs this" (OpenShift): let the group write too.
      Readable.from(packTree(appDir, { prefix: 'app/', uid: opts.uid, gid: opts.gid, mtime: opts.mtime, groupWritable: opts.gid === 0 })),
      tarHash,
      createParallelGzip({ level: LAYER_GZIP_LEVEL }),
      gzHash,
      createWriteStream(tmp),
    );
    await rename(tmp, outFile);
    keptTemp(tmp);
  } catch (err) {
    await removeTemp(tmp);
    if (err instanceof UserError) throw err;
    const code = errnoCode(err);
    if (code === 'ENOSPC') throw new UserError(`no space left writing the image layer ${outFile}: free some disk space`);
    if (code === 'EACCES' || code === 'EROFS') throw new UserError(`cannot write the image layer ${outFile}: ${code}; choose a writable path`);
    throw new UserError(`writing the image layer failed: ${errorMessage(err)}`);
  }
  return { path: outFile, digest: gzHash.digest(), diffId: tarHash.digest(), size: gzHash.bytes };
}
