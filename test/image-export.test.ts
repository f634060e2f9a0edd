/**
 * Image export without a daemon: OCI layouts and archives from a local run
 * image, checked with skopeo and umoci (and Docker when a daemon answers).
 */

import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { extract, list } from 'tar';
import { UserError } from '../shared/errors.js';
import { setLogSink } from '../shared/log.js';
import { type ExportOptions, exportImage } from '../slugbuilder/image/export.js';
import {
  answerOfFixtureImage,
  BUSYBOX,
  dockerAvailable,
  execFileP,
  fetchWhenReady,
  makeApp,
  makeRunImages,
  type RunImages,
  requireDocker,
  requireRoot,
  requireTools,
  skopeoInspect,
  startUnpacked,
  writeRunImage,
} from './helpers/image-fixtures.js';

/** A size as the log prints it ("312B", "1.4M"): the run image layer is bytes without busybox, megabytes with it. */
const SIZE = String.raw`(?:\d+B|\d+\.\d[KMG])`;

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

describe('image export (OCI layout and archives)', () => {
  let root: string;
  let app: string;
  let run: RunImages;
  let logs = '';
  let docker = false;

  const opts = (over: Partial<ExportOptions>): ExportOptions => ({
    appDir: app,
    runImage: `oci:${run.layout}:24`,
    image: `oci:${path.join(root, 'out')}:v1`,
    appUid: 1000,
    appGid: 1000,
    processTypes: { web: 'httpd -f', worker: 'sh worker.sh' },
    sourceVersion: 'abc123',
    insecureRegistries: [],
    env: {},
    ...over,
  });

  const blob = (layout: string, digest: string) => readFile(path.join(layout, 'blobs/sha256', digest.slice(7)));

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'slugkit-export-test-'));
    app = path.join(root, 'app');
    await makeApp(app);
    run = await makeRunImages(root);
    docker = await dockerAvailable();
  });
  after(() => rm(root, { recursive: true, force: true }));
  beforeEach(() => {
    logs = '';
    setLogSink((t) => (logs += t));
  });
  afterEach(() => setLogSink((t) => process.stderr.write(t)));

  it('writes an OCI layout whose manifest, config and layer digests match their bytes', async () => {
    const out = path.join(root, 'out-digests');
    const result = await exportImage(opts({ image: `oci:${out}:v1` }));
    expect(result.reference).to.equal(`oci:${out}:v1`);

    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8'));
    expect(index.manifests).to.have.length(1);
    expect(index.manifests[0]).to.include({ digest: result.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    expect(index.manifests[0].annotations).to.deep.equal({ 'org.opencontainers.image.ref.name': 'v1' });

    const manifestBytes = await blob(out, result.digest);
    expect(sha(manifestBytes)).to.equal(result.digest);
    const manifest = JSON.parse(manifestBytes.toString());
    expect(manifest.mediaType).to.equal('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.config.mediaType).to.equal('application/vnd.oci.image.config.v1+json');
    // The run image's layer, the launcher layer, the app layer.
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).to.deep.equal(
      Array(3).fill('application/vnd.oci.image.layer.v1.tar+gzip'),
    );
    expect(manifest.layers[0].digest).to.equal(run.v24.layerDigests[0]);
    expect(manifest.layers[1].digest).to.equal(result.launcher.digest);
    expect(manifest.annotations['org.opencontainers.image.base.digest']).to.equal(run.v24.manifestDigest);

    const configBytes = await blob(out, manifest.config.digest);
    expect(sha(configBytes)).to.equal(manifest.config.digest);
    const config = JSON.parse(configBytes.toString());
    const appLayer = await blob(out, manifest.layers[2].digest);
    expect(sha(appLayer)).to.equal(manifest.layers[2].digest);
    expect(appLayer.length).to.equal(manifest.layers[2].size);
    expect(config.rootfs.diff_ids).to.deep.equal([run.v24.diffIds[0], result.launcher.diffId, sha(gunzipSync(appLayer))]);
    expect(result.layer).to.deep.equal({
      digest: manifest.layers[2].digest,
      diffId: config.rootfs.diff_ids[2],
      size: appLayer.length,
      uid: 1000,
      gid: 1000,
    });
    // An app with no dependency tree and no CNB launch layer stays one layer.
    expect(result.layers).to.deep.equal([
      { path: '/app', digest: manifest.layers[2].digest, diffId: config.rootfs.diff_ids[2], size: appLayer.length },
    ]);

    expect(config.created).to.equal('1980-01-01T00:00:01Z');
    expect(config.config.WorkingDir).to.equal('/app');
    expect(config.config.Entrypoint).to.deep.equal(['/bin/bash', '/slugkit/bin/slugrunner']);
    expect(config.config.Cmd).to.deep.equal(['start', 'web']);
    expect(config.config.Env).to.deep.equal(['PATH=/usr/local/bin:/usr/bin:/bin', 'RUN_IMAGE_VERSION=24', 'HOME=/app']);
    const { 'io.buildpacks.lifecycle.metadata': lifecycle, 'io.buildpacks.build.metadata': _build, ...labels } = config.config.Labels;
    expect(JSON.parse(lifecycle).runImage.topLayer).to.equal(run.v24.diffIds[0]);
    expect(labels).to.deep.equal({
      'io.buildpacks.project.metadata': '{"source":{"type":"git","version":{"commit":"abc123"}}}',
      'org.example.run-image': '24',
      'io.slugkit.process-types': '{"web":"httpd -f","worker":"sh worker.sh"}',
      'io.slugkit.source-version': 'abc123',
      'io.slugkit.version': JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')).version,
      'io.slugkit.run-image.reference': `oci:${run.layout}:24`,
      'io.slugkit.run-image.digest': run.v24.manifestDigest,
      'io.slugkit.run-image.top-layer': run.v24.diffIds[0],
      'io.slugkit.layers': JSON.stringify([{ path: '/app', diffID: config.rootfs.diff_ids[2] }]),
    });
    expect(config.history).to.have.length(3);
    expect(config.history[1].created_by).to.match(/^slugbuilder: launcher/);
    expect(config.history[2]).to.deep.equal({ created: '1980-01-01T00:00:01Z', created_by: 'slugbuilder: slug layer (app/)' });

    expect(logs).to.include('-----> Reading run image');
    expect(logs).to.match(new RegExp(` {7}run image layer 1/1 sha256:[0-9a-f]{12} ${SIZE} written`));
    expect(logs).to.match(/ {7}app layer sha256:[0-9a-f]{12} \d+B written/);
    expect(logs).to.include(`-----> Image digest ${result.digest}`);
  });

  it('is accepted by skopeo, and umoci unpacks the slug under /app owned by the app user', async function () {
    requireTools(this, 'skopeo', 'umoci');
    const out = path.join(root, 'out-tools');
    const result = await exportImage(opts({ image: `oci:${out}:v1`, appUid: 1500, appGid: 1600 }));
    const inspected = await skopeoInspect(`oci:${out}:v1`);
    expect(inspected.Digest).to.equal(result.digest);
    expect(inspected).to.include({ Os: 'linux', Architecture: 'amd64', Created: '1980-01-01T00:00:01Z' });
    expect(inspected.Layers).to.deep.equal([run.v24.layerDigests[0], result.launcher.digest, result.layer.digest]);

    const bundle = path.join(root, 'bundle-tools');
    const rootless = process.getuid?.() !== 0;
    await execFileP('umoci', ['unpack', ...(rootless ? ['--rootless'] : []), '--image', `${out}:v1`, bundle]);
    const rootfs = path.join(bundle, 'rootfs');
    expect(await readFile(path.join(rootfs, 'app/public/index.html'), 'utf8')).to.equal('hello from slugkit\n');
    expect(await readFile(path.join(rootfs, 'etc/run-image-version'), 'utf8')).to.equal('24\n');
    // The launcher layer: slugkit's bash launcher, byte for byte.
    expect(await readFile(path.join(rootfs, 'slugkit/bin/slugrunner'))).to.deep.equal(
      await readFile(new URL('../../bin/slugrunner', import.meta.url)),
    );
    expect((await stat(path.join(rootfs, 'slugkit/bin/slugrunner'))).mode & 0o777).to.equal(0o755);
    if (!rootless) {
      const st = await stat(path.join(rootfs, 'app/Procfile'));
      expect([st.uid, st.gid]).to.deep.equal([1500, 1600]);
      expect((await stat(path.join(rootfs, 'app'))).uid).to.equal(1500);
    }
  });

  it("owns /app by the run image's numeric User unless --app-uid/--app-gid say otherwise", async () => {
    const layout = path.join(root, 'runner-user');
    await writeRunImage(layout, '24', { layers: [path.join(root, 'rootfs-24')], version: '24', user: '1500:0' });
    const fromUser = await exportImage(
      opts({ runImage: `oci:${layout}:24`, image: `oci:${path.join(root, 'owner-a')}:v1`, appUid: undefined, appGid: undefined }),
    );
    expect(fromUser.layer).to.include({ uid: 1500, gid: 0 });
    expect(logs).to.include("app/ owned by 1500:0 (the run image's User 1500:0)");
    const entries: Array<[string, number | undefined, number | undefined]> = [];
    const manifest = JSON.parse((await blob(path.join(root, 'owner-a'), fromUser.digest)).toString());
    await list({
      file: path.join(root, 'owner-a', 'blobs/sha256', manifest.layers[2].digest.slice(7)),
      onReadEntry: (e) => entries.push([e.path, e.uid, e.gid]),
    });
    expect(entries.every(([, uid, gid]) => uid === 1500 && gid === 0)).to.equal(true);
    // The run image's User is kept: the runner starts as that user.
    expect(JSON.parse((await blob(path.join(root, 'owner-a'), manifest.config.digest)).toString()).config.User).to.equal('1500:0');

    const flagged = await exportImage(
      opts({ runImage: `oci:${layout}:24`, image: `oci:${path.join(root, 'owner-b')}:v1`, appUid: 2000, appGid: undefined }),
    );
    expect(flagged.layer).to.include({ uid: 2000, gid: 0 });
  });

  it('gives the same manifest digest for two builds of the same source, and a new one for a new SOURCE_DATE_EPOCH', async () => {
    const copy = path.join(root, 'app-copy');
    await cp(app, copy, { recursive: true });
    const a = await exportImage(opts({ image: `oci:${path.join(root, 'repro-a')}:v1` }));
    const b = await exportImage(opts({ appDir: copy, image: `oci:${path.join(root, 'repro-b')}:v1` }));
    expect(b.digest).to.equal(a.digest);
    expect(b.layer).to.deep.equal(a.layer);
    const c = await exportImage(opts({ image: `oci:${path.join(root, 'repro-c')}:v1`, mtime: new Date(1700000000 * 1000) }));
    expect(c.digest).to.not.equal(a.digest);
    // The launcher layer depends only on slugkit's version: the same bytes whatever SOURCE_DATE_EPOCH says.
    expect(c.launcher).to.deep.equal(a.launcher);
    const manifest = JSON.parse((await blob(path.join(root, 'repro-c'), c.digest)).toString());
    const config = JSON.parse((await blob(path.join(root, 'repro-c'), manifest.config.digest)).toString());
    expect(config.created).to.equal('2023-11-14T22:13:20Z');
  });

  it('writes OCI media types into a layout even from a Docker-typed run image, never mixing the families', async function () {
    requireTools(this, 'skopeo');
    const out = path.join(root, 'out-docker');
    const result = await exportImage(opts({ runImage: `oci:${run.layout}:24-docker`, image: `oci:${out}:v1` }));
    expect(result.mediaType).to.equal('application/vnd.oci.image.manifest.v1+json');
    const manifest = JSON.parse((await blob(out, result.digest)).toString());
    expect(manifest.config.mediaType).to.equal('application/vnd.oci.image.config.v1+json');
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).to.deep.equal(
      Array(3).fill('application/vnd.oci.image.layer.v1.tar+gzip'),
    );
    // Same layer bytes as the Docker-typed run image: only the type names differ.
    expect(manifest.layers[0].digest).to.equal(run.docker.layerDigests[0]);
    expect((await skopeoInspect(`oci:${out}:v1`)).Digest).to.equal(result.digest);
  });

  it('resolves a run image index to linux/amd64, or to the --platform asked for', async () => {
    const amd = await exportImage(opts({ runImage: `oci:${run.layout}:24-multi`, image: `oci:${path.join(root, 'multi-amd')}:v1` }));
    expect(amd.platform).to.equal('linux/amd64');
    const arm = await exportImage(
      opts({ runImage: `oci:${run.layout}:24-multi`, image: `oci:${path.join(root, 'multi-arm')}:v1`, platform: 'linux/arm64' }),
    );
    expect(arm.platform).to.equal('linux/arm64/v8');
    expect(arm.digest).to.not.equal(amd.digest);
    const err = await exportImage(
      opts({ runImage: `oci:${run.layout}:24-multi`, image: `oci:${path.join(root, 'multi-s390')}:v1`, platform: 'linux/s390x' }),
    ).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(UserError);
    expect((err as Error).message).to.equal(
      `run image oci:${run.layout}:24-multi has no linux/s390x image (it has: linux/arm64/v8, linux/amd64): choose one with --platform`,
    );
  });

  it('refuses a single-platform run image that does not match an explicit --platform', async () => {
    const ok = await exportImage(opts({ runImage: `oci:${run.layout}:24-arm64`, image: `oci:${path.join(root, 'arm-single')}:v1` }));
    expect(ok.platform).to.equal('linux/arm64');
    const err = await exportImage(
      opts({ runImage: `oci:${run.layout}:24-arm64`, image: `oci:${path.join(root, 'arm-refused')}:v1`, platform: 'linux/amd64' }),
    ).catch((e: unknown) => e);
    expect((err as Error).message).to.equal(
      `run image oci:${run.layout}:24-arm64 is linux/arm64, not linux/amd64: pick a run image for that platform or drop --platform`,
    );
    expect(await readdir(root)).to.not.include('arm-refused');
  });

  it('adds a tag to an existing layout and keeps its other tags', async function () {
    requireTools(this, 'skopeo');
    const shared = path.join(root, 'shared-layout');
    await cp(run.layout, shared, { recursive: true });
    const result = await exportImage(opts({ runImage: `oci:${shared}:24`, image: `oci:${shared}:myapp` }));
    expect((await skopeoInspect(`oci:${shared}:myapp`)).Digest).to.equal(result.digest);
    expect((await skopeoInspect(`oci:${shared}:24`)).Digest).to.equal(run.v24.manifestDigest);
    expect(logs).to.match(new RegExp(`run image layer 1/1 sha256:[0-9a-f]{12} ${SIZE} already present`));
    const again = await exportImage(opts({ runImage: `oci:${shared}:24`, image: `oci:${shared}:myapp` }));
    expect(again.digest).to.equal(result.digest);
    const index = JSON.parse(await readFile(path.join(shared, 'index.json'), 'utf8'));
    expect(
      index.manifests.filter(
        (m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === 'myapp',
      ),
    ).to.have.length(1);
  });

  it('writes one archive that is an oci-archive and a docker-load tar', async function () {
    requireTools(this, 'skopeo');
    const file = path.join(root, 'myapp.tar');
    const result = await exportImage(opts({ image: `oci-archive:${file}:myapp:v42` }));
    expect((await skopeoInspect(`oci-archive:${file}`)).Digest).to.equal(result.digest);
    // skopeo's docker-archive reader only looks at manifest.json: the docker side of the same file.
    const asDocker = await skopeoInspect(`docker-archive:${file}`);
    expect((asDocker.Labels as Record<string, string>)['io.slugkit.source-version']).to.equal('abc123');
    expect(asDocker.Layers).to.have.length(3);

    const names: string[] = [];
    await list({ file, onReadEntry: (e) => names.push(e.path) });
    expect(names).to.include.members(['./oci-layout', './index.json', './manifest.json', `./blobs/sha256/${result.digest.slice(7)}`]);
    expect(logs).to.include('       docker load will name it myapp:v42');
    const stage = path.join(root, 'myapp-unpacked');
    await mkdir(stage);
    await extract({ file, cwd: stage });
    const dockerManifest = JSON.parse(await readFile(path.join(stage, 'manifest.json'), 'utf8'));
    expect(dockerManifest).to.deep.equal([
      {
        Config: `blobs/sha256/${JSON.parse((await blob(stage, result.digest)).toString()).config.digest.slice(7)}`,
        RepoTags: ['myapp:v42'],
        Layers: [
          `blobs/sha256/${run.v24.layerDigests[0].slice(7)}`,
          `blobs/sha256/${result.launcher.digest.slice(7)}`,
          `blobs/sha256/${result.layer.digest.slice(7)}`,
        ],
      },
    ]);
    expect((await readdir(root)).filter((n) => n.startsWith('myapp.tar.'))).to.deep.equal([]);
  });

  it('serves HTTP after docker load and docker run of the archive', async function () {
    requireDocker(this, docker);
    if (!BUSYBOX) requireTools(this, 'busybox');
    const file = path.join(root, 'docker-run.tar');
    const tag = `slugkit-image-test:${process.pid}`;
    await exportImage(opts({ image: `oci-archive:${file}:${tag}` }));
    const { stdout } = await execFileP('docker', ['load', '-i', file]);
    expect(stdout).to.include(`Loaded image: ${tag}`);
    expect(await answerOfFixtureImage(tag)).to.deep.equal({ status: 200, body: 'hello from slugkit\n' });
  });

  it('runs: its entrypoint, cmd, env and working dir start the web process', async function () {
    requireTools(this, 'umoci', 'busybox');
    requireRoot(this, 'chroot into the unpacked image');
    const out = path.join(root, 'out-run');
    await exportImage(opts({ image: `oci:${out}:v1` }));
    const running = await startUnpacked(out, 'v1', path.join(root, 'bundle-run'));
    try {
      expect(await fetchWhenReady(`http://127.0.0.1:${running.port}/`)).to.deep.equal({ status: 200, body: 'hello from slugkit\n' });
    } finally {
      await running.stop();
    }
  });

  it('reads run images from oci-archive and docker-archive tarballs', async function () {
    requireTools(this, 'skopeo');
    const ociTar = path.join(root, 'runner-oci.tar');
    const dockerTar = path.join(root, 'runner-docker.tar');
    await execFileP('skopeo', ['copy', `oci:${run.layout}:24`, `oci-archive:${ociTar}`]);
    await execFileP('skopeo', ['copy', `oci:${run.layout}:24`, `docker-archive:${dockerTar}:runner:24`]);

    const tempsBefore = (await readdir(os.tmpdir())).filter((n) => n.startsWith('slugkit-image-')).length;
    const fromOci = await exportImage(opts({ runImage: `oci-archive:${ociTar}`, image: `oci:${path.join(root, 'from-oci-archive')}:v1` }));
    expect(fromOci.runImage.digest).to.equal(run.v24.manifestDigest);

    const out = path.join(root, 'from-docker-archive');
    const fromDocker = await exportImage(opts({ runImage: `docker-archive:${dockerTar}`, image: `oci:${out}:v1` }));
    expect(fromDocker.mediaType).to.equal('application/vnd.oci.image.manifest.v1+json');
    const manifest = JSON.parse((await blob(out, fromDocker.digest)).toString());
    const config = JSON.parse((await blob(out, manifest.config.digest)).toString());
    expect(config.rootfs.diff_ids[0]).to.equal(run.v24.diffIds[0]);
    expect((await skopeoInspect(`oci:${out}:v1`)).Digest).to.equal(fromDocker.digest);
    // The temp dirs the archives were unpacked into are gone.
    expect((await readdir(os.tmpdir())).filter((n) => n.startsWith('slugkit-image-')).length).to.equal(tempsBefore);
  });

  it('refuses bad run images and unwritable targets in one line, leaving nothing behind', async () => {
    const failure = async (o: Partial<ExportOptions>) => {
      const err = await exportImage(opts(o)).catch((e: unknown) => e);
      expect(err, JSON.stringify(o)).to.be.instanceOf(UserError);
      return (err as Error).message;
    };
    expect(await failure({ runImage: `oci:${run.layout}:nope`, image: `oci:${path.join(root, 'r1')}` })).to.equal(
      `run image oci:${run.layout}:nope: no tag "nope" in ${run.layout} (tags: 24, 24.1, 24-docker, 24-multi, 24-arm64)`,
    );
    expect(await failure({ runImage: `oci:${root}:24`, image: `oci:${path.join(root, 'r2')}` })).to.equal(
      `run image oci:${root}:24: ${root} is not an OCI image layout (no oci-layout file)`,
    );
    expect(await failure({ runImage: `oci:${run.layout}`, image: `oci:${path.join(root, 'r3')}` })).to.match(
      /holds 5 images; name one with oci:.*:TAG/,
    );
    expect(await failure({ runImage: `oci-archive:${path.join(root, 'missing.tar')}`, image: `oci:${path.join(root, 'r4')}` })).to.equal(
      `run image oci-archive:${path.join(root, 'missing.tar')}: ${path.join(root, 'missing.tar')} does not exist`,
    );
    const junk = path.join(root, 'junk.tar');
    await writeFile(junk, 'this is not a tarball at all, not even close'.repeat(20));
    expect(await failure({ runImage: `oci-archive:${junk}`, image: `oci:${path.join(root, 'r5')}` })).to.match(
      /is not a tar or tar.gz archive$/,
    );
    expect(await failure({ image: `oci-archive:${path.join(root, 'no-such-dir', 'x.tar')}` })).to.equal(
      `cannot write --image ${path.join(root, 'no-such-dir', 'x.tar')}: the directory ${path.join(root, 'no-such-dir')} does not exist`,
    );
    await writeFile(path.join(root, 'a-file'), 'x');
    expect(await failure({ image: `oci:${path.join(root, 'a-file')}:v1` })).to.match(/a-file is a file, not an OCI layout directory$/);
    const names = await readdir(root);
    for (const n of ['r1', 'r2', 'r3', 'r4', 'r5', 'no-such-dir']) expect(names).to.not.include(n);
    expect(names.filter((n) => n.includes('.tmp'))).to.deep.equal([]);
  });
});
