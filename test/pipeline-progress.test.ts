/**
 * Progress on long transfers: a SLUG_URL download and a PUT_URL upload that
 * stall half-way (the server holds the rest back until the test has seen a
 * progress line on the CLI's stderr) report bytes and rate; stderr is not a
 * TTY here, so at most one line every 10 seconds. The build log ends with
 * each step's duration.
 */

import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa, type ResultPromise } from 'execa';
import { BUILDER, makeApp, RUNNER, removeTempDirs, tarOf, tempDir } from './helpers/cli.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';

const PROGRESS = /^ {7}(SLUG_URL download|PUT_URL upload): \d+(\.\d)?[BKMG] of \d+(\.\d)?[BKMG] \(\d+(\.\d)?[BKMG]\/s\)$/m;

/** Resolves once `child`'s stderr matches `pattern`; rejects if it exits first. */
function stderrShows(child: ResultPromise, pattern: RegExp): Promise<string> {
  let seen = '';
  return new Promise((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) resolve(seen);
    });
    child.then((r) => reject(new Error(`exited (${r.exitCode}) before printing ${pattern}:\n${seen}`)), reject);
  });
}

describe('progress on long transfers, and step durations', function () {
  this.timeout(120_000);
  let server: TestHttpServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  after(removeTempDirs);

  it('a stalled SLUG_URL download reports bytes and rate, then the start goes on', async () => {
    // Incompressible padding, so half the gzip bytes is a real stretch of the transfer.
    const app = await makeApp({ Procfile: 'web: echo up\n', 'pad.bin': randomBytes(256 * 1024).toString('base64') });
    const slug = await tarOf(app, true);
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    server = await startHttpServer(async (_req, res) => {
      res.writeHead(200, { 'content-length': String(slug.length) });
      res.write(slug.subarray(0, slug.length >> 1));
      await released;
      res.end(slug.subarray(slug.length >> 1));
    });
    const runner = execa(RUNNER, ['--app-dir', join(await tempDir(), 'app'), 'run', 'echo started'], {
      env: { ...process.env, SLUG_URL: `${server.origin}/slug.tgz` },
      stdin: 'ignore',
      reject: false,
    });
    const seen = await stderrShows(runner, PROGRESS);
    release();
    const result = await runner;
    expect(result.exitCode, String(result.stderr)).to.equal(0);
    expect(String(result.stdout)).to.equal('started');
    const line = PROGRESS.exec(seen)![0];
    expect(line).to.include(`SLUG_URL download: `);
    expect(line).to.include(` of ${(slug.length / 1024).toFixed(1)}K (`);
  });

  it('a stalled PUT_URL upload reports bytes and rate; the build log ends with the step durations', async () => {
    // Incompressible and larger than the socket buffers can hold, so the upload really waits for the server.
    const app = await makeApp({ Procfile: 'web: echo up\n' });
    await writeFile(join(app, 'pad.bin'), randomBytes(32 * 1024 * 1024));
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    let received = 0;
    server = await startHttpServer(async (req, res) => {
      // Read nothing until the test lets go.
      await released;
      for await (const chunk of req) received += (chunk as Buffer).length;
      res.end();
    });
    const source = join(await tempDir(), 'app.tar');
    await writeFile(source, await tarOf(app));
    const builder = execa(
      process.execPath,
      ['--', BUILDER, '--source', source, '--put-url', `${server.origin}/slug?X-Signature=abcdefgh12345`],
      { stdin: 'ignore', reject: false },
    );
    await stderrShows(builder, PROGRESS);
    release();
    const result = await builder;
    expect(result.exitCode, String(result.stderr)).to.equal(0);
    expect(received).to.be.above(0);
    const stderr = String(result.stderr);
    expect(stderr).to.match(/^ {7}PUT_URL upload: /m);
    // The signature never reaches the log.
    expect(stderr).to.not.include('abcdefgh12345');
    expect(stderr).to.match(/^-----> Build steps took: .*\bcompile \d+(\.\d)?s\b.*$/m);
  });

  it('a quick transfer prints no progress line at all', async () => {
    const app = await makeApp({ Procfile: 'web: echo up\n' });
    const slug = await tarOf(app, true);
    server = await startHttpServer((_req, res) => void res.end(slug));
    const runner = await execa(RUNNER, ['--app-dir', join(await tempDir(), 'app'), 'run', 'true'], {
      env: { ...process.env, SLUG_URL: `${server.origin}/slug.tgz` },
      stdin: 'ignore',
      reject: false,
    });
    expect(runner.exitCode, String(runner.stderr)).to.equal(0);
    expect(String(runner.stderr)).to.not.match(/download:/);
  });
});
