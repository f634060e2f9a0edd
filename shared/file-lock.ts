/**
 * A lock file for work that must not run twice at once across processes:
 * created with O_EXCL, holding host and pid, its mtime a heartbeat. A lock
 * whose process is gone (same host) or whose heartbeat stopped (another host,
 * a frozen process) is stale and taken over, so a killed build never wedges
 * what it locked.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { errnoCode, UserError } from './errors.js';
import { forget, removeOnExit } from './fs.js';
import { log } from './log.js';

/** How often the holder touches its lock, and how old a heartbeat may get before the lock counts as abandoned. */
export const HEARTBEAT_MS = 10_000;
export const STALE_AFTER_MS = 6 * HEARTBEAT_MS;
const POLL_MS = 100;

export interface LockMessages {
  /** Logged once while another live holder has the lock. */
  waiting: (who: string) => string;
  /** Logged when a stale lock is taken over. */
  takingOver: (who: string) => string;
  /** With a timeout: the one-line error when a live holder keeps the lock that long. */
  timedOut?: (who: string) => string;
}

/** Takes the lock, waiting for a live holder (at most `timeoutMs`, when given); returns the release function. */
export async function acquireLock(lockFile: string, messages: LockMessages, timeoutMs?: number): Promise<() => Promise<void>> {
  const owner = `${hostname()} ${process.pid} ${randomBytes(4).toString('hex')}\n`;
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(owner);
      await handle.close();
      break;
    } catch (err) {
      // The lock's directory can vanish under us when someone clears a cache: make it again.
      if (errnoCode(err) === 'ENOENT') {
        await mkdir(path.dirname(lockFile), { recursive: true });
        continue;
      }
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const holder = await staleHolder(lockFile);
    if (holder.stale) {
      log.info(messages.takingOver(holder.who));
      await rm(lockFile, { force: true });
      continue;
    }
    if (Date.now() >= deadline) throw new UserError((messages.timedOut ?? messages.waiting)(holder.who));
    if (!announced) {
      log.info(messages.waiting(holder.who));
      announced = true;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  // From here on a signal exit removes the lock too (shared/fs.ts temp paths are removed on SIGTERM/SIGINT).
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

/** Who holds the lock, when a live build does (undefined when it is free or stale). */
export async function liveHolder(lockFile: string): Promise<string | undefined> {
  if (
    !(await stat(lockFile).then(
      () => true,
      () => false,
    ))
  )
    return undefined;
  const holder = await staleHolder(lockFile);
  return holder.stale ? undefined : holder.who;
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
  return { stale: !processExists(Number(pidText)), who };
}

/** Whether a process with this pid runs on this host (one we may not signal still counts). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== 'ESRCH';
  }
}
