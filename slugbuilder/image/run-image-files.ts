/**
 * What the app image's launcher needs from a run image: /bin/bash (the
 * launcher layer is bash), and the programs the app's processes name. Read
 * from the run image's layers (bottom up, whiteouts applied) for an image on
 * this machine; a registry image's layers are not downloaded just for this,
 * so a registry run image is not checked.
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { UserError } from '../../shared/errors.js';
import type { SourceImage } from './image-source.js';

/** The paths of a run image (no leading slash) and its symlinks' targets. */
export interface RunImageFiles {
  files: Set<string>;
  links: Map<string, string>;
  /** The run image's PATH, from its config. */
  pathDirs: string[];
}

async function readLayer(blob: Readable, into: RunImageFiles): Promise<void> {
  const parser = new Parser({
    onReadEntry: (e: ReadEntry) => {
      const name = e.path.replace(/^\.?\//, '').replace(/\/$/, '');
      const base = path.posix.basename(name);
      if (base.startsWith('.wh.')) {
        const gone = path.posix.join(path.posix.dirname(name), base.slice(4));
        // Deleting from a Set while iterating it is safe: no copy of every path per whiteout.
        for (const f of into.files) if (f === gone || f.startsWith(`${gone}/`)) into.files.delete(f);
        into.links.delete(gone);
      } else if (e.type !== 'Directory') {
        into.files.add(name);
        if (e.type === 'SymbolicLink' && e.linkpath) into.links.set(name, e.linkpath);
        else into.links.delete(name);
      } else {
        into.links.delete(name);
      }
      e.resume();
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    blob.on('error', reject);
    blob.pipe(parser);
  });
}

/** The run image's files, or undefined for a registry image (not downloaded for this). */
export async function runImageFiles(run: SourceImage): Promise<RunImageFiles | undefined> {
  if (run.registry) return undefined;
  const env = run.config.config?.Env ?? [];
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const out: RunImageFiles = { files: new Set(), links: new Map(), pathDirs: pathVar.split(':').filter((d) => d.startsWith('/')) };
  for (const layer of run.manifest.layers) await readLayer(await run.openBlob(layer), out);
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
