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
import { constants as fsConstants } from 'node:fs';
import { cp, mkdir, open, readFile, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { forget, removeOnExit } from '../shared/cleanup.js';
import { errnoCode } from '../shared/errors.js';
import { log } from '../shared/log.js';

/** How often the holder touches its lock, and how old a heartbeat may get before the lock counts as abandoned. */
export const HEARTBEAT_MS = 10_000;
export const STALE_AFTER_MS = 6 * HEARTBEAT_MS;
const POLL_MS = 100;

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
  const release = await acquire(paths.lock);
  const staging = `${paths.scratchPrefix}staging-${process.pid}-${randomBytes(4).toString('hex')}`;
  removeOnExit(staging);
  try {
    await removeLeftovers(paths, staging);
    await cp(cacheDir, staging, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true, mode: fsConstants.COPYFILE_FICLONE });
    const result = await compile(staging);
    await publish(cacheDir, staging, paths);
    return result;
  } finally {
    await rm(staging, { recursive: true, force: true });
    forget(staging);
    await release();
  }
}

/** Swap `staging` in as `cacheDir`. Only the lock holder gets here, so the short gap between the renames is never seen. */
async function publish(cacheDir: string, staging: string, paths: CacheLockPaths): Promise<void> {
  const retired = `${paths.scratchPrefix}old-${process.pid}-${randomBytes(4).toString('hex')}`;
  await rename(cacheDir, retired);
  try {
    await rename(staging, cacheDir);
  } catch (err) {
    await rename(retired, cacheDir);
    throw err;
  }
  await rm(retired, { recursive: true, force: true });
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
    // An orphaned buildpack of a killed build may still be writing there: best effort.
    await rm(full, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** Takes the lock, waiting for a live holder; returns the release function. */
export async function acquire(lockFile: string): Promise<() => Promise<void>> {
  const owner = `${hostname()} ${process.pid} ${randomBytes(4).toString('hex')}\n`;
  let announced = false;
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(owner);
      await handle.close();
      break;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const holder = await staleHolder(lockFile);
    if (holder.stale) {
      log.info(`Taking over the cache lock of ${holder.who}, which is gone`);
      await rm(lockFile, { force: true });
      continue;
    }
    if (!announced) {
      log.info(`Waiting for another build using this cache (${holder.who})`);
      announced = true;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  // From here on a signal exit removes the lock too (shared/cleanup runs on SIGTERM/SIGINT).
  removeOnExit(lockFile);
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(lockFile, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  return async () => {
    clearInterval(heartbeat);
    forget(lockFile);
    // Only remove the lock if it is still ours (a takeover could have replaced it).
    const current = await readFile(lockFile, 'utf8').catch(() => '');
    if (current === owner) await rm(lockFile, { force: true });
  };
}

/** Whether the lock's holder is gone: a dead pid on this host, or a heartbeat older than STALE_AFTER_MS. */
async function staleHolder(lockFile: string): Promise<{ stale: boolean; who: string }> {
  let content: string;
  let mtimeMs: number;
  try {
    content = await readFile(lockFile, 'utf8');
    mtimeMs = (await stat(lockFile)).mtimeMs;
  } catch {
    return { stale: false, who: 'a build that just finished' }; // gone already: the next open will tell
  }
  const [host, pidText] = content.trim().split(' ');
  if (!host || !pidText) {
    // Being written right now, or left empty by a crash between create and write.
    return { stale: Date.now() - mtimeMs > STALE_AFTER_MS, who: 'an unknown build' };
  }
  const who = `pid ${pidText} on ${host}`;
  if (Date.now() - mtimeMs > STALE_AFTER_MS) return { stale: true, who };
  if (host !== hostname()) return { stale: false, who };
  try {
    process.kill(Number(pidText), 0);
    return { stale: false, who };
  } catch (err) {
    return { stale: errnoCode(err) === 'ESRCH', who };
  }
}
