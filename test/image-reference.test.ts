import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UsageError, UserError } from '../shared/errors.js';
import { parsePlatform, selectManifest } from '../slugbuilder/image/platform.js';
import { parseReference } from '../slugbuilder/image/reference.js';
import { findCredentials, parseChallenge } from '../slugbuilder/image/registry-auth.js';
import { isLoopbackHost } from '../slugbuilder/image/registry.js';
import { layerTypeFor, MEDIA } from '../slugbuilder/image/media-types.js';
import { repoTagFor } from '../slugbuilder/image/archive.js';
import { appOwner } from '../slugbuilder/image/config.js';

describe('image references', () => {
  it('parses the four transports', () => {
    expect(parseReference('oci:./runner-layout:24')).to.include({ kind: 'oci', dir: './runner-layout', tag: '24' });
    expect(parseReference('oci:/tmp/layout')).to.include({ kind: 'oci', dir: '/tmp/layout', tag: undefined });
    expect(parseReference('oci-archive:./myapp.tar')).to.include({ kind: 'oci-archive', file: './myapp.tar', ref: undefined });
    expect(parseReference('oci-archive:app.tar:myapp:v42')).to.include({ kind: 'oci-archive', file: 'app.tar', ref: 'myapp:v42' });
    expect(parseReference('docker-archive:saved.tar')).to.include({ kind: 'docker-archive', file: 'saved.tar' });
    expect(parseReference('docker://127.0.0.1:5000/runner:24')).to.include({ kind: 'registry', host: '127.0.0.1:5000', repository: 'runner', tag: '24' });
    expect(parseReference('docker://registry.example.com/team/app')).to.include({ repository: 'team/app', tag: 'latest' });
    const digest = 'sha256:' + 'a'.repeat(64);
    expect(parseReference(`docker://localhost/app@${digest}`)).to.include({ host: 'localhost', repository: 'app', digest, tag: undefined });
  });

  it('refuses what it cannot use, with the forms it accepts', () => {
    expect(() => parseReference('myapp:v1')).to.throw(UsageError, /unknown image reference "myapp:v1": use oci:DIR/);
    expect(() => parseReference('docker://myapp:v1')).to.throw(UsageError, /names no registry host: write docker:\/\/HOST/);
    expect(() => parseReference('docker://127.0.0.1:5000/MyApp:v1')).to.throw(UsageError, /not a valid repository name/);
    expect(() => parseReference('docker://127.0.0.1:5000/app:bad tag')).to.throw(UsageError, /not a valid tag/);
    expect(() => parseReference('docker://127.0.0.1:5000/app@sha256:abc')).to.throw(UsageError, /not a sha256 digest/);
    expect(() => parseReference('oci:')).to.throw(UsageError, /has no path/);
  });

  it('names docker-load tags after the file unless a name is given', () => {
    expect(repoTagFor('/x/myapp.tar', undefined)).to.equal('myapp:latest');
    expect(repoTagFor('/x/My App.tar', 'v42')).to.equal('my-app:v42');
    expect(repoTagFor('/x/a.tar', 'myapp:v42')).to.equal('myapp:v42');
    expect(repoTagFor('/x/a.tar', '127.0.0.1:5000/team/app:1')).to.equal('127.0.0.1:5000/team/app:1');
  });
});

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

describe('app layer owner', () => {
  it('takes the flags, else the run image numeric User, else 1000:1000', () => {
    expect(appOwner('1500:0', 42, 43)).to.include({ uid: 42, gid: 43, source: '--app-uid/--app-gid' });
    expect(appOwner('1500:0', undefined, undefined)).to.include({ uid: 1500, gid: 0 });
    expect(appOwner('1500', undefined, 7)).to.include({ uid: 1500, gid: 7 });
    expect(appOwner('1500', undefined, undefined)).to.include({ uid: 1500, gid: 0 });
    expect(appOwner(undefined, undefined, undefined)).to.deep.equal({ uid: 1000, gid: 1000, source: 'the default' });
    expect(appOwner('0:0', undefined, undefined)).to.deep.equal({ uid: 1000, gid: 1000, source: 'the default' });
    expect(appOwner('root', undefined, undefined)).to.deep.equal({ uid: 1000, gid: 1000, source: 'the default' });
    expect(appOwner('slugkit', undefined, undefined).warning).to.equal('run image User "slugkit" is a name: /app is owned by 1000:1000; pass --app-uid and --app-gid to match it');
  });
});

describe('registry auth pieces', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'slugkit-auth-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('parses Bearer challenges whose quoted values hold commas', () => {
    const c = parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull,push"');
    expect(c).to.deep.equal({ scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:team/app:pull,push' } });
    expect(parseChallenge('Basic realm="x"')).to.deep.equal({ scheme: 'basic', params: { realm: 'x' } });
    expect(parseChallenge('Negotiate abc')).to.equal(undefined);
  });

  it('reads credentials from DOCKER_CONFIG auths, matching the host whatever the key style', async () => {
    const auth = Buffer.from('deploy:s3cret:with:colons').toString('base64');
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ auths: { 'https://127.0.0.1:5999/v1/': { auth } } }));
    const creds = findCredentials('127.0.0.1:5999', { DOCKER_CONFIG: dir });
    expect(creds).to.include({ username: 'deploy', password: 's3cret:with:colons' });
    expect(findCredentials('127.0.0.1:6000', { DOCKER_CONFIG: dir })).to.equal(undefined);
    // The environment wins over the file.
    expect(findCredentials('127.0.0.1:5999', { DOCKER_CONFIG: dir, REGISTRY_USERNAME: 'ci', REGISTRY_PASSWORD: 'pw-from-env' })).to.include({ username: 'ci', source: 'REGISTRY_USERNAME/REGISTRY_PASSWORD' });
  });

  it('says which file is broken when config.json is not JSON', async () => {
    await writeFile(path.join(dir, 'config.json'), '{not json');
    expect(() => findCredentials('127.0.0.1:5999', { DOCKER_CONFIG: dir })).to.throw(UserError, `${path.join(dir, 'config.json')} is not valid JSON`);
  });

  it('treats only loopback hosts as plain-HTTP by default', () => {
    expect(isLoopbackHost('127.0.0.1:5000')).to.equal(true);
    expect(isLoopbackHost('localhost:5000')).to.equal(true);
    expect(isLoopbackHost('[::1]:5000')).to.equal(true);
    expect(isLoopbackHost('registry.example.com')).to.equal(false);
    expect(isLoopbackHost('10.0.0.1:5000')).to.equal(false);
  });
});
