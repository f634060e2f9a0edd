/**
 * `slugbuilder rebase`: the app layer stays byte for byte, the run image
 * layers under it are swapped, and only a new config and manifest are
 * written. Checked in layouts, in a real registry, and through the CLI.
 */

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { UserError } from '../shared/errors.js';
import { setLogSink } from '../shared/log.js';
import { type ExportOptions, exportImage } from '../slugbuilder/image/export.js';
import { rebaseImage as rebaseParsed } from '../slugbuilder/image/rebase.js';
import { parseReference } from '../slugbuilder/image/reference.js';
import {
  execFileP,
  fetchWhenReady,
  makeApp,
  makeRunImages,
  type RunImages,
  requireRoot,
  requireTools,
  skopeoInspect,
  startUnpacked,
} from './helpers/image-fixtures.js';
import { completedBlobUploads, startProxy, startRegistry } from './helpers/registry.js';

const CLI = fileURLToPath(new URL('../slugbuilder/cli.js', import.meta.url));

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, CI: process.env.CI ?? '' } }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

/** rebaseImage with references written as text, as a user types them. */
const rebaseImage = (o: { image: string; runImage: string; output?: string; insecureRegistries: string[] }) =>
  rebaseParsed({
    image: parseReference(o.image),
    runImage: parseReference(o.runImage),
    output: o.output ? parseReference(o.output) : undefined,
    insecureRegistries: o.insecureRegistries,
  });

describe('image rebase', () => {
  let root: string;
  let app: string;
  let run: RunImages;
  let logs = '';

  const build = (over: Partial<ExportOptions>) =>
    exportImage({
      appDir: app,
      runImage: `oci:${run.layout}:24`,
      image: `oci:${path.join(root, 'apps')}:v1`,
      appUid: 1000,
      appGid: 1000,
      processTypes: { web: 'httpd -f' },
      sourceVersion: 'abc123',
      insecureRegistries: [],
      env: {},
      ...over,
    });

  const readJson = async (layout: string, digest: string) =>
    JSON.parse(await readFile(path.join(layout, 'blobs/sha256', digest.slice(7)), 'utf8'));

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'slugkit-rebase-test-'));
    app = path.join(root, 'app');
    await makeApp(app);
    run = await makeRunImages(root);
  });
  after(() => rm(root, { recursive: true, force: true }));
  beforeEach(() => {
    logs = '';
    setLogSink((t) => (logs += t));
  });
  afterEach(() => setLogSink((t) => process.stderr.write(t)));

  it('swaps the run image layers, keeps the app layer digest, and round-trips to the same image', async () => {
    const apps = path.join(root, 'apps');
    const built = await build({});
    const rebased = await rebaseImage({
      image: `oci:${apps}:v1`,
      runImage: `oci:${run.layout}:24.1`,
      output: `oci:${apps}:v2`,
      insecureRegistries: [],
    });
    // The launcher layer moves with the app layer.
    expect(rebased.appLayers).to.deep.equal([built.launcher.digest, built.layer.digest]);

    const manifest = await readJson(apps, rebased.digest);
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).to.deep.equal([
      ...run.v241.layerDigests,
      built.launcher.digest,
      built.layer.digest,
    ]);
    const config = await readJson(apps, manifest.config.digest);
    expect(config.rootfs.diff_ids).to.deep.equal([...run.v241.diffIds, built.launcher.diffId, built.layer.diffId]);
    expect(config.config.Labels['io.slugkit.run-image.digest']).to.equal(run.v241.manifestDigest);
    expect(config.config.Labels['io.slugkit.run-image.top-layer']).to.equal(run.v241.diffIds[1]);
    expect(config.config.Labels['io.slugkit.source-version']).to.equal('abc123');
    expect(config.history.map((h: { created_by: string }) => h.created_by)).to.deep.equal([
      'test fixture layer 1',
      'test fixture layer 2',
      'slugbuilder: launcher (slugkit/bin/slugrunner, dyno.bash)',
      'slugbuilder: slug layer (app/)',
    ]);
    expect(config.config.Entrypoint).to.deep.equal(['/bin/bash', '/slugkit/bin/slugrunner']);
    expect(manifest.annotations['org.opencontainers.image.base.digest']).to.equal(run.v241.manifestDigest);
    expect(logs).to.include('1 run image layers, 2 app layer(s)');

    // Back onto the first run image: byte for byte the image the build made.
    const back = await rebaseImage({
      image: `oci:${apps}:v2`,
      runImage: `oci:${run.layout}:24`,
      output: `oci:${apps}:v3`,
      insecureRegistries: [],
    });
    expect(back.digest).to.equal(built.digest);
  });

  it('gives an image that tools accept and that runs on the new run image', async function () {
    requireTools(this, 'skopeo', 'umoci', 'busybox');
    requireRoot(this, 'chroot into the unpacked image');
    const apps = path.join(root, 'apps-run');
    await build({ image: `oci:${apps}:v1` });
    const rebased = await rebaseImage({ image: `oci:${apps}:v1`, runImage: `oci:${run.layout}:24.1`, insecureRegistries: [] });
    expect((await skopeoInspect(`oci:${apps}:v1`)).Digest).to.equal(rebased.digest);
    const bundle = path.join(root, 'bundle-rebased');
    const running = await startUnpacked(apps, 'v1', bundle);
    try {
      expect(await fetchWhenReady(`http://127.0.0.1:${running.port}/`)).to.deep.equal({ status: 200, body: 'hello from slugkit\n' });
    } finally {
      await running.stop();
    }
    expect(await readFile(path.join(bundle, 'rootfs/etc/run-image-version'), 'utf8')).to.equal('24.1\n');
    expect(await readFile(path.join(bundle, 'rootfs/etc/motd'), 'utf8')).to.equal('run image 24.1\n');
  });

  it('in a registry, uploads only a new config and manifest', async function () {
    requireTools(this, 'docker-registry', 'skopeo');
    const registry = await startRegistry();
    const counter = await startProxy(registry.host);
    try {
      for (const tag of ['24', '24.1']) {
        await execFileP('skopeo', [
          'copy',
          '--dest-tls-verify=false',
          `oci:${run.layout}:${tag}`,
          `docker://${registry.host}/runner:${tag}`,
        ]);
      }
      const built = await build({ runImage: `docker://${counter.host}/runner:24`, image: `docker://${counter.host}/myapp:v42` });
      counter.requests.length = 0;
      logs = '';
      const rebased = await rebaseImage({
        image: `docker://${counter.host}/myapp:v42`,
        runImage: `docker://${counter.host}/runner:24.1`,
        insecureRegistries: [],
      });

      const uploads = completedBlobUploads(counter.requests);
      expect(uploads).to.have.length(1); // the config
      expect(counter.requests.filter((r) => r.method === 'POST' && r.url.includes('mount=') && r.status === 201)).to.have.length(2);
      expect(counter.requests.filter((r) => r.method === 'PUT' && r.url.includes('/manifests/')).map((r) => r.url)).to.deep.equal([
        '/v2/myapp/manifests/v42',
      ]);
      expect(logs).to.match(/app layer 2\/2 sha256:[0-9a-f]{12} \d+B skipped \(already in myapp\)/);
      expect(logs).to.match(/run image layer 2\/2 sha256:[0-9a-f]{12} \d+B mounted from runner/);

      const inspected = await skopeoInspect(`docker://${registry.host}/myapp:v42`);
      expect(inspected.Digest).to.equal(rebased.digest);
      expect(inspected.Layers).to.deep.equal([...run.v241.layerDigests, built.launcher.digest, built.layer.digest]);
    } finally {
      await counter.stop();
      await registry.stop();
    }
  });

  it('refuses another architecture, and images without the labels, with a clear error', async () => {
    const apps = path.join(root, 'apps-refuse');
    await build({ image: `oci:${apps}:v1` });
    const failure = async (image: string, runImage: string) => {
      const err = await rebaseImage({ image, runImage, insecureRegistries: [] }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(UserError);
      return (err as Error).message;
    };
    expect(await failure(`oci:${apps}:v1`, `oci:${run.layout}:24-arm64`)).to.equal(
      `cannot rebase oci:${apps}:v1 (linux/amd64) onto oci:${run.layout}:24-arm64: run image oci:${run.layout}:24-arm64 is linux/arm64, not linux/amd64; the os and architecture must match`,
    );
    expect(await failure(`oci:${run.layout}:24`, `oci:${run.layout}:24.1`)).to.equal(
      `image oci:${run.layout}:24 has no io.slugkit.run-image.top-layer label: only images built by slugbuilder --run-image can be rebased`,
    );
    // The refused rebase left the image as it was.
    const index = JSON.parse(await readFile(path.join(apps, 'index.json'), 'utf8'));
    expect(index.manifests).to.have.length(1);
  });

  it('runs as `slugbuilder rebase`: digest on stdout, usage errors exit 2, refusals exit 1', async () => {
    const apps = path.join(root, 'apps-cli');
    await build({ image: `oci:${apps}:v1` });
    const ok = await runCli(['rebase', `oci:${apps}:v1`, '--run-image', `oci:${run.layout}:24.1`, '--image', `oci:${apps}:v2`]);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/^sha256:[0-9a-f]{64}\n$/);
    expect(ok.stderr).to.include('-----> Writing image');

    const usage = await runCli(['rebase', `oci:${apps}:v1`]);
    expect(usage.code).to.equal(2);
    expect(usage.stdout).to.equal('');
    expect(usage.stderr.split('\n')[0]).to.equal(' !     rebase needs --run-image NEW');

    const refused = await runCli(['rebase', `oci:${apps}:v1`, '--run-image', `oci:${run.layout}:24-arm64`]);
    expect(refused.code).to.equal(1);
    expect(refused.stdout).to.equal('');
    expect(refused.stderr).to.match(/^ ! {5}cannot rebase .* the os and architecture must match$/m);
  });
});
