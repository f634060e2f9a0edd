import { createHash } from 'node:crypto';
/**
 * The layer cache (slugbuilder/image/layer-cache.ts) through the real CLI:
 * a second image of an unchanged dependency tree takes its compressed layer
 * from `<cache root>/layers` instead of compressing it, and every layer's
 * bytes are the ones a build with an empty cache writes. A damaged entry is
 * not used.
 */

import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { makeBuildpack, runBuilder, writeTree } from './helpers/cli.js';
import { makeRunImages, type RunImages } from './helpers/image-fixtures.js';
import { requireBwrap } from './helpers/tools.js';

interface Summary {
  image: { digest: string; layers: Array<{ path: string; digest: string; diffId: string; size: number }> };
}

const noise = (n: number) => randomBytes(n).toString('base64');

describe('image layer cache', () => {
  let root: string;
  let run: RunImages;
  let src: string;
  let buildpack: string;
  let n = 0;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'slugkit-layer-cache-test-'));
    run = await makeRunImages(root);
    src = path.join(root, 'src');
    const modules: Record<string, string> = {};
    for (let i = 0; i < 10; i++) modules[`node_modules/pkg${i}/index.js`] = `module.exports = ${JSON.stringify(noise(30_000))};\n`;
    await writeTree(src, { Procfile: 'web: httpd -f\n', 'server.js': 'one\n', ...modules });
    buildpack = await makeBuildpack({ detect: 'echo node', compile: 'true', release: 'echo "--- {}"' });
  });
  after(() => rm(root, { recursive: true, force: true }));

  /** A build into a fresh OCI layout with `cacheRoot` as the cache root. */
  const build = async (cacheRoot: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) => {
    const out = path.join(root, `out-${++n}`);
    const summary = path.join(root, `summary-${n}.json`);
    const res = await runBuilder(
      [
        '--source',
        src,
        '--buildpack',
        buildpack,
        '--cache-dir',
        path.join(root, 'app-cache'),
        '--run-image',
        `oci:${run.layout}:24`,
        '--image',
        `oci:${out}:v1`,
        '--summary',
        summary,
        ...extra,
      ],
      { env: { ...process.env, SLUGBUILDER_CACHE_DIR: cacheRoot, SOURCE_DATE_EPOCH: '', ...env } },
    );
    expect(res.exitCode, res.stderr).to.equal(0);
    const s = JSON.parse(await readFile(summary, 'utf8')) as Summary;
    const blob = (digest: string) => readFile(path.join(out, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    return { stderr: res.stderr, summary: s, blob };
  };

  it('takes an unchanged layer from the cache on the next build, with the bytes of a fresh compression', async () => {
    const cache = path.join(root, 'cache-a');
    const first = await build(cache);
    expect(first.stderr).to.not.include('from the layer cache');
    const kept = await readdir(path.join(cache, 'layers'));
    expect(kept.filter((f) => f.endsWith('.tar.gz'))).to.have.length(2);
    expect(kept.filter((f) => f.startsWith('head-'))).to.have.length(2);

    await writeFile(path.join(src, 'server.js'), 'two\n');
    const second = await build(cache);
    expect(second.stderr).to.match(/\/app\/node_modules .* from the layer cache/);
    expect(second.stderr).to.match(/\/app \S+ compressed/);
    expect(second.summary.image.layers[0]).to.deep.equal(first.summary.image.layers[0]);

    // The same tree with an empty cache: every blob, and so the image, is byte for byte the same.
    const fresh = await build(path.join(root, 'cache-b'));
    expect(fresh.stderr).to.not.include('from the layer cache');
    expect(fresh.summary.image.digest).to.equal(second.summary.image.digest);
    for (const l of second.summary.image.layers)
      expect((await second.blob(l.digest)).equals(await fresh.blob(l.digest)), l.path).to.equal(true);
  });

  it('serves two builds at once that share a cache, and both images are the same', async () => {
    const cache = path.join(root, 'cache-d');
    const [a, b] = await Promise.all([build(cache), build(cache)]);
    expect(a.summary.image.digest).to.equal(b.summary.image.digest);
    const kept = await readdir(path.join(cache, 'layers'));
    expect(kept.filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
    expect(kept.filter((f) => f.endsWith('.tar.gz'))).to.have.length(2);
    const again = await build(cache);
    expect(again.stderr).to.match(/\/app\/node_modules \S+ from the layer cache/);
    expect(again.summary.image.digest).to.equal(a.summary.image.digest);
  });

  it('does not use an entry whose blob was damaged, and writes the right layer', async () => {
    const cache = path.join(root, 'cache-c');
    const first = await build(cache);
    const modules = first.summary.image.layers[0];
    const kept = path.join(cache, 'layers', `${modules.digest.slice('sha256:'.length)}.tar.gz`);
    await truncate(kept, 100);
    const second = await build(cache);
    expect(second.stderr).to.match(/\/app\/node_modules \S+ compressed/);
    expect(second.stderr).to.match(/\/app \S+ from the layer cache/);
    expect(second.summary.image.digest).to.equal(first.summary.image.digest);
    expect((await second.blob(modules.digest)).length).to.equal(modules.size);

    // The right size, other bytes: the OCI layout (no registry checks it) must still get a blob that hashes to its name.
    const blob = await readFile(kept);
    blob[blob.length >> 1] ^= 0xff;
    await writeFile(kept, blob);
    const third = await build(cache);
    expect(third.stderr).to.match(/\/app\/node_modules \S+ compressed/);
    expect(third.summary.image.digest).to.equal(first.summary.image.digest);
    const written = await third.blob(modules.digest);
    expect(createHash('sha256').update(written).digest('hex')).to.equal(modules.digest.slice('sha256:'.length));
  });

  it("takes a kept layer on its record only when the build's own code could not have written the cache", async function () {
    const cache = path.join(root, 'cache-e');
    const first = await build(cache);
    const modules = first.summary.image.layers[0];
    expect(modules.path).to.equal('/app/node_modules');
    // A consistent pair, as code that could write the cache dir could leave: a blob of other content under
    // its own digest, and the entry for node_modules' diff_id naming it.
    const dir = path.join(cache, 'layers');
    const meta = (await readdir(dir)).find((f) => f.startsWith(modules.diffId.slice('sha256:'.length)) && f.endsWith('.json'));
    expect(meta, 'the entry for node_modules').to.be.a('string');
    const tar = zlib.gunzipSync(await readFile(path.join(dir, `${modules.digest.slice('sha256:'.length)}.tar.gz`)));
    const at = tar.indexOf('module.exports');
    tar.write('MODULE.EXPORTS', at);
    const forged = zlib.gzipSync(tar);
    const forgedDigest = `sha256:${createHash('sha256').update(forged).digest('hex')}`;
    await writeFile(path.join(dir, `${forgedDigest.slice('sha256:'.length)}.tar.gz`), forged);
    await writeFile(path.join(dir, meta!), JSON.stringify({ digest: forgedDigest, size: forged.length }));

    // Buildpacks unsandboxed (the builder image, the git-push hook): the blob is inflated, found wrong, and the layer compressed.
    const open = await build(cache, [], { SLUGKIT_SANDBOX: 'off' });
    expect(open.stderr).to.match(/\/app\/node_modules \S+ compressed/);
    expect(open.summary.image.digest).to.equal(first.summary.image.digest);
    // That build kept the right blob again; forge the entry once more for the sandboxed one.
    await writeFile(path.join(dir, meta!), JSON.stringify({ digest: forgedDigest, size: forged.length }));

    // Sandboxed, the buildpacks cannot reach the cache: its record is what proves a layer, as for the slug's parts.
    requireBwrap(this);
    const sandboxed = await build(cache, [], { SLUGKIT_SANDBOX: 'on' });
    expect(sandboxed.stderr).to.match(/\/app\/node_modules \S+ from the layer cache/);
    expect(sandboxed.summary.image.layers[0].digest).to.equal(forgedDigest);
  });
});
