/**
 * How an app image's app is cut into layers, so a code-only change pushes
 * only the small top layer. The rule, in layer order:
 *
 *  1. the dependency trees buildpacks make, at the top of the app, in the
 *     order of DEPENDENCY_TREES, whichever buildpack made them;
 *  2. every CNB launch layer `.layers/<bp>/<layer>/` whose `<layer>.toml`
 *     says `[types] launch = true`: buildpacks in the order of
 *     `.layers/config/metadata.toml` [[buildpacks]], then any others by name;
 *     a buildpack's layers by name;
 *  3. the rest of the app (its code, the `<layer>.toml`, launch.toml and
 *     metadata.toml files, and any tree above that is empty or not a real
 *     directory).
 *
 * A tree gets its own layer only when it is a directory (no symlink on the
 * way) with at least one entry. Each layer repeats the directory entries
 * above its tree with the same owner, mode and mtime, so the layers never
 * disagree and unchanged content gives an unchanged digest.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { LAYERS, SBOM } from '../../shared/app/layout.js';
import { readTextInside } from '../../shared/fs.js';
import { parseToml } from '../../shared/toml.js';
import { listedBuildpackDirs } from './app-metadata.js';
import type { LayerResult } from './layer.js';
import { writeLayerCached } from './layer.js';
import type { LayerCache } from './layer-cache.js';

export const DEPENDENCY_TREES = ['.apt', '.heroku/node', '.heroku/python', 'vendor/bundle', 'node_modules'] as const;

/** One layer of the app: `tree` relative to the app dir, '' for the rest of the app. */
export interface AppLayerPart {
  tree: string;
  kind: 'dependencies' | 'launch layer' | 'app';
}

export interface AppLayer extends LayerResult {
  /** Path inside the image: /app, /app/node_modules, /app/.layers/example_node/node. */
  imagePath: string;
  kind: AppLayerPart['kind'] | 'sbom';
  /** Taken from the layer cache rather than compressed. */
  cached?: boolean;
  /** Made from the slug's stream, never unpacked (slug-layers.ts). */
  fromSlug?: boolean;
}

export const IMAGE_APP_DIR = '/app';

export function imagePathOf(tree: string): string {
  return tree ? `${IMAGE_APP_DIR}/${tree}` : IMAGE_APP_DIR;
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** A real directory (every component of `rel` a directory, not a symlink) holding at least one entry. */
async function nonEmptyTree(appDir: string, rel: string): Promise<boolean> {
  let at = appDir;
  for (const part of rel.split('/')) {
    at = path.join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st?.isDirectory()) return false;
  }
  return (await readdir(at)).length > 0;
}

async function readToml(appDir: string, rel: string): Promise<Record<string, unknown> | undefined> {
  // The builder checked these files; one that no longer parses (or links out of the app) only loses its own layer.
  try {
    const text = await readTextInside(appDir, rel);
    return text === undefined ? undefined : parseToml(text, path.join(appDir, rel));
  } catch {
    return undefined;
  }
}

async function launchLayers(appDir: string): Promise<string[]> {
  const layersDir = path.join(appDir, LAYERS);
  if (!(await nonEmptyTree(appDir, LAYERS))) return [];
  const dirs = (await readdir(layersDir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && e.name !== 'config' && e.name !== 'sbom')
    .map((e) => e.name);
  const listed = (await listedBuildpackDirs(appDir).catch(() => [])).filter(
    (name, i, all) => dirs.includes(name) && all.indexOf(name) === i,
  );
  const order = [...listed, ...dirs.filter((d) => !listed.includes(d)).sort(byBytes)];
  const trees: string[] = [];
  for (const bp of order) {
    const names = (await readdir(path.join(layersDir, bp))).sort(byBytes);
    for (const name of names) {
      if (!name.endsWith('.toml') || ['launch.toml', 'build.toml', 'store.toml'].includes(name)) continue;
      const layer = name.slice(0, -'.toml'.length);
      const toml = await readToml(appDir, path.join(LAYERS, bp, name));
      const types = toml?.types as Record<string, unknown> | undefined;
      if (types?.launch !== true) continue;
      const tree = `.layers/${bp}/${layer}`;
      if (await nonEmptyTree(appDir, tree)) trees.push(tree);
    }
  }
  return trees;
}

/**
 * The layers of `appDir` by the rule above; the last is always the rest of the app.
 * `streamed`: dependency trees already made into layers from a slug (slug-layers.ts), absent from `appDir`.
 */
export async function planAppLayers(appDir: string, streamed?: ReadonlyMap<string, unknown>): Promise<AppLayerPart[]> {
  const parts: AppLayerPart[] = [];
  for (const tree of DEPENDENCY_TREES)
    if (streamed?.has(tree) || (await nonEmptyTree(appDir, tree))) parts.push({ tree, kind: 'dependencies' });
  for (const tree of await launchLayers(appDir)) parts.push({ tree, kind: 'launch layer' });
  parts.push({ tree: '', kind: 'app' });
  return parts;
}

/** What packTree leaves out for one part: outside its tree, or (for the rest) the other parts' trees. */
export function excludeFor(part: AppLayerPart, parts: readonly AppLayerPart[]): (rel: string) => boolean {
  if (part.tree === '') {
    // The launch SBOMs go into the image's SBOM layer (sbom-layer.ts), not the app's.
    const split = new Set([...parts.map((p) => p.tree).filter(Boolean), SBOM]);
    return (rel) => split.has(rel);
  }
  const tree = part.tree;
  // Keep the directories above the tree and everything in it.
  return (rel) => !(rel === tree || tree.startsWith(rel + '/') || rel.startsWith(tree + '/'));
}

export interface AppLayersOptions {
  uid: number;
  gid: number;
  mtime: Date;
  /** Directory the layer files go into (a temp dir of the caller's). */
  outDir: string;
  /** Where compressed layers are kept between builds; none: every layer is compressed. */
  cache?: LayerCache;
  /** Dependency layers made from the slug's stream (slug-layers.ts), by tree: taken as they are. */
  streamed?: ReadonlyMap<string, LayerResult & { cached: boolean }>;
}

/** Write every layer of the app into `outDir`, in image order. */
export async function writeAppLayers(appDir: string, opts: AppLayersOptions): Promise<AppLayer[]> {
  const parts = await planAppLayers(appDir, opts.streamed);
  const out: AppLayer[] = [];
  for (const [i, part] of parts.entries()) {
    const made = part.tree ? opts.streamed?.get(part.tree) : undefined;
    const layer =
      made ??
      (await writeLayerCached(
        appDir,
        {
          uid: opts.uid,
          gid: opts.gid,
          mtime: opts.mtime,
          outFile: path.join(opts.outDir, `app-layer-${i}.tar.gz`),
          exclude: excludeFor(part, parts),
        },
        opts.cache,
      ));
    out.push({ ...layer, imagePath: imagePathOf(part.tree), kind: part.kind, ...(made && { fromSlug: true }) });
  }
  return out;
}
