/**
 * `--app-out DIR`: the built app left on disk as the slug holds it, for a
 * runner on this host to start without unpacking the slug (a git-push
 * pipeline's first start of a new release: `slugrunner --app-dir DIR start
 * web`). The slug stays the release; DIR is one fresh copy of it, for one
 * process to take.
 *
 * On the build's file system the app's entries are renamed into a temp dir
 * beside DIR (no file is made again), then made what the slug holds: the
 * slug's modes and mtime, no fifos, sockets or devices, no inode shared with
 * a file outside (a hard link is copied), no `.git` and no app-dir claim.
 * Elsewhere the slug is unpacked there instead. The temp dir takes DIR's
 * place on commit; DIR must be absent or an empty directory.
 *
 * The tree was written by buildpacks and the app's build code: the walk
 * looks at every entry with lstat and never follows a link; a link is left
 * as the slug has it, for the app to use.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, constants, copyFileSync, lstatSync, readdirSync, renameSync, unlinkSync, utimesSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, UsageError } from '../../shared/errors.js';
import { makeTempDir, removeTemp, replaceWith } from '../../shared/fs.js';
import { log } from '../../shared/log.js';
import { extractArchive, openArchiveFile } from '../../shared/tar/extract.js';
import { entryFields } from '../../shared/tar/pack.js';
import type { BuildResult } from '../build.js';
import { notInApp } from '../slug.js';
import type { Output, OutputKind } from './deliver.js';

export const APP_OUT_OPTIONS = {
  'app-out': { type: 'string' },
} as const;

export const APP_OUT_USAGE = `  --app-out DIR            also leave the built app in DIR (new or empty) as the slug holds
                           it, to start it on this host without unpacking the slug
`;

export const appOutKind: OutputKind<{ 'app-out'?: string }> = {
  parse(v, ctx) {
    const dir = v['app-out'];
    if (dir === undefined) return undefined;
    if (ctx.fromSlug)
      throw new UsageError('--slug FILE builds nothing: --app-out does not apply (`slugrunner --slug FILE` unpacks a slug)');
    return { flag: '--app-out', check: () => checkAppOut(dir), outputs: (mtime) => [appOutOutput(dir, mtime)] };
  },
};

/** Whether one of two absolute paths is the other or inside it: DIR and the app dir must be apart. */
export function nested(a: string, b: string): boolean {
  const inside = (child: string, parent: string) => !path.relative(parent, child).startsWith('..');
  return inside(a, b) || inside(b, a);
}

/** Refused before the build: DIR must be absent or an empty directory. */
export async function checkAppOut(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) throw new UsageError(`--app-out ${dir} is not a directory: name a new or empty directory`);
  if ((await readdir(dir)).length > 0) throw new UsageError(`--app-out ${dir} is not empty: name a new or empty directory`);
}

export function appOutOutput(dir: string, mtime: Date): Output {
  return async (result: BuildResult) => {
    const target = path.resolve(dir);
    // The default app dir (/app) is known only now; a named --app-dir was checked with the flags.
    if (nested(target, result.appDir))
      throw new UsageError(`--app-out ${dir} and the app dir ${result.appDir} are inside one another: name a directory apart from it`);
    await checkAppOut(target);
    await mkdir(path.dirname(target), { recursive: true });
    const staged = await makeTempDir(`.${path.basename(target)}-`, path.dirname(target));
    try {
      if (await moveApp(result.appDir, staged)) {
        makeAsSlug(staged, mtime);
        log.info(`The app is also in ${dir} (moved there, not unpacked)`);
      } else {
        await extractArchive(openArchiveFile(result.slug.path), staged, 'the slug');
        log.info(`The app is also in ${dir} (unpacked from the slug: another file system)`);
      }
      await chmod(staged, entryFields({}).dirMode);
    } catch (err) {
      await removeTemp(staged);
      throw err;
    }
    return {
      summary: { app_out: { path: target } },
      commit: async () => {
        // An empty DIR is replaced; checked again, as it may have filled since.
        await checkAppOut(target);
        await rmdir(target).catch(() => undefined);
        await replaceWith(staged, target);
      },
      discard: () => removeTemp(staged),
    };
  };
}

/**
 * The app's entries renamed into `into`; false (nothing moved) when `into`
 * is on another file system. The app dir itself stays: it may be the
 * builder image's /app or a dir the user named.
 */
async function moveApp(appDir: string, into: string): Promise<boolean> {
  if ((await stat(appDir)).dev !== (await stat(into)).dev) return false;
  const moved: string[] = [];
  for (const name of await readdir(appDir)) {
    if (notInApp(name)) continue;
    try {
      await rename(path.join(appDir, name), path.join(into, name));
    } catch (err) {
      // A mount inside the app (an overlay's lower dir, a bind mount): put back what moved, unpack instead.
      if (errnoCode(err) !== 'EXDEV') throw err;
      for (const back of moved) await rename(path.join(into, back), path.join(appDir, back));
      return false;
    }
    moved.push(name);
  }
  return true;
}

/** `root`'s tree made what unpacking the slug gives: packTree's modes, the slug's mtime, only files, dirs and links. */
function makeAsSlug(root: string, mtime: Date): void {
  const { dirMode, execMode, fileMode } = entryFields({});
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      const st = lstatSync(full);
      if (st.isDirectory()) {
        // Before its entries: a dir the build left mode 0 is walked too.
        chmodSync(full, dirMode);
        walk(full);
      } else if (st.isFile()) {
        // The slug holds each name's bytes on their own: a dyno's write must not reach another name's file.
        if (st.nlink > 1) unshare(full);
        chmodSync(full, st.mode & 0o111 ? execMode : fileMode);
        utimesSync(full, mtime, mtime);
      } else if (!st.isSymbolicLink()) {
        unlinkSync(full);
      }
    }
    // After its entries: moving, copying and removing them set it.
    utimesSync(dir, mtime, mtime);
  };
  walk(root);
}

/** A hard-linked file replaced by a copy of itself under the same name. */
function unshare(file: string): void {
  const copy = `${file}.slugkit-${randomBytes(6).toString('hex')}`;
  copyFileSync(file, copy, constants.COPYFILE_EXCL);
  try {
    renameSync(copy, file);
  } catch (err) {
    unlinkSync(copy);
    throw err;
  }
}
