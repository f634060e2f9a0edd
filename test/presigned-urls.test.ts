/**
 * Presigned URLs through the real CLIs: a `--put-url`, a `SLUG_URL` and a
 * buildpack tarball URL that carry their signature in the query string, as S3
 * and other stores hand them out, against a real HTTP server on 127.0.0.1
 * that checks the signature. The URL is printed with its query names and
 * without their values, and no value appears on stdout, stderr or in the
 * summary, also when a buildpack prints one itself.
 */

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, runRunner, tarOf, tempDir } from './helpers/cli.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { file, gzip, tar } from './helpers/tar-blocks.js';

const SIGNATURE = '9f2c4be1d07a53e6b8c1f4a92d3e7b60c5a18f9e2d4b7a6c3e1f0d9b8a7c6e5d';
const CREDENTIAL = 'AKIAEXAMPLE7Q3Z/20240101/us-east-1/s3/aws4_request';
const TOKEN = 'tok-7d41c0a9e5b2-presigned';
const QUERY = `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${encodeURIComponent(CREDENTIAL)}&X-Amz-Expires=3600&X-Amz-Signature=${SIGNATURE}`;
/** How the query is printed. */
const SHOWN_QUERY = 'X-Amz-Algorithm=…&X-Amz-Credential=…&X-Amz-Expires=…&X-Amz-Signature=…';

const NEEDLES = [SIGNATURE, CREDENTIAL, encodeURIComponent(CREDENTIAL), TOKEN, 'AKIAEXAMPLE7Q3Z'];
const leaks = (text: string) => NEEDLES.filter((n) => text.includes(n));

describe('presigned URLs are printed without their query values', function () {
  this.timeout(120_000);
  let server: TestHttpServer;
  let app: string;
  let plainApp: string;
  let buildpack: string;
  /** Answers for the next PUTs, in order; then 200. */
  let putPlan: Array<{ status: number; retryAfter?: string }> = [];
  const uploads: Buffer[] = [];
  let storedSlug: Buffer | undefined;

  before(async () => {
    const bpTarball = gzip(
      tar(
        file('bin/detect', '#!/bin/sh\necho Presigned\n', { mode: 0o755 }),
        file('bin/compile', '#!/bin/sh\necho "from the tarball buildpack"\n', { mode: 0o755 }),
        file('bin/release', "#!/bin/sh\necho '--- {}'\n", { mode: 0o755 }),
      ),
    );
    server = await startHttpServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const signed = url.searchParams.get('X-Amz-Signature') === SIGNATURE && url.searchParams.get('X-Amz-Credential') === CREDENTIAL;
      if (url.pathname === '/bp.tgz') {
        res.writeHead(url.searchParams.get('token') === TOKEN ? 200 : 403);
        return void res.end(url.searchParams.get('token') === TOKEN ? bpTarball : 'denied');
      }
      if (url.pathname !== '/store/app/v42.tgz') return void res.writeHead(404).end();
      if (!signed)
        return void res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>SignatureDoesNotMatch</Code></Error>');
      if (req.method === 'GET') {
        res.writeHead(storedSlug ? 200 : 404);
        return void res.end(storedSlug);
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        uploads.push(body);
        const answer = putPlan.shift() ?? { status: 200 };
        if (answer.status === 200) storedSlug = body;
        res.writeHead(answer.status, answer.retryAfter === undefined ? {} : { 'retry-after': answer.retryAfter });
        res.end();
      });
    });
    // What SLUG_URL serves until the upload test stores a real build.
    storedSlug = gzip(tar(file('Procfile', 'web: echo hi\n'), file('.release', '--- {}\n')));
    // The app carries the signature in a file its buildpack prints: output is scrubbed of it too.
    app = await makeApp({ Procfile: 'web: echo hi\n', 'leak.txt': `${SIGNATURE}\n${CREDENTIAL}\n` });
    plainApp = await makeApp({ Procfile: 'web: echo hi\n' });
    buildpack = await makeBuildpack({
      detect: 'echo Leaky',
      compile: 'if [ -f "$1/leak.txt" ]; then echo "the app says: $(tr "\\n" " " < "$1/leak.txt")"; fi',
      release: "echo '--- {}'",
    });
  });
  after(async () => {
    await server?.close();
    await removeTempDirs();
  });

  const presigned = () => `${server.origin}/store/app/v42.tgz?${QUERY}`;
  const shown = () => `${server.origin}/store/app/v42.tgz?${SHOWN_QUERY}`;

  it('uploads to a presigned --put-url, retrying a 503 with the whole body, and prints no query value', async () => {
    const dir = await tempDir();
    const out = path.join(dir, 'slug.tgz');
    const summary = path.join(dir, 'summary.json');
    putPlan = [{ status: 503, retryAfter: '0' }];
    uploads.length = 0;
    const r = await runBuilder(
      ['--buildpack', buildpack, '--cache-dir', path.join(dir, 'cache'), '-o', out, '--summary', summary, '--put-url', presigned()],
      {
        input: await tarOf(app),
        env: { ...process.env, TMPDIR: dir, PUT_URL: '', TAR_URL: '', BUILDPACK_URL: '' },
      },
    );
    const summaryText = await readFile(summary, 'utf8').catch(() => '');
    const everything = `${r.stdout.toString('latin1')}\n${r.stderr}\n${summaryText}`;
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.include(`-----> Uploading slug to ${shown()}\n`);
    expect(r.stderr).to.match(/the app says: \[REDACTED\] \[REDACTED\]/);
    expect(leaks(everything), everything).to.deep.equal([]);
    // The 503 was retried, and the retry sent the whole slug again.
    expect(uploads).to.have.length(2);
    expect(uploads[1].equals(await readFile(out))).to.equal(true);
  });

  it('names a refused presigned upload in one line without its signature', async () => {
    const dir = await tempDir();
    const wrong = presigned().replace(SIGNATURE, SIGNATURE.replace(/^9f/, '00'));
    const r = await runBuilder(['--buildpack', buildpack, '--cache-dir', path.join(dir, 'cache'), '--put-url', wrong], {
      input: await tarOf(plainApp),
      env: { ...process.env, TMPDIR: dir, PUT_URL: '', TAR_URL: '', BUILDPACK_URL: '' },
    });
    expect(r.exitCode, r.stderr).to.equal(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith(' !     '));
    expect(errors, r.stderr).to.deep.equal([
      ` !     PUT_URL upload: ${shown()} answered HTTP 403; check the credentials (or the signature and expiry of a presigned URL)`,
    ]);
    expect(leaks(r.stderr + r.stdout.toString('latin1')), r.stderr).to.deep.equal([]);
    expect(r.stderr).to.not.include(SIGNATURE.slice(2));
  });

  it('slugrunner downloads a presigned SLUG_URL and prints it without query values, also when it is refused', async () => {
    const appDir = path.join(await tempDir(), 'app');
    const ok = await runRunner(['--app-dir', appDir, 'types'], { env: { ...process.env, SLUG_URL: presigned() } });
    expect(ok.exitCode, ok.stderr).to.equal(0);
    expect(ok.stderr).to.include(`Unpacking slug from ${shown()}`);
    expect(ok.stdout.toString()).to.include('web');
    expect(leaks(ok.stderr + ok.stdout.toString()), ok.stderr).to.deep.equal([]);

    const refused = await runRunner(['--app-dir', path.join(await tempDir(), 'app'), 'types'], {
      env: {
        ...process.env,
        SLUG_URL: `${server.origin}/store/app/v42.tgz?X-Amz-Credential=${encodeURIComponent(CREDENTIAL)}&X-Amz-Signature=${'0'.repeat(64)}`,
      },
    });
    expect(refused.exitCode).to.equal(1);
    expect(refused.stderr.split('\n').filter(Boolean), refused.stderr).to.deep.equal([
      ` !     SLUG_URL: ${server.origin}/store/app/v42.tgz?X-Amz-Credential=…&X-Amz-Signature=… answered HTTP 403; check the credentials (or the signature and expiry of a presigned URL)`,
    ]);
    expect(leaks(refused.stderr), refused.stderr).to.deep.equal([]);
  });

  it('fetches a buildpack tarball from a URL with a token in its query and keeps the token out of the log and summary', async () => {
    const dir = await tempDir();
    const summary = path.join(dir, 'summary.json');
    const r = await runBuilder(['--cache-dir', path.join(dir, 'cache'), '--summary', summary, '-o', path.join(dir, 'slug.tgz')], {
      input: await tarOf(plainApp),
      env: {
        ...process.env,
        TMPDIR: dir,
        SLUGBUILDER_CACHE_DIR: path.join(dir, 'bp-cache'),
        PUT_URL: '',
        TAR_URL: '',
        BUILDPACK_URL: `${server.origin}/bp.tgz?token=${TOKEN}`,
      },
    });
    const summaryText = await readFile(summary, 'utf8').catch(() => '');
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.include(`-----> Fetching buildpack ${server.origin}/bp.tgz?token=…\n`);
    expect(JSON.parse(summaryText).buildpacks[0].origin).to.equal(`${server.origin}/bp.tgz?token=…`);
    expect(leaks(`${r.stderr}\n${summaryText}\n${r.stdout.toString('latin1')}`), r.stderr).to.deep.equal([]);
  });
});
