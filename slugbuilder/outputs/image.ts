/**
 * The image outputs of a build: `--layer FILE` (the whole slug as one image
 * layer) and `--image REF` (the app on the run image, in the layers
 * app-layers.ts splits it into). When the split leaves the app in one layer,
 * that layer is the --layer file's bytes and is written once.
 */
import path from 'node:path';
import { UserError } from '../../shared/errors.js';
import { checkWritableTarget, makeTempDir, removeTemp, type StagedFile, stageFile } from '../../shared/fs.js';
import { log } from '../../shared/log.js';
import type { BuildResult } from '../build.js';
import { type AppLayer, imagePathOf, planAppLayers, writeAppLayers } from '../image/app-layers.js';
import { readAppLabels } from '../image/app-metadata.js';
import { readCnbAppInfo } from '../image/cnb-labels.js';
import { type AppOwner, appOwner, RESERVED_LABEL_PREFIX } from '../image/config.js';
import { assembleAppImage, type ExportPlan, logAppLayers, logLayer, planExport } from '../image/export.js';
import { stageImage } from '../image/image-writer.js';
import { writeLauncherLayer } from '../image/launcher-layer.js';
import { type LayerResult, writeLayer } from '../image/layer.js';
import { describeReference } from '../image/reference.js';
import { warnMissingCommands } from '../image/run-image-check.js';
import { hasSbomTree, withSbomLayer } from '../image/sbom-layer.js';
import type { Delivery, Output, OutputKind } from './deliver.js';
import { type ImageFlags, type ImageFlagValues, parseImageFlags } from './image-flags.js';

/**
 * --layer and --image: checked before the build (the --layer file writable;
 * the run image read and the --image destination checked, kept open as the
 * export plan until the build ends).
 */
export const imageKind: OutputKind<ImageFlagValues> = {
  parse(v, { builderRunImage }) {
    // The builder's run image is the default base for --image.
    const flags = parseImageFlags(v.image && !v['run-image'] && builderRunImage ? { ...v, 'run-image': builderRunImage } : v);
    if (!flags) return undefined;
    let plan: ExportPlan | undefined;
    return {
      flag: flags.image ? '--image' : '--layer',
      async check({ env, cacheRoot }) {
        if (flags.layer) await checkWritableTarget(flags.layer, '--layer');
        if (!flags.image || !flags.runImage) return;
        plan = await planExport(flags.image, flags.runImage, {
          platform: flags.platform,
          appUid: flags.appUid,
          appGid: flags.appGid,
          insecureRegistries: flags.insecureRegistries,
          registryMirrors: flags.registryMirrors,
          env,
          // App layers are kept between builds.
          layerCacheDir: path.join(cacheRoot, 'layers'),
        });
      },
      outputs: (mtime) => imageOutputs(flags, plan, mtime),
      plan: () => plan,
      // The whole-app --layer needs every tree on disk.
      slugLayers: (mtime) =>
        plan && !flags.layer ? { uid: plan.owner.uid, gid: plan.owner.gid, mtime, cache: plan.layerCache } : undefined,
      close: async () => plan?.close(),
    };
  },
};

interface WholeLayer {
  layer: LayerResult;
  /** The --layer file, when asked for. */
  staged?: StagedFile;
  /** A temp dir holding the layer when no --layer was asked for. */
  tempDir?: string;
}

/** The app's labels (the CNBs' launch.toml [[labels]], kept in metadata.toml); slugkit's own prefix refused with a warning. */
async function labelsOf(result: BuildResult): Promise<Record<string, string>> {
  const labels = await readAppLabels(result.appDir);
  for (const key of Object.keys(labels)) {
    if (!key.startsWith(RESERVED_LABEL_PREFIX)) continue;
    log.warn(`Warning: label ${key} is left out: ${RESERVED_LABEL_PREFIX}* labels are slugkit's own`);
    delete labels[key];
  }
  return labels;
}

/** The --layer and --image outputs the flags ask for; `plan` is set with --image (read before the build, closed by the caller). */
export function imageOutputs(flags: ImageFlags, plan: ExportPlan | undefined, mtime: Date): Output[] {
  // With --image the run image decides the owner; --layer alone uses the flags or 1000:1000.
  const owner: AppOwner = plan?.owner ?? appOwner(undefined, flags.appUid, flags.appGid);
  let made: Promise<WholeLayer> | undefined;
  const wholeLayer = (appDir: string): Promise<WholeLayer> => (made ??= makeWholeLayer(appDir, flags.layer, owner, mtime));

  const outputs: Output[] = [];
  if (flags.layer) {
    outputs.push(async (result) => {
      const { layer, staged } = await wholeLayer(result.appDir);
      const s = staged!;
      return {
        summary: {
          layer: { path: s.target, digest: layer.digest, diffId: layer.diffId, size: layer.size, uid: owner.uid, gid: owner.gid },
        },
        irreversible: s.inPlace,
        commit: s.commit,
        discard: s.discard,
      };
    });
  }
  if (plan) {
    outputs.push(async (result: BuildResult): Promise<Delivery> => {
      let tempDir: string | undefined;
      const dropTemp = async () => {
        if (tempDir) await removeTemp(tempDir);
      };
      try {
        const labels = await labelsOf(result);
        let layers: AppLayer[];
        const parts = await planAppLayers(result.appDir, result.slugLayers?.layers);
        if (parts.length === 1 && flags.layer && !(await hasSbomTree(result.appDir))) {
          const whole = await wholeLayer(result.appDir);
          tempDir = whole.tempDir;
          layers = [{ ...whole.layer, imagePath: imagePathOf(''), kind: 'app' }];
        } else {
          log.step('Writing the app layers');
          tempDir = await makeTempDir('slugkit-layers-');
          layers = await writeAppLayers(result.appDir, {
            uid: owner.uid,
            gid: owner.gid,
            mtime,
            outDir: tempDir,
            cache: result.layerCacheTrusted ? plan.layerCache : plan.layerCache?.proving(),
            streamed: result.slugLayers?.layers,
          });
          layers = await withSbomLayer(result.appDir, layers, { uid: owner.uid, gid: owner.gid, mtime, outDir: tempDir });
          logAppLayers(layers, owner);
        }
        const defaultProcess = imageDefaultProcess(result, flags.defaultProcess);
        warnMissingCommands(result, plan);
        tempDir ??= await makeTempDir('slugkit-layers-');
        const launcher = await writeLauncherLayer(path.join(tempDir, 'launcher.tar.gz'));
        const { built, summary } = assembleAppImage(plan, layers, {
          launcher,
          defaultProcess,
          processTypes: result.processTypes,
          labels,
          sourceVersion: result.sourceVersion,
          mtime,
          created: flags.creationTime,
          cnb: await readCnbAppInfo(result.appDir, result.processTypes, result.buildpacks),
        });
        log.step(`Writing image ${describeReference(plan.target)}`);
        const staged = await stageImage(plan.target, built, plan.pool, flags.tags);
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

async function makeWholeLayer(appDir: string, named: string | undefined, owner: AppOwner, mtime: Date): Promise<WholeLayer> {
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

/** What the image's Cmd starts: --default-process, checked against the app's types, else the app's default. */
function imageDefaultProcess(result: BuildResult, flag: string | undefined): string {
  if (flag === undefined) return result.defaultProcess;
  const types = Object.keys(result.processTypes).sort();
  if (!types.includes(flag))
    throw new UserError(`--default-process ${flag}: this app has ${types.length ? types.join(', ') : 'no process types (add a Procfile)'}`);
  return flag;
}
