/**
 * The image part of a build, as the slugbuilder CLI uses it: parse the image
 * flags, then (once the slug is built) write the layer file and/or export
 * the image from the built app dir, and add the image to --summary.
 */
import path from 'node:path';
import { UsageError } from '../../shared/errors.js';
import { log } from '../../shared/log.js';
import type { ProcessTypes } from '../../shared/procfile.js';
import { formatSize } from '../../shared/tar/extract.js';
import { sourceDateEpoch } from '../../shared/tar/pack.js';
import { shortDigest } from '../image/blobs.js';
import { exportImage } from '../image/export.js';
import { writeLayer } from '../image/layer.js';
import { parsePlatform } from '../image/platform.js';
import { parseReference } from '../image/reference.js';
import { DEFAULT_APP_GID, DEFAULT_APP_UID } from '../image/config.js';


/** The parseArgs option specs for the image flags, to merge into the CLI's own. */
export const IMAGE_OPTIONS = {
  layer: { type: 'string' },
  'run-image': { type: 'string' },
  image: { type: 'string' },
  platform: { type: 'string' },
  'app-uid': { type: 'string' },
  'app-gid': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
} as const;

export const IMAGE_USAGE = `Image (no Docker daemon needed):
  --layer FILE             also write the slug as an image layer (tar.gz, app/ owned by the app user)
  --run-image REF          base image: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, docker://HOST/NAME:TAG
  --image REF              write the app image: oci:DIR[:TAG], oci-archive:FILE (also docker-loadable), docker://HOST/NAME:TAG
  --platform OS/ARCH       platform to pick from a multi-platform run image (default linux/amd64)
  --app-uid N, --app-gid N owner of /app (default: the run image's numeric User, else 1000:1000)
  --insecure-registry HOST use plain HTTP for HOST (loopback hosts always do); repeatable
  slugbuilder rebase IMAGE --run-image NEW [--image OUT]   swap the run image under an app image
`;

export interface ImageFlags {
  layer?: string;
  runImage?: string;
  image?: string;
  platform?: string;
  /** Unset: decided by appOwner() from the run image (1000:1000 for --layer alone). */
  appUid?: number;
  appGid?: number;
  insecureRegistries: string[];
}

type FlagValues = {
  layer?: string;
  'run-image'?: string;
  image?: string;
  platform?: string;
  'app-uid'?: string;
  'app-gid'?: string;
  'insecure-registry'?: string[];
};

function parseId(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 0x1fffff) throw new UsageError(`${flag} expects a numeric id (0 to 2097151), got "${value}"`);
  return Number(value);
}

/** Validated image flags, or undefined when none of them were given. */
export function parseImageFlags(v: FlagValues): ImageFlags | undefined {
  const any = v.layer || v['run-image'] || v.image || v.platform || v['app-uid'] || v['app-gid'] || v['insecure-registry']?.length;
  if (!any) return undefined;
  if (v.image && !v['run-image']) throw new UsageError('--image needs --run-image REF: the base the app layer goes on');
  if (v['run-image'] && !v.image) throw new UsageError('--run-image needs --image REF: where to write the app image');
  if (v.image) parseReference(v.image);
  if (v['run-image']) parseReference(v['run-image']);
  if (v.platform) parsePlatform(v.platform);
  if (!v.layer && !v.image) throw new UsageError('--platform, --app-uid, --app-gid and --insecure-registry only apply with --layer or --image');
  return {
    layer: v.layer,
    runImage: v['run-image'],
    image: v.image,
    platform: v.platform,
    appUid: parseId(v['app-uid'], '--app-uid'),
    appGid: parseId(v['app-gid'], '--app-gid'),
    insecureRegistries: v['insecure-registry'] ?? [],
  };
}

export interface ImageStep {
  /** Pass to build() as its afterSlug hook; resolves to the image and layer entries for --summary. */
  afterSlug(result: { appDir: string; processTypes: ProcessTypes; sourceVersion?: string }): Promise<Record<string, unknown>>;
}

export function imageStep(flags: ImageFlags, sourceVersion: string | undefined, env: NodeJS.ProcessEnv = process.env): ImageStep {
  return {
    async afterSlug(result) {
      const summary: Record<string, unknown> = {};
      if (flags.layer && !flags.image) {
        log.step('Writing the slug as an image layer');
        const uid = flags.appUid ?? DEFAULT_APP_UID;
        const gid = flags.appGid ?? DEFAULT_APP_GID;
        const layer = await writeLayer(result.appDir, { uid, gid, mtime: sourceDateEpoch(env), outFile: path.resolve(flags.layer) });
        log.info(`${flags.layer}: app/ owned by ${uid}:${gid}, ${formatSize(layer.size)}, digest ${shortDigest(layer.digest)}, diff_id ${shortDigest(layer.diffId)}`);
        summary.layer = { path: layer.path, digest: layer.digest, diffId: layer.diffId, size: layer.size, uid, gid };
      }
      if (flags.image && flags.runImage) {
        // With --image, --layer keeps the image's own app layer (owner from the run image).
        const image = await exportImage({
          appDir: result.appDir,
          runImage: flags.runImage,
          image: flags.image,
          platform: flags.platform,
          appUid: flags.appUid,
          appGid: flags.appGid,
          processTypes: result.processTypes,
          sourceVersion: result.sourceVersion ?? sourceVersion,
          insecureRegistries: flags.insecureRegistries,
          layerFile: flags.layer,
          summary,
          env,
        });
        if (flags.layer) summary.layer = { path: path.resolve(flags.layer), ...image.layer };
      }
      return summary;
    },
  };
}
