/**
 * The image flags of `slugbuilder`: option specs, usage text, and their
 * validation. References and the platform are parsed here, once, and passed
 * on parsed.
 */
import { UsageError } from '../../shared/errors.js';
import type { Platform } from '../image/blobs.js';
import { parsePlatform } from '../image/platform.js';
import { type ImageReference, parseReference, type RegistryReference } from '../image/reference.js';
import { parseMirror } from '../image/registry.js';

/** The parseArgs option specs for the image flags, to merge into the CLI's own. */
export const IMAGE_OPTIONS = {
  layer: { type: 'string' },
  'run-image': { type: 'string' },
  image: { type: 'string' },
  platform: { type: 'string' },
  'app-uid': { type: 'string' },
  'app-gid': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'registry-mirror': { type: 'string', multiple: true },
  tag: { type: 'string', multiple: true },
  'creation-time': { type: 'string' },
  'default-process': { type: 'string' },
} as const;

export const IMAGE_USAGE = `Image (no Docker daemon needed):
  --layer FILE             also write the slug as an image layer (tar.gz, app/ owned by the app user)
  --run-image REF          base image: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, docker://HOST/NAME:TAG
  --image REF              write the app image: oci:DIR[:TAG], oci-archive:FILE (also docker-loadable), docker://HOST/NAME:TAG
  --platform OS/ARCH       platform to pick from a multi-platform run image (default linux/amd64)
  --app-uid N, --app-gid N owner of /app (default: the run image's numeric User, else 1000:1000)
  --insecure-registry HOST use plain HTTP for HOST (loopback hosts always do); repeatable
  --registry-mirror HOST   pull docker.io images through HOST[:PORT][/PREFIX] first; repeatable
  --tag REF                also push the image as REF (a registry reference); repeatable
  --creation-time WHEN     the image's created time: now, RFC 3339 or Unix seconds
                           (default SOURCE_DATE_EPOCH, else 1980-01-01T00:00:01Z)
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
  registryMirrors: string[];
  /** --tag: more names the pushed manifest gets. */
  tags: RegistryReference[];
  /** --creation-time; unset: the reproducible default. */
  creationTime?: Date;
  /** --default-process: checked against the app's types once they are known. */
  defaultProcess?: string;
}

export type ImageFlagValues = {
  layer?: string;
  'run-image'?: string;
  image?: string;
  platform?: string;
  'app-uid'?: string;
  'app-gid'?: string;
  'insecure-registry'?: string[];
  'registry-mirror'?: string[];
  tag?: string[];
  'creation-time'?: string;
  'default-process'?: string;
};

/** pack's --creation-time: `now`, an RFC 3339 time or Unix seconds. */
export function parseCreationTime(value: string, now = new Date()): Date {
  if (value === 'now') return new Date(Math.floor(now.getTime() / 1000) * 1000);
  const date = /^\d+$/.test(value)
    ? new Date(Number(value) * 1000)
    : /^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$/.test(value)
      ? new Date(value)
      : undefined;
  if (!date || Number.isNaN(date.getTime()) || date.getUTCFullYear() > 9999)
    throw new UsageError(`--creation-time ${value} is not now, an RFC 3339 time (2024-05-01T12:00:00Z) or Unix seconds`);
  return date;
}

function parseTags(values: string[], image: ImageReference | undefined): RegistryReference[] {
  if (values.length === 0) return [];
  if (image?.kind !== 'registry')
    throw new UsageError('--tag REF needs --image to be a registry reference: the extra names are pushed with it');
  return values.map((value) => {
    const ref = parseReference(value);
    if (ref.kind !== 'registry' || ref.digest)
      throw new UsageError(`--tag ${value} is not a registry reference with a tag (docker://HOST/NAME:TAG or a Docker name)`);
    return ref;
  });
}

function parseId(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 0x1fffff) throw new UsageError(`${flag} expects a numeric id (0 to 2097151), got "${value}"`);
  return Number(value);
}

/** Validated image flags, or undefined when none of them were given. */
export function parseImageFlags(v: ImageFlagValues): ImageFlags | undefined {
  const any =
    v.layer ||
    v['run-image'] ||
    v.image ||
    v.platform ||
    v['app-uid'] ||
    v['app-gid'] ||
    v['insecure-registry']?.length ||
    v['registry-mirror']?.length ||
    v.tag?.length ||
    v['creation-time'];
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
    throw new UsageError('--platform, --app-uid, --app-gid, --insecure-registry and --registry-mirror only apply with --layer or --image');
  for (const mirror of v['registry-mirror'] ?? []) parseMirror(mirror);
  if ((v.tag?.length || v['creation-time']) && !v.image) throw new UsageError('--tag and --creation-time only apply with --image');
  return {
    layer: v.layer,
    runImage,
    image,
    platform,
    appUid: parseId(v['app-uid'], '--app-uid'),
    appGid: parseId(v['app-gid'], '--app-gid'),
    insecureRegistries: v['insecure-registry'] ?? [],
    registryMirrors: v['registry-mirror'] ?? [],
    tags: parseTags(v.tag ?? [], image),
    creationTime: v['creation-time'] !== undefined ? parseCreationTime(v['creation-time']) : undefined,
    defaultProcess: v['default-process'],
  };
}
