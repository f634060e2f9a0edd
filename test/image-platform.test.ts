import { expect } from 'chai';
import { UsageError, UserError } from '../shared/errors.js';
import { layerTypeFor, MEDIA } from '../slugbuilder/image/media-types.js';
import { parsePlatform, selectManifest } from '../slugbuilder/image/platform.js';

describe('image platforms and media types', () => {
  it('parses --platform and picks the matching index entry', () => {
    expect(parsePlatform('linux/arm64/v8')).to.deep.equal({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(() => parsePlatform('amd64')).to.throw(UsageError, /OS\/ARCH/);
    const manifests = [
      { mediaType: MEDIA.oci.manifest, digest: 'sha256:1', size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { mediaType: MEDIA.oci.manifest, digest: 'sha256:2', size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    ];
    expect(selectManifest(manifests, { os: 'linux', architecture: 'amd64' }, 'run image x').digest).to.equal('sha256:2');
    expect(selectManifest(manifests, { os: 'linux', architecture: 'arm64' }, 'run image x').digest).to.equal('sha256:1');
    expect(() => selectManifest(manifests, { os: 'linux', architecture: 's390x' }, 'run image x')).to.throw(
      UserError,
      'run image x has no linux/s390x image (it has: linux/arm64/v8, linux/amd64): choose one with --platform',
    );
  });

  it('translates same-bytes layer types between families and refuses the rest', () => {
    expect(layerTypeFor('docker', MEDIA.oci.layerGzip)).to.equal(MEDIA.docker.layerGzip);
    expect(layerTypeFor('oci', MEDIA.docker.layerGzip)).to.equal(MEDIA.oci.layerGzip);
    expect(layerTypeFor('oci', MEDIA.oci.layerGzip)).to.equal(MEDIA.oci.layerGzip);
    expect(() => layerTypeFor('docker', 'application/vnd.oci.image.layer.v1.tar+zstd')).to.throw(UserError, /no Docker equivalent/);
  });
});
