/**
 * The slug as an image layer: the app tree (or the part of it app-layers.ts
 * picks) under `app/`, owned by the runner's app user, with one fixed mtime. Made by the slug's own pipeline
 * (slug.ts), which yields both the diff_id (sha256 of the tar) and the
 * digest (sha256 of the gzip bytes) in one pass.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { UserError } from '../../shared/errors.js';
import { type PackOptions, packTree } from '../../shared/tar/pack.js';
import { compressTree, notInApp } from '../slug.js';
import { HEAD_BYTES, type LayerCache } from './layer-cache.js';

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

function checkOwner(opts: Pick<LayerOptions, 'uid' | 'gid'>): void {
  for (const [name, id] of [
    ['uid', opts.uid],
    ['gid', opts.gid],
  ] as const) {
    if (!Number.isInteger(id) || id < 0 || id > 0x1fffff) throw new UserError(`app ${name} ${id} is not a valid id (0 to 2097151)`);
  }
}

function packOptions(opts: Omit<LayerOptions, 'outFile'>): PackOptions {
  // Group 0 ownership means "any UID in group 0 runs this" (OpenShift): let the group write too.
  return {
    prefix: 'app/',
    uid: opts.uid,
    gid: opts.gid,
    mtime: opts.mtime,
    groupWritable: opts.gid === 0,
    exclude: (rel) => notInApp(rel) || (opts.exclude?.(rel) ?? false),
  };
}

export async function writeLayer(appDir: string, opts: LayerOptions): Promise<LayerResult> {
  checkOwner(opts);
  const outFile = path.resolve(opts.outFile);
  const out = await compressTree(appDir, outFile, {
    pack: packOptions(opts),
    what: 'the image layer',
    hashTar: true,
  });
  return { path: outFile, digest: `sha256:${out.sha256}`, diffId: `sha256:${out.tarSha256}`, size: out.size };
}

/** sha256 of the layer's tar, nothing written: the diff_id writeLayer would give, at a fraction of its cost. */
export async function layerDiffId(appDir: string, opts: Omit<LayerOptions, 'outFile'>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of packTree(appDir, { ...packOptions(opts), reuse: true })) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

/** sha256 of the first HEAD_BYTES of the layer's tar (all of it when shorter). */
async function layerHead(appDir: string, opts: Omit<LayerOptions, 'outFile'>): Promise<string> {
  const hash = createHash('sha256');
  let seen = 0;
  for await (const chunk of packTree(appDir, { ...packOptions(opts), reuse: true })) {
    const part = chunk.subarray(0, HEAD_BYTES - seen);
    hash.update(part);
    seen += part.length;
    if (seen === HEAD_BYTES) break;
  }
  return `sha256:${hash.digest('hex')}`;
}

/**
 * writeLayer through `cache`: a layer whose tar starts like a kept one is
 * hashed first and taken from the cache when its diff_id is there; any
 * other is compressed (one pass) and kept.
 */
export async function writeLayerCached(
  appDir: string,
  opts: LayerOptions,
  cache: LayerCache | undefined,
): Promise<LayerResult & { cached: boolean }> {
  if (!cache) return { ...(await writeLayer(appDir, opts)), cached: false };
  checkOwner(opts);
  const outFile = path.resolve(opts.outFile);
  // A tree that cannot be read fails below, in writeLayer, with its message.
  const head = await layerHead(appDir, opts).catch(() => undefined);
  if (head && (await cache.mayHave(head))) {
    const diffId = await layerDiffId(appDir, opts).catch(() => undefined);
    const hit = diffId ? await cache.take(diffId, head, outFile) : undefined;
    if (diffId && hit) return { path: outFile, digest: hit.digest, diffId, size: hit.size, cached: true };
  }
  const layer = await writeLayer(appDir, opts);
  // writeLayer's diff_id and digest come from one pass, so the entry is right even if the tree changed since `head`.
  if (head) await cache.put(layer.diffId, head, layer.path, layer);
  return { ...layer, cached: false };
}
