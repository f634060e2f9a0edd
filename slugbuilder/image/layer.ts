/**
 * The slug as an image layer: the app tree (or the part of it app-layers.ts
 * picks) under `app/`, owned by the runner's app user, with one fixed mtime. Made by the slug's own pipeline
 * (slug.ts), which yields both the diff_id (sha256 of the tar) and the
 * digest (sha256 of the gzip bytes) in one pass.
 */
import path from 'node:path';
import { UserError } from '../../shared/errors.js';
import { compressTree, notInApp } from '../slug.js';

export interface LayerOptions {
  uid: number;
  gid: number;
  mtime: Date;
  /** Written as is; the caller stages it (shared/fs.ts) when it is a user's path. */
  outFile: string;
  /** Relative paths left out with all below them (the split of app-layers.ts); none: the whole app. */
  exclude?: (relPath: string) => boolean;
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
  const out = await compressTree(appDir, outFile, {
    // Group 0 ownership means "any UID in group 0 runs this" (OpenShift): let the group write too.
    pack: { prefix: 'app/', uid: opts.uid, gid: opts.gid, mtime: opts.mtime, groupWritable: opts.gid === 0, exclude: (rel) => notInApp(rel) || (opts.exclude?.(rel) ?? false) },
    what: 'the image layer',
    hashTar: true,
  });
  return { path: outFile, digest: `sha256:${out.sha256}`, diffId: `sha256:${out.tarSha256}`, size: out.size };
}
