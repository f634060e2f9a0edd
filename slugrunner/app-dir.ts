/**
 * The app dir and the few files slugrunner keeps for it, so that runners
 * sharing one app dir never break each other:
 *  - a lock, held only while a slug is unpacked: `.<name>.lock` beside the app
 *    dir, or `<app dir>/.slugrunner.lock` when the parent is not writable (an
 *    image whose /app belongs to the app user while / does not);
 *  - `.slugrunner-unpacking` inside the app dir while a slug is unpacked into
 *    it in place: if it is still there, the unpack was interrupted and the dir
 *    holds half an app;
 *  - beside the app dir, `.<name>.incoming-PID` (a new slug being unpacked
 *    before it is swapped in) and `.<name>.old-*` (a replaced app tree, kept
 *    while a process still works in it).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readdir, readlink, realpath, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, UserError } from '../shared/errors.js';
import { acquireLock } from '../shared/file-lock.js';
import { replaceWith } from '../shared/fs.js';

export const UNPACKING_MARKER = '.slugrunner-unpacking';
export const IN_DIR_LOCK = '.slugrunner.lock';
const OWN_NAMES = new Set([UNPACKING_MARKER, IN_DIR_LOCK]);

/** absent or empty: nothing to run; half: an interrupted unpack; app: something to run as it is. */
export type AppDirState = 'absent' | 'empty' | 'half' | 'app';

export interface AppDirListing {
  state: AppDirState;
  /** The dir's entries, slugrunner's own files left out. */
  names: string[];
}

export async function inspectAppDir(appDir: string): Promise<AppDirListing> {
  let names: string[];
  try {
    names = await readdir(appDir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { state: 'absent', names: [] };
    throw fsError(err, appDir, 'read');
  }
  const own = names.filter((n) => !OWN_NAMES.has(n));
  if (names.includes(UNPACKING_MARKER)) return { state: 'half', names: own };
  return { state: own.length > 0 ? 'app' : 'empty', names: own };
}

/** A permission or read-only error on the app dir as the one line a user can act on; anything else unchanged. */
export function fsError(err: unknown, target: string, verb: 'read' | 'write'): unknown {
  const code = errnoCode(err);
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? 'permission denied'
      : code === 'EROFS'
        ? 'read-only file system'
        : code === 'ENOTDIR'
          ? 'not a directory'
          : undefined;
  if (!why) return err;
  const fix =
    target === '/app' || target.startsWith('/app/') ? 'pass --app-dir DIR, a directory you can write' : 'choose an --app-dir you can write';
  return new UserError(`cannot ${verb} ${target} (${why}): ${code === 'ENOTDIR' ? 'choose an --app-dir that is a directory' : fix}`);
}

export interface AppDirLock {
  /** Whether the lock sits beside the app dir, i.e. the parent is writable and a new slug can be swapped in. */
  beside: boolean;
  release(): Promise<void>;
}

/** One runner at a time changes an app dir: waits for another live holder, at most `timeoutMs`. */
export async function lockAppDir(appDir: string, timeoutMs: number): Promise<AppDirLock> {
  const parent = path.dirname(appDir);
  await mkdir(parent, { recursive: true }).catch((err) => {
    throw fsError(err, appDir, 'write');
  });
  const beside = await access(parent, constants.W_OK).then(
    () => true,
    () => false,
  );
  const lockFile = beside ? path.join(parent, `.${path.basename(appDir)}.lock`) : path.join(appDir, IN_DIR_LOCK);
  const messages = {
    waiting: (who: string) => `Waiting for another slugrunner unpacking into ${appDir} (${who})`,
    takingOver: (who: string) => `Taking over the app dir lock of ${who}, which is gone`,
    timedOut: (who: string) =>
      `${appDir} is still being unpacked by ${who}: stop that runner, wait longer with --lock-timeout, or choose another --app-dir`,
  };
  const release = await acquireLock(lockFile, messages, timeoutMs).catch((err) => {
    throw fsError(err, appDir, 'write');
  });
  return { beside, release };
}

/** Where a new slug is unpacked before it replaces the app (same filesystem as the app dir, so rename works). */
export function stagingDir(appDir: string): string {
  return path.join(path.dirname(appDir), `.${path.basename(appDir)}.incoming-${process.pid}`);
}

/** Whether another filesystem is mounted on the app dir (a volume): then it cannot be renamed. */
export async function isMountPoint(appDir: string): Promise<boolean> {
  const [dir, parent] = await Promise.all([stat(appDir), stat(path.dirname(appDir))]);
  return dir.dev !== parent.dev;
}

/**
 * Puts the staged tree in the app dir's place by two renames. A process that
 * runs the old app keeps it: its working dir moves with the tree, so no file
 * vanishes under it; the old tree is removed once nothing works in it.
 */
export async function swapIn(appDir: string, staged: string): Promise<void> {
  const retired = path.join(path.dirname(appDir), `.${path.basename(appDir)}.old-${process.pid}-${randomBytes(3).toString('hex')}`);
  await replaceWith(appDir, retired);
  try {
    await replaceWith(staged, appDir);
  } catch (err) {
    await replaceWith(retired, appDir).catch(() => undefined);
    throw err;
  }
  await removeRetiredTrees(appDir);
}

/** Removes what an interrupted replacement left beside the app dir. Call with the lock held. */
export async function removeStaleStaging(appDir: string): Promise<void> {
  const prefix = `.${path.basename(appDir)}.incoming-`;
  const parent = path.dirname(appDir);
  const names = await readdir(parent).catch(() => [] as string[]);
  await Promise.all(
    names.filter((n) => n.startsWith(prefix)).map((n) => rm(path.join(parent, n), { recursive: true, force: true }).catch(() => undefined)),
  );
}

/** Removes replaced app trees in which no process has its working dir; keeps them all when that cannot be told. */
export async function removeRetiredTrees(appDir: string): Promise<void> {
  const prefix = `.${path.basename(appDir)}.old-`;
  const parent = path.dirname(appDir);
  const names = (await readdir(parent).catch(() => [] as string[])).filter((n) => n.startsWith(prefix));
  if (names.length === 0) return;
  const cwds = await processWorkingDirs();
  if (!cwds) return;
  for (const name of names) {
    const tree = await realpath(path.join(parent, name)).catch(() => undefined);
    if (!tree) continue;
    if (cwds.some((cwd) => cwd === tree || cwd.startsWith(tree + path.sep))) continue;
    // Best effort: what cannot be removed now is tried again by the next intake.
    await rm(tree, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The working dirs of every process we may look at (Linux /proc); undefined without /proc. */
async function processWorkingDirs(): Promise<string[] | undefined> {
  const pids = await readdir('/proc').catch(() => undefined);
  if (!pids) return undefined;
  const cwds = await Promise.all(pids.filter((p) => /^\d+$/.test(p)).map((p) => readlink(`/proc/${p}/cwd`).catch(() => '')));
  return cwds.filter(Boolean);
}

/** The app tree's identity, to tell at exit whether it was replaced while the process ran. */
export async function treeId(appDir: string): Promise<string | undefined> {
  const s = await stat(appDir).catch(() => undefined);
  return s ? `${s.dev}:${s.ino}` : undefined;
}
