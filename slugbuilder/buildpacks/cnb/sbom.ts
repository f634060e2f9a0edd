/**
 * The SBOM files a Cloud Native Buildpack writes (Buildpack API 0.7 on):
 * `<layers>/<layer>.sbom.<ext>`, `launch.sbom.<ext>` and `build.sbom.<ext>`,
 * with <ext> `cdx.json`, `spdx.json` or `syft.json`. Read right after the
 * buildpack's bin/build (before a later buildpack could touch them), sorted
 * by name, sorted into launch/build/cache by the lifecycle's rules, and checked against the media types
 * its buildpack.toml `sbom-formats` declares: an unknown extension or an
 * undeclared type fails the build, as the lifecycle fails it.
 *
 * Where they end up (slugbuilder/sbom/layout.ts): launch ones in the app
 * (the slug and the image carry them), build and cache ones beside the build
 * for --sbom-output-dir.
 */
import { readdir } from 'node:fs/promises';
import { UserError } from '../../../shared/errors.js';
import { readFileInside } from '../../../shared/fs.js';
import { type CnbRef, cnbLabel, insideOf, type Layer } from './layers.js';

/** Media type of each SBOM file extension, as the spec lists them. */
export const SBOM_MEDIA_TYPES = {
  'cdx.json': 'application/vnd.cyclonedx+json',
  'spdx.json': 'application/spdx+json',
  'syft.json': 'application/vnd.syft+json',
} as const;

export type SbomExt = keyof typeof SBOM_MEDIA_TYPES;

/** Which tree of `<layers>/sbom/` a file goes to: the image, the build, or the cache. */
export type SbomKind = 'launch' | 'build' | 'cache';

export interface SbomFile {
  buildpackId: string;
  /** The layer it describes; unset for launch.sbom.* and build.sbom.*. */
  layer?: string;
  kind: SbomKind;
  ext: SbomExt;
  bytes: Buffer;
}

/** `sbom.cdx.json`: the name the lifecycle gives a file in `<layers>/sbom/<kind>/<bp>/[<layer>/]`. */
export function sbomFileName(ext: SbomExt): string {
  return `sbom.${ext}`;
}

function extOf(name: string): SbomExt | undefined {
  return (Object.keys(SBOM_MEDIA_TYPES) as SbomExt[]).find((ext) => name.endsWith(`.sbom.${ext}`));
}

/** The bare type of a declared media type (`application/spdx+json; version=2.2` -> `application/spdx+json`). */
function bareType(declared: string): string {
  return declared.split(';')[0].trim().toLowerCase();
}

/**
 * The SBOM files of one buildpack's layers dir, after its bin/build. A layer
 * SBOM goes with its layer's types (launch -> launch, else build, and cache
 * as well when the layer is cached); one of a layer the buildpack did not
 * keep is ignored, as the lifecycle ignores it.
 */
export async function collectSboms(opts: {
  layersDir: string;
  layers: readonly Layer[];
  buildpack: CnbRef;
  /** buildpack.toml `sbom-formats`. */
  formats: readonly string[];
}): Promise<SbomFile[]> {
  const { buildpack: bp } = opts;
  const entries = await readdir(opts.layersDir, { withFileTypes: true }).catch(() => []);
  const names = entries
    .filter((e) => /^.+\.sbom\..+\.json$/.test(e.name))
    .map((e) => e.name)
    .sort();
  const declared = new Set(opts.formats.map(bareType));
  const out: SbomFile[] = [];
  for (const name of names) {
    // The lifecycle's rule: the layer is the name up to the first dot.
    const owner = name.slice(0, name.indexOf('.'));
    const kinds: Array<{ kind: SbomKind; layer?: string }> = [];
    if (owner === 'launch' || owner === 'build') kinds.push({ kind: owner });
    else {
      const layer = opts.layers.find((l) => l.name === owner);
      if (!layer) continue;
      kinds.push({ kind: layer.launch ? 'launch' : 'build', layer: owner });
      if (layer.cache) kinds.push({ kind: 'cache', layer: owner });
    }
    const ext = extOf(name);
    if (!ext)
      throw new UserError(
        `${cnbLabel(bp)}: ${name} is not an SBOM format the spec knows: name it ${owner}.sbom.cdx.json, .sbom.spdx.json or .sbom.syft.json`,
      );
    const mediaType = SBOM_MEDIA_TYPES[ext];
    if (!declared.has(mediaType)) {
      throw new UserError(
        `${cnbLabel(bp)}: wrote ${name}, but its buildpack.toml does not declare ${mediaType}: add it to [buildpack] sbom-formats`,
      );
    }
    const bytes = await readSbom(opts.layersDir, name, bp);
    if (!bytes) continue;
    for (const k of kinds) out.push({ buildpackId: bp.id, ...k, ext, bytes });
  }
  return out;
}

/** Reads the file without following a link out of the app. */
async function readSbom(layersDir: string, name: string, bp: CnbRef): Promise<Buffer | undefined> {
  const { root, rel, where } = insideOf(layersDir, name);
  return readFileInside(root, rel, `${cnbLabel(bp)}: ${rel}`, where);
}
