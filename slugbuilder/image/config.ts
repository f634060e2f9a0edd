/**
 * The app image's config and manifest: the run image's config plus the app's
 * layers (app-layers.ts), a history entry each, the runner as entrypoint, HOME=/app, and labels
 * that record what rebase needs. Nothing here depends on the clock: `created`
 * is --creation-time, else SOURCE_DATE_EPOCH or 1980-01-01T00:00:01Z, so the
 * same source and run image give the same manifest digest.
 */
import { UserError } from '../../shared/errors.js';
import { slugkitVersion } from '../../shared/package.js';
import type { ProcessTypes } from '../../shared/procfile.js';
import {
  type BuiltImage,
  type Descriptor,
  type HistoryEntry,
  type ImageConfig,
  type ImageManifest,
  type LayerBlob,
  serialize,
} from './blobs.js';
import { type CnbAppInfo, cnbLabels, type RunImageIds } from './cnb-labels.js';
import { type Family, layerTypeFor, MEDIA } from './media-types.js';

export const LABELS = {
  processTypes: 'io.slugkit.process-types',
  sourceVersion: 'io.slugkit.source-version',
  version: 'io.slugkit.version',
  runImageReference: 'io.slugkit.run-image.reference',
  runImageDigest: 'io.slugkit.run-image.digest',
  runImageTopLayer: 'io.slugkit.run-image.top-layer',
  layers: 'io.slugkit.layers',
} as const;

/** Labels under this prefix are slugkit's own: an app's (CNB launch.toml) labels cannot set them. */
export const RESERVED_LABEL_PREFIX = 'io.slugkit.';

export const APP_DIR = '/app';
/**
 * The launcher layer's bash slugrunner (launcher-layer.ts), run by the run
 * image's /bin/bash (so no /usr/bin/env is needed): the image needs no Node.
 */
export const ENTRYPOINT = ['/bin/bash', '/slugkit/bin/slugrunner'];
/** The image's Cmd: start the app's default process (shared/app/processes.ts defaultProcessType). */
export function cmdFor(defaultProcess: string): string[] {
  return ['start', defaultProcess];
}
export const LAYER_CREATED_BY = 'slugbuilder: slug layer (app/)';

/** The history line of one app layer: the rest of the app keeps the single-layer wording. */
export function layerCreatedBy(imagePath: string): string {
  return imagePath === APP_DIR ? LAYER_CREATED_BY : `slugbuilder: ${imagePath.slice(1)}/`;
}

/** `Env` with one variable set, its earlier definition (if any) replaced in place. */
export function setEnv(env: string[] | undefined, name: string, value: string): string[] {
  const out = (env ?? []).filter((e) => !e.startsWith(`${name}=`));
  out.push(`${name}=${value}`);
  return out;
}

/** Owner of the app layer when no flag says otherwise and the run image names none. */
export const DEFAULT_APP_UID = 1000;
export const DEFAULT_APP_GID = 1000;

export interface AppOwner {
  uid: number;
  gid: number;
  /** For the log: where the ids came from. */
  source: string;
}

/**
 * Who owns /app in the image: --app-uid/--app-gid when given, else the run
 * image's numeric `User` (UID or UID:GID; a bare UID gets group 0, as Docker
 * does for a user without a passwd entry), else 1000:1000. A named User
 * cannot be resolved without reading the run image's /etc/passwd, so it falls
 * back to the defaults with a warning.
 */
export function appOwner(runUser: string | undefined, uid: number | undefined, gid: number | undefined): AppOwner & { warning?: string } {
  const user = (runUser ?? '').trim();
  const numeric = /^(\d+)(?::(\d+))?$/.exec(user);
  const fromImage = numeric !== null && numeric[1] !== '0';
  const fallback = fromImage
    ? { uid: Number(numeric[1]), gid: Number(numeric[2] ?? 0), source: `the run image's User ${user}` }
    : { uid: DEFAULT_APP_UID, gid: DEFAULT_APP_GID, source: 'the default' };
  const flags = [uid !== undefined ? '--app-uid' : '', gid !== undefined ? '--app-gid' : ''].filter(Boolean);
  const source = flags.length === 2 ? '--app-uid/--app-gid' : flags.length === 1 ? `${flags[0]} and ${fallback.source}` : fallback.source;
  const owner = { uid: uid ?? fallback.uid, gid: gid ?? fallback.gid, source };
  const named = user !== '' && !numeric && user !== 'root' && !user.startsWith('root:');
  if (named && flags.length < 2) {
    return {
      ...owner,
      warning: `run image User "${user}" is a name: /app is owned by ${owner.uid}:${owner.gid}; pass --app-uid and --app-gid to match it`,
    };
  }
  return owner;
}

export interface AppLayerInfo {
  digest: string;
  diffId: string;
  size: number;
  /** Where the layer's tree lands: /app for the rest of the app, /app/node_modules, ... */
  imagePath: string;
}

export interface AppConfigInput {
  runConfig: ImageConfig;
  runDigest: string;
  runReference: string;
  /** The app's layers in image order (app-layers.ts), the rest of the app last. */
  layers: AppLayerInfo[];
  /** The app's own labels (CNB launch.toml [[labels]]): over the run image's, under slugkit's. */
  appLabels?: Record<string, string>;
  processTypes: ProcessTypes;
  sourceVersion?: string;
  created: Date;
  /** For the CNB tools' labels (cnb-labels.ts); none: no io.buildpacks.* labels of slugkit's. */
  cnb?: { info: CnbAppInfo; runImage: RunImageIds };
  /** The launcher layer, between the run image's layers and the app's. */
  launcher?: { diffId: string; createdBy: string };
  /** What Cmd starts; web when unset. */
  defaultProcess?: string;
}

export function buildAppConfig(input: AppConfigInput): ImageConfig {
  const run = input.runConfig;
  const created = input.created.toISOString().replace(/\.000Z$/, 'Z');
  const runDiffIds = run.rootfs.diff_ids;
  if (runDiffIds.length === 0) throw new UserError(`run image ${input.runReference} has no layers: it needs at least a root filesystem`);
  const labels: Record<string, string> = {
    ...(run.config?.Labels ?? {}),
    ...Object.fromEntries(Object.entries(input.appLabels ?? {}).filter(([k]) => !k.startsWith(RESERVED_LABEL_PREFIX))),
    ...(input.cnb
      ? cnbLabels({
          ...input.cnb,
          runDiffIds,
          layers: input.layers,
          launcherDiffId: input.launcher?.diffId,
          sourceVersion: input.sourceVersion,
        })
      : {}),
    [LABELS.processTypes]: JSON.stringify(sortedObject(input.processTypes)),
    [LABELS.version]: slugkitVersion(),
    [LABELS.runImageReference]: input.runReference,
    [LABELS.runImageDigest]: input.runDigest,
    [LABELS.runImageTopLayer]: runDiffIds[runDiffIds.length - 1],
    [LABELS.layers]: JSON.stringify(input.layers.map((l) => ({ path: l.imagePath, diffID: l.diffId }))),
  };
  if (input.sourceVersion) labels[LABELS.sourceVersion] = input.sourceVersion;
  else delete labels[LABELS.sourceVersion];

  const history: HistoryEntry[] = [
    ...(run.history ?? []),
    ...(input.launcher ? [{ created, created_by: input.launcher.createdBy }] : []),
    ...input.layers.map((l) => ({ created, created_by: layerCreatedBy(l.imagePath) })),
  ];
  return {
    ...run,
    created,
    config: {
      ...(run.config ?? {}),
      Env: setEnv(run.config?.Env, 'HOME', APP_DIR),
      Entrypoint: ENTRYPOINT,
      Cmd: cmdFor(input.defaultProcess ?? 'web'),
      WorkingDir: APP_DIR,
      Labels: labels,
    },
    rootfs: {
      type: 'layers',
      diff_ids: [...runDiffIds, ...(input.launcher ? [input.launcher.diffId] : []), ...input.layers.map((l) => l.diffId)],
    },
    history,
  };
}

function sortedObject(obj: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(obj)
      .sort()
      .map((k) => [k, obj[k]]),
  );
}

/**
 * Serialise config and manifest once, in one media-type family: the run
 * image's. Layer types of the other family with the same bytes are translated.
 */
export function assembleImage(family: Family, config: ImageConfig, layers: LayerBlob[], annotations?: Record<string, string>): BuiltImage {
  const media = MEDIA[family];
  const configDoc = serialize(config);
  const typedLayers = layers.map((l) => ({
    ...l,
    descriptor: { ...l.descriptor, mediaType: layerTypeFor(family, l.descriptor.mediaType) },
  }));
  const configDesc: Descriptor = { mediaType: media.config, digest: configDoc.digest, size: configDoc.bytes.length };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: media.manifest,
    config: configDesc,
    layers: typedLayers.map((l) => stripDescriptor(l.descriptor, family)),
  };
  // Docker schema 2 has no annotations; adding them would mix the families.
  if (family === 'oci' && annotations && Object.keys(annotations).length) manifest.annotations = annotations;
  return { mediaType: media.manifest, manifest: serialize(manifest), config: configDoc, layers: typedLayers };
}

/** Keep the fields a layer descriptor of this family may carry. */
function stripDescriptor(d: Descriptor, family: Family): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.urls) out.urls = d.urls;
  if (family === 'oci' && d.annotations) out.annotations = d.annotations;
  return out;
}
