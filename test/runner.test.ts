/**
 * slugrunner end to end: slugs built by the real slugbuilder, started by the
 * real slugrunner, talked to over HTTP on 127.0.0.1.
 */
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import {
  freePort,
  makeApp,
  makeBuildpack,
  removeTempDirs,
  runBuilder,
  runRunner,
  spawnRunner,
  tarOf,
  tempDir,
  waitForFile,
  waitForHttp,
} from './helpers/cli.js';
import { serveFiles, startHttpServer } from './helpers/http-server.js';

/** A web process that reports its environment and records the signals it gets. */
const ENV_SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({
    cwd: process.cwd(), home: process.env.HOME, port: process.env.PORT, dyno: process.env.DYNO,
    fromProfileD: process.env.FROM_PROFILE_D, order: process.env.PROFILE_ORDER, fromProfile: process.env.FROM_PROFILE,
    lang: process.env.LANG, platform: process.env.PLATFORM_VAR, onlyRelease: process.env.ONLY_IN_RELEASE,
  }));
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  fs.writeFileSync(process.env.SIGNAL_FILE || 'got-sigterm', 'SIGTERM');
  if (process.env.IGNORE_TERM) return;
  server.close(() => process.exit(0));
});
`;

async function buildSlug(files: Record<string, string>, release = 'echo "--- {}"'): Promise<string> {
  const app = await makeApp(files);
  const bp = await makeBuildpack({ compile: 'true', release });
  const slug = path.join(await tempDir(), 'slug.tgz');
  const res = await runBuilder(['--source', app, '--buildpack', bp, '--cache-dir', path.join(await tempDir(), 'cache'), '-o', slug]);
  expect(res.exitCode, res.stderr).to.equal(0);
  return slug;
}

const APP = {
  Procfile: 'web: node server.js\nworker: echo working\n',
  'server.js': ENV_SERVER,
  'package.json': '{"name":"t","private":true}',
  '.profile.d/10-first.sh': 'export FROM_PROFILE_D=yes\nexport PROFILE_ORDER="${PROFILE_ORDER:-}10"\n',
  '.profile.d/2-second.sh': 'export PROFILE_ORDER="${PROFILE_ORDER:-}2"\n',
  '.profile': 'export FROM_PROFILE="after:${PROFILE_ORDER}"\n',
};
const RELEASE = 'printf -- "---\\nconfig_vars:\\n  LANG: from-release\\n  PLATFORM_VAR: from-release\\n  ONLY_IN_RELEASE: yes-release\\n"';

describe('slugrunner', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  let slug: string;
  before(async () => {
    slug = await buildSlug(APP, RELEASE);
  });

  it('serves HTTP on $PORT with the dyno environment, profile scripts and release config vars', async () => {
    const appDir = path.join(await tempDir(), 'app');
    const port = await freePort();
    const runner = spawnRunner(['--app-dir', appDir, '--slug', slug, 'start', 'web'], {
      PORT: String(port),
      PLATFORM_VAR: 'from-platform',
      LANG: 'C.UTF-8',
    });
    try {
      const res = await waitForHttp(`http://127.0.0.1:${port}/`);
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({
        cwd: appDir,
        home: appDir,
        port: String(port),
        dyno: 'web.1',
        fromProfileD: 'yes',
        // Lexical (byte) order: 10-first.sh before 2-second.sh; .profile after both.
        order: '102',
        fromProfile: 'after:102',
        lang: 'C.UTF-8',
        platform: 'from-platform',
        onlyRelease: 'yes-release',
      });
    } finally {
      runner.kill('SIGTERM');
      await runner;
    }
  });

  it('reads the slug from stdin and defaults PORT to 5000', async () => {
    const appDir = path.join(await tempDir(), 'app');
    const res = await runRunner(['--app-dir', appDir, 'run', 'echo "port=$PORT dyno=$DYNO home=$HOME"'], {
      input: await readFile(slug),
      env: { ...process.env, PORT: '' },
    });
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stdout.toString()).to.equal(`port=5000 dyno=run.1 home=${appDir}\n`);
  });

  it('downloads the slug from SLUG_URL', async () => {
    const server = await startHttpServer(serveFiles({ '/app/v1.tgz': await readFile(slug) }));
    try {
      const appDir = path.join(await tempDir(), 'app');
      const res = await runRunner(['--app-dir', appDir, 'run', 'cat Procfile'], {
        env: { ...process.env, SLUG_URL: `${server.origin}/app/v1.tgz` },
      });
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stdout.toString()).to.equal(APP.Procfile);
    } finally {
      await server.close();
    }
  });

  it('uses a populated app dir as it is when no slug is given', async () => {
    const appDir = path.join(await tempDir(), 'app');
    expect((await runRunner(['--app-dir', appDir, '--slug', slug, 'run', 'true'])).exitCode).to.equal(0);
    await writeFile(path.join(appDir, 'marker'), 'mounted');
    const res = await runRunner(['--app-dir', appDir, 'run', 'cat marker']);
    expect(res.stdout.toString()).to.equal('mounted');
  });

  it('lists process types with their commands', async () => {
    const res = await runRunner(['--app-dir', path.join(await tempDir(), 'app'), '--slug', slug, 'types']);
    expect(res.exitCode).to.equal(0);
    expect(res.stdout.toString()).to.equal('web: node server.js\nworker: echo working\n');
  });

  it('falls back to the release default_process_types when there is no Procfile', async () => {
    const noProcfile = await buildSlug(
      { 'hello.sh': 'echo "default web ran"\n' },
      'printf -- "---\\ndefault_process_types:\\n  web: bash hello.sh\\n"',
    );
    const res = await runRunner(['--app-dir', path.join(await tempDir(), 'app'), '--slug', noProcfile, 'start', 'web']);
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stdout.toString()).to.equal('default web ran\n');
  });

  it('prefers the Procfile over the release default for the same type', async () => {
    const both = await buildSlug(
      { Procfile: 'web: echo from-procfile\n' },
      'printf -- "---\\ndefault_process_types:\\n  web: echo from-release\\n"',
    );
    const res = await runRunner(['--app-dir', path.join(await tempDir(), 'app'), '--slug', both, 'start']);
    expect(res.stdout.toString()).to.equal('from-procfile\n');
  });

  it('rejects an unknown process type, listing the known ones', async () => {
    const res = await runRunner(['--app-dir', path.join(await tempDir(), 'app'), '--slug', slug, 'start', 'clock']);
    expect(res.exitCode).to.equal(1);
    expect(res.stderr).to.include(' !     unknown process type "clock": this app has web, worker');
  });

  it('exits with the code of a one-off command', async () => {
    const res = await runRunner(['--app-dir', path.join(await tempDir(), 'app'), '--slug', slug, 'run', 'exit 7']);
    expect(res.exitCode).to.equal(7);
  });

  it('runs commands through bash -c, so $VARS expand and # starts a comment', async () => {
    const res = await runRunner(['--app-dir', path.join(await tempDir(), 'app'), '--slug', slug, 'run', 'echo "$DYNO" # not printed']);
    expect(res.stdout.toString()).to.equal('run.1\n');
  });

  it('joins the words of a one-off command with spaces and runs them through bash, as heroku run does', async () => {
    const appDir = path.join(await tempDir(), 'app');
    const res = await runRunner(['--app-dir', appDir, '--slug', slug, 'run', 'printf', "'%s|'", '"a  b"', '$HOME']);
    expect(res.stdout.toString()).to.equal(`a  b|${appDir}|`);
  });

  it('takes everything after run as the command, dashes included', async () => {
    const res = await runRunner([
      '--app-dir',
      path.join(await tempDir(), 'app'),
      '--slug',
      slug,
      'run',
      'bash',
      '-c',
      `'echo "dashed $1"'`,
      'x',
      'ok',
    ]);
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stdout.toString()).to.equal('dashed ok\n');
  });

  it('forwards SIGTERM to the app and exits with its code', async () => {
    const appDir = path.join(await tempDir(), 'app');
    const port = await freePort();
    const signalFile = path.join(await tempDir(), 'signal');
    const runner = spawnRunner(['--app-dir', appDir, '--slug', slug, 'start', 'web'], { PORT: String(port), SIGNAL_FILE: signalFile });
    await waitForHttp(`http://127.0.0.1:${port}/`);
    runner.kill('SIGTERM');
    const result = await runner;
    expect(await readFile(signalFile, 'utf8')).to.equal('SIGTERM');
    expect(result.exitCode).to.equal(0);
  });

  it('sends SIGKILL after the grace period when the app ignores SIGTERM, exiting 137', async () => {
    const appDir = path.join(await tempDir(), 'app');
    const port = await freePort();
    const signalFile = path.join(await tempDir(), 'signal');
    const runner = spawnRunner(['--app-dir', appDir, '--slug', slug, '--grace', '1s', 'start', 'web'], {
      PORT: String(port),
      SIGNAL_FILE: signalFile,
      IGNORE_TERM: '1',
    });
    await waitForHttp(`http://127.0.0.1:${port}/`);
    runner.kill('SIGTERM');
    await waitForFile(signalFile);
    const result = await runner;
    expect(result.exitCode).to.equal(137);
    // The app got SIGTERM first, then could not survive SIGKILL.
    expect(await readFile(signalFile, 'utf8')).to.equal('SIGTERM');
  });

  it('keeps absolute and relative symlink targets as built (virtualenvs, vendored tools)', async () => {
    const app = await makeApp({ Procfile: 'web: true\n', 'lib/real.txt': 'real\n' });
    await mkdir(path.join(app, 'bin'));
    await symlink('/usr/bin/env', path.join(app, 'bin/env'));
    await symlink('../lib/real.txt', path.join(app, 'bin/real'));
    const bp = await makeBuildpack({ compile: 'true' });
    const built = await runBuilder(['--buildpack', bp, '--cache-dir', path.join(await tempDir(), 'cache')], { input: await tarOf(app) });
    expect(built.exitCode, built.stderr).to.equal(0);
    const res = await runRunner(
      ['--app-dir', path.join(await tempDir(), 'app'), 'run', 'readlink bin/env; readlink bin/real; cat bin/real'],
      { input: built.stdout },
    );
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stdout.toString()).to.equal('/usr/bin/env\n../lib/real.txt\nreal\n');
  });

  it('refuses to unpack over a directory that holds no slug', async () => {
    const appDir = await makeApp({ 'precious.txt': 'keep me' });
    const res = await runRunner(['--app-dir', appDir, '--slug', slug, 'run', 'true']);
    expect(res.exitCode).to.equal(1);
    expect(res.stderr).to.include(`app dir ${appDir} is not empty and holds no slug`);
    expect(await readFile(path.join(appDir, 'precious.txt'), 'utf8')).to.equal('keep me');
  });

  it('says what to do when there is no slug at all', async () => {
    const res = await runRunner(['--app-dir', path.join(await tempDir(), 'empty'), 'start', 'web']);
    expect(res.exitCode).to.equal(1);
    expect(res.stderr).to.match(/^ !     no slug: pipe one on stdin, set SLUG_URL, or pass --slug FILE/m);
  });

  it('refuses a slug with more entries than --max-files, leaving the app dir empty', async () => {
    const appDir = path.join(await tempDir(), 'app');
    const res = await runRunner(['--app-dir', appDir, '--slug', slug, '--max-files', '3', 'run', 'true']);
    expect(res.exitCode).to.equal(1);
    expect(res.stderr).to.match(/^ !     slug .+ has more than 3 entries: remove files or raise the limit$/m);
    expect(await readdir(appDir)).to.deep.equal([]);
  });

  it('exits 2 on a usage error', async () => {
    const res = await runRunner(['launch']);
    expect(res.exitCode).to.equal(2);
    expect(res.stderr).to.include('unknown command "launch"');
  });
});
