/**
 * `slugbuilder --run-image REF --image REF`: the slug becomes one layer on
 * top of the run image, with a config that starts the runner, and the image
 * goes to a layout, an archive or a registry. No Docker daemon involved.
 */
import path from 'node:path';
import { createReadStream } from 'node:fs';
import { copyFile, rename } from 'node:fs/promises';
import { UsageError, UserError, errnoCode, errorMessage } from '../../shared/errors.js';
import { log } from '../../shared/log.js';
import type { ProcessTypes } from '../../shared/procfile.js';
import { formatSize } from '../../shared/tar/extract.js';
import { sourceDateEpoch } from '../../shared/tar/pack.js';
import { shortDigest, type LayerBlob } from './blobs.js';
import { appOwner, assembleImage, buildAppConfig } from './config.js';
import { openImage, type SourceImage } from './image-source.js';
import { familyFor, writeImage } from './image-writer.js';
import { writeLayer } from './layer.js';
import { MEDIA } from './media-types.js';
import { parsePlatform } from './platform.js';
import { parseReference, type ImageReference } from './reference.js';
import { RegistryPool } from './registry.js';
import { keptTemp, makeTempDir, removeTemp, tempFile } from './temp.js';

export { writeLayer } from './layer.js';

export interface ExportOptions {
  /** The built app directory (what the slug holds, becomes /app). */
  appDir: string;
  runImage: string;
  image: string;
  /** OS/ARCH[/VARIANT]; an index in the run image resolves to linux/amd64 without it. */
  platform?: string;
  /** Owner of /app; unset: the run image's numeric User, else 1000:1000 (see appOwner). */
  appUid?: number;
  appGid?: number;
  /** Also keep the app layer at this path (the --layer flag), once the image is written. */
  layerFile?: string;
  processTypes: ProcessTypes;
  sourceVersion?: string;
  insecureRegistries: string[];
  /** Filled with an `image` entry for the CLI's --summary JSON. */
  summary?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

export interface ImageSummary {
  reference: string;
  digest: string;
  mediaType: string;
  platform: string;
  layer: { digest: string; diffId: string; size: number; uid: number; gid: number };
  runImage: { reference: string; digest: string };
}

export interface ExportResult extends ImageSummary {}

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

/** Copy the finished layer to the --layer path, through a temp name. */
async function keepLayer(from: string, to: string): Promise<void> {
  const target = path.resolve(to);
  const tmp = tempFile(target);
  try {
    await copyFile(from, tmp);
    await rename(tmp, target);
    keptTemp(tmp);
  } catch (err) {
    await removeTemp(tmp);
    throw new UserError(`cannot write the layer file ${to}: ${errnoCode(err) ?? errorMessage(err)}`);
  }
}

/** OCI's standard base-image annotations (only written into OCI manifests). */
export function baseAnnotations(runRef: ImageReference, runDigest: string): Record<string, string> {
  const out: Record<string, string> = { 'org.opencontainers.image.base.digest': runDigest };
  if (runRef.kind === 'registry') out['org.opencontainers.image.base.name'] = `${runRef.host}/${runRef.repository}${runRef.tag ? ':' + runRef.tag : ''}`;
  return out;
}

export async function exportImage(opts: ExportOptions): Promise<ExportResult> {
  const env = opts.env ?? process.env;
  const target = parseReference(opts.image);
  const runRef = parseReference(opts.runImage);
  if (target.kind === 'registry' && target.digest) throw new UsageError(`--image ${opts.image}: push to a tag, not a digest`);
  const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
  const pool = new RegistryPool({ insecureRegistries: opts.insecureRegistries, env });

  log.step(`Reading run image ${runRef.text}`);
  const run = await openImage(runRef, { platform, pool, role: 'run image' });
  const work = await makeTempDir('slugkit-layer-');
  try {
    log.info(`${run.config.os}/${run.config.architecture}, ${run.manifest.layers.length} layers, ${shortDigest(run.digest)} (${run.family === 'oci' ? 'OCI' : 'Docker'} media types)`);
    const family = familyFor(target, run.family);

    log.step('Writing the slug layer');
    const created = sourceDateEpoch(env);
    const owner = appOwner(run.config.config?.User, opts.appUid, opts.appGid);
    if (owner.warning) log.warn(owner.warning);
    const layer = await writeLayer(opts.appDir, { uid: owner.uid, gid: owner.gid, mtime: created, outFile: path.join(work, 'app-layer.tar.gz') });
    log.info(`app/ owned by ${owner.uid}:${owner.gid} (${owner.source}), ${formatSize(layer.size)} compressed, digest ${shortDigest(layer.digest)}, diff_id ${shortDigest(layer.diffId)}`);

    const config = buildAppConfig({
      runConfig: run.config,
      runDigest: run.digest,
      runReference: runRef.text,
      layer,
      processTypes: opts.processTypes,
      sourceVersion: opts.sourceVersion,
      created,
    });
    const appLayer: LayerBlob = {
      descriptor: { mediaType: MEDIA[family].layerGzip, digest: layer.digest, size: layer.size },
      open: async () => createReadStream(layer.path),
      label: 'app layer',
    };
    const annotations = baseAnnotations(runRef, run.digest);
    const built = assembleImage(family, config, [...runLayers(run), appLayer], annotations);

    log.step(`Writing image ${target.text}`);
    const result = await writeImage(target, built, pool);
    log.step(`Image digest ${result.digest}`);
    if (opts.layerFile) await keepLayer(layer.path, opts.layerFile);

    const summary: ImageSummary = {
      reference: result.reference,
      digest: result.digest,
      mediaType: built.mediaType,
      platform: [config.os, config.architecture, config.variant].filter(Boolean).join('/'),
      layer: { digest: layer.digest, diffId: layer.diffId, size: layer.size, uid: owner.uid, gid: owner.gid },
      runImage: { reference: runRef.text, digest: run.digest },
    };
    if (opts.summary) opts.summary.image = summary;
    return summary;
  } finally {
    await removeTemp(work);
    await run.close();
  }
}
