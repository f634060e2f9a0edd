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
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { copyTree } from '../../shared/copy-tree.js';
import { UsageError, UserError } from '../../shared/errors.js';
import { acquireLock, liveHolder, processExists } from '../../shared/file-lock.js';
import { exists, forget, removeInside, removeOnExit, replaceWith } from '../../shared/fs.js';

const CACHE_LOCK_MESSAGES = {
  waiting: (who: string) => `Waiting for another build using this cache (${who})`,
  takingOver: (who: string) => `Taking over the cache lock of ${who}, which is gone`,
};

/** An app name is one plain path component (the git-push hook's rule). */
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function checkAppName(name: string, from: string): string {
  if (!APP_NAME.test(name))
    throw new UsageError(`${from} "${name}" is not an app name: use letters, digits, . _ - (starting with a letter or digit)`);
  return name;
}

/**
 * The default CACHE_DIR: `<root>/apps/<app>` per app, so apps neither evict
 * each other's caches nor wait for each other's builds; `<root>/cache`
 * for builds that name no app.
 */
export function defaultCacheDir(cacheRoot: string, app?: string): string {
  return app ? path.join(cacheRoot, 'apps', app) : path.join(cacheRoot, 'cache');
}

/** Every default cache dir below the root: the shared one and each app's. */
export async function defaultCacheDirs(cacheRoot: string): Promise<string[]> {
  const apps = await readdir(path.join(cacheRoot, 'apps')).catch(() => [] as string[]);
  return [
    defaultCacheDir(cacheRoot),
    ...apps
      .filter((n) => APP_NAME.test(n))
      .sort()
      .map((n) => defaultCacheDir(cacheRoot, n)),
  ];
}

/**
 * Removes a cache dir with its staging and retired copies, under its lock so
 * no build starts on it meanwhile. A build holding the lock is not waited for:
 * the clear is refused. Returns whether there was a cache to remove.
 */
export async function clearCacheDir(cacheDir: string, label: string): Promise<boolean> {
  const paths = cacheLockPaths(cacheDir);
  const holder = await liveHolder(paths.lock);
  if (holder) throw new UserError(`${label} is in use by a build (${holder}): clear it when the build has finished`);
  const parent = path.dirname(cacheDir);
  const prefix = path.basename(paths.scratchPrefix);
  const names = await readdir(parent).catch(() => [] as string[]);
  const existed = names.includes(path.basename(cacheDir));
  if (!existed && !names.some((n) => n.startsWith(prefix))) return false;
  const release = await acquireLock(paths.lock, CACHE_LOCK_MESSAGES);
  try {
    for (const name of names) {
      if (name === path.basename(cacheDir) || name.startsWith(`${prefix}staging-`) || name.startsWith(`${prefix}old-`)) {
        await removeInside(parent, name, label);
      }
    }
  } finally {
    await release();
  }
  return existed;
}

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
  await replaceWith(cacheDir, retired);
  try {
    await replaceWith(staging, cacheDir);
  } catch (err) {
    await replaceWith(retired, cacheDir);
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
  if (retired.length > 0 && !(await exists(cacheDir))) await replaceWith(path.join(parent, retired[0]), cacheDir);
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
