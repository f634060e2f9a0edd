/**
 * Rebase: put an app image on a new run image without rebuilding it, the
 * way CNB's rebase does. The labels written at build time name the old run
 * image's top layer; every layer up to it is swapped for the new run image's
 * layers, the app layers above it are kept byte for byte, and only a new
 * config and manifest are written.
 */
import { UserError } from '../../shared/errors.js';
import { log } from '../../shared/log.js';
import { type HistoryEntry, type ImageConfig, type LayerBlob, type Platform, shortDigest } from './blobs.js';
import { CNB_LABELS, isRunImageLabel, rebasedLifecycleLabel, runImageIds } from './cnb-labels.js';
import { assembleImage, LABELS } from './config.js';
import { baseAnnotations, runLayers } from './export.js';
import { openImage, type SourceImage } from './image-source.js';
import { checkImageTarget, familyFor, writeImage } from './image-writer.js';
import { formatPlatform } from './platform.js';
import { describeReference, type ImageReference } from './reference.js';
import { RegistryPool } from './registry.js';

export interface RebaseOptions {
  image: ImageReference;
  runImage: ImageReference;
  /** Default: `image` itself. */
  output?: ImageReference;
  platform?: Platform;
  insecureRegistries: string[];
  registryMirrors?: string[];
  env?: NodeJS.ProcessEnv;
}

export interface RebaseResult {
  digest: string;
  reference: string;
  appLayers: string[];
}

/** History entries above the run image: those after the base's last layer entry. */
function appHistory(config: ImageConfig, baseLayers: number, appLayers: number): HistoryEntry[] {
  const history = config.history ?? [];
  const layerEntries = history.filter((h) => !h.empty_layer).length;
  if (layerEntries !== config.rootfs.diff_ids.length) return history.slice(Math.max(0, history.length - appLayers));
  let seen = 0;
  for (let i = 0; i < history.length; i++) {
    if (!history[i].empty_layer) seen++;
    if (seen === baseLayers) return history.slice(i + 1);
  }
  return [];
}

/**
 * The app's labels on the new run image: slugkit's run-image labels, the
 * lifecycle label's runImage (as the lifecycle's rebaser updates it), and the
 * run image's own io.buildpacks.stack.* / base.* labels taken from the new one.
 */
function rebasedLabels(labels: Record<string, string>, next: SourceImage, newRef: ImageReference): Record<string, string> {
  const nextDiffIds = next.config.rootfs.diff_ids;
  const topLayer = nextDiffIds[nextDiffIds.length - 1];
  const out = Object.fromEntries(Object.entries(labels).filter(([k]) => !isRunImageLabel(k)));
  for (const [k, v] of Object.entries(next.config.config?.Labels ?? {})) if (isRunImageLabel(k)) out[k] = v;
  out[LABELS.runImageReference] = newRef.text;
  out[LABELS.runImageDigest] = next.digest;
  out[LABELS.runImageTopLayer] = topLayer;
  const lifecycle = rebasedLifecycleLabel(labels[CNB_LABELS.lifecycle], {
    topLayer,
    ...runImageIds(newRef, next.digest, next.manifest.config.digest),
  });
  if (lifecycle) out[CNB_LABELS.lifecycle] = lifecycle;
  return out;
}

export async function rebaseImage(opts: RebaseOptions): Promise<RebaseResult> {
  const imageRef = opts.image;
  const newRef = opts.runImage;
  const outRef = opts.output ?? opts.image;
  const platform = opts.platform;
  await checkImageTarget(outRef, '--image');
  const pool = new RegistryPool({
    insecureRegistries: opts.insecureRegistries,
    registryMirrors: opts.registryMirrors,
    env: opts.env ?? process.env,
  });

  log.step(`Reading image ${describeReference(imageRef)}`);
  const app = await openImage(imageRef, { platform, pool, role: 'image' });
  let next: SourceImage | undefined;
  try {
    const labels = app.config.config?.Labels ?? {};
    const topLayer = labels[LABELS.runImageTopLayer];
    if (!topLayer) {
      throw new UserError(
        `image ${imageRef.text} has no ${LABELS.runImageTopLayer} label: only images built by slugbuilder --run-image can be rebased`,
      );
    }
    const diffIds = app.config.rootfs.diff_ids;
    const top = diffIds.lastIndexOf(topLayer);
    if (top < 0)
      throw new UserError(
        `image ${imageRef.text}: its label names run-image layer ${topLayer}, which the image does not have; it was modified after the build`,
      );
    const appCount = diffIds.length - (top + 1);
    if (appCount === 0) throw new UserError(`image ${imageRef.text} has no app layers above its run image: nothing to rebase`);
    log.info(
      `${formatPlatform(app.config)}, run image ${shortDigest(labels[LABELS.runImageDigest] ?? 'unknown')}, ${top + 1} run image layers, ${appCount} app layer(s)`,
    );

    log.step(`Reading new run image ${describeReference(newRef)}`);
    const wanted = { os: app.config.os, architecture: app.config.architecture, variant: app.config.variant };
    next = await openImage(newRef, { platform: wanted, pool, role: 'run image' }).catch((err: unknown) => {
      // An index without our platform, or a single image of another one: say it as a rebase refusal.
      if (err instanceof UserError && /has no .* image|is .*, not /.test(err.message)) {
        throw new UserError(
          `cannot rebase ${imageRef.text} (${formatPlatform(app.config)}) onto ${newRef.text}: ${err.message.replace(/: (choose one with --platform|pick a run image.*)$/, '')}; the os and architecture must match`,
        );
      }
      throw err;
    });
    if (next.config.os !== app.config.os || next.config.architecture !== app.config.architecture) {
      throw new UserError(
        `cannot rebase ${imageRef.text} (${formatPlatform(app.config)}) onto ${newRef.text} (${formatPlatform(next.config)}): the os and architecture must match`,
      );
    }
    if (labels[LABELS.runImageDigest] === next.digest) log.info(`already on ${shortDigest(next.digest)}: writing it unchanged`);
    log.info(`${next.manifest.layers.length} run image layers, ${shortDigest(next.digest)}`);

    const nextDiffIds = next.config.rootfs.diff_ids;
    const config: ImageConfig = {
      ...app.config,
      os: next.config.os,
      architecture: next.config.architecture,
      rootfs: { type: 'layers', diff_ids: [...nextDiffIds, ...diffIds.slice(top + 1)] },
      history: [...(next.config.history ?? []), ...appHistory(app.config, top + 1, appCount)],
      config: {
        ...(app.config.config ?? {}),
        Labels: rebasedLabels(labels, next, newRef),
      },
    };
    if (next.config.variant) config.variant = next.config.variant;
    else delete config.variant;
    if (config.history?.length === 0) delete config.history;

    const appLayers: LayerBlob[] = app.manifest.layers.slice(top + 1).map((d, i) => ({
      descriptor: d,
      open: () => app.openBlob(d),
      origin: app.registry,
      label: `app layer ${i + 1}/${appCount}`,
    }));
    const built = assembleImage(
      familyFor(outRef, next.family),
      config,
      [...runLayers(next), ...appLayers],
      baseAnnotations(newRef, next.digest),
    );

    log.step(`Writing image ${describeReference(outRef)}`);
    const result = await writeImage(outRef, built, pool);
    log.step(`Image digest ${result.digest}`);
    return { ...result, appLayers: appLayers.map((l) => l.descriptor.digest) };
  } finally {
    await next?.close();
    await app.close();
  }
}
