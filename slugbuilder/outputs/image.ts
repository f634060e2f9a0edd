/**
 * The image outputs of a build: `--layer FILE` (the slug as an image layer)
 * and `--image REF` (that layer on the run image). Both use one layer,
 * written once: into the staged --layer file when there is one, else into a
 * temp dir for the image alone.
 */
import path from 'node:path';
import { makeTempDir, removeTemp, stageFile, type StagedFile } from '../../shared/fs.js';
import { log } from '../../shared/log.js';
import type { ImageFlags } from '../cli/image-flags.js';
import { appOwner, type AppOwner } from '../image/config.js';
import { assembleAppImage, logLayer, type ExportPlan } from '../image/export.js';
import { stageImage } from '../image/image-writer.js';
import { writeLayer, type LayerResult } from '../image/layer.js';
import type { Delivery, Output } from './deliver.js';

interface AppLayer {
  layer: LayerResult;
  /** The --layer file, when asked for. */
  staged?: StagedFile;
  /** A temp dir holding the layer when no --layer was asked for. */
  tempDir?: string;
}

/** The --layer and --image outputs the flags ask for; `plan` is set with --image (read before the build, closed by the caller). */
export function imageOutputs(flags: ImageFlags, plan: ExportPlan | undefined, mtime: Date): Output[] {
  // With --image the run image decides the owner; --layer alone uses the flags or 1000:1000.
  const owner: AppOwner = plan?.owner ?? appOwner(undefined, flags.appUid, flags.appGid);
  let made: Promise<AppLayer> | undefined;
  const appLayer = (appDir: string): Promise<AppLayer> => (made ??= makeLayer(appDir, flags.layer, owner, mtime));

  const outputs: Output[] = [];
  if (flags.layer) {
    outputs.push(async (result) => {
      const { layer, staged } = await appLayer(result.appDir);
      const s = staged!;
      return {
        summary: { layer: { path: s.target, digest: layer.digest, diffId: layer.diffId, size: layer.size, uid: owner.uid, gid: owner.gid } },
        irreversible: s.inPlace,
        commit: s.commit,
        discard: s.discard,
      };
    });
  }
  if (plan) {
    outputs.push(async (result): Promise<Delivery> => {
      const { layer, tempDir } = await appLayer(result.appDir);
      const dropTemp = async () => {
        if (tempDir) await removeTemp(tempDir);
      };
      try {
        const { built, summary } = assembleAppImage(plan, layer, { processTypes: result.processTypes, sourceVersion: result.sourceVersion, mtime });
        log.step(`Writing image ${plan.target.text}`);
        const staged = await stageImage(plan.target, built, plan.pool);
        return {
          summary: { image: summary },
          irreversible: staged.remote,
          commit: async () => {
            try {
              await staged.commit();
              log.step(`Image digest ${staged.digest}`);
            } finally {
              await dropTemp();
            }
          },
          discard: async () => {
            await staged.discard();
            await dropTemp();
          },
        };
      } catch (err) {
        await dropTemp();
        throw err;
      }
    });
  }
  return outputs;
}

async function makeLayer(appDir: string, named: string | undefined, owner: AppOwner, mtime: Date): Promise<AppLayer> {
  log.step('Writing the slug layer');
  let staged: StagedFile | undefined;
  let tempDir: string | undefined;
  let file: string;
  if (named) {
    staged = await stageFile(named, '--layer');
    file = staged.path;
  } else {
    tempDir = await makeTempDir('slugkit-layer-');
    file = path.join(tempDir, 'app-layer.tar.gz');
  }
  try {
    const layer = await writeLayer(appDir, { uid: owner.uid, gid: owner.gid, mtime, outFile: file });
    logLayer(layer, owner);
    return { layer, staged, tempDir };
  } catch (err) {
    await staged?.discard();
    if (tempDir) await removeTemp(tempDir);
    throw err;
  }
}
