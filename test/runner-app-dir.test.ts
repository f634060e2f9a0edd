/**
 * What slugrunner does to an app dir, through bin/slugrunner:
 *  - stdin is a slug only when the app dir holds no app (or with --slug -);
 *    otherwise it belongs to the process;
 *  - a failed intake never removes an app that was there;
 *  - runners starting into one app dir at once take turns (a lock beside it),
 *    and a new slug is swapped in so a running app keeps its own files;
 *  - a runner killed mid-unpack leaves a half app that the next start with a
 *    slug replaces.
 */

import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { freePort, RUNNER, removeTempDirs, runRunner, tarOf, tempDir, waitForFile, waitForHttp, writeTree } from './helpers/cli.js';
import { startHttpServer } from './helpers/http-server.js';

/** A web process that reads version.txt from its working dir on every request. */
const VERSION_SERVER = `
const http = require('node:http');
const fs = require('node:fs');
http.createServer((req, res) => res.end(fs.readFileSync('version.txt', 'utf8'))).listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
`;

async function slugOf(version: string, extra: Record<string, string> = {}): Promise<string> {
  const dir = await writeTree(await tempDir('slugkit-slugsrc-'), {
    Procfile: 'web: node server.js\n',
    '.release': '--- {}\n',
    'server.js': VERSION_SERVER,
    'version.txt': version,
    ...extra,
  });
  const file = path.join(await tempDir(), `${version}.tgz`);
  await writeFile(file, await tarOf(dir, true));
  return file;
}

/** A fresh parent dir and the app dir inside it (not made). */
async function appDirIn(): Promise<{ parent: string; appDir: string }> {
  const parent = await tempDir('slugkit-parent-');
  return { parent, appDir: path.join(parent, 'app') };
}

const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith(' !     '));

describe('slugrunner and its app dir', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  let v1: string;
  let v2: string;
  before(async () => {
    v1 = await slugOf('v1');
    v2 = await slugOf('v2');
  });

  describe('stdin', () => {
    it('belongs to the process when the app dir holds an app', async () => {
      const { parent, appDir } = await appDirIn();
      expect((await runRunner(['--slug', v1, '--app-dir', appDir, 'types'])).exitCode).to.equal(0);
      const res = await runRunner(['--app-dir', appDir, 'run', 'cat'], { input: 'hello\n' });
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stdout.toString()).to.equal('hello\n');
      expect(await readFile(path.join(appDir, 'version.txt'), 'utf8')).to.equal('v1');
      expect(await readdir(parent)).to.deep.equal(['app']);
    });

    it('is the slug when the app dir is empty, and the process then gets an empty stdin', async () => {
      const { parent, appDir } = await appDirIn();
      const res = await runRunner(
        [
          '--app-dir',
          appDir,
          'run',
          'cat version.txt; if [ -p /dev/stdin ]; then echo " stdin is a pipe"; else echo " stdin is empty"; fi; cat',
        ],
        {
          input: await readFile(v1),
        },
      );
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stdout.toString()).to.equal('v1 stdin is empty\n');
      expect(await readdir(parent)).to.deep.equal(['app']);
    });

    it('is the slug with --slug -, which replaces the app', async () => {
      const { appDir } = await appDirIn();
      expect((await runRunner(['--slug', v1, '--app-dir', appDir, 'types'])).exitCode).to.equal(0);
      const res = await runRunner(['--slug', '-', '--app-dir', appDir, 'run', 'cat version.txt'], { input: await readFile(v2) });
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stdout.toString()).to.equal('v2');
    });

    it('--slug - with nothing on stdin is one line', async () => {
      const { appDir } = await appDirIn();
      const res = await runRunner(['--slug', '-', '--app-dir', appDir, 'types'], { input: '' });
      expect(res.exitCode).to.equal(1);
      expect(errorLines(res.stderr)).to.deep.equal([
        ' !     --slug - found nothing on stdin: pipe a slug in, e.g. slugrunner --slug - start web < slug.tgz',
      ]);
    });
  });

  it('a slug that fails to unpack leaves the app that was there, and nothing beside it', async () => {
    const { parent, appDir } = await appDirIn();
    expect((await runRunner(['--slug', v1, '--app-dir', appDir, 'types'])).exitCode).to.equal(0);
    const whole = await readFile(v2);
    const cut = path.join(await tempDir(), 'cut.tgz');
    await writeFile(cut, whole.subarray(0, whole.length - 40));
    for (const args of [
      ['--slug', cut],
      ['--slug', v2, '--max-files', '2'],
    ]) {
      const res = await runRunner([...args, '--app-dir', appDir, 'run', 'true']);
      expect(res.exitCode, res.stderr).to.equal(1);
      expect(errorLines(res.stderr)).to.have.length(1);
      expect(await readFile(path.join(appDir, 'version.txt'), 'utf8')).to.equal('v1');
      expect(await readdir(parent)).to.deep.equal(['app']);
    }
    const types = await runRunner(['--app-dir', appDir, 'types']);
    expect(types.stdout.toString()).to.equal('web: node server.js\n');
  });

  it('six runners starting into one absent app dir at once all run the app, and leave only the app dir', async () => {
    const { parent, appDir } = await appDirIn();
    const runs = await Promise.all(
      Array.from({ length: 6 }, () => runRunner(['--slug', v1, '--app-dir', appDir, 'run', 'cat version.txt'])),
    );
    for (const r of runs) {
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout.toString()).to.equal('v1');
      expect(errorLines(r.stderr)).to.deep.equal([]);
    }
    expect(await readdir(parent)).to.deep.equal(['app']);
    const types = await runRunner(['--app-dir', appDir, 'types']);
    expect(types.stdout.toString()).to.equal('web: node server.js\n');
  });

  it('a new slug is swapped in under a running app, which keeps serving its own files until it stops', async () => {
    const { parent, appDir } = await appDirIn();
    const port = await freePort();
    const web = execa(RUNNER, ['--slug', v1, '--app-dir', appDir, 'start', 'web'], {
      env: { PORT: String(port) },
      stdin: 'ignore',
      reject: false,
    });
    try {
      expect(await (await waitForHttp(`http://127.0.0.1:${port}/`)).text()).to.equal('v1');
      const next = await runRunner(['--slug', v2, '--app-dir', appDir, 'run', 'cat version.txt']);
      expect(next.exitCode, next.stderr).to.equal(0);
      expect(next.stdout.toString()).to.equal('v2');
      // The running app still reads its own version.txt: its tree moved aside, whole.
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).to.equal('v1');
      const beside = (await readdir(parent)).sort();
      expect(beside).to.have.length(2);
      expect(beside[0]).to.match(/^\.app\.old-\d+-[0-9a-f]+$/);
      expect(beside[1]).to.equal('app');
    } finally {
      web.kill('SIGTERM');
    }
    expect((await web).exitCode).to.equal(0);
    // The runner whose tree was replaced removed it when its process ended.
    expect(await readdir(parent)).to.deep.equal(['app']);
    expect(await readFile(path.join(appDir, 'version.txt'), 'utf8')).to.equal('v2');
  });

  describe('the lock', () => {
    const lockOf = (appDir: string) => path.join(path.dirname(appDir), `.${path.basename(appDir)}.lock`);

    it('a runner waits while another live runner holds the lock, then unpacks', async () => {
      const { appDir } = await appDirIn();
      // The lock of a live process (this one), as a runner unpacking right now leaves it.
      await writeFile(lockOf(appDir), `${hostname()} ${process.pid} abcd\n`);
      const waiting = execa(RUNNER, ['--slug', v1, '--app-dir', appDir, 'run', 'cat version.txt'], { stdin: 'ignore', reject: false });
      let stderr = '';
      waiting.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      while (!stderr.includes(`Waiting for another slugrunner unpacking into ${appDir} (pid ${process.pid} on ${hostname()})`)) {
        if (waiting.exitCode !== undefined && waiting.exitCode !== null)
          throw new Error(`the runner ended while the lock was held:\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(existsSync(appDir)).to.equal(false);
      await rm(lockOf(appDir));
      const r = await waiting;
      expect(r.exitCode, stderr).to.equal(0);
      expect(r.stdout).to.equal('v1');
      expect(await readdir(path.dirname(appDir))).to.deep.equal(['app']);
    });

    it('--lock-timeout ends the wait with one line naming the holder, leaving the app dir alone', async () => {
      const { appDir } = await appDirIn();
      expect((await runRunner(['--slug', v1, '--app-dir', appDir, 'types'])).exitCode).to.equal(0);
      await writeFile(lockOf(appDir), `${hostname()} ${process.pid} abcd\n`);
      const res = await runRunner(['--slug', v2, '--app-dir', appDir, '--lock-timeout', '1s', 'types']);
      expect(res.exitCode).to.equal(1);
      expect(errorLines(res.stderr)).to.deep.equal([
        ` !     ${appDir} is still being unpacked by pid ${process.pid} on ${hostname()}: stop that runner, wait longer with --lock-timeout, or choose another --app-dir`,
      ]);
      expect(await readFile(path.join(appDir, 'version.txt'), 'utf8')).to.equal('v1');
      expect((await readdir(path.dirname(appDir))).sort()).to.deep.equal(['.app.lock', 'app']);
    });

    it('a runner killed mid-unpack leaves a half app: refused without a slug, replaced by the next slug', async () => {
      const { parent, appDir } = await appDirIn();
      // A slug server that sends the first part of the slug, then stalls: the runner is caught mid-unpack.
      const big = await slugOf('v3', Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`files/f${i}.txt`, `${i} `.repeat(2000)])));
      const bytes = await readFile(big);
      const server = await startHttpServer((_req, res) => {
        res.writeHead(200, { 'content-length': String(bytes.length) });
        res.write(bytes.subarray(0, Math.floor(bytes.length / 2)));
      });
      try {
        const doomed = execa(RUNNER, ['--app-dir', appDir, 'types'], {
          env: { SLUG_URL: `${server.origin}/slug.tgz` },
          stdin: 'ignore',
          reject: false,
        });
        await waitForFile(path.join(appDir, '.slugrunner-unpacking'));
        doomed.kill('SIGKILL');
        await doomed;
      } finally {
        await server.close();
      }
      expect(existsSync(lockOf(appDir)), 'the killed runner left its lock').to.equal(true);

      const noSlug = await runRunner(['--app-dir', appDir, 'types'], { env: { ...process.env, SLUG_URL: '' } });
      expect(noSlug.exitCode).to.equal(1);
      expect(noSlug.stderr).to.match(/Taking over the app dir lock of pid \d+ on .*, which is gone/);
      expect(errorLines(noSlug.stderr)).to.deep.equal([
        ` !     ${appDir} holds a half-unpacked slug (an earlier start stopped while unpacking): start again with a slug (--slug FILE, SLUG_URL or stdin)`,
      ]);

      // A half app is no app: a slug piped on stdin replaces it.
      const again = await runRunner(['--app-dir', appDir, 'run', 'cat version.txt; ls files | wc -l'], {
        input: bytes,
        env: { ...process.env, SLUG_URL: '' },
      });
      expect(again.exitCode, again.stderr).to.equal(0);
      expect(again.stdout.toString()).to.equal('v3200\n');
      expect(await readdir(parent)).to.deep.equal(['app']);
      expect(existsSync(path.join(appDir, '.slugrunner-unpacking'))).to.equal(false);
    });
  });
});
