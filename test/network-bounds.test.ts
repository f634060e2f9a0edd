/**
 * Every byte a server sends is bounded, through the real CLIs against servers
 * on 127.0.0.1: a registry (a small node server speaking just enough of the
 * distribution API) that sends an endless manifest, a layer longer than its
 * descriptor, `null` documents, a token answer of the wrong shape; a PUT
 * target that answers with a redirect; a cache store that refuses the
 * upload or serves a cache over the limit; a SLUG_URL that never ends.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { expect } from 'chai';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, runRunner, tempDir } from './helpers/cli.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { file, gzip, tar } from './helpers/tar-blocks.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith(' !     '));

/** Write `chunk` until the client goes away or `max` bytes went out; resolves with what was sent. */
function flood(res: http.ServerResponse, chunk: Buffer, max: number): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve(sent);
    };
    res.on('close', finish);
    const pump = () => {
      while (!done && sent < max) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (sent >= max) {
        res.end();
        finish();
      }
    };
    pump();
  });
}

/** A run image's pieces: one small layer, its config and an OCI manifest. */
function runImage() {
  const layerTar = tar(file('etc/os-release', 'ID=test\n'));
  const layer = gzip(layerTar);
  const config = Buffer.from(
    JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [sha(layerTar)] }, config: {} }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
    }),
  );
  return { layer, config, manifest };
}

describe('network bounds: what a server sends is cut at its limit', function () {
  this.timeout(60_000);
  let app: string;
  let buildpack: string;
  let cachePack: string;
  const servers: TestHttpServer[] = [];
  const serve = async (handler: Parameters<typeof startHttpServer>[0]) => {
    const s = await startHttpServer(handler);
    servers.push(s);
    return s;
  };

  before(async () => {
    app = await makeApp({ Procfile: 'web: echo hi\n' });
    buildpack = await makeBuildpack({ detect: 'echo Test', compile: 'true', release: "echo '--- {}'" });
    // Lists what it finds in the cache, then leaves one file there.
    cachePack = await makeBuildpack({
      detect: 'echo Cached',
      compile: 'echo "cache holds: $(ls "$2" | tr "\\n" " ")"; echo fresh > "$2/fresh.txt"',
      release: "echo '--- {}'",
    });
  });
  after(async () => {
    for (const s of servers) await s.close();
    await removeTempDirs();
  });

  const build = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const dir = await tempDir();
    const r = await runBuilder(['--source', app, '--cache-dir', path.join(dir, 'cache'), ...args], {
      env: { ...process.env, TMPDIR: dir, PUT_URL: '', TAR_URL: '', CACHE_URL: '', CACHE_PUT_URL: '', BUILDPACK_URL: '', ...env },
    });
    return { ...r, dir };
  };

  it('stops reading an endless chunked manifest at 8M and closes the connection', async () => {
    let sent: Promise<number> | undefined;
    const registry = await serve((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      sent = flood(res, Buffer.alloc(64 * 1024, 0x20), 64 * MiB);
    });
    const host = `127.0.0.1:${registry.port}`;
    const out = await tempDir();
    const r = await build(['--buildpack', buildpack, '--run-image', `docker://${host}/runner:24`, '--image', `oci:${out}/img`]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr), r.stderr).to.deep.equal([
      ` !     registry ${host}: manifest runner:24: http://${host}/v2/runner/manifests/24 sent more than 8.0M, the most slugkit reads for it`,
    ]);
    // The builder hung up soon after the limit instead of reading the rest.
    expect(await sent).to.be.below(24 * MiB);
    expect(await readdir(out)).to.deep.equal([]);
  });

  it('cuts a run-image layer at its declared size and leaves no blob behind', async () => {
    const { layer, config, manifest } = runImage();
    let sent: Promise<number> | undefined;
    const registry = await serve((req, res) => {
      const url = req.url ?? '';
      if (url === '/v2/') return void res.writeHead(200).end('{}');
      if (url.startsWith('/v2/runner/manifests/'))
        return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
      if (url === `/v2/runner/blobs/${sha(config)}`) return void res.writeHead(200).end(config);
      if (url === `/v2/runner/blobs/${sha(layer)}`) {
        res.writeHead(200);
        res.write(layer);
        sent = flood(res, Buffer.alloc(64 * 1024), 256 * MiB).then((n) => n + layer.length);
        return;
      }
      res.writeHead(404).end();
    });
    const host = `127.0.0.1:${registry.port}`;
    const out = path.join(await tempDir(), 'img');
    const r = await build(['--buildpack', buildpack, '--run-image', `docker://${host}/runner:24`, '--image', `oci:${out}`]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr), r.stderr).to.deep.equal([
      ` !     registry ${host}: blob ${sha(layer)} from runner: more than the ${layer.length} bytes its descriptor declares; the image is damaged`,
    ]);
    expect(await sent).to.be.below(32 * MiB);
    // No blob of the run image (whole or partial) and no temp file stays in the layout.
    const blobs = await readdir(path.join(out, 'blobs', 'sha256')).catch(() => []);
    expect(blobs.filter((b) => !b.startsWith('.') && `sha256:${b}` === sha(layer))).to.deep.equal([]);
    expect(blobs.filter((b) => b.startsWith('.'))).to.deep.equal([]);
  });

  it('stops a layer past its size that is streamed from one registry into a push to another, without retrying', async () => {
    const { layer, config, manifest } = runImage();
    const source = await serve((req, res) => {
      const url = req.url ?? '';
      if (url === '/v2/') return void res.writeHead(200).end('{}');
      if (url.startsWith('/v2/runner/manifests/'))
        return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
      if (url === `/v2/runner/blobs/${sha(config)}`) return void res.writeHead(200).end(config);
      res.writeHead(200);
      res.write(layer);
      void flood(res, Buffer.alloc(64 * 1024), 64 * MiB);
    });
    const target = await serve((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      if (req.method === 'POST') return void res.writeHead(202, { location: `/v2/app/blobs/uploads/${Math.random()}` }).end();
      req.resume();
      req.on('end', () => res.writeHead(201).end());
    });
    const from = `127.0.0.1:${source.port}`;
    const r = await build([
      '--buildpack',
      buildpack,
      '--run-image',
      `docker://${from}/runner:24`,
      '--image',
      `docker://127.0.0.1:${target.port}/app:v1`,
    ]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr), r.stderr).to.deep.equal([
      ` !     registry ${from}: blob ${sha(layer)} from runner: more than the ${layer.length} bytes its descriptor declares; the image is damaged`,
    ]);
    expect(source.count(`/v2/runner/blobs/${sha(layer)}`)).to.equal(1);
    expect(target.requests.filter((q) => q.url.includes('/manifests/'))).to.deep.equal([]);
  });

  it('names a null manifest, a [null] index and a wrong-typed token answer in one line each', async () => {
    let manifest = 'null';
    let mediaType = 'application/vnd.oci.image.manifest.v1+json';
    const registry = await serve((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      res.writeHead(200, { 'content-type': mediaType }).end(manifest);
    });
    const host = `127.0.0.1:${registry.port}`;
    const out = await tempDir();
    const run = async () => build(['--buildpack', buildpack, '--run-image', `docker://${host}/runner:24`, '--image', `oci:${out}/img`]);

    let r = await run();
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal([` !     run image docker://${host}/runner:24: its manifest is null, not a JSON object`]);

    manifest = JSON.stringify({ schemaVersion: 2, manifests: [null] });
    mediaType = 'application/vnd.oci.image.index.v1+json';
    r = await run();
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal([
      ` !     run image docker://${host}/runner:24: its index's manifests[0] is null, not a JSON object`,
    ]);

    manifest = JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'x', digest: 'sha256:abc', size: '12' }] });
    r = await run();
    expect(errorLines(r.stderr)).to.deep.equal([
      ` !     run image docker://${host}/runner:24: its index's manifests[0].digest is the string "sha256:abc", not a sha256 digest`,
    ]);
    expect(r.stderr).to.not.include('internal error');

    // A token server whose answer is JSON of the wrong shape.
    const tokens = await serve((req, res) => {
      if (req.url === '/v2/') {
        const realm = `http://127.0.0.1:${tokens.port}/token`;
        return void res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="test"` }).end();
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(req.url?.startsWith('/token') ? '{"token":42}' : 'null');
    });
    const tokenHost = `127.0.0.1:${tokens.port}`;
    r = await build(['--buildpack', buildpack, '--run-image', `docker://${tokenHost}/runner:24`, '--image', `oci:${out}/img`]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal([
      ` !     token server http://${tokenHost} for registry ${tokenHost}: its token is 42, not a string`,
    ]);
  });

  it('names an OCI layout whose index.json lists [null], and a docker-archive whose manifest.json does', async () => {
    const layout = path.join(await tempDir(), 'run');
    await mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });
    await writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(path.join(layout, 'index.json'), '{"schemaVersion":2,"manifests":[null]}');
    const out = await tempDir();
    const r = await build(['--buildpack', buildpack, '--run-image', `oci:${layout}`, '--image', `oci:${out}/img`]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal([
      ` !     run image oci:${layout}: ${layout}/index.json's manifests[0] is null, not a JSON object`,
    ]);
    const saved = path.join(await tempDir(), 'saved.tar');
    await writeFile(saved, tar(file('manifest.json', '[null]')));
    const d = await build(['--buildpack', buildpack, '--run-image', `docker-archive:${saved}`, '--image', `oci:${out}/img`]);
    expect(d.exitCode, d.stderr).to.equal(1);
    expect(errorLines(d.stderr)).to.deep.equal([` !     run image docker-archive:${saved}: manifest.json[0] is null, not a JSON object`]);
  });

  it('refuses a redirected --put-url in one line, once, and writes no -o', async () => {
    const store = await serve((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(307, { location: 'http://other.invalid/bucket/slug.tgz?X-Amz-Signature=0123456789abcdef' }).end());
    });
    const dir = await tempDir();
    const r = await build(['--buildpack', buildpack, '-o', path.join(dir, 'slug.tgz'), '--put-url', `${store.origin}/slug.tgz`]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal([
      ` !     PUT_URL upload: PUT ${store.origin}/slug.tgz answered 307 Temporary Redirect (to http://other.invalid/bucket/slug.tgz?X-Amz-Signature=…): a streamed upload is not re-sent to a redirect; use the final URL`,
    ]);
    expect(store.requests.filter((q) => q.method === 'PUT')).to.have.length(1);
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it('refuses a registry blob PUT answered with a redirect, without retrying it', async () => {
    const { layer, config, manifest } = runImage();
    const registry = await serve((req, res) => {
      const url = req.url ?? '';
      if (url === '/v2/') return void res.writeHead(200).end('{}');
      if (url.startsWith('/v2/runner/manifests/'))
        return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
      if (url === `/v2/runner/blobs/${sha(config)}`) return void res.writeHead(200).end(config);
      if (url === `/v2/runner/blobs/${sha(layer)}`) return void res.writeHead(200).end(layer);
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      if (req.method === 'POST') return void res.writeHead(202, { location: '/v2/app/blobs/uploads/u1' }).end();
      req.resume();
      req.on('end', () => res.writeHead(307, { location: 'http://other.invalid/upload?X-Amz-Signature=0123456789abcdef' }).end());
    });
    const host = `127.0.0.1:${registry.port}`;
    const r = await build(['--buildpack', buildpack, '--run-image', `docker://${host}/runner:24`, '--image', `docker://${host}/app:v1`]);
    expect(r.exitCode, r.stderr).to.equal(1);
    const errors = errorLines(r.stderr);
    expect(errors, r.stderr).to.have.length(1);
    expect(errors[0]).to.match(
      new RegExp(
        `^ ! {5}registry ${host}: uploading sha256:[0-9a-f]{64} to app: PUT http://${host}/v2/app/blobs/uploads/u1\\?digest=… answered 307 Temporary Redirect \\(to http://other\\.invalid/upload\\?X-Amz-Signature=…\\): a streamed upload is not re-sent to a redirect; use the final URL$`,
      ),
    );
    // One PUT per blob the push got to: none was sent twice.
    const puts = registry.requests.filter((q) => q.method === 'PUT').map((q) => q.url);
    expect(puts.length).to.be.greaterThan(0);
    expect(new Set(puts).size).to.equal(puts.length);
  });

  it('credentials in a source URL go to its own host only, not to the host a redirect names', async () => {
    const tarball = gzip(tar(file('Procfile', 'web: echo hi\n')));
    const target = await serve((_req, res) => void res.writeHead(200).end(tarball));
    const origin = await serve((_req, res) => void res.writeHead(302, { location: `${target.origin}/app.tgz` }).end());
    const r = await runBuilder(
      ['--buildpack', buildpack, '--cache-dir', path.join(await tempDir(), 'cache'), '-o', path.join(await tempDir(), 's.tgz')],
      {
        env: { ...process.env, TAR_URL: `http://deploy:s3cret-pass@127.0.0.1:${origin.port}/app.tgz`, PUT_URL: '', BUILDPACK_URL: '' },
      },
    );
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(origin.requests[0].headers.authorization).to.equal(`Basic ${Buffer.from('deploy:s3cret-pass').toString('base64')}`);
    expect(target.requests[0].headers.authorization).to.equal(undefined);
    expect(r.stderr).to.not.include('s3cret-pass');
  });

  it('a cache upload refused with 501 or a redirect is a warning: exit 0, the slug delivered', async () => {
    let putStatus = 501;
    const store = await serve((req, res) => {
      if (req.method === 'GET') return void res.writeHead(404).end();
      req.resume();
      req.on('end', () => res.writeHead(putStatus, putStatus === 307 ? { location: `${store.origin}/elsewhere` } : {}).end());
    });
    for (const status of [501, 307]) {
      putStatus = status;
      const dir = await tempDir();
      const out = path.join(dir, 'slug.tgz');
      const r = await build(['--buildpack', buildpack, '-o', out, '--cache-url', `${store.origin}/cache.tgz`]);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect((await readFile(out)).length).to.be.greaterThan(0);
      const why =
        status === 501
          ? `cache URL upload: ${store.origin}/cache.tgz answered HTTP 501; check the URL and that the server is up`
          : `cache URL upload: PUT ${store.origin}/cache.tgz answered 307 Temporary Redirect (to ${store.origin}/elsewhere): a streamed upload is not re-sent to a redirect; use the final URL`;
      expect(errorLines(r.stderr)).to.deep.equal([
        ` !     Warning: the build cache was not stored (${why}); the build stands, the next one starts from the cache stored before`,
      ]);
    }
  });

  it('refuses a stored cache over five times --max-source-size and runs cold, keeping none of it', async () => {
    // 700K of cache against --max-source-size 100K: over the 500K the cache may hold.
    const big = gzip(tar(file('old-1.bin', Buffer.alloc(350 * 1024, 1)), file('old-2.bin', Buffer.alloc(350 * 1024, 2))));
    const store = await serve((req, res) => {
      if (req.method === 'GET') return void res.writeHead(200).end(big);
      req.resume();
      req.on('end', () => res.writeHead(200).end());
    });
    const dir = await tempDir();
    const r = await build([
      '--buildpack',
      cachePack,
      '--max-source-size',
      '100K',
      '-o',
      path.join(dir, 'slug.tgz'),
      '--cache-url',
      `${store.origin}/cache.tgz`,
    ]);
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(errorLines(r.stderr)).to.deep.equal([
      ' !     Ignoring the stored build cache: the stored build cache expands to more than 500.0K: make it smaller or raise the limit',
    ]);
    // The buildpack saw an empty cache: nothing of the refused one was left in it.
    expect(r.stderr).to.match(/cache holds: *\n/);
  });

  it('cuts off a SLUG_URL that sends endless empty gzip members after the slug', async () => {
    const slug = gzip(tar(file('Procfile', 'web: echo hi\n'), file('.release', '--- {}\n')));
    const emptyMember = gzip(Buffer.alloc(0));
    let sent: Promise<number> | undefined;
    const store = await serve((_req, res) => {
      res.writeHead(200);
      res.write(slug);
      sent = flood(res, Buffer.concat(Array(4096).fill(emptyMember)), 256 * MiB);
    });
    const appDir = path.join(await tempDir(), 'app');
    const r = await runRunner(['--app-dir', appDir, '--max-slug-size', '1M', '--max-files', '10', 'types'], {
      env: { ...process.env, SLUG_URL: `${store.origin}/slug.tgz` },
    });
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal([` !     SLUG_URL: ${store.origin}/slug.tgz sent more than 3.1M, the most it may send`]);
    expect(await sent).to.be.below(16 * MiB);
    expect(await readdir(appDir).catch(() => [])).to.deep.equal([]);
  });
});
