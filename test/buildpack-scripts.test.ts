/**
 * Every bundled buildpack as a whole: the detection order (builder.toml), the classic
 * API's three executables, shellcheck-clean bash, and detection order on apps
 * that more than one buildpack would accept.
 */

import { constants } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { parse as parseToml } from 'smol-toml';
import { BUILDPACKS, buildSlug } from './helpers/buildpack-harness.js';
import { makeApp, removeTempDirs, runRunner, tempDir } from './helpers/cli.js';
import { requirePythonVenv, skipOrFail } from './helpers/tools.js';

/** The groups of buildpacks/builder.toml, each one bundled buildpack named by uri, in detection order. */
async function orderFile(): Promise<string[]> {
  const builder = parseToml(await readFile(path.join(BUILDPACKS, 'builder.toml'), 'utf8')) as {
    order: Array<{ group: Array<{ uri: string }> }>;
  };
  return builder.order.map((o) => {
    expect(o.group).to.have.length(1);
    return o.group[0].uri;
  });
}

async function hasShellcheck(): Promise<boolean> {
  return (await execa('shellcheck', ['--version'], { reject: false })).exitCode === 0;
}

/** Shell scripts among a buildpack's bin/ and lib/ (lib/ also holds node helpers). */
async function shellScripts(): Promise<string[]> {
  const scripts: string[] = [];
  for (const bp of await orderFile()) {
    for (const sub of ['bin', 'lib']) {
      const dir = path.join(BUILDPACKS, bp, sub);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const first = (await readFile(path.join(dir, name), 'utf8')).split('\n')[0];
        if (/^#!.*\b(ba)?sh$/.test(first) || first.startsWith('# shellcheck shell=')) scripts.push(path.join(dir, name));
      }
    }
  }
  return scripts;
}

describe('bundled buildpacks', function () {
  this.timeout(180_000);
  after(removeTempDirs);

  it('buildpacks/builder.toml orders every bundled buildpack once, with procfile last', async () => {
    const order = await orderFile();
    const dirs = (await readdir(BUILDPACKS, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    expect([...order].sort()).to.deep.equal([...dirs].sort());
    expect(order.at(-1)).to.equal('procfile');
    expect(order.slice(0, 3)).to.deep.equal(['nodejs', 'python', 'static']);
  });

  it('lib/output.sh and lib/env.sh are byte-identical copies wherever a buildpack has them, and say so', async () => {
    for (const lib of ['output.sh', 'env.sh']) {
      const copies: Array<[string, string]> = [];
      for (const bp of await orderFile()) {
        const text = await readFile(path.join(BUILDPACKS, bp, 'lib', lib), 'utf8').catch(() => undefined);
        if (text !== undefined) copies.push([bp, text]);
      }
      expect(
        copies.map(([bp]) => bp),
        lib,
      ).to.deep.equal(['nodejs', 'python', 'static']);
      for (const [bp, text] of copies) {
        expect(text, `${bp}/lib/${lib}`).to.equal(copies[0][1]);
        expect(text.split('\n')[1], `${bp}/lib/${lib}`).to.match(/^# One of three identical copies .* on purpose:$/);
      }
    }
  });

  it('each has executable bin/detect, bin/compile and bin/release', async () => {
    for (const bp of await orderFile()) {
      for (const script of ['detect', 'compile', 'release']) {
        await access(path.join(BUILDPACKS, bp, 'bin', script), constants.X_OK);
      }
    }
  });

  it('every shell script passes shellcheck', async function () {
    if (!(await hasShellcheck())) {
      skipOrFail(this, 'needs shellcheck (apt-get install shellcheck)');
    }
    const scripts = await shellScripts();
    expect(scripts.length).to.be.greaterThan(10);
    const r = await execa('shellcheck', ['-x', ...scripts], { reject: false, cwd: BUILDPACKS });
    expect(r.exitCode, r.stdout).to.equal(0);
  });

  it('nodejs wins over static for a front-end app with package.json and public/index.html', async () => {
    const app = await makeApp({ 'package.json': '{"name":"spa","version":"1.0.0"}', 'public/index.html': '<h1>spa</h1>' });
    const r = await buildSlug(app, path.join(await tempDir(), 'cache'));
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.contain('-----> Node.js app detected');
  });

  it('nodejs then python in .buildpacks: both compile, and the dyno has both environments', async function () {
    requirePythonVenv(this);
    const app = await makeApp({
      '.buildpacks': `${path.join(BUILDPACKS, 'nodejs')}\n${path.join(BUILDPACKS, 'python')}\n`,
      'package.json': JSON.stringify({
        name: 'assets',
        version: '1.0.0',
        scripts: { build: "node -e \"require('fs').writeFileSync('assets.txt', 'from node')\"" },
      }),
      'requirements.txt': '',
      Procfile: 'web: python -m http.server $PORT\n',
    });
    const r = await buildSlug(app, path.join(await tempDir(), 'cache'));
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.contain('-----> Running build script');
    expect(r.stderr).to.contain('-----> Creating a virtualenv in .heroku/python');
    const appDir = path.join(await tempDir('slugkit-dyno-'), 'app');
    const run = await runRunner(['--app-dir', appDir, '--slug', r.slug, 'run', 'echo "$NODE_ENV $VIRTUAL_ENV $(cat assets.txt)"']);
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout.toString().trim()).to.equal(`production ${appDir}/.heroku/python from node`);
  });

  it('python wins over static for an app with requirements.txt and index.html', async function () {
    requirePythonVenv(this);
    const app = await makeApp({ 'requirements.txt': '', 'index.html': '<h1>docs</h1>' });
    const r = await buildSlug(app, path.join(await tempDir(), 'cache'));
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.contain('-----> Python app detected');
  });
});
