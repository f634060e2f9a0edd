/**
 * SBOMs, as the lifecycle keeps them, through the real slugbuilder CLI: a
 * Cloud Native Buildpack (API 0.10, `sbom-formats` in its buildpack.toml)
 * writes layer, launch and build SBOMs; the image (an OCI layout) has the
 * launch ones in its SBOM layer at /layers/sbom/launch, which the
 * io.buildpacks.lifecycle.metadata label names; --sbom-output-dir holds all
 * of them in pack's layout; an undeclared format fails the build. The
 * bundled nodejs buildpack's app gets slugkit's own CycloneDX SBOM of what
 * was installed (its Node from the local mirror, packages from the real npm
 * registry, as test/buildpack-nodejs.test.ts).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { x as untar } from 'tar';
import { type NodeMirror, RUNNING_VERSION, startNodeMirror } from '../scripts/node-mirror.js';
import { FIXTURES } from './helpers/buildpack-harness.js';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, slugPaths, tempDir } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';
import { makeRootfs, writeRunImage } from './helpers/image-fixtures.js';

const CDX_LAYER =
  '{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"components":[{"type":"library","name":"rt","version":"1.0.0"}]}';
const CDX_LAUNCH =
  '{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"components":[{"type":"library","name":"app-dep","version":"2.0.0"}]}';
const CDX_BUILD =
  '{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"components":[{"type":"library","name":"compiler","version":"3.0.0"}]}';
const SPDX_TOOLS = '{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"tools","packages":[]}';

/** Writes each SBOM the spec names: a launch+cache layer's, a build layer's, launch.sbom and build.sbom. */
const BUILD = `
layers=$1
mkdir -p "$layers/runtime/bin" "$layers/tools"
echo runtime > "$layers/runtime/bin/rt"
printf '[types]\\nlaunch = true\\ncache = true\\n' > "$layers/runtime.toml"
printf '[types]\\nbuild = true\\n' > "$layers/tools.toml"
printf '%s' '${CDX_LAYER}' > "$layers/runtime.sbom.cdx.json"
printf '%s' '${SPDX_TOOLS}' > "$layers/tools.sbom.spdx.json"
printf '%s' '${CDX_LAUNCH}' > "$layers/launch.sbom.cdx.json"
printf '%s' '${CDX_BUILD}' > "$layers/build.sbom.cdx.json"
printf '[[processes]]\\ntype = "web"\\ncommand = ["sh", "-c", "echo hi"]\\ndefault = true\\n' > "$layers/launch.toml"
`;

interface Layout {
  manifest: { layers: Array<{ digest: string }> };
  config: { rootfs: { diff_ids: string[] }; config: { Labels: Record<string, string> } };
  blob(digest: string): Promise<Buffer>;
}

async function readLayout(dir: string): Promise<Layout> {
  const blob = (digest: string) => readFile(path.join(dir, 'blobs/sha256', digest.slice('sha256:'.length)));
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
  const manifest = JSON.parse((await blob(index.manifests[0].digest)).toString());
  const config = JSON.parse((await blob(manifest.config.digest)).toString());
  return { manifest, config, blob };
}

/** Every regular file under `dir`, relative, sorted. */
async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** The image layer whose diff_id is `diffId`, unpacked into a temp dir. */
async function unpackLayer(image: Layout, diffId: string): Promise<string> {
  const i = image.config.rootfs.diff_ids.indexOf(diffId);
  expect(i, `no layer with diff_id ${diffId}`).to.be.at.least(0);
  const gz = await image.blob(image.manifest.layers[i].digest);
  expect('sha256:' + createHash('sha256').update(gunzipSync(gz)).digest('hex')).to.equal(diffId);
  const dir = await tempDir('slugkit-layer-');
  const file = path.join(dir, '..', `${path.basename(dir)}.tar.gz`);
  await writeFile(file, gz);
  await untar({ file, cwd: dir });
  return dir;
}

function oneErrorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith(' !     '));
  expect(lines, stderr).to.have.length(1);
  return lines[0];
}

async function runImage(): Promise<string> {
  const root = await tempDir();
  await makeRootfs(path.join(root, 'rootfs'), '24');
  await writeFile(path.join(root, 'rootfs/bin/bash'), '', { mode: 0o755 }).catch(() => undefined);
  const layout = path.join(root, 'run');
  await writeRunImage(layout, '24', {
    layers: [path.join(root, 'rootfs')],
    version: '24',
    labels: { 'io.buildpacks.stack.id': 'heroku-24' },
  });
  return layout;
}

describe('SBOMs: kept as the lifecycle keeps them', function () {
  this.timeout(240_000);
  after(removeTempDirs);

  it('puts launch SBOMs in the image SBOM layer the lifecycle label names, and all of them in --sbom-output-dir in pack layout', async () => {
    const bp = await writeCnb(path.join(await tempDir(), 'sbom-bp'), {
      id: 'example/sbom',
      api: '0.10',
      build: BUILD,
      // Right after [buildpack]'s keys: still in that table.
      extraToml: 'sbom-formats = ["application/vnd.cyclonedx+json", "application/spdx+json; version=2.3"]\n\n[[targets]]\nos = "linux"\n',
    });
    const out = await tempDir();
    const sbomDir = path.join(out, 'sbom');
    const res = await runBuilder([
      '--source',
      await makeApp({ 'index.txt': 'hello\n' }),
      '--buildpack',
      bp,
      '--app-dir',
      path.join(out, 'app'),
      '--cache-dir',
      path.join(out, 'cache'),
      '-o',
      path.join(out, 'slug.tgz'),
      '--run-image',
      `oci:${await runImage()}:24`,
      '--image',
      `oci:${path.join(out, 'image')}:app`,
      '--sbom-output-dir',
      sbomDir,
    ]);
    expect(res.exitCode, res.stderr).to.equal(0);

    // pack's layout: launch/, build/ and cache/, each <escaped id>/[<layer>/]sbom.<ext>.
    expect(await files(sbomDir)).to.deep.equal([
      'build/example_sbom/sbom.cdx.json',
      'build/example_sbom/tools/sbom.spdx.json',
      'cache/example_sbom/runtime/sbom.cdx.json',
      'launch/example_sbom/runtime/sbom.cdx.json',
      'launch/example_sbom/sbom.cdx.json',
    ]);
    const bytes = (rel: string) => readFile(path.join(sbomDir, rel), 'utf8');
    expect(await bytes('launch/example_sbom/runtime/sbom.cdx.json')).to.equal(CDX_LAYER);
    expect(await bytes('cache/example_sbom/runtime/sbom.cdx.json')).to.equal(CDX_LAYER);
    expect(await bytes('launch/example_sbom/sbom.cdx.json')).to.equal(CDX_LAUNCH);
    expect(await bytes('build/example_sbom/sbom.cdx.json')).to.equal(CDX_BUILD);
    expect(await bytes('build/example_sbom/tools/sbom.spdx.json')).to.equal(SPDX_TOOLS);

    // The slug carries the launch SBOMs only.
    const inSlug = (await slugPaths(path.join(out, 'slug.tgz'))).filter((p) => p.includes('sbom'));
    expect(inSlug.filter((p) => p.endsWith('.json'))).to.deep.equal([
      '.layers/sbom/launch/example_sbom/runtime/sbom.cdx.json',
      '.layers/sbom/launch/example_sbom/sbom.cdx.json',
    ]);

    // The image: the label's sbom.sha is a layer holding exactly those, at /layers/sbom/launch.
    const image = await readLayout(path.join(out, 'image'));
    const lifecycle = JSON.parse(image.config.config.Labels['io.buildpacks.lifecycle.metadata']);
    const sbomLayer = await unpackLayer(image, lifecycle.sbom.sha);
    expect(await files(sbomLayer)).to.deep.equal([
      'layers/sbom/launch/example_sbom/runtime/sbom.cdx.json',
      'layers/sbom/launch/example_sbom/sbom.cdx.json',
    ]);
    expect(await readFile(path.join(sbomLayer, 'layers/sbom/launch/example_sbom/runtime/sbom.cdx.json'), 'utf8')).to.equal(CDX_LAYER);
    // ... and no app layer repeats them.
    const appLayer = await unpackLayer(image, lifecycle.app[lifecycle.app.length - 1].sha);
    expect((await files(appLayer)).filter((f) => f.includes('/sbom/'))).to.deep.equal([]);
  });

  it('fails in one line when a buildpack writes an SBOM format its buildpack.toml does not declare, as the lifecycle does', async () => {
    const bp = await writeCnb(path.join(await tempDir(), 'undeclared'), {
      id: 'example/undeclared',
      api: '0.9',
      build: `printf '{}' > "$1/launch.sbom.spdx.json"`,
      extraToml: 'sbom-formats = ["application/vnd.cyclonedx+json"]\n',
    });
    const out = await tempDir();
    const res = await runBuilder([
      '--source',
      await makeApp({ 'index.txt': 'hello\n' }),
      '--buildpack',
      bp,
      '--app-dir',
      path.join(out, 'app'),
      '-o',
      path.join(out, 'slug.tgz'),
    ]);
    expect(res.exitCode).to.equal(1);
    expect(oneErrorLine(res.stderr)).to.equal(
      ' !     buildpack example/undeclared@0.0.1: wrote launch.sbom.spdx.json, but its buildpack.toml does not declare application/spdx+json: add it to [buildpack] sbom-formats',
    );
    expect(await readdir(out), 'no slug').to.deep.equal([]);
  });

  it("restores a cached layer's SBOM with the layer before the next build, as the lifecycle's restorer does", async () => {
    const bp = await writeCnb(path.join(await tempDir(), 'cached'), {
      id: 'example/cached',
      api: '0.10',
      build: [
        'if [ -f "$1/dep.sbom.cdx.json" ]; then echo "restored: $(cat "$1/dep.sbom.cdx.json")"; else echo "no SBOM restored"; fi',
        'mkdir -p "$1/dep" && echo x > "$1/dep/x"',
        `printf '[types]\\ncache = true\\n' > "$1/dep.toml"`,
        `[ -f "$1/dep.sbom.cdx.json" ] || printf '%s' '${CDX_LAYER}' > "$1/dep.sbom.cdx.json"`,
      ].join('\n'),
      extraToml: 'sbom-formats = ["application/vnd.cyclonedx+json"]\n',
    });
    const out = await tempDir();
    const build = async (n: number) =>
      runBuilder([
        '--source',
        await makeApp({ 'index.txt': 'hi\n' }),
        '--buildpack',
        bp,
        '--cache-dir',
        path.join(out, 'cache'),
        '-o',
        path.join(out, `slug${n}.tgz`),
        '--sbom-output-dir',
        path.join(out, `sbom${n}`),
      ]);
    const first = await build(1);
    expect(first.exitCode, first.stderr).to.equal(0);
    expect(first.stderr).to.contain('no SBOM restored');
    const second = await build(2);
    expect(second.exitCode, second.stderr).to.equal(0);
    expect(second.stderr).to.contain(`restored: ${CDX_LAYER}`);
    expect(await readFile(path.join(out, 'sbom2/cache/example_cached/dep/sbom.cdx.json'), 'utf8')).to.equal(CDX_LAYER);
    expect(await files(path.join(out, 'sbom2'))).to.deep.equal([
      'build/example_cached/dep/sbom.cdx.json',
      'cache/example_cached/dep/sbom.cdx.json',
    ]);
  });

  it("derives slugkit's SBOM from what any classic buildpack installed (a Heroku-style .heroku/python), and a source cannot plant one; an app with nothing installed gets none", async () => {
    // Lays out a Python install as Heroku's python buildpack does: the runtime's version file and site-packages.
    const heroku = await makeBuildpack({
      detect: 'echo Python',
      compile: [
        'site="$1/.heroku/python/lib/python3.12/site-packages"',
        'mkdir -p "$site/Django-4.2.7.dist-info" "$site/typing_extensions-4.9.0.dist-info"',
        'printf "python-3.12.1\\n" > "$1/.heroku/python-version"',
        'printf "Metadata-Version: 2.1\\nName: Django\\nVersion: 4.2.7\\n" > "$site/Django-4.2.7.dist-info/METADATA"',
        'printf "Metadata-Version: 2.1\\nName: typing_extensions\\nVersion: 4.9.0\\n" > "$site/typing_extensions-4.9.0.dist-info/METADATA"',
      ].join('\n'),
      release: "echo '--- {}'",
    });
    const forged = '{"bomFormat":"CycloneDX","components":[{"name":"forged"}]}';
    const out = await tempDir();
    const res = await runBuilder([
      '--source',
      await makeApp({ 'index.txt': 'hi\n', '.layers/sbom/launch/slugkit/sbom.cdx.json': forged }),
      '--buildpack',
      heroku,
      '-o',
      path.join(out, 'slug.tgz'),
    ]);
    expect(res.exitCode, res.stderr).to.equal(0);
    const slug = await tempDir('slugkit-slug-');
    await untar({ file: path.join(out, 'slug.tgz'), cwd: slug });
    const bom = JSON.parse(await readFile(path.join(slug, '.layers/sbom/launch/slugkit/sbom.cdx.json'), 'utf8'));
    expect(bom.metadata.component).to.deep.equal({ type: 'application', name: 'app', 'bom-ref': 'app' });
    expect(bom.components).to.deep.equal([
      { type: 'platform', name: 'python', version: '3.12.1', purl: 'pkg:generic/python@3.12.1', 'bom-ref': 'pkg:generic/python@3.12.1' },
      { type: 'library', name: 'Django', version: '4.2.7', purl: 'pkg:pypi/django@4.2.7', 'bom-ref': 'pkg:pypi/django@4.2.7' },
      {
        type: 'library',
        name: 'typing_extensions',
        version: '4.9.0',
        purl: 'pkg:pypi/typing-extensions@4.9.0',
        'bom-ref': 'pkg:pypi/typing-extensions@4.9.0',
      },
    ]);
    // An app with nothing installed gets none (and the planted one is gone too).
    const plain = await tempDir();
    const none = await runBuilder([
      '--source',
      await makeApp({ 'index.txt': 'hi\n', '.layers/sbom/launch/slugkit/sbom.cdx.json': '{}' }),
      '--buildpack',
      await makeBuildpack({ detect: 'echo Plain', compile: 'true', release: "echo '--- {}'" }),
      '-o',
      path.join(plain, 'slug.tgz'),
    ]);
    expect(none.exitCode, none.stderr).to.equal(0);
    expect((await slugPaths(path.join(plain, 'slug.tgz'))).filter((p) => p.startsWith('.layers'))).to.deep.equal([]);
  });

  describe('slugkit own CycloneDX SBOM of a node app built by the bundled nodejs buildpack', () => {
    let mirror: NodeMirror;
    let saved: string | undefined;
    before(async () => {
      mirror = await startNodeMirror();
      saved = process.env.NODEJS_ORG_MIRROR;
      process.env.NODEJS_ORG_MIRROR = mirror.url;
    });
    after(async () => {
      process.env.NODEJS_ORG_MIRROR = saved;
      await mirror.close();
    });

    it("lists the lockfile's installed packages, the Node runtime and npm; pruned devDependencies are left out", async () => {
      const lock = JSON.parse(await readFile(path.join(FIXTURES, 'nodejs-build/package-lock.json'), 'utf8'));
      delete lock.packages[''].engines;
      const src = await makeApp({
        'package.json': JSON.stringify({
          name: 'sbom-app',
          version: '1.2.3',
          dependencies: { ms: '2.1.3' },
          devDependencies: { 'is-number': '7.0.0' },
        }),
        'package-lock.json': JSON.stringify({ ...lock, name: 'sbom-app' }),
      });
      const out = await tempDir();
      const res = await runBuilder([
        '--source',
        src,
        '-o',
        path.join(out, 'slug.tgz'),
        '--cache-dir',
        path.join(out, 'cache'),
        '--sbom-output-dir',
        path.join(out, 'sbom'),
      ]);
      expect(res.exitCode, res.stderr).to.equal(0);
      const slug = await tempDir('slugkit-slug-');
      await mkdir(slug, { recursive: true });
      await untar({ file: path.join(out, 'slug.tgz'), cwd: slug });
      const text = await readFile(path.join(slug, '.layers/sbom/launch/slugkit/sbom.cdx.json'), 'utf8');
      expect(await readFile(path.join(out, 'sbom/launch/slugkit/sbom.cdx.json'), 'utf8')).to.equal(text);
      const bom = JSON.parse(text);
      expect(bom).to.include({ bomFormat: 'CycloneDX', specVersion: '1.5', version: 1 });
      expect(bom.metadata.component).to.deep.equal({ type: 'application', name: 'sbom-app', version: '1.2.3', 'bom-ref': 'app' });
      const npmVersion = JSON.parse(await readFile(path.join(slug, '.heroku/node/lib/node_modules/npm/package.json'), 'utf8')).version;
      expect(bom.components.map((c: { name: string; version: string; purl: string }) => `${c.purl} ${c.name} ${c.version}`)).to.deep.equal([
        `pkg:generic/node@${RUNNING_VERSION} node ${RUNNING_VERSION}`,
        `pkg:npm/ms@2.1.3 ms 2.1.3`,
        `pkg:npm/npm@${npmVersion} npm ${npmVersion}`,
      ]);
      expect(bom.components[1].hashes[0].alg).to.equal('SHA-512');
    });
  });
});
