/**
 * What the app image's launcher needs from a run image: /bin/bash (the
 * launcher layer is bash), and the programs the app's processes name. Read
 * from the run image's layers (bottom up, whiteouts and opaque dirs applied)
 * for an image on this machine, and kept by the image's digest; a registry
 * image's layers are not downloaded just for this, so a registry run image is
 * not checked.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { UserError } from '../../shared/errors.js';
import { readTextInside, writeFileInside } from '../../shared/fs.js';
import { digestHex } from './blobs.js';
import type { SourceImage } from './image-source.js';

/** The paths of a run image (no leading slash) and its symlinks' targets. */
export interface RunImageFiles {
  files: Set<string>;
  links: Map<string, string>;
  /** The run image's PATH, from its config. */
  pathDirs: string[];
}

/** What one layer adds, and what it hides of the layers below it. */
interface LayerChanges {
  files: Map<string, string | undefined>;
  dirs: string[];
  whiteouts: string[];
  opaque: string[];
}

async function readLayer(blob: Readable): Promise<LayerChanges> {
  const out: LayerChanges = { files: new Map(), dirs: [], whiteouts: [], opaque: [] };
  const parser = new Parser({
    onReadEntry: (e: ReadEntry) => {
      const name = e.path.replace(/^\.?\//, '').replace(/\/$/, '');
      const base = path.posix.basename(name);
      const dir = path.posix.dirname(name);
      if (base === '.wh..wh..opq') out.opaque.push(dir === '.' ? '' : dir);
      else if (base.startsWith('.wh.')) out.whiteouts.push(path.posix.join(dir, base.slice(4)));
      else if (e.type === 'Directory') out.dirs.push(name);
      else out.files.set(name, e.type === 'SymbolicLink' && e.linkpath ? e.linkpath : undefined);
      e.resume();
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    blob.on('error', reject);
    blob.pipe(parser);
  });
  return out;
}

/**
 * A layer over the ones below (the OCI layer rules): its whiteouts and opaque
 * markers hide only what lower layers had, whatever their order in its tar;
 * then its own entries are added.
 */
function applyLayer(into: RunImageFiles, layer: LayerChanges): void {
  // An opaque dir keeps itself and loses what is below it; a whiteout loses both.
  const hide = (gone: string, opaque: boolean) => {
    const under = gone === '' ? '' : `${gone}/`;
    const hidden = (p: string) => (!opaque && p === gone) || p.startsWith(under);
    // Deleting from a Set or Map while iterating it is safe: no copy of every path per whiteout.
    for (const f of into.files) if (hidden(f)) into.files.delete(f);
    for (const l of into.links.keys()) if (hidden(l)) into.links.delete(l);
  };
  for (const dir of layer.opaque) hide(dir, true);
  for (const gone of layer.whiteouts) hide(gone, false);
  for (const dir of layer.dirs) into.links.delete(dir);
  for (const [name, link] of layer.files) {
    into.files.add(name);
    if (link === undefined) into.links.delete(name);
    else into.links.set(name, link);
  }
}

/** The kept answer for one run image, by its manifest digest. */
interface CachedFiles {
  files: string[];
  links: Array<[string, string]>;
}

async function readCached(cacheDir: string, digest: string): Promise<CachedFiles | undefined> {
  try {
    // Read as a plain file inside the cache dir: a FIFO or a link out of it left there is not followed.
    const kept = JSON.parse((await readTextInside(cacheDir, `${digestHex(digest)}.json`)) ?? '') as CachedFiles;
    if (!Array.isArray(kept.files) || !Array.isArray(kept.links)) return undefined;
    if (
      !kept.files.every((f) => typeof f === 'string') ||
      !kept.links.every((l) => Array.isArray(l) && l.length === 2 && l.every((x) => typeof x === 'string'))
    )
      return undefined;
    return kept;
  } catch {
    return undefined;
  }
}

/**
 * The run image's files, or undefined for a registry image (not downloaded
 * for this). Reading them means gunzipping every layer, so the answer is kept
 * in `cacheDir` by the manifest's digest (which names every layer's digest).
 */
export async function runImageFiles(run: SourceImage, cacheDir?: string): Promise<RunImageFiles | undefined> {
  if (run.registry) return undefined;
  const env = run.config.config?.Env ?? [];
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const pathDirs = pathVar.split(':').filter((d) => d.startsWith('/'));
  const kept = cacheDir ? await readCached(cacheDir, run.digest) : undefined;
  if (kept) return { files: new Set(kept.files), links: new Map(kept.links), pathDirs };
  const out: RunImageFiles = { files: new Set(), links: new Map(), pathDirs };
  for (const layer of run.manifest.layers) applyLayer(out, await readLayer(await run.openBlob(layer)));
  if (cacheDir) {
    // A cache that cannot be written only costs the next build this read.
    const data: CachedFiles = { files: [...out.files], links: [...out.links] };
    await mkdir(cacheDir, { recursive: true })
      .then(() => writeFileInside(cacheDir, `${digestHex(run.digest)}.json`, JSON.stringify(data)))
      .catch(() => undefined);
  }
  return out;
}

/** Whether absolute `file` is in the run image, following symlinks on the way (merged /usr: bin -> usr/bin). */
export function hasFile(img: RunImageFiles, file: string): boolean {
  let rel = path.posix.normalize(file).replace(/^\/+/, '');
  for (let hops = 0; hops < 16; hops++) {
    const parts = rel.split('/');
    let resolved = false;
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const target = img.links.get(prefix);
      if (target === undefined) continue;
      const base = target.startsWith('/') ? target : path.posix.join(path.posix.dirname(`/${prefix}`), target);
      rel = path.posix.join(base, ...parts.slice(i)).replace(/^\/+/, '');
      resolved = true;
      break;
    }
    if (!resolved) return img.files.has(rel);
  }
  return false;
}

/** Refuses a run image without /bin/bash: the image's launcher is a bash script. */
export function requireBash(img: RunImageFiles | undefined, runRef: string): void {
  if (img && !hasFile(img, '/bin/bash'))
    throw new UserError(`run image ${runRef} has no /bin/bash: the image's launcher is a bash script; use a run image with bash`);
}

/** Whether `name` (no slash) is on the run image's PATH. */
export function onRunImagePath(img: RunImageFiles, name: string): boolean {
  return img.pathDirs.some((dir) => hasFile(img, path.posix.join(dir, name)));
}
