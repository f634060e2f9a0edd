/**
 * The image's SBOM layer, as the lifecycle's exporter writes it: the app's
 * launch SBOMs (`.layers/sbom/launch/`, sbom/layout.ts) at
 * `/layers/sbom/launch/<buildpack>/[<layer>/]sbom.<ext>`, in a layer of their
 * own whose diff_id the `io.buildpacks.lifecycle.metadata` label records
 * under `sbom` (cnb-labels.ts), which is where `pack sbom download` looks.
 * The app layers leave the tree out (app-layers.ts), so it is in the image
 * once. An app with no SBOM gets no such layer.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { SBOM } from '../../shared/app/layout.js';
import { compressTree } from '../slug.js';
import type { AppLayer } from './app-layers.js';

/** Where the layer's tree is in the image. */
export const SBOM_IMAGE_PATH = '/layers/sbom';

/** The app's launch SBOM tree is a real directory (no link on the way) with at least one entry. */
export async function hasSbomTree(appDir: string): Promise<boolean> {
  let at = appDir;
  for (const part of [...SBOM.split(path.sep), 'launch']) {
    at = path.join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st?.isDirectory()) return false;
  }
  return (await readdir(at)).length > 0;
}

/** Writes the SBOM layer into `outDir`; undefined when the app has no launch SBOM. */
export async function writeSbomLayer(
  appDir: string,
  opts: { uid: number; gid: number; mtime: Date; outDir: string },
): Promise<AppLayer | undefined> {
  if (!(await hasSbomTree(appDir))) return undefined;
  const file = path.join(opts.outDir, 'sbom-layer.tar.gz');
  const out = await compressTree(path.join(appDir, SBOM), file, {
    pack: {
      prefix: 'layers/sbom/',
      uid: opts.uid,
      gid: opts.gid,
      mtime: opts.mtime,
      exclude: (rel) => rel !== 'launch' && !rel.startsWith('launch/'),
    },
    what: 'the SBOM layer',
    hashTar: true,
  });
  return {
    path: file,
    digest: `sha256:${out.sha256}`,
    diffId: `sha256:${out.tarSha256}`,
    size: out.size,
    imagePath: SBOM_IMAGE_PATH,
    kind: 'sbom',
  };
}

/** The app's layers with the SBOM layer (if any) under the top one, so the rest of the app stays the top layer. */
export async function withSbomLayer(
  appDir: string,
  layers: AppLayer[],
  opts: { uid: number; gid: number; mtime: Date; outDir: string },
): Promise<AppLayer[]> {
  const sbom = await writeSbomLayer(appDir, opts);
  return sbom ? [...layers.slice(0, -1), sbom, ...layers.slice(-1)] : layers;
}
