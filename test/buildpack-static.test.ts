/**
 * The bundled static buildpack, through the real slugbuilder and slugrunner:
 * the web process is the dependency-free node server it copies into the app.
 */

import { existsSync } from 'node:fs';
import { symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { buildSlug, copyFixture, type RunningApp, rawRequest, runScript, startWeb } from './helpers/buildpack-harness.js';
import { makeApp, removeTempDirs, runRunner, tempDir } from './helpers/cli.js';

describe('buildpack static', function () {
  this.timeout(120_000);
  after(removeTempDirs);

  describe('bin/detect and bin/release', () => {
    for (const [what, files] of [
      ['index.html at the root', { 'index.html': '' }],
      ['index.html in public/', { 'public/index.html': '' }],
      ['a static.json', { 'static.json': '{}' }],
    ] as const) {
      it(`detects ${what}`, async () => {
        const r = await runScript('static', 'detect', await makeApp(files));
        expect(r.exitCode).to.equal(0);
        expect(r.stdout).to.equal('Static');
      });
    }

    it('does not detect an app without any of them', async () => {
      expect((await runScript('static', 'detect', await makeApp({ 'about.html': '' }))).exitCode).to.equal(1);
    });

    it('releases the bundled server as web', async () => {
      const r = await runScript('static', 'release', await makeApp({ 'index.html': '' }));
      expect(r.stdout).to.equal('---\ndefault_process_types:\n  web: node .heroku/static/server.cjs');
    });
  });

  describe('a site with index.html at its root', () => {
    let app: RunningApp;

    before(async () => {
      const build = await buildSlug(await copyFixture('static-site'), path.join(await tempDir(), 'cache'));
      expect(build.exitCode, build.stderr).to.equal(0);
      expect(build.stderr).to.contain('-----> Static app detected');
      expect(build.stderr).to.contain('       root: .');
      app = await startWeb({ slug: build.slug });
    });
    after(async () => app && (await app.stop()));

    it('serves index.html for / with an HTML content type', async () => {
      const res = await fetch(app.origin + '/');
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('text/html; charset=utf-8');
      expect(await res.text()).to.contain('<h1>Hello from static-site</h1>');
    });

    for (const [file, type] of [
      ['/style.css', 'text/css; charset=utf-8'],
      ['/app.js', 'text/javascript; charset=utf-8'],
      ['/index.html', 'text/html; charset=utf-8'],
    ]) {
      it(`serves ${file} as ${type}`, async () => {
        const res = await fetch(app.origin + file);
        expect(res.status).to.equal(200);
        expect(res.headers.get('content-type')).to.equal(type);
      });
    }

    it('redirects a directory without a slash, then serves its index.html', async () => {
      const redirect = await rawRequest(app.origin, '/sub');
      expect(redirect.status).to.equal(301);
      expect(redirect.headers.location).to.equal('/sub/');
      const res = await fetch(app.origin + '/sub/');
      expect(res.status).to.equal(200);
      expect(await res.text()).to.contain('sub directory index');
    });

    it('answers 404 for a missing file', async () => {
      const res = await fetch(app.origin + '/missing.html');
      expect(res.status).to.equal(404);
      expect(await res.text()).to.contain('Not Found');
    });

    it('answers HEAD with headers and no body, and 405 for other methods', async () => {
      const head = await rawRequest(app.origin, '/style.css', 'HEAD');
      expect(head.status).to.equal(200);
      expect(head.headers['content-length']).to.equal('22');
      expect(head.body).to.equal('');
      expect((await rawRequest(app.origin, '/', 'POST')).status).to.equal(405);
    });

    it('never serves hidden files (.release, .profile.d, the server itself)', async () => {
      for (const p of ['/.release', '/.heroku/static/server.cjs', '/.profile.d/']) {
        expect((await rawRequest(app.origin, p)).status, p).to.equal(404);
      }
    });

    it('refuses to climb out of the root with .., plain or encoded', async () => {
      for (const p of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/sub/..%2f..%2fetc/passwd', '/..%5c..%5cetc/passwd']) {
        const res = await rawRequest(app.origin, p);
        expect(res.status, p).to.be.oneOf([400, 404]);
        expect(res.body, p).not.to.contain('root:');
      }
    });
  });

  it('serves public/ when index.html is there', async () => {
    const src = await makeApp({ 'public/index.html': '<h1>public index</h1>', 'README.md': 'not served' });
    const build = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(build.exitCode, build.stderr).to.equal(0);
    expect(build.stderr).to.contain('       root: public');
    const app = await startWeb({ slug: build.slug });
    try {
      expect(await (await fetch(app.origin + '/')).text()).to.equal('<h1>public index</h1>');
      expect((await fetch(app.origin + '/README.md')).status).to.equal(404);
    } finally {
      await app.stop();
    }
  });

  describe('static.json and symlinks', () => {
    let app: RunningApp;
    let outsideDir: string;

    before(async () => {
      const src = await copyFixture('static-json');
      await symlink('../secret.txt', path.join(src, 'dist/leak.txt'));
      await symlink('assets', path.join(src, 'dist/inner'));
      const build = await buildSlug(src, path.join(await tempDir(), 'cache'));
      expect(build.exitCode, build.stderr).to.equal(0);
      expect(build.stderr).to.contain('       root: dist');
      expect(build.stderr).to.contain('       error_page: 404.html');
      // Unpack, then add a link to a directory outside the app (an unpacker
      // would not restore an absolute symlink from a slug), then start.
      const appDir = path.join(await tempDir('slugkit-dyno-'), 'app');
      const unpack = await runRunner(['--app-dir', appDir, '--slug', build.slug, 'types']);
      expect(unpack.exitCode, unpack.stderr).to.equal(0);
      outsideDir = await tempDir('slugkit-outside-');
      await writeFile(path.join(outsideDir, 'private.txt'), 'outside the app');
      await symlink(outsideDir, path.join(appDir, 'dist/outside'));
      app = await startWeb({ appDir });
    });
    after(async () => app && (await app.stop()));

    it('serves from the root static.json names, with right content types', async () => {
      expect(await (await fetch(app.origin + '/')).text()).to.contain('static-json home');
      const json = await fetch(app.origin + '/assets/data.json');
      expect(json.headers.get('content-type')).to.equal('application/json; charset=utf-8');
      const svg = await fetch(app.origin + '/assets/logo.svg');
      expect(svg.headers.get('content-type')).to.equal('image/svg+xml');
    });

    it('serves /about from about.html with clean_urls', async () => {
      expect(await (await fetch(app.origin + '/about')).text()).to.contain('about, via clean_urls');
    });

    it('answers 404 with the error_page', async () => {
      const res = await fetch(app.origin + '/nope');
      expect(res.status).to.equal(404);
      expect(await res.text()).to.contain('custom not found page');
    });

    it('does not serve files outside the root, by path or through symlinks', async () => {
      for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/leak.txt', '/outside/private.txt']) {
        const res = await rawRequest(app.origin, p);
        expect(res.status, p).to.equal(404);
        expect(res.body, p).not.to.contain('outside the');
      }
    });

    it('follows symlinks that stay inside the root', async () => {
      const res = await fetch(app.origin + '/inner/logo.svg');
      expect(res.status).to.equal(200);
    });
  });

  it('fails the build when static.json names a root outside the app', async () => {
    const src = await makeApp({ 'static.json': '{"root": "../.."}', 'index.html': '' });
    const build = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(build.exitCode).to.equal(1);
    expect(build.stderr).to.contain('static.json root "../.." must be a directory inside the app');
    expect(existsSync(build.slug)).to.equal(false);
  });

  it('fails the build on a static.json that is not JSON', async () => {
    const src = await makeApp({ 'static.json': '{root: dist}' });
    const build = await buildSlug(src, path.join(await tempDir(), 'cache'));
    expect(build.exitCode).to.equal(1);
    expect(build.stderr).to.match(/static\.json is not valid JSON \(.*\): fix it and push again/);
  });
});
