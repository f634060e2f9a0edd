/**
 * Where the app is built. Cloud Native Buildpacks write absolute layer paths
 * into launch.toml, env files and symlinks, so the app is built in place, at
 * the path it will run from: `--app-dir DIR`, else `/app` where the builder
 * image made it empty and writable, else a dir in the build's workspace.
 *
 * A build claims its dir with a marker made by an exclusive create, so a
 * second build cannot share it; the marker is left out of the slug. What the
 * build made there is removed afterwards and the dir is left as it was found.
 */
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, UsageError, UserError } from '../../shared/errors.js';
import { forget, removeInside, removeOnExit } from '../../shared/fs.js';

/** The claim marker's name, at the top of the app dir; never in a slug. */
export const APP_DIR_MARKER = '.slugbuilder-app-dir';

/** The builder image's app dir. Never created here: a host (CI runs tests as root) must not get one. */
export const IMAGE_APP_DIR = '/app';

export interface AppDir {
  dir: string;
  /** false: a temp dir in the workspace, so absolute paths will not hold at run time. */
  stable: boolean;
  /** Removes what the build made, and the dir too when the build made it. */
  release(): Promise<void>;
}

async function entries(dir: string): Promise<string[] | undefined> {
  return readdir(dir).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    if (errnoCode(err) === 'ENOTDIR') throw new UsageError(`--app-dir ${dir} is not a directory: name an empty or absent directory`);
    throw err;
  });
}

/** Checks `--app-dir` before anything runs (exit 2): absent or an empty directory. */
export async function checkAppDir(named: string): Promise<string> {
  const dir = path.resolve(named);
  const found = await entries(dir);
  if (found?.includes(APP_DIR_MARKER))
    throw new UsageError(`--app-dir ${dir} is in use by another build: wait for it or choose another directory`);
  if (found && found.length > 0)
    throw new UsageError(`--app-dir ${dir} is not empty: the app is built in place, so name an empty or absent directory`);
  return dir;
}

async function claim(dir: string): Promise<AppDir | undefined> {
  const made = (await entries(dir)) === undefined;
  if (made) await mkdir(dir, { recursive: true, mode: 0o755 });
  let handle;
  try {
    handle = await open(path.join(dir, APP_DIR_MARKER), constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return undefined;
    throw err;
  }
  await handle.close();
  const clear = async () => {
    if (made) {
      await rm(dir, { recursive: true, force: true });
      return;
    }
    // The build left these: a link among them is unlinked, never followed.
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name !== APP_DIR_MARKER) await removeInside(dir, name);
    }
    await removeInside(dir, APP_DIR_MARKER);
  };
  // A killed build still leaves no app behind when it can; the exit hook removes the whole dir only when it made it.
  if (made) removeOnExit(dir);
  return {
    dir,
    stable: true,
    release: async () => {
      await clear();
      if (made) forget(dir);
    },
  };
}

async function usableImageAppDir(): Promise<boolean> {
  const st = await stat(IMAGE_APP_DIR).catch(() => undefined);
  if (!st?.isDirectory()) return false;
  if (
    !(await access(IMAGE_APP_DIR, constants.W_OK).then(
      () => true,
      () => false,
    ))
  )
    return false;
  return (await readdir(IMAGE_APP_DIR)).length === 0;
}

/**
 * Claims the build's app dir. `requested` (already checked by checkAppDir) must
 * be claimed or the build fails; the default `/app` falls back to
 * `<work>/app` when it is absent, not empty, not writable or claimed.
 */
export async function claimAppDir(requested: string | undefined, work: string): Promise<AppDir> {
  if (requested) {
    const claimed = await claim(await checkAppDir(requested)).catch((err: unknown) => {
      if (err instanceof UserError) throw err;
      throw new UserError(`cannot use --app-dir ${requested}: ${errnoCode(err) ?? String(err)}; choose a writable directory`);
    });
    if (!claimed) throw new UserError(`--app-dir ${requested} is in use by another build: wait for it or choose another directory`);
    return claimed;
  }
  if (await usableImageAppDir()) {
    const claimed = await claim(IMAGE_APP_DIR).catch(() => undefined);
    if (claimed) return claimed;
  }
  const dir = path.join(work, 'app');
  await mkdir(dir, { mode: 0o755 });
  // Inside the workspace, which goes as a whole.
  return { dir, stable: false, release: async () => undefined };
}
