/**
 * Which buildpacks a build runs, and where their working copies live. Every
 * buildpack is copied into the build's workspace first: some write an `export`
 * file into their own directory, and the bundled ones may sit read-only in
 * an image.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { copyTree } from '../../shared/copy-tree.js';
import { UserError } from '../../shared/errors.js';
import { isDir, readTextInside } from '../../shared/fs.js';
import { displayUrl } from '../../shared/http.js';
import { packageRoot } from '../../shared/package.js';
import { parseBuildpackSpec, resolveBuildpack } from './fetch/resolve.js';

export interface Buildpack {
  /** The directory's name (choose.ts names the chosen buildpack after its detect). */
  name: string;
  /** Working copy the scripts run from. */
  dir: string;
  /** Where it came from, as it may be printed (no credentials, no query values). */
  origin: string;
  /** What exactly was fetched: the git commit, or the tarball's sha256. Absent for a local directory. */
  version?: { commit?: string; sha256?: string };
}

/** `buildpacks/` at the package root. */
export const BUNDLED_DIR = path.join(packageRoot(), 'buildpacks');

/** The bundled buildpacks' order, as a builder file: the default when no --builder is given. */
export const BUNDLED_BUILDER = path.join(BUNDLED_DIR, 'builder.toml');

/** A `.buildpacks` file in the app (heroku-buildpack-multi convention): one spec per line. */
export async function appBuildpackList(buildDir: string): Promise<string[]> {
  const text = (await readTextInside(buildDir, '.buildpacks')) ?? '';
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

export interface ResolveOptions {
  /** Workspace dir the working copies go into. */
  workDir: string;
  /** Root of slugkit's own caches (fetched buildpacks live below it). */
  cacheRoot: string;
  /**
   * A local directory is used where it is, for detect only, and copied by
   * workingCopy() once chosen: a builder's order names many buildpacks and
   * one build runs few of them.
   */
  deferLocalCopy?: boolean;
}

let counter = 0;

/**
 * The buildpack `spec` names, copied once into the workspace: a local
 * directory as it is (without `.git`), anything else fetched through the
 * buildpack cache, which copies its entry straight to the same place.
 */
export async function prepareBuildpack(spec: string, opts: ResolveOptions): Promise<Buildpack> {
  counter += 1;
  const slot = (name: string) =>
    path.join(opts.workDir, 'buildpacks', `${counter}-${name.replace(/[^A-Za-z0-9._-]/g, '_') || 'buildpack'}`);
  if (await isDir(spec)) {
    // A composite CNB has buildpack.toml and no bin/.
    const composite = await stat(path.join(spec, 'buildpack.toml')).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!composite && !(await isDir(path.join(spec, 'bin')))) {
      throw new UserError(
        `buildpack ${spec} has no bin/ directory: a buildpack needs bin/compile (or buildpack.toml, for a Cloud Native Buildpack)`,
      );
    }
    const name = path.basename(path.resolve(spec));
    if (opts.deferLocalCopy) return { name, dir: path.resolve(spec), origin: spec };
    const dir = slot(name);
    await copyTree(spec, dir, { skip: (rel) => path.basename(rel) === '.git' });
    return { name, dir, origin: spec };
  }
  const parsed = parseBuildpackSpec(spec);
  const fetched = await resolveBuildpack(spec, { cacheDir: opts.cacheRoot, into: slot(parsed.name) });
  const version = fetched.commit || fetched.sha256 ? { commit: fetched.commit, sha256: fetched.sha256 } : undefined;
  return { name: fetched.name, dir: fetched.dir, origin: displayUrl(spec), ...(version ? { version } : {}) };
}

/** The dir a chosen buildpack's scripts run from: `dir` itself when it is a working copy already, else a copy. */
export async function workingCopy(dir: string, opts: ResolveOptions): Promise<string> {
  const workspace = path.join(opts.workDir, 'buildpacks') + path.sep;
  if (dir.startsWith(workspace)) return dir;
  counter += 1;
  const copy = path.join(workspace, `${counter}-${path.basename(dir).replace(/[^A-Za-z0-9._-]/g, '_') || 'buildpack'}`);
  await copyTree(dir, copy, { skip: (rel) => path.basename(rel) === '.git' });
  return copy;
}
