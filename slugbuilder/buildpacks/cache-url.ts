/**
 * A build cache kept in object storage (`--cache-url`), so a build can run on
 * any machine: before compile the cache's tar.gz is fetched and unpacked into
 * CACHE_DIR (404: no cache yet); after a successful build CACHE_DIR is packed
 * and PUT back. The URLs are usually presigned (S3 signs GET and PUT apart,
 * hence a separate PUT URL); they are printed only through displayUrl().
 */
import { createReadStream } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { UserError } from '../../shared/errors.js';
import {
  archiveBytesCap,
  byteLimit,
  displayUrl,
  NetworkError,
  networkFailure,
  request,
  splitCredentials,
  upload,
  urlWithoutQuery,
} from '../../shared/http.js';
import { log } from '../../shared/log.js';
import { type ExtractLimits, extractArchive } from '../../shared/tar/extract.js';
import { formatSize, plural } from '../../shared/units.js';
import { compressTree } from '../slug.js';

export interface CacheUrls {
  get: string;
  put: string;
}

/**
 * A cache is the buildpacks' own files, unpacked like any download: it may
 * hold five times what the operator lets a source hold (--max-source-size,
 * --max-files), 10G and a million entries with the defaults.
 */
export const CACHE_FACTOR = 5;

export function cacheLimits(source: { maxBytes: number; maxFiles: number }): ExtractLimits {
  return { maxBytes: CACHE_FACTOR * source.maxBytes, maxFiles: CACHE_FACTOR * source.maxFiles };
}

/**
 * Replace the contents of `cacheDir` with the stored cache. A missing cache
 * (404) or one that cannot be unpacked leaves an empty cache dir: the build
 * runs cold, as after `slugbuilder cache clear`. A store that cannot be
 * reached, or refuses (403: an expired signature), fails the build: a cache
 * URL that never works should not go unnoticed.
 */
export async function restoreCache(url: string, cacheDir: string, limits: ExtractLimits): Promise<void> {
  const target = splitCredentials(url);
  log.step(`Restoring the build cache from ${target.display}`);
  let res: Response;
  try {
    res = await request(target.url, { headers: target.authorization ? { authorization: target.authorization } : {}, what: 'cache URL' });
  } catch (err) {
    if (err instanceof NetworkError) {
      if (err.reached) throw new UserError(`cache URL: ${networkFailure(err, target.display)}`);
      throw new UserError(`cache URL: cannot reach ${target.display} (${err.description}); check --cache-url and that the store is up`);
    }
    throw err;
  }
  await emptyDir(cacheDir);
  if (res.status === 404) {
    await res.body?.cancel().catch(() => undefined);
    log.info('No stored cache yet: building without one');
    return;
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    const hint =
      res.status === 401 || res.status === 403
        ? 'check the signature and expiry of the presigned URL'
        : 'check --cache-url and that the store is up';
    throw new UserError(`cache URL: ${target.display} answered HTTP ${res.status}; ${hint}`);
  }
  try {
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    const cap = archiveBytesCap(limits) ?? Infinity;
    const bounded = body.pipe(byteLimit(body, cap, () => `cache URL: ${urlWithoutQuery(url)} sent more than ${formatSize(cap)}`));
    const got = await extractArchive(bounded, cacheDir, 'the stored build cache', limits);
    log.info(`Restored ${plural(got.files, 'file')} (${formatSize(got.bytes)})`);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    await emptyDir(cacheDir);
    log.warn(`Ignoring the stored build cache: ${err.message}`);
  }
}

/** Pack `cacheDir` into `file` (called on the cache a successful compile published). */
export async function packCache(cacheDir: string, file: string, mtime: Date): Promise<number> {
  const packed = await compressTree(cacheDir, file, { pack: { prefix: './', mtime }, what: 'the build cache' });
  return packed.size;
}

/**
 * PUT the packed cache: only once the whole build has succeeded and its
 * outputs are delivered. A build never fails on its cache (as on Heroku):
 * a refused or failed upload is a warning, the slug stands, and the store
 * keeps the cache it had.
 */
export async function uploadCache(url: string, file: string, size: number): Promise<void> {
  log.step(`Storing the build cache at ${displayUrl(url)} (${formatSize(size)})`);
  try {
    await upload(url, () => createReadStream(file), size, 'cache URL');
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    log.warn(
      `Warning: the build cache was not stored (${err.message}); the build stands, the next one starts from the cache stored before`,
    );
  }
}

async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(path.join(dir, name), { recursive: true, force: true });
}
