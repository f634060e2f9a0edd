/**
 * `--tag REF` and `--creation-time`, pack's flags, through the slugbuilder
 * CLI against docker-registry on 127.0.0.1 behind the recording proxy of
 * test/helpers/registry.ts, which counts what was uploaded.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { parseCreationTime } from '../slugbuilder/outputs/image-flags.js';
import { makeApp, removeTempDirs, runBuilder, tarOf, tempDir } from './helpers/cli.js';
import { makeRunImages, type RunImages, requireTools, skopeoInspect } from './helpers/image-fixtures.js';
import { completedBlobUploads, type RunningProxy, type RunningRegistry, startProxy, startRegistry } from './helpers/registry.js';

const execFileP = promisify(execFile);
const ERROR = /^ ! {5}(.*)$/;
const errorLines = (stderr: string) =>
  stderr
    .split('\n')
    .map((l) => ERROR.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);

describe('--tag and --creation-time', function () {
  this.timeout(120_000);
  let run: RunImages;
  let registry: RunningRegistry;
  let proxy: RunningProxy;
  let source: Buffer;
  let cache: string;

  before(async function () {
    requireTools(this, 'docker-registry', 'skopeo');
    const root = await tempDir('slugkit-tags-');
    cache = path.join(root, 'cache');
    run = await makeRunImages(root);
    registry = await startRegistry();
    proxy = await startProxy(registry.host);
    await execFileP('skopeo', ['copy', '--dest-tls-verify=false', `oci:${run.layout}:24`, `docker://${registry.host}/runner:24`]);
    source = await tarOf(await makeApp({ Procfile: 'web: httpd -f\n', 'public/index.html': 'tags\n' }));
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await removeTempDirs();
  });

  const build = (args: string[]) =>
    runBuilder(['-o', path.join(cache, '..', 'slug.tgz'), '--run-image', `docker://${proxy.host}/runner:24`, ...args], {
      input: source,
      env: { ...process.env, SLUGBUILDER_CACHE_DIR: cache },
    });

  it('pushes one manifest under every --tag, uploading each blob once, with the --creation-time asked for', async () => {
    const res = await build([
      '--image',
      `docker://${proxy.host}/app:v1`,
      '--tag',
      `docker://${proxy.host}/app:latest`,
      '--tag',
      `docker://${proxy.host}/other/app:v1`,
      '--creation-time',
      '2024-05-01T12:00:00Z',
    ]);
    expect(res.exitCode, res.stderr).to.equal(0);
    const names = [`${registry.host}/app:v1`, `${registry.host}/app:latest`, `${registry.host}/other/app:v1`];
    const inspected = await Promise.all(names.map((n) => skopeoInspect(`docker://${n}`)));
    expect(new Set(inspected.map((i) => i.Digest)).size).to.equal(1);
    expect(inspected[0].Created).to.equal('2024-05-01T12:00:00Z');

    const manifestPuts = proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('/manifests/'));
    expect(manifestPuts.map((r) => r.url)).to.deep.equal([
      '/v2/app/manifests/v1',
      '/v2/app/manifests/latest',
      '/v2/other/app/manifests/v1',
    ]);
    // The run image's layer is mounted, the app layers and the config are uploaded once, into app.
    const uploads = completedBlobUploads(proxy.requests);
    expect(uploads.length).to.be.greaterThan(0);
    expect(uploads.every((u) => u.url.startsWith('/v2/app/blobs/uploads/'))).to.equal(true);
    expect(new Set(uploads.map((u) => new URL(u.url, 'http://x').searchParams.get('digest'))).size).to.equal(uploads.length);
    // app:latest finds every blob with a HEAD; other/app mounts each from app.
    expect(res.stderr).to.match(/config sha256:[0-9a-f]{12} skipped \(already in app\)/);
    expect(res.stderr).to.match(/config sha256:[0-9a-f]{12} mounted from app/);
    expect(res.stderr).to.include(`pushed as ${proxy.host}/other/app:v1`);
  });

  it('keeps the reproducible 1980 created time without --creation-time', async () => {
    const res = await build(['--image', `docker://${proxy.host}/plain:v1`]);
    expect(res.exitCode, res.stderr).to.equal(0);
    expect((await skopeoInspect(`docker://${registry.host}/plain:v1`)).Created).to.equal('1980-01-01T00:00:01Z');
  });

  it('reads now, RFC 3339 and Unix seconds, and refuses anything else or a --tag without a registry --image', async () => {
    expect(parseCreationTime('1714564800').toISOString()).to.equal('2024-05-01T12:00:00.000Z');
    expect(parseCreationTime('2024-05-01T14:00:00+02:00').toISOString()).to.equal('2024-05-01T12:00:00.000Z');
    expect(parseCreationTime('now', new Date('2026-01-02T03:04:05.678Z')).toISOString()).to.equal('2026-01-02T03:04:05.000Z');
    const cases: Array<[string[], string]> = [
      [
        ['--image', `docker://${proxy.host}/x:v1`, '--creation-time', 'yesterday'],
        '--creation-time yesterday is not now, an RFC 3339 time (2024-05-01T12:00:00Z) or Unix seconds',
      ],
      [
        ['--image', `oci:${path.join(cache, '..', 'layout')}`, '--tag', `docker://${proxy.host}/x:v2`],
        '--tag REF needs --image to be a registry reference: the extra names are pushed with it',
      ],
      [
        ['--image', `docker://${proxy.host}/x:v1`, '--tag', `oci:${path.join(cache, '..', 'layout')}`],
        `--tag oci:${path.join(cache, '..', 'layout')} is not a registry reference with a tag (docker://HOST/NAME:TAG or a Docker name)`,
      ],
    ];
    for (const [args, message] of cases) {
      const res = await build(args);
      expect(res.exitCode, res.stderr).to.equal(2);
      expect(errorLines(res.stderr)).to.deep.equal([message]);
    }
  });
});
