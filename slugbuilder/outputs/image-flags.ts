/**
 * The image flags of `slugbuilder`: option specs, usage text, and their
 * validation. References and the platform are parsed here, once, and passed
 * on parsed.
 */
import { UsageError } from '../../shared/errors.js';
import type { Platform } from '../image/blobs.js';
import { parsePlatform } from '../image/platform.js';
import { type ImageReference, parseReference } from '../image/reference.js';

/** The parseArgs option specs for the image flags, to merge into the CLI's own. */
export const IMAGE_OPTIONS = {
  layer: { type: 'string' },
  'run-image': { type: 'string' },
  image: { type: 'string' },
  platform: { type: 'string' },
  'app-uid': { type: 'string' },
  'app-gid': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'default-process': { type: 'string' },
} as const;

export const IMAGE_USAGE = `Image (no Docker daemon needed):
  --layer FILE             also write the slug as an image layer (tar.gz, app/ owned by the app user)
  --run-image REF          base image: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, docker://HOST/NAME:TAG
  --image REF              write the app image: oci:DIR[:TAG], oci-archive:FILE (also docker-loadable), docker://HOST/NAME:TAG
  --platform OS/ARCH       platform to pick from a multi-platform run image (default linux/amd64)
  --app-uid N, --app-gid N owner of /app (default: the run image's numeric User, else 1000:1000)
  --insecure-registry HOST use plain HTTP for HOST (loopback hosts always do); repeatable
  --default-process TYPE   the process type \`docker run IMAGE\` starts (default: the CNB default
                           process, else web, else the only type)
  slugbuilder rebase IMAGE --run-image NEW [--image OUT]   swap the run image under an app image
`;

export interface ImageFlags {
  layer?: string;
  /** --run-image and --image come together. */
  runImage?: ImageReference;
  image?: ImageReference;
  platform?: Platform;
  /** Unset: decided by appOwner() from the run image (1000:1000 for --layer alone). */
  appUid?: number;
  appGid?: number;
  insecureRegistries: string[];
  /** --default-process: checked against the app's types once they are known. */
  defaultProcess?: string;
}

type FlagValues = {
  layer?: string;
  'run-image'?: string;
  image?: string;
  platform?: string;
  'app-uid'?: string;
  'app-gid'?: string;
  'insecure-registry'?: string[];
  'default-process'?: string;
};

function parseId(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 0x1fffff) throw new UsageError(`${flag} expects a numeric id (0 to 2097151), got "${value}"`);
  return Number(value);
}

/** Validated image flags, or undefined when none of them were given. */
export function parseImageFlags(v: FlagValues): ImageFlags | undefined {
  const any =
    v.layer ||
    v['run-image'] ||
    v.image ||
    v.platform ||
    v['app-uid'] ||
    v['app-gid'] ||
    v['insecure-registry']?.length ||
    v['default-process'];
  if (!any) return undefined;
  if (v['default-process'] !== undefined && !v.image)
    throw new UsageError('--default-process goes with --image: it sets what the image starts');
  if (v.image && !v['run-image']) throw new UsageError('--image needs --run-image REF: the base the app layer goes on');
  if (v['run-image'] && !v.image) throw new UsageError('--run-image needs --image REF: where to write the app image');
  const image = v.image ? parseReference(v.image) : undefined;
  const runImage = v['run-image'] ? parseReference(v['run-image']) : undefined;
  const platform = v.platform ? parsePlatform(v.platform) : undefined;
  if (!v.layer && !v.image)
    throw new UsageError('--platform, --app-uid, --app-gid and --insecure-registry only apply with --layer or --image');
  return {
    layer: v.layer,
    runImage,
    image,
    platform,
    appUid: parseId(v['app-uid'], '--app-uid'),
    appGid: parseId(v['app-gid'], '--app-gid'),
    insecureRegistries: v['insecure-registry'] ?? [],
    defaultProcess: v['default-process'],
  };
}
