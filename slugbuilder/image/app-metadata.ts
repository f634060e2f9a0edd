/**
 * What the image writer takes from a built app's launch metadata
 * (shared/app/launch-metadata.ts; also in a slug given with --slug): the order of
 * the buildpacks, for the order of their launch layers, and the labels for the
 * image config. An app without CNBs has neither.
 */
import { readLaunchMetadata } from '../../shared/app/launch-metadata.js';
import { layersDirName } from '../../shared/app/layout.js';

/** The buildpacks' layers dir names (`/` as `_`), in chain order. */
export async function listedBuildpackDirs(appDir: string): Promise<string[]> {
  return ((await readLaunchMetadata(appDir))?.buildpacks ?? []).map((bp) => layersDirName(bp.id));
}

/** The labels as key -> value; a later entry with the same key wins. */
export async function readAppLabels(appDir: string): Promise<Record<string, string>> {
  const labels: Record<string, string> = {};
  for (const { key, value } of (await readLaunchMetadata(appDir))?.labels ?? []) labels[key] = value;
  return labels;
}
