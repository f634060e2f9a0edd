/**
 * `slugbuilder --run-image REF --image REF`: the built app becomes layers on
 * top of the run image (split by app-layers.ts: dependency trees and CNB
 * launch layers each their own, then the rest of the app), with a config
 * that starts the runner, and the image goes to a layout, an archive or a
 * registry. No Docker daemon involved.
 *
 * In two halves: `planExport` checks the target and reads the run image
 * before the build (a wrong run image fails in seconds, not after the
 * compile), `assembleAppImage` adds the app layers once the build is done.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { makeTempDir, removeTemp } from '../../shared/fs.js';
import { log } from '../../shared/log.js';
import type { ProcessTypes } from '../../shared/procfile.js';
import { DEFAULT_MTIME } from '../../shared/tar/pack.js';
import { formatSize, plural } from '../../shared/units.js';
import { type AppLayer, writeAppLayers } from './app-layers.js';
import { type BuiltImage, type LayerBlob, type Platform, shortDigest } from './blobs.js';
import { type CnbAppInfo, readCnbAppInfo, runImageIds } from './cnb-labels.js';
import { type AppOwner, appOwner, assembleImage, buildAppConfig } from './config.js';
import { openImage, type SourceImage } from './image-source.js';
import { checkImageTarget, familyFor, writeImage } from './image-writer.js';
import { LAUNCHER_CREATED_BY, writeLauncherLayer } from './launcher-layer.js';
import type { LayerResult } from './layer.js';
import { LayerCache } from './layer-cache.js';
import { MEDIA } from './media-types.js';
import { parsePlatform } from './platform.js';
import { describeReference, type ImageReference, parseReference } from './reference.js';
import { RegistryPool } from './registry.js';
import { type RunImageFiles, requireBash, runImageFiles } from './run-image-files.js';
import { withSbomLayer } from './sbom-layer.js';

export interface PlanOptions {
  /** OS/ARCH[/VARIANT]; an index in the run image resolves to linux/amd64 without it. */
  platform?: Platform;
  /** Owner of /app; unset: the run image's numeric User, else 1000:1000 (see appOwner). */
  appUid?: number;
  appGid?: number;
  insecureRegistries: string[];
  /** --registry-mirror: tried in order for docker.io pulls. */
  registryMirrors?: string[];
  env?: NodeJS.ProcessEnv;
  /** Keep compressed app layers here between builds (layer-cache.ts); unset: no cache. */
  layerCacheDir?: string;
}

/** What an export needs that does not depend on the app: read once, used once. */
export interface ExportPlan {
  target: ImageReference;
  runRef: ImageReference;
  run: SourceImage;
  pool: RegistryPool;
  owner: AppOwner;
  layerCache?: LayerCache;
  /** The run image's files (to check what the app's processes need); unset for a registry run image. */
  runFiles?: RunImageFiles;
  close(): Promise<void>;
}

export interface AppInput {
  processTypes: ProcessTypes;
  /** The app's labels (CNB launch.toml [[labels]]); slugkit's own io.slugkit.* ones win. */
  labels?: Record<string, string>;
  sourceVersion?: string;
  /** SOURCE_DATE_EPOCH as the CLI read it: the image's `created` and the layer's mtimes. */
  mtime: Date;
  /** --creation-time: the image's `created` instead of `mtime` (the layers keep `mtime`). */
  created?: Date;
  /** What the CNB tools' labels say about the build (cnb-labels.ts readCnbAppInfo). */
  cnb?: CnbAppInfo;
  /** The launcher layer (launcher-layer.ts), right above the run image. */
  launcher: LayerResult;
  /** The process type the image's Cmd starts. */
  defaultProcess: string;
}

export interface ImageSummary {
  reference: string;
  digest: string;
  mediaType: string;
  platform: string;
  /** The top layer: the rest of the app (the whole app when nothing was split off). */
  layer: { digest: string; diffId: string; size: number; uid: number; gid: number };
  /** Every app layer in image order, the rest of the app last. */
  layers: Array<{ path: string; digest: string; diffId: string; size: number }>;
  runImage: { reference: string; digest: string };
  /** The launcher layer, between the run image and the app. */
  launcher: { digest: string; diffId: string; size: number };
  /** What the image's Cmd starts. */
  defaultProcess: string;
}

/** Run-image layers as blobs to copy, mount or skip. */
export function runLayers(run: SourceImage): LayerBlob[] {
  const total = run.manifest.layers.length;
  return run.manifest.layers.map((d, i) => ({
    descriptor: d,
    open: () => run.openBlob(d),
    origin: run.registry,
    label: `run image layer ${i + 1}/${total}`,
  }));
}

/** OCI's standard base-image annotations (only written into OCI manifests). */
export function baseAnnotations(runRef: ImageReference, runDigest: string): Record<string, string> {
  const out: Record<string, string> = { 'org.opencontainers.image.base.digest': runDigest };
  if (runRef.kind === 'registry')
    out['org.opencontainers.image.base.name'] = `${runRef.host}/${runRef.repository}${runRef.tag ? ':' + runRef.tag : ''}`;
  return out;
}

/** Check where the image goes and read the run image; close() when done with it. */
export async function planExport(target: ImageReference, runRef: ImageReference, opts: PlanOptions): Promise<ExportPlan> {
  await checkImageTarget(target, '--image');
  const pool = new RegistryPool({
    insecureRegistries: opts.insecureRegistries,
    registryMirrors: opts.registryMirrors,
    env: opts.env ?? process.env,
  });
  log.step(`Reading run image ${describeReference(runRef)}`);
  const run = await openImage(runRef, { platform: opts.platform, pool, role: 'run image' });
  log.info(
    `${run.config.os}/${run.config.architecture}, ${plural(run.manifest.layers.length, 'layer')}, ${shortDigest(run.digest)} (${run.family === 'oci' ? 'OCI' : 'Docker'} media types)`,
  );
  let runFiles: RunImageFiles | undefined;
  try {
    // Kept beside the app layers (cleared with them): the file list of a run image, by its digest.
    runFiles = await runImageFiles(run, opts.layerCacheDir && path.join(opts.layerCacheDir, 'run-images'));
    requireBash(runFiles, runRef.text);
  } catch (err) {
    await run.close();
    throw err;
  }
  const owner = appOwner(run.config.config?.User, opts.appUid, opts.appGid);
  if (owner.warning) log.warn(owner.warning);
  const layerCache = opts.layerCacheDir ? new LayerCache(opts.layerCacheDir) : undefined;
  return { target, runRef, run, pool, owner, layerCache, runFiles, close: () => run.close() };
}

/** The app image: the run image's layers plus the app's (written by writeAppLayers with plan.owner). */
export function assembleAppImage(plan: ExportPlan, layers: AppLayer[], app: AppInput): { built: BuiltImage; summary: ImageSummary } {
  const { run, runRef, owner } = plan;
  const family = familyFor(plan.target, run.family);
  const config = buildAppConfig({
    runConfig: run.config,
    runDigest: run.digest,
    runReference: runRef.text,
    layers,
    appLabels: app.labels,
    processTypes: app.processTypes,
    sourceVersion: app.sourceVersion,
    created: app.created ?? app.mtime,
    cnb: app.cnb && { info: app.cnb, runImage: runImageIds(runRef, run.digest, run.manifest.config.digest) },
    launcher: { diffId: app.launcher.diffId, createdBy: LAUNCHER_CREATED_BY },
    defaultProcess: app.defaultProcess,
  });
  const launcherBlob: LayerBlob = {
    descriptor: { mediaType: MEDIA[family].layerGzip, digest: app.launcher.digest, size: app.launcher.size },
    open: async () => createReadStream(app.launcher.path),
    label: 'launcher layer',
  };
  const appLayers: LayerBlob[] = layers.map((layer) => ({
    descriptor: { mediaType: MEDIA[family].layerGzip, digest: layer.digest, size: layer.size },
    open: async () => createReadStream(layer.path),
    label: layer.kind === 'app' ? 'app layer' : `${layer.kind} ${layer.imagePath}`,
  }));
  const built = assembleImage(family, config, [...runLayers(run), launcherBlob, ...appLayers], baseAnnotations(runRef, run.digest));
  const top = layers[layers.length - 1];
  const summary: ImageSummary = {
    reference: plan.target.text,
    digest: built.manifest.digest,
    mediaType: built.mediaType,
    platform: [config.os, config.architecture, config.variant].filter(Boolean).join('/'),
    layer: { digest: top.digest, diffId: top.diffId, size: top.size, uid: owner.uid, gid: owner.gid },
    layers: layers.map((l) => ({ path: l.imagePath, digest: l.digest, diffId: l.diffId, size: l.size })),
    runImage: { reference: runRef.text, digest: run.digest },
    launcher: { digest: app.launcher.digest, diffId: app.launcher.diffId, size: app.launcher.size },
    defaultProcess: app.defaultProcess,
  };
  return { built, summary };
}

export function logLayer(layer: LayerResult, owner: AppOwner): void {
  log.info(
    `app/ owned by ${owner.uid}:${owner.gid} (${owner.source}), ${formatSize(layer.size)} compressed, digest ${shortDigest(layer.digest)}, diff_id ${shortDigest(layer.diffId)}`,
  );
}

export function logAppLayers(layers: AppLayer[], owner: AppOwner): void {
  log.info(`app/ owned by ${owner.uid}:${owner.gid} (${owner.source}), ${plural(layers.length, 'layer')}`);
  for (const l of layers)
    log.info(
      `${l.imagePath} ${formatSize(l.size)} ${l.cached ? 'from the layer cache' : l.fromSlug ? 'compressed from the slug' : 'compressed'}, digest ${shortDigest(l.digest)}, diff_id ${shortDigest(l.diffId)}`,
    );
}

export interface ExportOptions {
  /** The built app directory (what the slug holds, becomes /app). */
  appDir: string;
  runImage: string;
  image: string;
  platform?: string;
  appUid?: number;
  appGid?: number;
  insecureRegistries: string[];
  env?: NodeJS.ProcessEnv;
  /** Keep compressed app layers here between exports (layer-cache.ts); unset: no cache. */
  layerCacheDir?: string;
  processTypes: ProcessTypes;
  /** The type the image's Cmd starts; unset: web. */
  defaultProcess?: string;
  labels?: Record<string, string>;
  sourceVersion?: string;
  /** Default 1980-01-01T00:00:01Z, as without SOURCE_DATE_EPOCH. */
  mtime?: Date;
}

/** The whole export in one call, for embedders and tests: the CLI runs the halves around the build. */
export async function exportImage(opts: ExportOptions): Promise<ImageSummary> {
  const plan = await planExport(parseReference(opts.image), parseReference(opts.runImage), {
    platform: opts.platform ? parsePlatform(opts.platform) : undefined,
    appUid: opts.appUid,
    appGid: opts.appGid,
    insecureRegistries: opts.insecureRegistries,
    env: opts.env,
    layerCacheDir: opts.layerCacheDir,
  });
  const work = await makeTempDir('slugkit-layer-');
  try {
    log.step('Writing the app layers');
    const mtime = opts.mtime ?? DEFAULT_MTIME;
    const layers = await writeAppLayers(opts.appDir, {
      uid: plan.owner.uid,
      gid: plan.owner.gid,
      mtime,
      outDir: work,
      cache: plan.layerCache,
    });
    const all = await withSbomLayer(opts.appDir, layers, { uid: plan.owner.uid, gid: plan.owner.gid, mtime, outDir: work });
    logAppLayers(all, plan.owner);
    const launcher = await writeLauncherLayer(path.join(work, 'launcher.tar.gz'));
    const { built, summary } = assembleAppImage(plan, all, {
      launcher,
      defaultProcess: opts.defaultProcess ?? 'web',
      processTypes: opts.processTypes,
      labels: opts.labels,
      sourceVersion: opts.sourceVersion,
      mtime,
      cnb: await readCnbAppInfo(opts.appDir, opts.processTypes),
    });
    log.step(`Writing image ${describeReference(plan.target)}`);
    const result = await writeImage(plan.target, built, plan.pool);
    log.step(`Image digest ${result.digest}`);
    return { ...summary, digest: result.digest };
  } finally {
    await removeTemp(work);
    await plan.close();
  }
}
