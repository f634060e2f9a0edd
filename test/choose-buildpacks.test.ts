/**
 * slugbuilder/buildpacks/choose.ts: which buildpacks build an app, called as
 * build.ts calls it (the end-to-end suites, buildpack-chain and cnb-detect,
 * run the same rules through the CLI).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { setLogSink } from '../shared/log.js';
import { readBuilderFile } from '../slugbuilder/buildpacks/builder-file.js';
import { type ChooseOptions, chooseBuildpacks, NOTHING_DETECTED } from '../slugbuilder/buildpacks/choose.js';
import { NO_SANDBOX } from '../slugbuilder/buildpacks/sandbox.js';
import { makeApp, makeBuildpack, removeTempDirs, tempDir, writeTree } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';

let logged: string[] = [];

async function options(buildDir: string, more: Partial<ChooseOptions> = {}): Promise<ChooseOptions> {
  const work = await tempDir();
  await mkdir(path.join(work, 'platform', 'env'), { recursive: true });
  return {
    buildpacks: [],
    buildDir,
    env: { PATH: process.env.PATH },
    workDir: work,
    cacheRoot: path.join(work, 'cache'),
    platformDir: path.join(work, 'platform'),
    scratchDir: path.join(work, 'detect'),
    platform: { stack: 'heroku-24', target: { os: 'linux', arch: 'amd64' } },
    sandbox: NO_SANDBOX,
    ...more,
  };
}

describe('buildpacks/choose.ts: chooseBuildpacks', () => {
  beforeEach(() => {
    logged = [];
    setLogSink((t) => logged.push(t));
  });
  afterEach(() => setLogSink((t) => process.stderr.write(t)));
  after(removeTempDirs);

  it('runs an explicit list in its order, classic members even where detect says no', async () => {
    const app = await makeApp({ 'a.txt': 'a' });
    const yes = await makeBuildpack({ detect: 'echo Yes-Lang', compile: 'true' }, 'yes');
    const no = await makeBuildpack({ detect: 'exit 1', compile: 'true' }, 'no');
    const chosen = await chooseBuildpacks(await options(app, { buildpacks: [no, yes], listedIn: '--buildpack' }));
    expect(chosen.map((m) => [m.kind, m.name, m.origin])).to.deep.equal([
      ['classic', 'no', no],
      ['classic', 'Yes-Lang', yes],
    ]);
    expect(logged.join('')).to.include('Using the buildpacks listed in --buildpack');
    expect(logged.join('')).to.include('-----> Yes-Lang app detected');
  });

  it("takes the app's .buildpacks when no list is given", async () => {
    const bp = await makeBuildpack({ detect: 'echo Listed', compile: 'true' });
    const app = await makeApp({ '.buildpacks': `${bp}\n` });
    const chosen = await chooseBuildpacks(await options(app));
    expect(chosen.map((m) => m.name)).to.deep.equal(['Listed']);
    expect(logged.join('')).to.include('Using the buildpacks listed in .buildpacks');
  });

  it("detects the builder's order: the first group that passes builds", async () => {
    const dir = await tempDir();
    const none = await makeBuildpack({ detect: 'exit 1', compile: 'true' }, 'none');
    const cnb = await writeCnb(path.join(dir, 'cnb'), { id: 'test/cnb', version: '1.2.3', api: '0.10' });
    const builder = path.join(dir, 'builder.toml');
    await writeFile(
      builder,
      `[[buildpacks]]\nuri = "${none}"\n[[buildpacks]]\nuri = "${cnb}"\n` +
        `[[order]]\n[[order.group]]\nuri = "${none}"\n[[order]]\n[[order.group]]\nid = "test/cnb"\n`,
    );
    const app = await makeApp({ 'a.txt': 'a' });
    const chosen = await chooseBuildpacks(await options(app, { builder: await readBuilderFile(builder) }));
    expect(chosen.map((m) => [m.kind, m.name])).to.deep.equal([['cnb', 'test/cnb@1.2.3']]);
    expect(logged.join('')).to.include('-----> Detected buildpack test/cnb@1.2.3');
  });

  it('says what to add when no bundled buildpack recognises the app', async () => {
    const app = await writeTree(await tempDir(), { 'notes.md': 'nothing to build' });
    const err = await chooseBuildpacks(await options(app)).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.equal(NOTHING_DETECTED);
  });
});
