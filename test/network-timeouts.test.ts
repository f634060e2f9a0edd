/**
 * Stalled servers never hang a build or a start: through the real CLIs,
 * against servers on 127.0.0.1 that accept and never answer, or send one
 * byte and stall, or trickle bytes past the deadline. Each transfer says
 * what happened in one line (a line per retry before it), exits non-zero
 * and leaves nothing behind; a stalled cache upload is a warning.
 * Timeouts are half a second here so each test takes a few seconds.
 */
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { expect } from 'chai';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, runRunner, tempDir } from './helpers/cli.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { file, gzip, tar } from './helpers/tar-blocks.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith(' !     '));
const HINT = 'check that the server is up, or raise --net-timeout (SLUGKIT_NET_TIMEOUT)';

/** The three retry lines, then `final`. */
function retried(method: string, url: string, final: string): string[] {
  return [2, 3, 4].map((n) => ` !     retrying ${method} ${url} (attempt ${n} of 4): no answer in 0.5s`).concat(` !     ${final}`);
}

describe('network timeouts: a stalled server ends a transfer in one line', function () {
  this.timeout(60_000);
  let app: string;
  let buildpack: string;
  const servers: TestHttpServer[] = [];
  const serve = async (handler: Parameters<typeof startHttpServer>[0]) => {
    const s = await startHttpServer(handler);
    servers.push(s);
    return s;
  };
  /** Takes the request (and its body) and never answers. */
  const silent = () =>
    serve((req) => {
      req.resume();
    });
  /** Answers 200 with a long declared length, sends one byte, then nothing. */
  const oneByte = () =>
    serve((_req, res: http.ServerResponse) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('x');
    });

  before(async () => {
    app = await makeApp({ Procfile: 'web: echo hi\n' });
    buildpack = await makeBuildpack({ detect: 'echo Test', compile: 'true', release: "echo '--- {}'" });
  });
  after(async () => {
    for (const s of servers) await s.close();
    await removeTempDirs();
  });

  /** A build in its own TMPDIR, whose cache lives elsewhere: the TMPDIR must end empty. */
  const build = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const tmp = await tempDir();
    const cache = path.join(await tempDir(), 'cache');
    const started = Date.now();
    const r = await runBuilder(['--cache-dir', cache, ...args], {
      env: { ...process.env, TMPDIR: tmp, PUT_URL: '', TAR_URL: '', CACHE_URL: '', CACHE_PUT_URL: '', BUILDPACK_URL: '', ...env },
    });
    return { ...r, seconds: (Date.now() - started) / 1000, leftovers: await readdir(tmp) };
  };

  it('TAR_URL: a server that never answers is retried with a line each, then named (SLUGKIT_NET_TIMEOUT)', async () => {
    const server = await silent();
    const url = `${server.origin}/app.tgz`;
    const r = await build(['--buildpack', buildpack], { TAR_URL: url, SLUGKIT_NET_TIMEOUT: '0.5s' });
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal(
      retried('GET', url, `source URL: no answer from 127.0.0.1:${server.port} in 0.5s (4 attempts); ${HINT}`),
    );
    expect(r.stderr).to.not.match(/cannot reach|UND_ERR/);
    expect(r.stdout.length).to.equal(0);
    expect(r.leftovers).to.deep.equal([]);
    expect(server.count('/app.tgz')).to.equal(4);
  });

  it('--source URL: a server that sends one byte and stalls is named, with what it sent', async () => {
    const server = await oneByte();
    const r = await build(['--buildpack', buildpack, '--net-timeout', '0.5s', '--source', `${server.origin}/app.tgz`]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal([` !     source URL: 127.0.0.1:${server.port} stopped sending after 1B (nothing for 0.5s)`]);
    expect(r.seconds).to.be.below(5);
    expect(r.leftovers).to.deep.equal([]);
  });

  it('--net-deadline ends a transfer that trickles bytes but never finishes', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      const tick = setInterval(() => res.write('x'), 100);
      res.on('close', () => clearInterval(tick));
    });
    const r = await build([
      '--buildpack',
      buildpack,
      '--net-timeout',
      '1s',
      '--net-deadline',
      '1.5s',
      '--source',
      `${server.origin}/app.tgz`,
    ]);
    expect(r.exitCode, r.stderr).to.equal(1);
    const errors = errorLines(r.stderr);
    expect(errors).to.have.length(1);
    expect(errors[0]).to.match(
      new RegExp(`^ ! {5}source URL: 127\\.0\\.0\\.1:${server.port} did not finish within 1\\.5s \\(\\d+B received\\)$`),
    );
    expect(r.leftovers).to.deep.equal([]);
  });

  it('SLUG_URL: a stalled download ends in one line and leaves the app dir empty', async () => {
    const server = await oneByte();
    const appDir = path.join(await tempDir(), 'app');
    const r = await runRunner(['--app-dir', appDir, '--net-timeout', '0.5s', 'types'], {
      env: { ...process.env, SLUG_URL: `${server.origin}/slug.tgz` },
    });
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal([` !     SLUG_URL: 127.0.0.1:${server.port} stopped sending after 1B (nothing for 0.5s)`]);
    expect(await readdir(appDir).catch(() => [])).to.deep.equal([]);
    // The same from SLUGKIT_NET_TIMEOUT.
    const fromEnv = await runRunner(['--app-dir', appDir, 'types'], {
      env: { ...process.env, SLUG_URL: `${server.origin}/slug.tgz`, SLUGKIT_NET_TIMEOUT: '0.5' },
    });
    expect(fromEnv.exitCode, fromEnv.stderr).to.equal(1);
    expect(errorLines(fromEnv.stderr)).to.deep.equal(errorLines(r.stderr));
    expect(await readdir(appDir).catch(() => [])).to.deep.equal([]);
  });

  it('--cache-url: a store that never answers fails the build before any buildpack runs', async () => {
    const server = await silent();
    const url = `${server.origin}/cache.tgz`;
    const r = await build(['--buildpack', buildpack, '--source', app, '--net-timeout', '0.5s', '--cache-url', url]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal(
      retried('GET', url, `cache URL: no answer from 127.0.0.1:${server.port} in 0.5s (4 attempts); ${HINT}`),
    );
    expect(r.leftovers).to.deep.equal([]);
  });

  it('--put-url that takes the slug and never answers: one line, no -o written', async () => {
    const server = await silent();
    const out = path.join(await tempDir(), 'slug.tgz');
    const url = `${server.origin}/slug.tgz`;
    const r = await build(['--buildpack', buildpack, '--source', app, '--net-timeout', '0.5s', '-o', out, '--put-url', url]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal(
      retried('PUT', url, `PUT_URL upload: no answer from 127.0.0.1:${server.port} in 0.5s (4 attempts); ${HINT}`),
    );
    expect(await readdir(path.dirname(out))).to.deep.equal([]);
    expect(r.leftovers).to.deep.equal([]);
  });

  it('--cache-put-url that never answers is a warning: the slug is delivered, exit 0', async () => {
    const store = await serve((req, res) => {
      if (req.method === 'GET') return void res.writeHead(404).end();
      req.resume();
    });
    const out = path.join(await tempDir(), 'slug.tgz');
    const put = `${store.origin}/put/cache.tgz`;
    const r = await build([
      ...['--buildpack', buildpack, '--source', app, '--net-timeout', '0.5s', '-o', out],
      ...['--cache-url', `${store.origin}/cache.tgz`, '--cache-put-url', put],
    ]);
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(errorLines(r.stderr)).to.deep.equal([
      ...retried('PUT', put, '').slice(0, 3),
      ` !     Warning: the build cache was not stored (cache URL upload: no answer from 127.0.0.1:${store.port} in 0.5s (4 attempts); ${HINT}); the build stands, the next one starts from the cache stored before`,
    ]);
    expect((await readdir(path.dirname(out))).sort()).to.deep.equal(['slug.tgz']);
  });

  it('a registry that never answers, and one whose layer stalls, are named in one line', async () => {
    const registry = await silent();
    const host = `127.0.0.1:${registry.port}`;
    const out = await tempDir();
    let r = await build([
      ...['--buildpack', buildpack, '--source', app, '--net-timeout', '0.5s'],
      ...['--run-image', `docker://${host}/runner:24`, '--image', `oci:${out}/img`],
    ]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal(
      retried(
        'GET',
        `http://${host}/v2/`,
        `registry ${host}: reaching registry ${host} failed: no answer from ${host} in 0.5s (4 attempts); ${HINT}`,
      ),
    );

    const layerTar = tar(file('etc/os-release', 'ID=test\n'));
    const layer = gzip(layerTar);
    const config = Buffer.from(
      JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [sha(layerTar)] } }),
    );
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
    });
    const stalling = await serve((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.includes('/manifests/'))
        return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
      if (req.url?.endsWith(sha(config))) return void res.writeHead(200).end(config);
      res.writeHead(200, { 'content-length': String(layer.length) });
      res.write(layer.subarray(0, 1));
    });
    const stallHost = `127.0.0.1:${stalling.port}`;
    r = await build([
      ...['--buildpack', buildpack, '--source', app, '--net-timeout', '0.5s'],
      ...['--run-image', `docker://${stallHost}/runner:24`, '--image', `oci:${out}/img`],
    ]);
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal([
      ` !     registry ${stallHost}: downloading blob ${sha(layer)} from runner: ${stallHost} stopped sending after 1B (nothing for 0.5s)`,
    ]);
    expect(r.leftovers).to.deep.equal([]);
  });

  it('a buildpack tarball URL that stalls is named in one line', async () => {
    const server = await oneByte();
    const r = await build(['--buildpack', `${server.origin}/bp.tgz`, '--source', app, '--net-timeout', '0.5s'], {
      SLUGBUILDER_CACHE_DIR: path.join(await tempDir(), 'bp-cache'),
    });
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(errorLines(r.stderr)).to.deep.equal([
      ` !     Buildpack ${server.origin}/bp.tgz: 127.0.0.1:${server.port} stopped sending after 1B (nothing for 0.5s)`,
    ]);
    expect(r.leftovers).to.deep.equal([]);
  });

  it('refuses a malformed --net-timeout or SLUGKIT_NET_TIMEOUT as a usage error', async () => {
    let r = await build(['--buildpack', buildpack, '--source', app, '--net-timeout', 'soon']);
    expect(r.exitCode).to.equal(2);
    expect(errorLines(r.stderr)).to.deep.equal([' !     --net-timeout expects a duration like 900, 90s or 15m, got "soon"']);
    r = await build(['--buildpack', buildpack, '--source', app], { SLUGKIT_NET_TIMEOUT: '0' });
    expect(r.exitCode).to.equal(2);
    expect(errorLines(r.stderr)).to.deep.equal([' !     SLUGKIT_NET_TIMEOUT must be greater than zero']);
    const runner = await runRunner(['--app-dir', path.join(await tempDir(), 'app'), '--net-deadline', '-5s', 'types']);
    expect(runner.exitCode).to.equal(2);
    expect(errorLines(runner.stderr)).to.deep.equal([' !     --net-deadline expects a duration like 900, 90s or 15m, got "-5s"']);
  });
});
