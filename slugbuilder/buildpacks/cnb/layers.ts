/**
 * A Cloud Native Buildpack's layers: where they live, what comes back from
 * the cache before its bin/build, what its `<layer>.toml` files say after it,
 * and what is kept (in the cache, in the slug) once every buildpack has run.
 *
 * The app is built in place, so a buildpack's layers are
 * `<appDir>/.layers/<id with / as _>/<layer>` and a slug of the app dir
 * carries its launch layers. Between builds a buildpack's layers are kept in
 * `<cacheDir>/.cnb/<id with / as _>/` as `<layer>/` + `<layer>.toml` (with its
 * [types]) and `store.toml`. Cache layers come back with contents and
 * metadata; launch-only layers (launch, not cache) with their metadata only,
 * as the lifecycle restores them from the previous image. Their contents are
 * kept too, so a buildpack that reuses one (launch = true, no directory) gets
 * the previous build's copy, which the lifecycle would take from that image.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { buildpackLayersDir, LAYERS, layersDirName } from '../../../shared/app/layout.js';
import { copyTree } from '../../../shared/copy-tree.js';
import { UserError } from '../../../shared/errors.js';
import {
  checkNoLinksInside,
  exists,
  isDir,
  makeDirInside,
  readFileInside,
  readTextInside,
  removeInside,
  replaceWith,
  writeFileInside,
} from '../../../shared/fs.js';
import { parseToml, type TomlTable, toToml } from '../../../shared/toml.js';

export interface CnbRef {
  id: string;
  version: string;
  api: string;
}

export interface Layer {
  name: string;
  /** Absolute path of the layer directory (it may not exist). */
  dir: string;
  launch: boolean;
  build: boolean;
  cache: boolean;
  metadata: TomlTable;
}

/** Files in a buildpack's layers dir that are not layers. */
const RESERVED = new Set(['launch', 'build', 'store']);

export function layersRoot(appDir: string): string {
  return path.join(appDir, LAYERS);
}

/** `<appDir>/.layers/<id with / as _>`: the buildpack's $1 and CNB_LAYERS_DIR. */
export { buildpackLayersDir };

/** `<cacheDir>/.cnb/<id with / as _>`: the buildpack's layers kept between builds. */
export function buildpackCacheDir(cacheDir: string, id: string): string {
  return path.join(cacheDir, '.cnb', layersDirName(id));
}

/** How a CNB is named in messages: "buildpack ID@VERSION". */
export function cnbLabel(bp: CnbRef): string {
  return `buildpack ${bp.id}@${bp.version}`;
}

/**
 * A layers dir (`<app>/.layers/<id>` or `<cache>/.cnb/<id>`) as the dir it
 * lives in and the path below it, for shared/fs.ts's *Inside helpers: a
 * buildpack may make links anywhere, but slugkit never follows one out.
 */
export function insideOf(layersDir: string, name = ''): { root: string; rel: string; where: string } {
  const root = path.dirname(path.dirname(layersDir));
  const rel = path.join(path.basename(path.dirname(layersDir)), path.basename(layersDir), name);
  return { root, rel, where: path.basename(path.dirname(layersDir)) === '.cnb' ? 'the cache' : 'the app' };
}

/** Reads a TOML file of a layers dir; a link out of the app or cache fails in one line. */
async function readLayersToml(layersDir: string, name: string, bp: CnbRef): Promise<TomlTable | undefined> {
  const { root, rel, where } = insideOf(layersDir, name);
  const text = await readTextInside(root, rel, `${cnbLabel(bp)}: ${rel}`, where);
  return text === undefined ? undefined : parseToml(text, `${cnbLabel(bp)}: ${path.join(layersDir, name)}`);
}

/** Writes a file of a layers dir through a fresh temp file, never through a link. */
async function writeLayersFile(layersDir: string, name: string, text: string | Uint8Array): Promise<void> {
  const { root, rel } = insideOf(layersDir, name);
  await writeFileInside(root, rel, text);
}

/** Removes an entry of a layers dir: a link is unlinked, and a link above it refused. */
async function removeLayersEntry(layersDir: string, name: string): Promise<void> {
  const { root, rel } = insideOf(layersDir, name);
  await removeInside(root, rel);
}

/** A real directory, not a link to one: only those are copied into the cache or the app. */
async function isRealDir(p: string): Promise<boolean> {
  return lstat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Names of the `<layer>.toml` files in a layers dir (launch/build/store.toml left out), sorted. */
async function layerTomlNames(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.toml'))
    .map((e) => e.name.slice(0, -'.toml'.length))
    .filter((name) => name && !RESERVED.has(name))
    .sort(byName);
}

function flag(types: unknown, key: string, file: string, bp: CnbRef): boolean {
  if (types === undefined) return false;
  if (typeof types !== 'object' || types === null || Array.isArray(types)) {
    throw new UserError(`${cnbLabel(bp)}: ${file}: [types] must be a table`);
  }
  const value = (types as TomlTable)[key];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new UserError(`${cnbLabel(bp)}: ${file}: types.${key} must be true or false`);
  return value;
}

/** Reads one `<layer>.toml`; bad TOML fails with the file and line. */
async function readLayerToml(layersDir: string, name: string, bp: CnbRef): Promise<Layer> {
  const file = path.join(layersDir, `${name}.toml`);
  const toml = (await readLayersToml(layersDir, `${name}.toml`, bp)) ?? {};
  // Buildpack API 0.6 moved the flags under [types]; the lifecycle fails a build that still writes them at the top.
  const topFlags = ['launch', 'build', 'cache'].filter((k) => toml[k] !== undefined);
  if (topFlags.length > 0) {
    throw new UserError(
      `${cnbLabel(bp)}: ${file}: ${topFlags.map((k) => `${k} = ${JSON.stringify(toml[k])}`).join(', ')} at the top level is the pre-0.6 layer form: ` +
        `move ${topFlags.length > 1 ? 'them' : 'it'} under [types] (e.g. [types] launch = true)`,
    );
  }
  const metadata = toml.metadata;
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))) {
    throw new UserError(`${cnbLabel(bp)}: ${file}: [metadata] must be a table`);
  }
  return {
    name,
    dir: path.join(layersDir, name),
    launch: flag(toml.types, 'launch', file, bp),
    build: flag(toml.types, 'build', file, bp),
    cache: flag(toml.types, 'cache', file, bp),
    metadata: (metadata as TomlTable | undefined) ?? {},
  };
}

/** Every layer a buildpack's layers dir declares, by name. */
export async function readLayers(layersDir: string, bp: CnbRef): Promise<Layer[]> {
  const layers: Layer[] = [];
  for (const name of await layerTomlNames(layersDir)) layers.push(await readLayerToml(layersDir, name, bp));
  return layers;
}

/** The layer's SBOM files (`<layer>.sbom.<ext>`) in a layers dir, regular files only, sorted. */
async function layerSbomNames(dir: string, layer: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && e.name.startsWith(`${layer}.sbom.`) && e.name.endsWith('.json'))
    .map((e) => e.name)
    .sort(byName);
}

/** Copies a layer's SBOM files from one layers dir to another, never through a link. */
async function copyLayerSboms(from: string, to: string, layer: string, bp: CnbRef): Promise<void> {
  for (const name of await layerSbomNames(from, layer)) {
    const { root, rel, where } = insideOf(from, name);
    const bytes = await readFileInside(root, rel, `${cnbLabel(bp)}: ${rel}`, where);
    if (bytes) await writeLayersFile(to, name, bytes);
  }
}

/** Writes `<layer>.toml` as a buildpack finds a restored one: [metadata] only. */
async function writeMetadataOnly(layersDir: string, name: string, metadata: TomlTable): Promise<void> {
  await writeLayersFile(layersDir, `${name}.toml`, Object.keys(metadata).length ? toToml({ metadata }) : '');
}

/**
 * Before a buildpack's bin/build: makes its layers dir and brings back from
 * the cache its store.toml, its cache layers (contents and metadata) and
 * the metadata of its launch-only layers. Returns the layers dir.
 */
export async function restoreLayers(opts: { appDir: string; cacheDir?: string; buildpack: CnbRef }): Promise<string> {
  const { buildpack: bp } = opts;
  const layersDir = buildpackLayersDir(opts.appDir, bp.id);
  await makeDirInside(opts.appDir, path.relative(opts.appDir, layersDir));
  if (!opts.cacheDir) return layersDir;
  const kept = buildpackCacheDir(opts.cacheDir, bp.id);
  if (!(await isRealDir(kept))) return layersDir;
  if (await exists(path.join(kept, 'store.toml'))) {
    // Read to check it, then written as it was.
    const store = await readLayersToml(kept, 'store.toml', bp);
    await writeLayersFile(layersDir, 'store.toml', store ? toToml(store) : '');
  }
  for (const layer of await readLayers(kept, bp)) {
    if (layer.cache) {
      if (!(await isRealDir(layer.dir))) continue;
      // An earlier buildpack may have left a link under this one's name.
      await removeLayersEntry(layersDir, layer.name);
      await copyTree(layer.dir, path.join(layersDir, layer.name), { preserveTimestamps: true });
    } else if (!layer.launch) {
      continue;
    }
    await writeMetadataOnly(layersDir, layer.name, layer.metadata);
    // Its SBOM comes back with it, as the lifecycle's restorer brings it back.
    await copyLayerSboms(kept, layersDir, layer.name, bp);
  }
  return layersDir;
}

/**
 * After a buildpack's bin/build: reads its layers. A layer with no type set
 * is dropped (its directory removed). A launch layer left without a
 * directory reuses the previous build's copy, or fails when there is none.
 * Returns the layers that are kept, by name.
 */
export async function collectLayers(opts: { layersDir: string; cacheDir?: string; buildpack: CnbRef }): Promise<Layer[]> {
  const { buildpack: bp, layersDir } = opts;
  const kept: Layer[] = [];
  for (const layer of await readLayers(layersDir, bp)) {
    if (!layer.launch && !layer.build && !layer.cache) {
      await removeLayersEntry(layersDir, layer.name);
      continue;
    }
    if (layer.launch && !(await isDir(layer.dir))) {
      const previous = opts.cacheDir ? path.join(buildpackCacheDir(opts.cacheDir, bp.id), layer.name) : undefined;
      if (!previous || !(await isRealDir(previous))) {
        throw new UserError(
          `${cnbLabel(bp)}: launch layer ${layer.name} has no directory and no earlier build to reuse it from; create ${layer.dir}`,
        );
      }
      await removeLayersEntry(layersDir, layer.name);
      await copyTree(previous, layer.dir, { preserveTimestamps: true });
    }
    kept.push(layer);
  }
  return kept;
}

/** The build layers' directories, by name: what the buildpacks after this one see. */
export function buildLayerDirs(layers: readonly Layer[]): string[] {
  return layers.filter((l) => l.build).map((l) => l.dir);
}

/** Saves a buildpack's cache and launch layers (contents and full `<layer>.toml`) and store.toml. */
async function saveToCache(layersDir: string, cacheDir: string, bp: CnbRef): Promise<void> {
  const target = buildpackCacheDir(cacheDir, bp.id);
  const next = `${target}.next`;
  const nextRel = path.relative(cacheDir, next);
  await removeInside(cacheDir, nextRel);
  await makeDirInside(cacheDir, nextRel);
  for (const layer of await readLayers(layersDir, bp)) {
    // A layer dir that is a link is not followed: its target is not the buildpack's to keep.
    if (!(layer.cache || layer.launch) || !(await isRealDir(layer.dir))) continue;
    await copyTree(layer.dir, path.join(next, layer.name), { preserveTimestamps: true });
    const types = { launch: layer.launch, build: layer.build, cache: layer.cache };
    await writeLayersFile(next, `${layer.name}.toml`, toToml({ types, metadata: layer.metadata }));
    await copyLayerSboms(layersDir, next, layer.name, bp);
  }
  const store = await readLayersToml(layersDir, 'store.toml', bp);
  if (store) await writeLayersFile(next, 'store.toml', toToml(store));
  await removeInside(cacheDir, path.relative(cacheDir, target));
  await checkNoLinksInside(cacheDir, path.relative(cacheDir, target));
  await replaceWith(next, target);
}

/** Leaves only launch.toml and the launch layers (directory and `<layer>.toml`) in a layers dir. */
async function keepLaunchOnly(layersDir: string, bp: CnbRef): Promise<void> {
  const keep = new Set(['launch.toml']);
  for (const layer of await readLayers(layersDir, bp)) {
    if (!layer.launch) continue;
    keep.add(layer.name);
    keep.add(`${layer.name}.toml`);
  }
  for (const name of await readdir(layersDir).catch(() => [] as string[])) {
    if (!keep.has(name)) await removeLayersEntry(layersDir, name);
  }
}

/**
 * Once every buildpack of the build has run (build layers feed the later
 * ones, so nothing is removed before): saves each buildpack's cache and
 * launch layers and store.toml to the cache, drops the kept layers of
 * buildpacks no longer in the build, removes everything but launch layers
 * and launch.toml from the app. (The runner's metadata.toml is written
 * after the release, metadata.ts.)
 */
export async function finalizeLayers(opts: { appDir: string; cacheDir?: string; buildpacks: readonly CnbRef[] }): Promise<void> {
  if (opts.cacheDir) {
    for (const bp of opts.buildpacks) await saveToCache(buildpackLayersDir(opts.appDir, bp.id), opts.cacheDir, bp);
    const ran = new Set(opts.buildpacks.map((bp) => layersDirName(bp.id)));
    const cnbCache = path.join(opts.cacheDir, '.cnb');
    for (const name of await readdir(cnbCache).catch(() => [] as string[])) {
      if (!ran.has(name)) await removeInside(opts.cacheDir, path.join('.cnb', name));
    }
  }
  for (const bp of opts.buildpacks) await keepLaunchOnly(buildpackLayersDir(opts.appDir, bp.id), bp);
}
