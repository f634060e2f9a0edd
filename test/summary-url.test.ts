/**
 * A build hands back its summary: `slugbuilder --summary URL` PUTs it (as
 * --put-url sends the slug: query never printed, redirects refused,
 * delivered all or nothing with the other outputs), `manifests build
 * --summary-url` wires the URL into the build Job, and `manifests --summary
 * URL` GETs it (bounded) and renders the app. A real server on 127.0.0.1.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, tempDir } from './helpers/cli.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { type Obj, parseStream, validateSchema } from './helpers/k8s.js';

const SIGNATURE = 'X-Amz-Signature=0123456789abcdef0123456789';
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith(' !     '));

describe('--summary URL: a build hands back its summary', function () {
  this.timeout(60_000);
  let server: TestHttpServer;
  const stored = new Map<string, Buffer>();
  let app: string;
  let bp: string;

  before(async () => {
    server = await startHttpServer(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname.startsWith('/redirect/')) {
        req.resume();
        res.writeHead(307, { location: '/store/elsewhere.json' });
        res.end();
        return;
      }
      if (url.pathname.startsWith('/denied/')) {
        req.resume();
        res.writeHead(403);
        res.end();
        return;
      }
      if (url.pathname === '/huge.json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`{"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`);
        return;
      }
      if (req.method === 'PUT') {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        stored.set(url.pathname, Buffer.concat(chunks));
        res.writeHead(200);
        res.end();
        return;
      }
      const body = stored.get(url.pathname);
      res.writeHead(body ? 200 : 404);
      res.end(body);
    });
    app = await makeApp({ Procfile: 'web: node server.js\nrelease: node migrate.js\n', 'server.js': '' });
    bp = await makeBuildpack({ detect: 'echo test', compile: 'true' });
  });
  after(async () => {
    await server.close();
    await removeTempDirs();
  });

  const build = async (summary: string) => {
    const out = await tempDir();
    const slug = path.join(out, 'slug.tgz');
    const r = await runBuilder([
      '--source',
      app,
      '--buildpack',
      bp,
      '--cache-dir',
      path.join(out, 'cache'),
      '-o',
      slug,
      '--summary',
      summary,
    ]);
    return { ...r, slug };
  };

  it('PUTs the summary and `manifests --summary URL` renders the app from it; the signature is never printed', async () => {
    const url = `${server.origin}/store/shop/build.json?${SIGNATURE}`;
    const b = await build(url);
    expect(b.exitCode, b.stderr).to.equal(0);
    expect(b.stderr).to.include(`-----> Uploading summary to ${server.origin}/store/shop/build.json?X-Amz-Signature=…`);
    expect(b.stderr).not.to.include('0123456789abcdef');
    const put = server.requests.find((r) => r.method === 'PUT' && r.url.startsWith('/store/shop/build.json'));
    expect(put?.headers['content-length']).to.equal(String(stored.get('/store/shop/build.json')?.length));
    const doc = JSON.parse(String(stored.get('/store/shop/build.json')));
    expect(doc.process_types).to.deep.equal({ web: 'node server.js', release: 'node migrate.js' });
    expect(doc.slug.path).to.equal(b.slug);

    const m = await runBuilder(['manifests', '--summary', url, '--app', 'shop', '--slug-url', `${server.origin}/slug.tgz?${SIGNATURE}`]);
    expect(m.exitCode, m.stderr).to.equal(0);
    expect(m.stderr).not.to.include('0123456789abcdef');
    const objects = parseStream(String(m.stdout));
    for (const o of objects) validateSchema(o);
    const id = doc.slug.sha256.slice(0, 10);
    expect(objects.map((o: Obj) => `${o.kind} ${o.metadata.name}`)).to.deep.equal([
      `Secret shop-slug-${id}`,
      `Job shop-release-${id}`,
      'Deployment shop-web',
      'Service shop-web',
    ]);
  });

  for (const [name, where, message] of [
    ['a redirected summary upload', 'redirect', /--summary upload: .*redirect/i],
    [
      'a refused summary upload',
      'denied',
      /--summary upload: http:\/\/127\.0\.0\.1:\d+\/denied\/b\.json\?X-Amz-Signature=… answered HTTP 403/,
    ],
  ] as const) {
    it(`${name} fails the build in one line, and -o is not written (all or nothing)`, async () => {
      const b = await build(`${server.origin}/${where}/b.json?${SIGNATURE}`);
      expect(b.exitCode, b.stderr).to.equal(1);
      const errors = errorLines(b.stderr);
      expect(errors, b.stderr).to.have.length(1);
      expect(errors[0]).to.match(message);
      expect(b.stderr).not.to.include('0123456789abcdef');
      expect(existsSync(b.slug)).to.equal(false);
    });
  }

  it('--summary with a URL that does not parse is a usage error before the build', async () => {
    const b = await build('http://[bad/x.json?sig=secretsecretsecret');
    expect(b.exitCode).to.equal(2);
    expect(errorLines(b.stderr)).to.deep.equal([' !     --summary is not an http(s) URL']);
    expect(b.stderr).not.to.include('Reading source');
  });

  it('`manifests --summary URL` reads at most 1M, and names a missing summary without its query', async () => {
    const huge = await runBuilder(['manifests', '--summary', `${server.origin}/huge.json?${SIGNATURE}`, '--app', 'shop']);
    expect(huge.exitCode).to.equal(1);
    expect(errorLines(huge.stderr)).to.deep.equal([
      ` !     --summary: ${server.origin}/huge.json sent more than 1.0M, the most slugkit reads for it`,
    ]);
    const missing = await runBuilder(['manifests', '--summary', `${server.origin}/store/none.json?${SIGNATURE}`, '--app', 'shop']);
    expect(missing.exitCode).to.equal(1);
    expect(errorLines(missing.stderr)[0]).to.match(
      /^ ! {5}--summary: .*\/store\/none\.json\?X-Amz-Signature=… answered HTTP 404; check the URL$/,
    );
    expect(missing.stderr + huge.stderr).not.to.include('0123456789abcdef');
  });

  it('`manifests build --summary-url` puts the URL in the Secret and hands the build `--summary $(SUMMARY_URL)`', async () => {
    const summaryUrl = `${server.origin}/store/shop/build.json?${SIGNATURE}`;
    const r = await runBuilder([
      'manifests',
      'build',
      '--app',
      'shop',
      '--tar-url',
      `${server.origin}/src.tgz?${SIGNATURE}`,
      '--put-url',
      `${server.origin}/slug.tgz?${SIGNATURE}`,
      '--summary-url',
      summaryUrl,
    ]);
    expect(r.exitCode, r.stderr).to.equal(0);
    const [secret, job] = parseStream(String(r.stdout));
    validateSchema(secret);
    validateSchema(job);
    expect(secret.stringData.SUMMARY_URL).to.equal(summaryUrl);
    const build = job.spec.template.spec.containers[0];
    expect(build.args.slice(-2)).to.deep.equal(['--summary', '$(SUMMARY_URL)']);
    expect(build.env).to.deep.include({
      name: 'SUMMARY_URL',
      valueFrom: { secretKeyRef: { name: secret.metadata.name, key: 'SUMMARY_URL' } },
    });
    expect(JSON.stringify(job)).not.to.include('0123456789abcdef');
  });
});
