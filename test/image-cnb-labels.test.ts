/**
 * The labels the CNB tools read (`pack inspect`, `pack rebase`, `pack sbom
 * download`, the lifecycle's rebaser), through the real slugbuilder CLI:
 * io.buildpacks.lifecycle.metadata and io.buildpacks.build.metadata checked
 * against the shapes the platform spec documents ("Labels"), their values
 * against the image, and `slugbuilder rebase` updating runImage and the run
 * image's own io.buildpacks.stack.* / base.* labels as the lifecycle's rebaser does.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { makeApp, removeTempDirs, runBuilder, tempDir } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';
import { makeRootfs, writeRunImage } from './helpers/image-fixtures.js';

/** A shape from the spec: a type name, an array of one shape, or an object of shapes (`?` suffix: optional key). */
type Shape = 'string' | 'boolean' | 'object' | [Shape] | { [key: string]: Shape };

/** Problems of `value` against `shape`, as "path: what"; extra keys are allowed, as the spec's readers allow them. */
function check(value: unknown, shape: Shape, at = '$'): string[] {
  if (shape === 'string' || shape === 'boolean') return typeof value === shape ? [] : [`${at}: not a ${shape}`];
  if (shape === 'object') return value && typeof value === 'object' && !Array.isArray(value) ? [] : [`${at}: not an object`];
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return [`${at}: not an array`];
    return value.flatMap((v, i) => check(v, shape[0], `${at}[${i}]`));
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [`${at}: not an object`];
  const obj = value as Record<string, unknown>;
  return Object.entries(shape).flatMap(([key, sub]) => {
    const optional = key.endsWith('?');
    const name = optional ? key.slice(0, -1) : key;
    if (!(name in obj)) return optional ? [] : [`${at}.${name}: missing`];
    return check(obj[name], sub, `${at}.${name}`);
  });
}

// platform.md, "io.buildpacks.lifecycle.metadata (JSON)": the layer entry is layer.toml's JSON plus sha.
const LIFECYCLE_METADATA: Shape = {
  app: [{ sha: 'string' }],
  'sbom?': { sha: 'string' },
  'config?': { sha: 'string' },
  'launcher?': { sha: 'string' },
  buildpacks: [{ key: 'string', version: 'string', layers: 'object' }],
  runImage: { topLayer: 'string', reference: 'string', 'image?': 'string' },
  stack: { runImage: { image: 'string' } },
};
const LAYER_ENTRY: Shape = { sha: 'string', data: 'object', launch: 'boolean', build: 'boolean', cache: 'boolean' };
// platform.md, "io.buildpacks.build.metadata (JSON)".
const BUILD_METADATA: Shape = {
  processes: [{ type: 'string', command: ['string'], args: ['string'], direct: 'boolean', 'buildpackID?': 'string' }],
  buildpacks: [{ id: 'string', version: 'string', 'homepage?': 'string' }],
  bom: ['object'],
  launcher: { version: 'string', source: { git: { repository: 'string', commit: 'string' } } },
};

async function image(layout: string, tag: string) {
  const blob = async (digest: string) => JSON.parse(await readFile(path.join(layout, 'blobs/sha256', digest.slice(7)), 'utf8'));
  const idx = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'));
  const desc = idx.manifests.find(
    (m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === tag,
  );
  const manifest = await blob(desc.digest);
  const config = await blob(manifest.config.digest);
  return { configDigest: manifest.config.digest as string, config, labels: config.config.Labels as Record<string, string> };
}

describe('image labels for the CNB tools', function () {
  this.timeout(120_000);
  after(removeTempDirs);

  it('writes the lifecycle and build metadata labels as the platform spec defines them, and rebase updates runImage and the stack labels', async () => {
    const root = await tempDir();
    await makeRootfs(path.join(root, 'rootfs-24'), '24');
    await makeRootfs(path.join(root, 'rootfs-24.1'), '24.1');
    const runLayout = path.join(root, 'run');
    const stack = (v: string) => ({ 'io.buildpacks.stack.id': 'heroku-24', 'io.buildpacks.base.distro.version': v });
    const run24 = await writeRunImage(runLayout, '24', { layers: [path.join(root, 'rootfs-24')], version: '24', labels: stack('24') });
    const run241 = await writeRunImage(runLayout, '24.1', {
      layers: [path.join(root, 'rootfs-24.1')],
      version: '24.1',
      labels: stack('24.1'),
    });

    const bp = await writeCnb(path.join(root, 'bp'), {
      id: 'example/labels',
      api: '0.10',
      build: [
        'mkdir -p "$1/runtime/bin" && echo rt > "$1/runtime/bin/rt"',
        `printf '[types]\\nlaunch = true\\n[metadata]\\nversion = "1.0"\\n' > "$1/runtime.toml"`,
        `printf '[[processes]]\\ntype = "web"\\ncommand = ["sh", "-c", "echo hi"]\\ndefault = true\\n' > "$1/launch.toml"`,
      ].join('\n'),
    });
    const out = path.join(root, 'out');
    const built = await runBuilder([
      '--source',
      await makeApp({ 'index.txt': 'hi\n' }),
      '--buildpack',
      bp,
      '--app-dir',
      path.join(root, 'app'),
      '--cache-dir',
      path.join(root, 'cache'),
      '--source-version',
      'abc123',
      '--run-image',
      `oci:${runLayout}:24`,
      '--image',
      `oci:${out}:app`,
    ]);
    expect(built.exitCode, built.stderr).to.equal(0);

    const app = await image(out, 'app');
    const lifecycle = JSON.parse(app.labels['io.buildpacks.lifecycle.metadata']);
    const buildMeta = JSON.parse(app.labels['io.buildpacks.build.metadata']);
    expect(check(lifecycle, LIFECYCLE_METADATA)).to.deep.equal([]);
    for (const bpEntry of lifecycle.buildpacks)
      for (const [name, layer] of Object.entries(bpEntry.layers)) expect(check(layer, LAYER_ENTRY, `layers.${name}`)).to.deep.equal([]);
    expect(check(buildMeta, BUILD_METADATA)).to.deep.equal([]);

    const byPath = Object.fromEntries(
      JSON.parse(app.labels['io.slugkit.layers']).map((l: { path: string; diffID: string }) => [l.path, l.diffID]),
    );
    const runConfig24 = await image(runLayout, '24');
    expect(lifecycle.buildpacks).to.deep.equal([
      {
        key: 'example/labels',
        version: '0.0.1',
        layers: {
          runtime: {
            sha: byPath['/app/.layers/example_labels/runtime'],
            data: { version: '1.0' },
            launch: true,
            build: false,
            cache: false,
          },
        },
      },
    ]);
    expect(lifecycle.app).to.deep.equal([{ sha: byPath['/app'] }]);
    expect(lifecycle.runImage).to.deep.equal({
      topLayer: run24.diffIds[0],
      reference: runConfig24.configDigest,
      image: `oci:${runLayout}:24`,
    });
    expect(lifecycle.stack).to.deep.equal({ runImage: { image: `oci:${runLayout}:24` } });
    expect(buildMeta.buildpacks).to.deep.equal([{ id: 'example/labels', version: '0.0.1' }]);
    expect(buildMeta.processes).to.deep.equal([
      { type: 'web', command: ['sh', '-c', 'echo hi'], args: [], direct: true, buildpackID: 'example/labels' },
    ]);
    expect(JSON.parse(app.labels['io.buildpacks.project.metadata'])).to.deep.equal({
      source: { type: 'git', version: { commit: 'abc123' } },
    });
    expect(app.labels['io.buildpacks.stack.id']).to.equal('heroku-24');

    const rebased = await runBuilder(['rebase', `oci:${out}:app`, '--run-image', `oci:${runLayout}:24.1`, '--image', `oci:${out}:rebased`]);
    expect(rebased.exitCode, rebased.stderr).to.equal(0);
    const after = await image(out, 'rebased');
    const moved = JSON.parse(after.labels['io.buildpacks.lifecycle.metadata']);
    expect(check(moved, LIFECYCLE_METADATA)).to.deep.equal([]);
    expect(moved.runImage).to.deep.equal({
      topLayer: run241.diffIds[0],
      reference: (await image(runLayout, '24.1')).configDigest,
      image: `oci:${runLayout}:24.1`,
    });
    expect(moved.stack).to.deep.equal({ runImage: { image: `oci:${runLayout}:24.1` } });
    expect(moved.buildpacks).to.deep.equal(lifecycle.buildpacks);
    expect(after.config.rootfs.diff_ids[0]).to.equal(moved.runImage.topLayer);
    expect(after.labels['io.buildpacks.base.distro.version']).to.equal('24.1');
    expect(after.labels['io.buildpacks.build.metadata']).to.equal(app.labels['io.buildpacks.build.metadata']);
  });
});
