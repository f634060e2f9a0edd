/**
 * The image flags of the slugbuilder CLI, end to end: a source tarball on
 * stdin, a slug, a layer file, an image archive and the --summary entry.
 */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { create as tarCreate } from 'tar';
import { makeRunImages, type RunImages } from './helpers/image-fixtures.js';

const CLI = fileURLToPath(new URL('../slugbuilder/cli.js', import.meta.url));
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

function slugbuilder(
  args: string[],
  stdin: Buffer,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, SLUGBUILDER_CACHE_DIR: env.SLUGBUILDER_CACHE_DIR, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

describe('slugbuilder CLI image flags', () => {
  let root: string;
  let run: RunImages;
  let source: Buffer;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'slugkit-image-cli-'));
    run = await makeRunImages(root);
    const src = path.join(root, 'src');
    await mkdir(path.join(src, 'public'), { recursive: true });
    await writeFile(path.join(src, 'Procfile'), 'web: httpd -f -p ${BIND:-0.0.0.0}:${PORT:-5000} -h /app/public\n');
    await writeFile(path.join(src, 'public/index.html'), 'hello from the CLI\n');
    const chunks: Buffer[] = [];
    for await (const c of tarCreate({ cwd: src, portable: true }, ['.']) as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
    source = Buffer.concat(chunks);
    env = { SLUGBUILDER_CACHE_DIR: path.join(root, 'cache'), SOURCE_VERSION: 'cafe123' };
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('writes the slug, the layer file and a docker-loadable image archive, and adds them to --summary', async () => {
    const out = path.join(root, 'out');
    await mkdir(out);
    const args = ['-o', path.join(out, 'slug.tgz'), '--layer', path.join(out, 'layer.tar.gz'), '--run-image', `oci:${run.layout}:24`];
    const res = await slugbuilder(
      [
        ...args,
        '--image',
        `oci-archive:${path.join(out, 'app.tar')}:myapp:v1`,
        '--app-uid',
        '2000',
        '--summary',
        path.join(out, 'summary.json'),
      ],
      source,
      env,
    );
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout.length).to.equal(0);
    expect(res.stderr).to.include('app/ owned by 2000:1000 (--app-uid and the default)');
    expect(res.stderr).to.match(/-----> Image digest sha256:[0-9a-f]{64}/);
    expect((await readdir(out)).sort()).to.deep.equal(['app.tar', 'layer.tar.gz', 'slug.tgz', 'summary.json']);

    const summary = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8'));
    const layer = await readFile(path.join(out, 'layer.tar.gz'));
    expect(summary.layer).to.deep.equal({
      path: path.join(out, 'layer.tar.gz'),
      digest: sha(layer),
      diffId: sha(gunzipSync(layer)),
      size: layer.length,
      uid: 2000,
      gid: 1000,
    });
    expect(summary.image.reference).to.equal(`oci-archive:${path.join(out, 'app.tar')}:myapp:v1`);
    expect(summary.image.digest).to.match(/^sha256:[0-9a-f]{64}$/);
    expect(res.stderr).to.include(`-----> Image digest ${summary.image.digest}`);
    // The image's app layer is the same bytes as --layer (same tree, owner, mtime).
    expect(summary.image.layer.digest).to.equal(summary.layer.digest);
    expect(summary.slug.size).to.be.greaterThan(0);
  });

  it('sends nothing to stdout when the artifact is an image', async () => {
    const res = await slugbuilder(
      ['--run-image', `oci:${run.layout}:24`, '--image', `oci:${path.join(root, 'layout-out')}:v1`],
      source,
      env,
    );
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout.length).to.equal(0);
    expect(JSON.parse(await readFile(path.join(root, 'layout-out', 'index.json'), 'utf8')).manifests).to.have.length(1);
  });

  it('rejects bad image flags with exit 2 before building anything', async () => {
    const cases: Array<[string[], string]> = [
      [['--image', 'oci:x'], '--image needs --run-image REF: the base the app layer goes on'],
      [['--run-image', `oci:${run.layout}:24`], '--run-image needs --image REF: where to write the app image'],
      [
        ['--run-image', 'Nope', '--image', 'oci:x'],
        'unknown image reference "Nope": use oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, docker://HOST/NAME:TAG or a Docker name (e.g. heroku/heroku:24)',
      ],
      [['--layer', 'l.tgz', '--app-uid', 'abc'], '--app-uid expects a numeric id (0 to 2097151), got "abc"'],
      [
        ['--run-image', `oci:${run.layout}:24`, '--image', 'oci:x', '--platform', 'amd64'],
        '--platform amd64 is not OS/ARCH[/VARIANT] (e.g. linux/amd64 or linux/arm64/v8)',
      ],
    ];
    for (const [args, message] of cases) {
      const res = await slugbuilder(['-o', path.join(root, 'never.tgz'), ...args], source, env);
      expect(res.code, args.join(' ')).to.equal(2);
      expect(res.stderr.split('\n')[0], args.join(' ')).to.equal(` !     ${message}`);
    }
    expect(await readdir(root)).to.not.include('never.tgz');
  });

  it('fails with exit 1 and writes no slug when the image cannot be made', async () => {
    const out = path.join(root, 'failed');
    await mkdir(out);
    const res = await slugbuilder(
      ['-o', path.join(out, 'slug.tgz'), '--run-image', `oci:${run.layout}:missing`, '--image', `oci-archive:${path.join(out, 'app.tar')}`],
      source,
      env,
    );
    expect(res.code).to.equal(1);
    expect(res.stderr).to.include(` !     run image oci:${run.layout}:missing: no tag "missing" in ${run.layout}`);
    expect(await readdir(out)).to.deep.equal([]);
  });
});
