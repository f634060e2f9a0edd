/**
 * One build at a time per CACHE_DIR, and a cache that is never seen half
 * written. Buildpacks read, modify and write their cache freely, so two builds
 * sharing a cache dir would lose each other's updates or see torn state, and a
 * build killed mid-compile would leave its half-done writes behind.
 *
 * So a build that compiles:
 *  1. takes `<parent>/.<name>.lock` (O_EXCL create; holds host, pid, and a
 *     heartbeat mtime);
 *  2. copies the cache to a private staging dir beside it (same filesystem,
 *     reflinks where the filesystem has them) and compiles against that;
 *  3. on success, swaps the staging dir in with renames, then drops the lock.
 *     A failed or killed build leaves the published cache exactly as it was.
 *
 * A lock whose process is gone (same host), or whose heartbeat stopped
 * (another host, or a frozen process), is stale and is taken over; the next
 * holder removes staging dirs that killed builds left behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { forget, removeOnExit } from '../../shared/fs.js';
import { copyTree } from '../../shared/copy-tree.js';
import { acquireLock, processExists } from '../../shared/file-lock.js';


const CACHE_LOCK_MESSAGES = {
  waiting: (who: string) => `Waiting for another build using this cache (${who})`,
  takingOver: (who: string) => `Taking over the cache lock of ${who}, which is gone`,
};

export interface CacheLockPaths {
  lock: string;
  /** Prefix of staging and retired dirs beside the cache. */
  scratchPrefix: string;
}

export function cacheLockPaths(cacheDir: string): CacheLockPaths {
  const parent = path.dirname(cacheDir);
  const base = path.basename(cacheDir);
  return { lock: path.join(parent, `.${base}.lock`), scratchPrefix: path.join(parent, `.${base}.`) };
}

/**
 * Runs `compile` with a private copy of `cacheDir`, holding the cache's lock,
 * and publishes the copy as the new cache when `compile` succeeds.
 */
export async function withCacheDir<T>(cacheDir: string, compile: (privateCacheDir: string) => Promise<T>): Promise<T> {
  await mkdir(cacheDir, { recursive: true });
  const paths = cacheLockPaths(cacheDir);
  const release = await acquireLock(paths.lock, CACHE_LOCK_MESSAGES);
  const staging = `${paths.scratchPrefix}staging-${process.pid}-${randomBytes(4).toString('hex')}`;
  removeOnExit(staging);
  try {
    await removeLeftovers(paths, staging);
    await copyTree(cacheDir, staging, { preserveTimestamps: true });
    const result = await compile(staging);
    await publish(cacheDir, staging, paths);
    return result;
  } finally {
    await rm(staging, { recursive: true, force: true });
    forget(staging);
    await release();
  }
}

/** Removals of retired caches still running; settleCacheRemovals waits for them. */
const removals = new Set<Promise<void>>();

/**
 * Swap `staging` in as `cacheDir`. Only the lock holder gets here, so the
 * short gap between the renames is never seen. The retired cache (thousands
 * of files for a node_modules cache) is removed in the background while the
 * build releases and compresses its slug; its name carries our pid, so no
 * other build touches it while we live.
 */
async function publish(cacheDir: string, staging: string, paths: CacheLockPaths): Promise<void> {
  const retired = `${paths.scratchPrefix}old-${process.pid}-${randomBytes(4).toString('hex')}`;
  await rename(cacheDir, retired);
  try {
    await rename(staging, cacheDir);
  } catch (err) {
    await rename(retired, cacheDir);
    throw err;
  }
  removeOnExit(retired);
  const removal: Promise<void> = rm(retired, { recursive: true, force: true })
    .catch(() => undefined) // a leftover is removed by the next build that takes the lock
    .finally(() => {
      forget(retired);
      removals.delete(removal);
    });
  removals.add(removal);
}

/** Waits until every retired cache this process published over is gone. */
export async function settleCacheRemovals(): Promise<void> {
  await Promise.all([...removals]);
}

/** Staging and retired dirs of builds that were killed; and a cache a kill left mid-swap is put back. */
async function removeLeftovers(paths: CacheLockPaths, keep: string): Promise<void> {
  const parent = path.dirname(paths.lock);
  const prefix = path.basename(paths.scratchPrefix);
  const cacheDir = path.join(parent, prefix.slice(1, -1));
  const names = await readdir(parent).catch(() => [] as string[]);
  const retired = names.filter((n) => n.startsWith(`${prefix}old-`));
  if (retired.length > 0 && !(await exists(cacheDir))) await rename(path.join(parent, retired[0]), cacheDir);
  await mkdir(cacheDir, { recursive: true });
  for (const name of names) {
    const full = path.join(parent, name);
    if (full === keep || !(name.startsWith(`${prefix}staging-`) || name.startsWith(`${prefix}old-`))) continue;
    // A live build may still be removing the cache it retired: leave that to it.
    if (name.startsWith(`${prefix}old-`) && processExists(Number(name.slice(prefix.length + 4).split('-')[0]))) continue;
    // An orphaned buildpack of a killed build may still be writing there: best effort.
    await rm(full, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}
