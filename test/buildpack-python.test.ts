/**
 * The bundled python buildpack, through the real slugbuilder and slugrunner.
 * PyPI is unreachable here, so every fixture installs from wheels the test
 * builds into the app with test/fixtures/apps/make-wheel.py (standard library
 * only). The slug always runs from a different directory than it was built
 * in, which is what makes the virtualenv's relocation matter.
 */

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { create as tarCreate } from 'tar';
import { buildSlug, copyFixture, FIXTURES, runScript, startWeb } from './helpers/buildpack-harness.js';
import { makeApp, removeTempDirs, runRunner, slugPaths, tempDir } from './helpers/cli.js';
import { djangoWheelhouse, wheelhouseConfig } from './helpers/django.js';
import { serveFiles, startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { requirePythonVenv } from './helpers/tools.js';

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

async function streamToBuffer(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function pythonVersion(): Promise<string> {
  // The stack's python3, as buildpacks find it on their PATH (docs/buildpacks.md), not a pyenv shim of the test's own PATH.
  const stackPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return (
    await execa('python3', ['-c', 'import platform; print(platform.python_version())'], { env: { PATH: stackPath }, extendEnv: false })
  ).stdout.trim();
}

/** Builds a wheel of `src/vendor/<pkg>` into `src/wheels/`. */
async function makeWheel(src: string, pkg: string, version: string, ...scripts: string[]): Promise<void> {
  await execa('python3', [
    path.join(FIXTURES, 'make-wheel.py'),
    path.join(src, 'vendor', pkg),
    pkg,
    version,
    path.join(src, 'wheels'),
    ...scripts,
  ]);
}

describe('buildpack python', function () {
  this.timeout(240_000);
  before(function () {
    requirePythonVenv(this);
  });
  after(removeTempDirs);

  describe('bin/detect and bin/release', () => {
    it('detects requirements.txt', async () => {
      const r = await runScript('python', 'detect', await makeApp({ 'requirements.txt': '' }));
      expect(r.exitCode).to.equal(0);
      expect(r.stdout).to.equal('Python');
    });

    it('detects pyproject.toml', async () => {
      expect((await runScript('python', 'detect', await makeApp({ 'pyproject.toml': '' }))).exitCode).to.equal(0);
    });

    it('does not detect an app with neither', async () => {
      expect((await runScript('python', 'detect', await makeApp({ 'app.py': '' }))).exitCode).to.equal(1);
    });

    const site = '.heroku/python/lib/python3.11/site-packages/django/__init__.py';
    const gunicorn = { '.heroku/python/bin/gunicorn': { content: '', mode: 0o755 } };

    it("releases gunicorn PROJECT.wsgi (PROJECT from manage.py's DJANGO_SETTINGS_MODULE) and a migrate release for Django", async () => {
      const app = await makeApp({
        'manage.py': "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n",
        'aaa/wsgi.py': '',
        'mysite/wsgi.py': '',
        [site]: '',
        ...gunicorn,
      });
      const r = await runScript('python', 'release', app);
      expect(r.stdout).to.equal(
        '---\ndefault_process_types:\n  web: gunicorn mysite.wsgi --log-file -\n  release: python manage.py migrate --noinput',
      );
    });

    it('releases only the migrate release when gunicorn is not installed, and nothing when django is not', async () => {
      const noGunicorn = await makeApp({ 'manage.py': '', 'mysite/wsgi.py': '', [site]: '' });
      expect((await runScript('python', 'release', noGunicorn)).stdout).to.equal(
        '---\ndefault_process_types:\n  release: python manage.py migrate --noinput',
      );
      const noDjango = await makeApp({ 'manage.py': '', 'mysite/wsgi.py': '', ...gunicorn });
      expect((await runScript('python', 'release', noDjango)).stdout).to.equal('---\ndefault_process_types: {}');
    });

    it('releases no process types otherwise (the Procfile names them)', async () => {
      const r = await runScript('python', 'release', await makeApp({ 'requirements.txt': '' }));
      expect(r.stdout).to.equal('---\ndefault_process_types: {}');
    });
  });

  describe('an app with a package from requirements.txt', () => {
    let build: Awaited<ReturnType<typeof buildSlug>>;
    let cacheDir: string;
    let version: string;
    let src: string;
    let index: TestHttpServer;

    before(async () => {
      version = await pythonVersion();
      src = await copyFixture('python-web');
      await makeWheel(src, 'greeting', '1.0.0', 'greet=greeting:main');
      // shout is a source distribution on a package page, as on an index:
      // pip downloads and builds it once, then its cache in CACHE_DIR has the wheel.
      const sdist = await streamToBuffer(tarCreate({ cwd: path.join(src, 'vendor'), gzip: true, portable: true }, ['shout-1.0.0']));
      index = await startHttpServer(
        serveFiles({
          '/': { body: '<a href="shout-1.0.0.tar.gz">shout-1.0.0.tar.gz</a>\n', contentType: 'text/html' },
          '/shout-1.0.0.tar.gz': { body: sdist, contentType: 'application/gzip' },
        }),
      );
      await appendFile(path.join(src, 'requirements.txt'), `--find-links ${index.origin}/\nshout==1.0.0\n`);
      // Pin the stack's own major.minor, as an app would.
      await writeFile(path.join(src, '.python-version'), version.split('.').slice(0, 2).join('.') + '\n');
      cacheDir = path.join(await tempDir('slugkit-pip-cache-'), 'cache');
      build = await buildSlug(src, cacheDir);
    });
    after(async () => index && (await index.close()));

    it('builds a virtualenv in .heroku/python with the requirements installed', async () => {
      expect(build.exitCode, build.stderr).to.equal(0);
      expect(build.stderr).to.contain('-----> Python app detected');
      expect(build.stderr).to.contain(`satisfied by ${version}`);
      expect(build.stderr).to.contain('-----> Creating a virtualenv in .heroku/python');
      expect(build.stderr).to.contain('       Successfully installed greeting-1.0.0 shout-1.0.0');
      // greeting ships a Python 2 file: compiling it fails, the build does not.
      expect(build.stderr).to.contain('files with syntax errors were skipped');
      expect(build.stderr).to.contain('Building wheel for shout');
      expect(build.stderr).to.match(/Stored in directory: \S+\/pip\/wheels\//);
      expect(index.count('/shout-1.0.0.tar.gz')).to.equal(1);
      const entries = await slugPaths(build.slug);
      expect(entries).to.include('.heroku/python/bin/python');
      expect(entries).to.include('.profile.d/python.sh');
    });

    it('answers HTTP from an app that imports the installed package, unpacked at another path', async () => {
      const app = await startWeb({ slug: build.slug });
      try {
        const res = await fetch(app.origin + '/');
        expect(res.status).to.equal(200);
        const body = await res.json();
        expect(body.greeting).to.equal('Hello, slugkit, from the greeting package');
        expect(body.shout).to.equal('BUILT FROM AN SDIST!');
        const venv = path.join(app.appDir, '.heroku/python');
        expect(body.prefix).to.equal(venv);
        expect(body.virtual_env).to.equal(venv);
        expect(body.package_file.startsWith(venv + '/')).to.equal(true, body.package_file);
      } finally {
        await app.stop();
      }
    });

    it('a warm rebuild with the same requirements restores the virtualenv, runs no pip, and gives a byte-identical slug', async () => {
      const again = await buildSlug(src, cacheDir);
      expect(again.exitCode, again.stderr).to.equal(0);
      expect(again.stderr).to.contain(
        `-----> Restoring the virtualenv in .heroku/python\n       requirements.txt and Python ${version} unchanged: the virtualenv of the last build is reused, no pip install\n`,
      );
      expect(again.stderr).not.to.contain('Installing requirements with pip');
      expect(again.stderr).not.to.contain('Creating a virtualenv');
      expect(index.count('/shout-1.0.0.tar.gz')).to.equal(1, 'the sdist was not downloaded again');
      expect(await sha256(again.slug)).to.equal(await sha256(build.slug));
    });

    it('changed requirements install again, with the wheel pip built taken from its cache', async () => {
      const changed = await copyFixture('python-web');
      await cp(path.join(src, 'wheels'), path.join(changed, 'wheels'), { recursive: true });
      await writeFile(path.join(changed, 'requirements.txt'), `${await readFile(path.join(src, 'requirements.txt'), 'utf8')}# changed\n`);
      await writeFile(path.join(changed, '.python-version'), await readFile(path.join(src, '.python-version')));
      const again = await buildSlug(changed, cacheDir);
      expect(again.exitCode, again.stderr).to.equal(0);
      expect(again.stderr).to.contain('-----> Creating a virtualenv in .heroku/python');
      expect(again.stderr).to.contain('Using cached shout-1.0.0-py3-none-any.whl');
      expect(again.stderr).not.to.contain('Building wheel for shout');
      expect(index.count('/shout-1.0.0.tar.gz')).to.equal(1, 'the sdist was not downloaded again');
    });

    it("runs the package's console script from the moved virtualenv", async () => {
      const appDir = path.join(await tempDir('slugkit-dyno-'), 'somewhere', 'else');
      const r = await runRunner(['--app-dir', appDir, '--slug', build.slug, 'run', 'greet', 'dyno']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout.toString()).to.contain('Hello, dyno, from the greeting package');
    });
  });

  it('fails naming the Python version runtime.txt asks for and the one found', async () => {
    const src = await makeApp({ 'requirements.txt': '', 'runtime.txt': 'python-2.7.18\n' });
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.contain(`runtime.txt asks for Python 2.7.18 but this stack has Python ${await pythonVersion()}`);
    expect(existsSync(r.slug)).to.equal(false, 'no slug after a failed build');
  });

  it('fails with one clear line when a requirement cannot be installed', async () => {
    const src = await makeApp({ 'requirements.txt': '--no-index\nno-such-package==1.0\n' });
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.contain('No matching distribution found for no-such-package==1.0');
    expect(r.stderr).to.contain('pip install -r requirements.txt failed (output above)');
    expect(existsSync(r.slug)).to.equal(false);
  });

  it('fails clearly when .python-version is not a version', async () => {
    const src = await makeApp({ 'requirements.txt': '', '.python-version': 'pypy3.10\n' });
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.contain('.python-version asks for "pypy3.10", which is not a CPython version like 3.11 or 3.11.7');
  });

  describe('Django (a real startproject app, from a wheelhouse of Debian packages)', () => {
    let config: Record<string, string>;
    before(async function () {
      config = wheelhouseConfig(await djangoWheelhouse(this));
    });

    it('runs collectstatic --noinput, declares web and release, and whitenoise serves the collected files', async () => {
      const r = await buildSlug(await copyFixture('python-django'), path.join(await tempDir(), 'cache'), config);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('Successfully installed Django-3.2.25');
      expect(r.stderr).to.contain('-----> Running Django collectstatic');
      expect(r.stderr).to.match(/ {7}\d+ static files copied to '.*\/staticfiles', \d+ post-processed\./);
      expect(await slugPaths(r.slug)).to.include('staticfiles/admin/css/base.css');
      expect(r.stderr).to.contain('Default types for buildpack -> web, release');
      const app = await startWeb({ slug: r.slug });
      try {
        const res = await fetch(`${app.origin}/static/admin/css/base.css`);
        expect(res.status).to.equal(200);
        expect(await res.text()).to.contain('DJANGO Admin styles');
      } finally {
        await app.stop();
      }
    });

    it('skips collectstatic with DISABLE_COLLECTSTATIC=1', async () => {
      const r = await buildSlug(await copyFixture('python-django'), path.join(await tempDir(), 'cache'), {
        ...config,
        DISABLE_COLLECTSTATIC: '1',
      });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('-----> Skipping Django collectstatic (DISABLE_COLLECTSTATIC=1)');
      expect(await slugPaths(r.slug)).not.to.include('staticfiles/admin/css/base.css');
    });

    it('a Procfile entry wins over the default web and release', async () => {
      const src = await copyFixture('python-django');
      await writeFile(path.join(src, 'Procfile'), 'release: echo no migrations here\n');
      const r = await buildSlug(src, path.join(await tempDir(), 'cache'), config);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('Procfile declares types -> release\n       Default types for buildpack -> web, release\n');
      const appDir = path.join(await tempDir('slugkit-dyno-'), 'app');
      const run = await runRunner(['--app-dir', appDir, '--slug', r.slug, 'start', 'release']);
      expect(run.exitCode, run.stderr).to.equal(0);
      expect(run.stdout.toString()).to.contain('no migrations here');
    });

    it('fails the build when collectstatic fails, saying how to skip it', async () => {
      const r = await buildSlug(await copyFixture('python-django'), path.join(await tempDir(), 'cache'), {
        ...config,
        DJANGO_SETTINGS_MODULE: 'nosuch.settings',
      });
      expect(r.exitCode).to.equal(1);
      expect(r.stderr).to.contain("ModuleNotFoundError: No module named 'nosuch'");
      expect(r.stderr).to.contain(
        'python manage.py collectstatic --noinput failed (output above): fix it, or set DISABLE_COLLECTSTATIC=1 to skip it',
      );
      expect(existsSync(r.slug)).to.equal(false);
    });
  });

  it('installs a pyproject.toml project itself when there is no requirements.txt', async () => {
    // Its build backend is in-tree and needs no packages, so pip builds it offline.
    const src = await copyFixture('python-pyproject');
    const r = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.contain('-----> Installing the project from pyproject.toml with pip');
    const appDir = path.join(await tempDir('slugkit-dyno-'), 'app');
    const run = await runRunner(['--app-dir', appDir, '--slug', r.slug, 'run', 'hello-app']);
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout.toString()).to.contain('hello from an installed pyproject app');
  });
});
