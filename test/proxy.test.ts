/**
 * slugkit's own traffic goes through HTTP_PROXY/HTTPS_PROXY unless NO_PROXY
 * says otherwise, as curl's does: every host here is `*.invalid`, which only
 * the forward proxy on 127.0.0.1 (test/helpers/forward-proxy.ts) can reach.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, runRunner, slugPaths, tarOf, tempDir, writeBuildpack } from './helpers/cli.js';
import { type ForwardProxy, startForwardProxy } from './helpers/forward-proxy.js';
import { GitFixture, gitHttpBackend } from './helpers/git-server.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { makeRunImages } from './helpers/image-fixtures.js';
import { startRegistry } from './helpers/registry.js';
import { requireTools } from './helpers/tools.js';

const execFileP = promisify(execFile);
const ERROR = /^ ! {5}(.*)$/;
const errorLines = (stderr: string) =>
  stderr
    .split('\n')
    .map((l) => ERROR.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);

const PROXY_USER = 'proxyuser';
const PROXY_PASSWORD = 'proxy-pa55-word-77';

describe('HTTP_PROXY, HTTPS_PROXY and NO_PROXY for slugkit’s own traffic', function () {
  this.timeout(120_000);
  let proxy: ForwardProxy;
  let files: TestHttpServer;
  let stored: Buffer | undefined;
  let proxyUrl: string;
  const clean: NodeJS.ProcessEnv = {};

  before(async () => {
    for (const [k, v] of Object.entries(process.env)) if (!/_proxy$/i.test(k)) clean[k] = v;
    proxy = await startForwardProxy({ username: PROXY_USER, password: PROXY_PASSWORD });
    proxyUrl = `http://${PROXY_USER}:${PROXY_PASSWORD}@${proxy.origin.slice('http://'.length)}`;
    const source = await tarOf(await makeApp({ Procfile: 'web: echo hi\n', 'hello.txt': 'through the proxy\n' }));
    const bp = await tarOf(await writeBuildpack(await tempDir('slugkit-bp-'), { compile: 'echo compiled > "$1/compiled.txt"' }), true);
    files = await startHttpServer(async (req, res) => {
      const url = req.url ?? '/';
      if (req.method === 'PUT') {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        if (url === '/slug.tgz') stored = Buffer.concat(chunks);
        res.writeHead(200).end();
        return;
      }
      const body = url === '/app.tar' ? source : url === '/bp.tgz' ? bp : url === '/slug.tgz' && stored ? stored : undefined;
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
  });
  after(async () => {
    await proxy?.close();
    await files?.close();
    await removeTempDirs();
  });

  const at = (name: string, p: string) => `http://${name}.invalid:${files.port}${p}`;

  it('fetches the source, a buildpack tarball and the cache, and PUTs the slug through HTTP_PROXY, never printing its password', async () => {
    const args = [
      '--source',
      at('src', '/app.tar'),
      '--buildpack',
      at('bp', '/bp.tgz'),
      '--put-url',
      at('store', '/slug.tgz'),
      '--cache-url',
      at('cache', '/cache.tgz'),
    ];
    const res = await runBuilder(args, { env: { ...clean, HTTP_PROXY: proxyUrl } });
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stderr).to.not.include(PROXY_PASSWORD);
    // Absolute-form requests, as curl sends plain-http URLs to a proxy.
    expect(proxy.seen).to.include.members([
      `GET ${at('src', '/app.tar')}`,
      `GET ${at('bp', '/bp.tgz')}`,
      `PUT ${at('store', '/slug.tgz')}`,
      `GET ${at('cache', '/cache.tgz')}`,
      `PUT ${at('cache', '/cache.tgz')}`,
    ]);
    expect(await slugPaths(stored!)).to.include.members(['hello.txt', 'compiled.txt']);
  });

  it('slugrunner downloads SLUG_URL through http_proxy (lower case)', async () => {
    const appDir = path.join(await tempDir(), 'app');
    const res = await runRunner(['--app-dir', appDir, 'types'], {
      env: { ...clean, SLUG_URL: at('slugs', '/slug.tgz'), http_proxy: proxyUrl },
    });
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stdout.toString()).to.include('web');
    expect(proxy.seen).to.include(`GET ${at('slugs', '/slug.tgz')}`);
  });

  it('goes direct for hosts NO_PROXY names, and without a proxy, and says which proxy failed', async () => {
    const direct = await runBuilder(['--source', at('src', '/app.tar'), '-o', path.join(await tempDir(), 's.tgz')], {
      env: { ...clean, HTTP_PROXY: proxyUrl, NO_PROXY: 'example.com,.invalid' },
    });
    expect(direct.exitCode).to.equal(1);
    expect(errorLines(direct.stderr).at(-1)).to.equal(
      `source URL: cannot reach ${at('src', '/app.tar')} (name not found); check the URL and that the server is up`,
    );
    const none = await runBuilder(['--source', at('src', '/app.tar'), '-o', path.join(await tempDir(), 's.tgz')], { env: clean });
    expect(errorLines(none.stderr).at(-1)).to.equal(errorLines(direct.stderr).at(-1));

    const closed = await startForwardProxy();
    const origin = closed.origin;
    await closed.close();
    const down = await runBuilder(['--source', at('src', '/app.tar'), '-o', path.join(await tempDir(), 's.tgz')], {
      env: { ...clean, HTTP_PROXY: origin, SLUGKIT_NET_TIMEOUT: '2s' },
    });
    expect(down.exitCode).to.equal(1);
    expect(errorLines(down.stderr).at(-1)).to.equal(
      `source URL: cannot reach ${at('src', '/app.tar')} (connection refused (through the proxy ${origin})); check the URL and that the server is up`,
    );
  });

  it('https URLs go through a CONNECT tunnel to HTTPS_PROXY, and direct when only HTTP_PROXY is set, as with curl', async function () {
    requireTools(this, 'openssl');
    const dir = await tempDir('slugkit-proxy-tls-');
    const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
    await execFileP('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=secure.invalid',
      '-addext',
      'subjectAltName=DNS:secure.invalid',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    const source = await tarOf(await makeApp({ Procfile: 'web: echo tls\n', 'tls.txt': 'over TLS\n' }));
    const server = https.createServer({ key: await readFile(key), cert: await readFile(cert) }, (_req, res) => {
      res.writeHead(200, { 'content-length': source.length }).end(source);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `https://secure.invalid:${(server.address() as AddressInfo).port}/app.tar`;
      const out = path.join(dir, 's.tgz');
      const env = { ...clean, NODE_EXTRA_CA_CERTS: cert };
      const tunnelled = await runBuilder(['--source', url, '-o', out], { env: { ...env, HTTPS_PROXY: proxyUrl } });
      expect(tunnelled.exitCode, tunnelled.stderr).to.equal(0);
      expect(proxy.seen).to.include(`CONNECT secure.invalid:${(server.address() as AddressInfo).port}`);
      expect(await slugPaths(out)).to.include('tls.txt');
      const direct = await runBuilder(['--source', url, '-o', out], { env: { ...env, HTTP_PROXY: proxyUrl } });
      expect(errorLines(direct.stderr).at(-1)).to.equal(
        `source URL: cannot reach ${url} (name not found); check the URL and that the server is up`,
      );
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('pulls and pushes an image through the proxy', async function () {
    requireTools(this, 'docker-registry', 'skopeo');
    const root = await tempDir('slugkit-proxy-image-');
    const run = await makeRunImages(root);
    const registry = await startRegistry();
    try {
      await execFileP('skopeo', ['copy', '--dest-tls-verify=false', `oci:${run.layout}:24`, `docker://${registry.host}/runner:24`]);
      const port = registry.host.split(':')[1];
      const reg = `reg.invalid:${port}`;
      const res = await runBuilder(
        [
          '--source',
          at('src', '/app.tar'),
          '--buildpack',
          await makeBuildpack({ detect: 'echo x', compile: 'true', release: 'echo "default_process_types: {web: true}"' }),
          '--run-image',
          `docker://${reg}/runner:24`,
          '--image',
          `docker://${reg}/app:v1`,
          '--insecure-registry',
          reg,
        ],
        { env: { ...clean, HTTP_PROXY: proxyUrl } },
      );
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(proxy.seen).to.include(`GET http://${reg}/v2/`);
      expect(proxy.seen.some((s) => s.startsWith(`PUT http://${reg}/v2/app/manifests/v1`))).to.equal(true);
      const { stdout } = await execFileP('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/app:v1`]);
      expect(JSON.parse(stdout).Name).to.equal(`${registry.host}/app`);
    } finally {
      await registry.stop();
    }
  });

  it('git buildpack URLs: git reads the proxy variables itself, HTTP_PROXY included', async function () {
    requireTools(this, 'git');
    const srv = await tempDir('slugkit-proxy-git-');
    const repo = await GitFixture.create(srv, 'bp');
    await repo.commit({ 'bin/detect': '#!/bin/sh\necho gitpack\n', 'bin/compile': '#!/bin/sh\necho from-git > "$1/git.txt"\n' }, 'bp');
    await repo.push();
    const server = await startHttpServer(gitHttpBackend(srv));
    try {
      const url = `http://git.invalid:${server.port}/${path.basename(repo.bare)}`;
      const out = path.join(await tempDir(), 's.tgz');
      const res = await runBuilder(['--source', at('src', '/app.tar'), '--buildpack', url, '-o', out], {
        env: { ...clean, HTTP_PROXY: proxyUrl },
      });
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(await slugPaths(out)).to.include('git.txt');
      expect(proxy.seen.some((s) => s.startsWith(`GET ${url}/info/refs`))).to.equal(true);
    } finally {
      await server.close();
    }
  });
});
