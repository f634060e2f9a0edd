/**
 * Pushing to a real registry: Debian's docker-registry on 127.0.0.1, alone,
 * with htpasswd auth, or behind a Node proxy that adds a Bearer token
 * server, counts requests and injects 503s and connection resets.
 */

import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { UserError } from '../shared/errors.js';
import { setLogSink } from '../shared/log.js';
import { type ExportOptions, exportImage } from '../slugbuilder/image/export.js';
import { RegistryClient } from '../slugbuilder/image/registry.js';
import {
  answerOfFixtureImage,
  dockerAvailable,
  execFileP,
  makeApp,
  makeRunImages,
  type RunImages,
  requireDocker,
  requireTools,
  skopeoInspect,
} from './helpers/image-fixtures.js';
import { completedBlobUploads, freePort, type RunningProxy, type RunningRegistry, startProxy, startRegistry } from './helpers/registry.js';
import { hasCommand } from './helpers/tools.js';

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

async function rawManifest(ref: string): Promise<Buffer> {
  const { stdout } = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', ref], { encoding: 'buffer' });
  return stdout as Buffer;
}

describe('image push to a registry', () => {
  let root: string;
  let app: string;
  let run: RunImages;
  let registry: RunningRegistry | undefined;
  let logs = '';
  const stops: Array<() => Promise<void>> = [];

  const opts = (over: Partial<ExportOptions>): ExportOptions => ({
    appDir: app,
    runImage: `docker://${registry!.host}/runner:24`,
    image: `docker://${registry!.host}/myapp:v1`,
    appUid: 1000,
    appGid: 1000,
    processTypes: { web: 'httpd -f' },
    sourceVersion: 'abc123',
    insecureRegistries: [],
    env: {},
    ...over,
  });

  async function failure(o: Partial<ExportOptions>): Promise<string> {
    const err = await exportImage(opts(o)).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(UserError);
    return (err as Error).message;
  }

  /** Copy a run image into a registry with skopeo (independent of the code under test). */
  async function seed(host: string, tag: string, repoTag: string, extra: string[] = []): Promise<void> {
    await execFileP('skopeo', ['copy', '--dest-tls-verify=false', ...extra, `oci:${run.layout}:${tag}`, `docker://${host}/${repoTag}`]);
  }

  before(async function () {
    requireTools(this, 'docker-registry', 'skopeo');
    root = await mkdtemp(path.join(os.tmpdir(), 'slugkit-push-test-'));
    app = path.join(root, 'app');
    await makeApp(app);
    run = await makeRunImages(root);
    registry = await startRegistry();
    await seed(registry.host, '24', 'runner:24');
    await seed(registry.host, '24', 'runner:24-docker', ['--format', 'v2s2']);
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await registry?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    logs = '';
    setLogSink((t) => (logs += t));
  });
  afterEach(() => setLogSink((t) => process.stderr.write(t)));

  async function proxy(options: Parameters<typeof startProxy>[1] = {}, upstream = registry!.host): Promise<RunningProxy> {
    const p = await startProxy(upstream, options);
    stops.push(p.stop);
    return p;
  }

  it('pushes an image skopeo accepts, mounting run layers, then uploads no blob the second time', async () => {
    const counter = await proxy();
    const o = opts({ runImage: `docker://${counter.host}/runner:24`, image: `docker://${counter.host}/myapp:v1` });
    const first = await exportImage(o);
    expect(logs).to.match(/run image layer 1\/1 sha256:[0-9a-f]{12} [\d.]+M mounted from runner/);
    expect(logs).to.match(/app layer sha256:[0-9a-f]{12} \d+B uploaded \(\d+ bytes\)/);
    expect(logs).to.include(`-----> Image digest ${first.digest}`);
    // The launcher layer, the app layer and the config; the run layer was mounted, not sent.
    expect(completedBlobUploads(counter.requests)).to.have.length(3);
    expect(counter.requests.filter((r) => r.method === 'POST' && r.url.includes('mount=') && r.status === 201)).to.have.length(1);
    const manifestPuts = counter.requests.filter((r) => r.method === 'PUT' && r.url.includes('/manifests/'));
    expect(manifestPuts.map((r) => r.url)).to.deep.equal(['/v2/myapp/manifests/v1']);
    expect(counter.requests.indexOf(manifestPuts[0])).to.equal(counter.requests.length - 1);

    const raw = await rawManifest(`docker://${registry!.host}/myapp:v1`);
    expect(sha(raw)).to.equal(first.digest);
    const inspected = await skopeoInspect(`docker://${registry!.host}/myapp:v1`);
    expect(inspected.Digest).to.equal(first.digest);
    expect(inspected.Layers).to.deep.equal([run.v24.layerDigests[0], first.launcher.digest, first.layer.digest]);
    expect((inspected.Labels as Record<string, string>)['io.slugkit.run-image.digest']).to.equal(run.v24.manifestDigest);

    counter.requests.length = 0;
    logs = '';
    const second = await exportImage(o);
    expect(second.digest).to.equal(first.digest);
    expect(completedBlobUploads(counter.requests)).to.deep.equal([]);
    expect(counter.requests.filter((r) => r.method === 'POST')).to.deep.equal([]);
    expect(logs).to.match(/app layer sha256:[0-9a-f]{12} \d+B skipped \(already in myapp\)/);
    expect(logs).to.match(/config sha256:[0-9a-f]{12} skipped/);
  });

  it('keeps Docker media types when the run image in the registry uses them', async () => {
    const result = await exportImage(
      opts({ runImage: `docker://${registry!.host}/runner:24-docker`, image: `docker://${registry!.host}/myapp:docker` }),
    );
    expect(result.mediaType).to.equal('application/vnd.docker.distribution.manifest.v2+json');
    const manifest = JSON.parse((await rawManifest(`docker://${registry!.host}/myapp:docker`)).toString());
    expect(manifest.mediaType).to.equal('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.config.mediaType).to.equal('application/vnd.docker.container.image.v1+json');
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).to.deep.equal(
      Array(3).fill('application/vnd.docker.image.rootfs.diff.tar.gzip'),
    );
    expect(manifest).to.not.have.property('annotations');
    expect((await skopeoInspect(`docker://${registry!.host}/myapp:docker`)).Digest).to.equal(result.digest);
  });

  it('uploads the run layers from a local layout, and copies them from one registry to another', async () => {
    const fromLayout = await exportImage(opts({ runImage: `oci:${run.layout}:24`, image: `docker://${registry!.host}/fromlayout:v1` }));
    expect(logs).to.match(/run image layer 1\/1 sha256:[0-9a-f]{12} [\d.]+M uploaded \(\d+ bytes\)/);
    expect((await skopeoInspect(`docker://${registry!.host}/fromlayout:v1`)).Digest).to.equal(fromLayout.digest);

    const other = await startRegistry();
    stops.push(other.stop);
    logs = '';
    const copied = await exportImage(opts({ image: `docker://${other.host}/myapp:v1` }));
    expect(logs).to.match(/run image layer 1\/1 sha256:[0-9a-f]{12} [\d.]+M uploaded/);
    const inspected = await skopeoInspect(`docker://${other.host}/myapp:v1`);
    expect(inspected.Digest).to.equal(copied.digest);
    // Same run layers and the same app layer, whichever registry they came from.
    expect(inspected.Layers).to.deep.equal([run.v24.layerDigests[0], fromLayout.launcher.digest, fromLayout.layer.digest]);
    expect(copied.layer).to.deep.equal(fromLayout.layer);
  });

  it('authenticates with Basic (htpasswd) credentials and refuses wrong ones clearly', async function () {
    requireTools(this, 'htpasswd');
    const secured = await startRegistry({ htpasswd: { username: 'deploy', password: 'correct-horse' } });
    stops.push(secured.stop);
    await seed(secured.host, '24', 'runner:24', ['--dest-creds', 'deploy:correct-horse']);
    const base = { runImage: `docker://${secured.host}/runner:24`, image: `docker://${secured.host}/myapp:v1` };

    const ok = await exportImage(opts({ ...base, env: { REGISTRY_USERNAME: 'deploy', REGISTRY_PASSWORD: 'correct-horse' } }));
    const { stdout } = await execFileP('skopeo', [
      'inspect',
      '--tls-verify=false',
      '--creds',
      'deploy:correct-horse',
      `docker://${secured.host}/myapp:v1`,
    ]);
    expect(JSON.parse(stdout).Digest).to.equal(ok.digest);
    expect(logs).to.not.include('correct-horse');

    expect(await failure({ ...base, env: { REGISTRY_USERNAME: 'deploy', REGISTRY_PASSWORD: 'wrong-battery' } })).to.equal(
      `registry ${secured.host} rejected the credentials of user deploy (from REGISTRY_USERNAME/REGISTRY_PASSWORD): check the username and password`,
    );
    expect(await failure({ ...base, env: { DOCKER_CONFIG: path.join(root, 'no-docker-config') } })).to.match(
      new RegExp(
        `^registry ${secured.host} needs credentials for reading runner:24: set REGISTRY_USERNAME and REGISTRY_PASSWORD, or add ${secured.host} to the auths or credHelpers of`,
      ),
    );

    // The same credentials from a Docker config.json.
    const dockerConfig = path.join(root, 'docker-config');
    await execFileP('mkdir', ['-p', dockerConfig]);
    await writeFile(
      path.join(dockerConfig, 'config.json'),
      JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from('deploy:correct-horse').toString('base64') } } }),
    );
    const again = await exportImage(opts({ ...base, image: `docker://${secured.host}/myapp:v2`, env: { DOCKER_CONFIG: dockerConfig } }));
    expect(again.digest).to.equal(ok.digest);
    expect(logs).to.not.include(Buffer.from('deploy:correct-horse').toString('base64'));
  });

  it('follows the Bearer token flow with the scopes from WWW-Authenticate', async () => {
    const tokens = await proxy({ auth: { scheme: 'bearer', username: 'ci', password: 'tok-secret-pw' } });
    const base = { runImage: `docker://${tokens.host}/runner:24`, image: `docker://${tokens.host}/bearer-app:v1` };
    const result = await exportImage(opts({ ...base, env: { REGISTRY_USERNAME: 'ci', REGISTRY_PASSWORD: 'tok-secret-pw' } }));
    expect((await skopeoInspect(`docker://${registry!.host}/bearer-app:v1`)).Digest).to.equal(result.digest);
    const asked = tokens.tokenScopes.flat();
    expect(asked).to.include('repository:runner:pull');
    expect(asked).to.include('repository:bearer-app:pull,push');
    expect(logs).to.match(/mounted from runner/);
    expect(logs).to.not.include('tok-secret-pw');

    expect(await failure({ ...base, env: { REGISTRY_USERNAME: 'ci', REGISTRY_PASSWORD: 'nope-nope' } })).to.equal(
      `registry ${tokens.host} rejected the credentials of user ci (from REGISTRY_USERNAME/REGISTRY_PASSWORD): check the username and password`,
    );
  });

  it('retries 503s and connection resets, follows relative upload Locations, and says so when the registry never recovers', async () => {
    const seen = new Set<string>();
    let faults = 0;
    // Each distinct request fails once, by turns with a 503 or a reset, before it is let through.
    const flaky = await proxy({
      relativeLocation: true,
      fault: (req) => {
        const key = `${req.method} ${req.url}`;
        if (req.url === '/v2/' || seen.has(key)) return undefined;
        seen.add(key);
        return faults++ % 2 === 0 ? 503 : 'reset';
      },
    });
    const result = await exportImage(opts({ runImage: `docker://${flaky.host}/runner:24`, image: `docker://${flaky.host}/flaky:v1` }));
    expect((await skopeoInspect(`docker://${registry!.host}/flaky:v1`)).Digest).to.equal(result.digest);
    expect(flaky.requests.filter((r) => r.status === 503).length).to.be.greaterThan(3);
    expect(flaky.requests.filter((r) => r.status === 0).length).to.be.greaterThan(3);

    const down = await proxy({ fault: (req) => (req.url === '/v2/' ? undefined : 503) });
    expect(await failure({ runImage: `docker://${down.host}/runner:24`, image: `docker://${down.host}/down:v1` })).to.equal(
      `registry ${down.host}: reading runner:24 failed after 4 attempts: UNAVAILABLE: injected by the test proxy`,
    );
  });

  it('refuses unreachable registries, unknown images and digest targets in one line', async () => {
    const port = await freePort();
    expect(await failure({ runImage: `docker://127.0.0.1:${port}/runner:24` })).to.equal(
      `registry 127.0.0.1:${port}: reaching registry 127.0.0.1:${port} failed (connection refused): is the registry running, and is the host:port right?`,
    );
    expect(await failure({ runImage: `docker://${registry!.host}/runner:nope` })).to.equal(
      `image ${registry!.host}/runner:nope not found: check the name and tag`,
    );
    expect(await failure({ image: `docker://${registry!.host}/myapp@sha256:${'a'.repeat(64)}` })).to.match(/push to a tag, not a digest$/);
  });

  it('speaks plain HTTP only to loopback hosts and --insecure-registry hosts', () => {
    expect(new RegistryClient('127.0.0.1:5000', { env: {} }).base).to.equal('http://127.0.0.1:5000');
    expect(new RegistryClient('registry.example.com', { env: {} }).base).to.equal('https://registry.example.com');
    expect(new RegistryClient('registry.example.com:5000', { env: {}, insecureRegistries: ['registry.example.com:5000'] }).base).to.equal(
      'http://registry.example.com:5000',
    );
    expect(new RegistryClient('registry.example.com:5000', { env: {}, insecureRegistries: ['registry.example.com'] }).base).to.equal(
      'http://registry.example.com:5000',
    );
    expect(new RegistryClient('registry.example.com:5000', { env: {}, insecureRegistries: ['registry.example.com:6000'] }).base).to.equal(
      'https://registry.example.com:5000',
    );
  });

  it('serves HTTP after docker pull and docker run of the pushed image', async function () {
    const docker = await dockerAvailable();
    requireDocker(this, docker);
    if (!hasCommand('busybox')) requireTools(this, 'busybox');
    const ref = `${registry!.host}/pulled:v1`;
    await exportImage(opts({ image: `docker://${ref}` }));
    await execFileP('docker', ['pull', ref]);
    expect(await answerOfFixtureImage(ref)).to.deep.equal({ status: 200, body: 'hello from slugkit\n' });
  });
});
