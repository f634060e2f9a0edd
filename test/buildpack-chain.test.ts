/**
 * A chain of two buildpacks through the real CLI: every buildpack's
 * bin/release counts, in chain order, a later one winning; the app's Procfile
 * wins over all; `.release` in the slug holds the merged result.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { extract } from 'tar';
import { parse } from 'yaml';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, tempDir } from './helpers/cli.js';

const FIRST_RELEASE = `cat <<'YAML'
---
addons:
  - heroku-postgresql
  - heroku-redis
config_vars:
  LANG: en_US.UTF-8
  FIRST_ONLY: one
default_process_types:
  web: first-web
  worker: first-worker
  clock: first-clock
YAML`;

const SECOND_RELEASE = `cat <<'YAML'
---
addons: [heroku-redis, papertrail]
config_vars:
  LANG: C.UTF-8
  SECOND_ONLY: two
default_process_types:
  web: second-web
  release: second-release
YAML`;

describe('a buildpack chain', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  async function buildChain(appFiles: Record<string, string>) {
    const first = await makeBuildpack({ detect: 'echo First', compile: 'true', release: FIRST_RELEASE }, 'first');
    const second = await makeBuildpack({ detect: 'echo Second', compile: 'true', release: SECOND_RELEASE }, 'second');
    const root = await tempDir('slugkit-chain-');
    const slug = path.join(root, 'slug.tgz');
    const summary = path.join(root, 'summary.json');
    const r = await runBuilder([
      '--source',
      await makeApp(appFiles),
      '--buildpack',
      first,
      '--buildpack',
      second,
      '--cache-dir',
      path.join(root, 'cache'),
      '-o',
      slug,
      '--summary',
      summary,
    ]);
    expect(r.exitCode, r.stderr).to.equal(0);
    const out = path.join(root, 'out');
    await mkdir(out);
    await extract({ file: slug, cwd: out });
    return {
      stderr: r.stderr,
      release: parse(await readFile(path.join(out, '.release'), 'utf8')),
      summary: JSON.parse(await readFile(summary, 'utf8')),
    };
  }

  it('merges default process types in chain order, the later buildpack winning', async () => {
    const { release, summary, stderr } = await buildChain({ 'a.txt': 'a\n' });
    expect(release.default_process_types).to.deep.equal({
      web: 'second-web',
      worker: 'first-worker',
      clock: 'first-clock',
      release: 'second-release',
    });
    expect(summary.process_types).to.deep.equal(release.default_process_types);
    expect(summary.buildpacks.map((b: { name: string }) => b.name)).to.deep.equal(['First', 'Second']);
    expect(stderr).to.include('Default types for buildpacks -> web, worker, clock, release');
  });

  it('keeps merged config vars (later wins) and the union of addons in .release', async () => {
    const { release } = await buildChain({ 'a.txt': 'a\n' });
    expect(release.config_vars).to.deep.equal({ LANG: 'C.UTF-8', FIRST_ONLY: 'one', SECOND_ONLY: 'two' });
    expect(release.addons).to.deep.equal(['heroku-postgresql', 'heroku-redis', 'papertrail']);
  });

  it("the app's Procfile wins over every buildpack's defaults", async () => {
    const { release, summary } = await buildChain({ Procfile: 'worker: app-worker\n' });
    expect(summary.process_types).to.deep.equal({
      web: 'second-web',
      worker: 'app-worker',
      clock: 'first-clock',
      release: 'second-release',
    });
    // .release keeps what the buildpacks released; the Procfile is read from the slug itself.
    expect(release.default_process_types.worker).to.equal('first-worker');
  });
});
