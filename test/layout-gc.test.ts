/**
 * A tag that moves inside an OCI layout (`slugbuilder rebase` in place, a
 * rebuild under the same tag) leaves no blob behind that nothing reaches, as
 * `umoci gc` would leave it, and never removes one another tag still reaches.
 */
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, tempDir } from './helpers/cli.js';
import { makeRunImages, type RunImages } from './helpers/image-fixtures.js';
import { requireTools } from './helpers/tools.js';

const blobs = async (layout: string) => (await readdir(path.join(layout, 'blobs/sha256'))).sort();

/** Every digest hex the layout's index reaches (index -> manifests and indexes -> config and layers). */
async function reached(layout: string): Promise<string[]> {
  const seen = new Set<string>();
  const read = async (hex: string) => JSON.parse(await readFile(path.join(layout, 'blobs/sha256', hex), 'utf8'));
  const queue: Array<{ digest: string; mediaType: string }> = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')).manifests;
  for (let d = queue.shift(); d; d = queue.shift()) {
    const hex = d.digest.slice('sha256:'.length);
    if (seen.has(hex)) continue;
    seen.add(hex);
    if (/manifest|index/.test(d.mediaType)) {
      const doc = await read(hex);
      queue.push(...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? []));
    }
  }
  return [...seen].sort();
}

/** The blobs a copy of the layout keeps after `umoci gc`. */
async function afterUmociGc(layout: string): Promise<string[]> {
  const copy = path.join(await tempDir(), 'copy');
  await cp(layout, copy, { recursive: true });
  await execa('umoci', ['gc', '--layout', copy]);
  return blobs(copy);
}

describe('OCI layouts: blobs no tag reaches are removed when a tag moves', function () {
  this.timeout(120_000);
  let run: RunImages;
  let app: string;
  let bp: string;

  before(async () => {
    run = await makeRunImages(await tempDir());
    app = await makeApp({ Procfile: 'web: httpd -f\n', 'index.html': 'v1\n' });
    bp = await makeBuildpack({ detect: 'echo test', compile: 'true' });
  });
  after(removeTempDirs);

  const build = async (appDir: string, image: string) => {
    const out = await tempDir();
    const r = await runBuilder([
      '--source',
      appDir,
      '--buildpack',
      bp,
      '--cache-dir',
      path.join(out, 'cache'),
      '-o',
      path.join(out, 'slug.tgz'),
      '--run-image',
      `oci:${run.layout}:24`,
      '--image',
      image,
    ]);
    expect(r.exitCode, r.stderr).to.equal(0);
  };

  it('rebases inside a layout drop the old manifest, config and run-image layers once no tag reaches them; blobs another tag shares stay', async function () {
    requireTools(this, 'umoci');
    const apps = path.join(await tempDir(), 'apps');
    await build(app, `oci:${apps}:v1`);
    // keep: the same app on the same run image, so it shares every layer of v1's old image.
    const keep = await runBuilder(['rebase', `oci:${apps}:v1`, '--run-image', `oci:${run.layout}:24`, '--image', `oci:${apps}:keep`]);
    expect(keep.exitCode, keep.stderr).to.equal(0);
    // moved: v1 rebased, under another tag, before v1 itself moves.
    const other = await runBuilder(['rebase', `oci:${apps}:v1`, '--run-image', `oci:${run.layout}:24.1`, '--image', `oci:${apps}:moved`]);
    expect(other.exitCode, other.stderr).to.equal(0);
    const before = await blobs(apps);

    const r = await runBuilder(['rebase', `oci:${apps}:v1`, '--run-image', `oci:${run.layout}:24.1`, '--image', `oci:${apps}:v1`]);
    expect(r.exitCode, r.stderr).to.equal(0);
    // v1 now is "moved" (same app layer, same run image): the index reaches nothing v1 alone held before,
    // and keep still reaches the old image's blobs, so none may go.
    expect(await blobs(apps)).to.deep.equal(await reached(apps));
    expect(await blobs(apps)).to.deep.equal(before);

    // With keep's entry gone (a re-tag of keep), the old run image's blobs are unreached: the next move drops them.
    const retag = await runBuilder(['rebase', `oci:${apps}:v1`, '--run-image', `oci:${run.layout}:24.1`, '--image', `oci:${apps}:keep`]);
    expect(retag.exitCode, retag.stderr).to.equal(0);
    const after = await blobs(apps);
    expect(after).to.deep.equal(await reached(apps));
    expect(after.length).to.be.below(before.length);
    expect(after).to.deep.equal(await afterUmociGc(apps));
    const stat = await execa('umoci', ['stat', '--image', `${apps}:keep`], { reject: false });
    expect(stat.exitCode, stat.stderr).to.equal(0);
  });

  it('a rebuild under the same tag drops the old image; a blob nothing ever reached is not ours to remove', async function () {
    requireTools(this, 'umoci');
    const apps = path.join(await tempDir(), 'apps');
    await build(app, `oci:${apps}:v1`);
    await build(app, `oci:${apps}:other`);
    const app2 = await makeApp({ Procfile: 'web: httpd -f\n', 'index.html': 'v2\n' });
    await build(app2, `oci:${apps}:v1`);
    expect(await blobs(apps)).to.deep.equal(await reached(apps));
    expect(await blobs(apps)).to.deep.equal(await afterUmociGc(apps));

    // A stray blob (another writer's, staged before it tags) stays through the next move.
    const stray = 'f'.repeat(64);
    await writeFile(path.join(apps, 'blobs/sha256', stray), 'staged');
    await build(app, `oci:${apps}:v1`);
    const now = await blobs(apps);
    expect(now).to.include(stray);
    expect(now.filter((b) => b !== stray)).to.deep.equal(await reached(apps));
  });
});
