/**
 * The two media-type families an image manifest can use. A manifest speaks
 * one family only (OCI or Docker schema 2); layers of the same byte format
 * (tar+gzip) are translated between families rather than mixed.
 */
import { UserError } from '../../shared/errors.js';

export type Family = 'oci' | 'docker';

export const MEDIA = {
  oci: {
    index: 'application/vnd.oci.image.index.v1+json',
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
    layerTar: 'application/vnd.oci.image.layer.v1.tar',
  },
  docker: {
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    layerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  },
} as const;

export const INDEX_TYPES: readonly string[] = [MEDIA.oci.index, MEDIA.docker.index];

/** What a registry GET of a manifest should accept, in our order of preference. */
export const MANIFEST_ACCEPT = [MEDIA.oci.manifest, MEDIA.docker.manifest, MEDIA.oci.index, MEDIA.docker.index].join(', ');

export function familyOfManifest(mediaType: string): Family {
  if (mediaType === MEDIA.oci.manifest) return 'oci';
  if (mediaType === MEDIA.docker.manifest) return 'docker';
  throw new UserError(`unsupported manifest media type ${mediaType}: expected an OCI or Docker schema 2 image manifest`);
}

/** Layer media types with the same bytes in the other family. */
const LAYER_TWINS: Record<string, string> = {
  [MEDIA.oci.layerGzip]: MEDIA.docker.layerGzip,
  [MEDIA.docker.layerGzip]: MEDIA.oci.layerGzip,
  [MEDIA.oci.layerTar]: MEDIA.docker.layerTar,
  [MEDIA.docker.layerTar]: MEDIA.oci.layerTar,
};

function familyOfLayer(mediaType: string): Family | undefined {
  if (mediaType.startsWith('application/vnd.oci.')) return 'oci';
  if (mediaType.startsWith('application/vnd.docker.')) return 'docker';
  return undefined;
}

/** The layer media type to write in a manifest of `family`. */
export function layerTypeFor(family: Family, mediaType: string): string {
  const current = familyOfLayer(mediaType);
  if (current === undefined || current === family) return mediaType;
  const twin = LAYER_TWINS[mediaType];
  if (!twin)
    throw new UserError(
      `layer media type ${mediaType} has no ${family === 'oci' ? 'OCI' : 'Docker'} equivalent: use a run image with tar+gzip layers`,
    );
  return twin;
}
