/**
 * `--cache-url`: CACHE_DIR round-trips through a real HTTP store on 127.0.0.1
 * that keeps what is PUT, so a build on a fresh machine (a new, empty
 * --cache-dir) sees the cache of the one before.
 */

import path from 'node:path';
import { expect } from 'chai';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, tempDir } from './helpers/cli.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';

describe('slugbuilder --cache-url', () => {
  let store: TestHttpServer;
  const stored = new Map<string, Buffer>();
  const SIG = 'X-Amz-Signature=feedfacefeedfacefeed';
  let app: string;
  let bp: string;

  before(async () => {
    store = await startHttpServer(async (req, res) => {
      const key = (req.url ?? '/').split('?')[0];
      if (!(req.url ?? '').includes(SIG)) {
        res.writeHead(403).end();
        return;
      }
      if (req.method === 'PUT') {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        stored.set(key, Buffer.concat(chunks));
        res.writeHead(200).end();
        return;
      }
      const body = stored.get(key);
      if (!body) res.writeHead(404).end();
      else res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    app = await makeApp({ Procfile: 'web: true\n' });
    // Counts its builds in the cache, and fails when the app asks it to.
    bp = await makeBuildpack({
      detect: 'echo counter',
      compile:
        'n=$(cat "$2/count" 2>/dev/null || echo 0); n=$((n+1)); echo "build number $n"; echo $n > "$2/count"; if [ -f "$1/FAIL" ]; then echo broken; exit 1; fi',
    });
  });

  after(async () => {
    await store.close();
    await removeTempDirs();
  });

  const build = async (url: string, appDir = app) => {
    const out = await tempDir();
    return runBuilder([
      '--source',
      appDir,
      '--buildpack',
      bp,
      '--cache-dir',
      path.join(out, 'cache'),
      '-o',
      path.join(out, 'slug.tgz'),
      '--cache-url',
      url,
    ]);
  };

  it('starts cold on 404, stores the cache after a successful build, and the next build on a fresh cache dir gets it', async () => {
    const url = `${store.origin}/caches/shop.tgz?${SIG}`;
    const first = await build(url);
    expect(first.exitCode, first.stderr).to.equal(0);
    expect(first.stderr).to.include('No stored cache yet').and.to.include('build number 1');
    expect(first.stderr).to.include(`Storing the build cache at ${store.origin}/caches/shop.tgz?X-Amz-Signature=…`);
    expect(first.stderr).not.to.include('feedface');
    expect(stored.get('/caches/shop.tgz')?.subarray(0, 2)).to.deep.equal(Buffer.from([0x1f, 0x8b]));

    const second = await build(url);
    expect(second.exitCode, second.stderr).to.equal(0);
    expect(second.stderr).to.include('Restored').and.to.include('build number 2');
  });

  it('never sends the cache of a failed build', async () => {
    const url = `${store.origin}/caches/failing.tgz?${SIG}`;
    const failing = await makeApp({ Procfile: 'web: true\n', FAIL: '' });
    const res = await build(url, failing);
    expect(res.exitCode).to.equal(1);
    expect(store.requests.filter((r) => r.method === 'PUT' && r.url.startsWith('/caches/failing.tgz'))).to.deep.equal([]);
    expect(res.stderr).not.to.include('feedface');
  });

  it('fails with one line when the store refuses the URL (an expired signature)', async () => {
    const res = await build(`${store.origin}/caches/shop.tgz?X-Amz-Signature=expiredexpiredexpired`);
    expect(res.exitCode).to.equal(1);
    const errors = res.stderr.split('\n').filter((l) => l.startsWith(' !     '));
    expect(errors).to.deep.equal([
      ` !     cache URL: ${store.origin}/caches/shop.tgz?X-Amz-Signature=… answered HTTP 403; check the signature and expiry of the presigned URL`,
    ]);
    expect(res.stderr).not.to.include('expiredexpired');
  });
});
