/**
 * Dropping the blobs a layout's index stopped reaching, as `umoci gc` does,
 * after a tag moved (a rebase, a rebuild under the same tag). Only blobs the
 * index reached before the change and no longer reaches are removed: a blob
 * another tag reaches stays, and so does one nothing ever reached, which may
 * be another writer's, staged before it tags.
 */
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { removeInside } from '../../shared/fs.js';
import type { Descriptor, ImageIndex } from './blobs.js';
import { INDEX_TYPES, MEDIA } from './media-types.js';
import type { OciLayout } from './oci-layout.js';

/** Layers are never documents; anything else small enough is read to find what it points at. */
const LAYER_TYPES = new Set<string>([MEDIA.oci.layerGzip, MEDIA.oci.layerTar, MEDIA.docker.layerGzip, MEDIA.docker.layerTar]);
const MAX_DOCUMENT = 4 * 1024 * 1024;

/** The descriptors a manifest or index document names (config, layers, manifests, subject, blobs). */
function childrenOf(doc: unknown): Descriptor[] {
  if (typeof doc !== 'object' || doc === null) return [];
  const d = doc as Record<string, unknown>;
  const list = [d.config, d.subject, ...[d.layers, d.manifests, d.blobs].flatMap((v) => (Array.isArray(v) ? v : []))];
  return list.filter(
    (x): x is Descriptor =>
      typeof x === 'object' && x !== null && typeof (x as Descriptor).digest === 'string' && typeof (x as Descriptor).size === 'number',
  );
}

function isDocument(desc: Descriptor): boolean {
  if (LAYER_TYPES.has(desc.mediaType)) return false;
  return INDEX_TYPES.includes(desc.mediaType) || desc.size <= MAX_DOCUMENT;
}

/**
 * Every digest `index` reaches. `strict`: a document that cannot be read
 * fails the walk (what it points at is unknown, so nothing may go);
 * otherwise it is only left unexplored.
 */
export async function reachable(layout: OciLayout, index: ImageIndex, strict: boolean): Promise<Set<string>> {
  const seen = new Set<string>();
  const queue = [...index.manifests];
  for (let desc = queue.shift(); desc; desc = queue.shift()) {
    if (seen.has(desc.digest)) continue;
    seen.add(desc.digest);
    if (!isDocument(desc)) continue;
    let doc: unknown;
    try {
      doc = JSON.parse((await layout.readDocument(desc)).toString('utf8'));
    } catch (err) {
      // A blob that is not JSON (a config in an unknown type is still JSON; a binary artifact is not) points at nothing.
      if (err instanceof SyntaxError) continue;
      if (strict) throw err;
      continue;
    }
    queue.push(...childrenOf(doc));
  }
  return seen;
}

/** Removes the blobs `before` reached that `after` does not; returns their digests. */
export async function removeUnreached(layout: OciLayout, before: Set<string>, after: ImageIndex): Promise<string[]> {
  const still = await reachable(layout, after, true);
  const removed: string[] = [];
  for (const digest of [...before].sort()) {
    if (still.has(digest)) continue;
    const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
    if (!m) continue;
    const rel = path.join('blobs', 'sha256', m[1]);
    const st = await lstat(path.join(layout.dir, rel)).catch(() => undefined);
    if (!st) continue;
    await removeInside(layout.dir, rel, `blob ${digest}`);
    removed.push(digest);
  }
  return removed;
}
