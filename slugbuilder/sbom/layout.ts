/**
 * Where SBOM files go, in the lifecycle's layout: `<kind>/<buildpack id with
 * / as _>/[<layer>/]sbom.<ext>`, kind `launch`, `build` or `cache`.
 *
 * The launch tree lives in the app at `.layers/sbom/launch/` (shared/app/layout.ts:
 * builder-owned, so a source cannot plant one), so the slug carries it and the
 * image writer moves it into its own layer at `/layers/sbom/launch/`
 * (image/sbom-layer.ts). The build and cache trees are not part of the app:
 * they reach only --sbom-output-dir (outputs/sbom.ts).
 */
import path from 'node:path';
import { layersDirName, SBOM } from '../../shared/app/layout.js';
import { makeDirInside, removeInside, writeFileInside } from '../../shared/fs.js';
import { type SbomFile, sbomFileName } from '../buildpacks/cnb/sbom.js';

/** `launch/example_node/node/sbom.cdx.json`: a file's path below `sbom/`. */
export function sbomPath(f: Pick<SbomFile, 'kind' | 'buildpackId' | 'layer' | 'ext'>): string {
  return path.posix.join(f.kind, layersDirName(f.buildpackId), f.layer ?? '', sbomFileName(f.ext));
}

/** Writes `rel` (below the app's `.layers/sbom/`) through a fresh temp file, never through a link. */
export async function writeAppSbomFile(appDir: string, rel: string, bytes: Uint8Array | string): Promise<void> {
  const file = path.join(SBOM, rel);
  await makeDirInside(appDir, path.dirname(file));
  await writeFileInside(appDir, file, bytes);
}

/**
 * After the chain: the app's `.layers/sbom/` holds the launch SBOMs the CNBs
 * wrote and nothing else (a buildpack may have made one of its own).
 */
export async function writeLaunchSboms(appDir: string, files: readonly SbomFile[]): Promise<void> {
  await removeInside(appDir, SBOM);
  for (const f of files) if (f.kind === 'launch') await writeAppSbomFile(appDir, sbomPath(f), f.bytes);
}
