/**
 * What the build's outputs need, checked before any buildpack runs: a target
 * that cannot be written, a wrong run image or a bad image destination fails
 * in a second, not after a ten-minute compile. The run image read here is
 * the one the export uses.
 */
import path from 'node:path';
import { checkWritableTarget } from '../../shared/fs.js';
import { type ExportPlan, planExport } from '../image/export.js';
import type { ImageFlags } from '../outputs/image-flags.js';

export interface OutputTargets {
  output?: string;
  summary?: string;
  image?: ImageFlags;
}

/**
 * Checks every file target; with --image, returns the plan (run image read): close it when done.
 * App layers are kept between builds under `<cacheRoot>/layers`.
 */
export async function preflight(targets: OutputTargets, env: NodeJS.ProcessEnv, cacheRoot?: string): Promise<ExportPlan | undefined> {
  if (targets.output) await checkWritableTarget(targets.output, '-o');
  if (targets.image?.layer) await checkWritableTarget(targets.image.layer, '--layer');
  if (targets.summary) await checkWritableTarget(targets.summary, '--summary');
  const flags = targets.image;
  if (!flags?.image || !flags.runImage) return undefined;
  return planExport(flags.image, flags.runImage, {
    platform: flags.platform,
    appUid: flags.appUid,
    appGid: flags.appGid,
    insecureRegistries: flags.insecureRegistries,
    registryMirrors: flags.registryMirrors,
    env,
    layerCacheDir: cacheRoot ? path.join(cacheRoot, 'layers') : undefined,
  });
}
