/**
 * shared/app/launch-plan.ts: the plan bin/dyno.bash starts from. The builder
 * makes it from what its chain returned, the runner from the files it read:
 * both must give the same bytes, and a plan records exactly the bytes of the
 * files it was made from.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { x as untar } from 'tar';
import { type BuiltApp, readApp } from '../shared/app/app.js';
import { makeLaunchPlan } from '../shared/app/launch-plan.js';
import { LAUNCH_PLAN, PROCFILE, RELEASE } from '../shared/app/layout.js';
import { emptyRelease } from '../shared/release.js';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, tarOf, tempDir } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';

/** The plan's NUL-terminated fields. */
const fields = (bytes: Buffer) => bytes.toString('utf8').split('\0').slice(0, -1);

describe('the built app: launch plan (shared/app/launch-plan.ts)', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  it('is made from the app the caller holds: the stamps are the bytes it was given, not what is on disk', async () => {
    const appDir = await tempDir();
    await writeFile(path.join(appDir, PROCFILE), 'web: on-disk\n');
    const app: BuiltApp = {
      appDir,
      release: { ...emptyRelease(), config_vars: { GREETING: 'hi' } },
      procfile: { web: 'held' },
      files: { [RELEASE]: Buffer.from('--- {}\n'), [PROCFILE]: Buffer.from('web: held\n') },
    };
    const plan = await makeLaunchPlan(app);
    expect(plan.fast).to.equal(true);
    expect(fields(plan.bytes)).to.deep.equal([
      'slugkit-launch 2',
      'fast',
      ...['stamp', '.release', '1', '--- {}\n'],
      ...['stamp', 'Procfile', '1', 'web: held\n'],
      ...['stamp', '.layers/config/metadata.toml', '0'],
      ...['var', 'GREETING', 'hi'],
      ...['default', 'web'],
      ...['proc', 'web', 'held', 'shell', '', 'held'],
    ]);
  });

  it('is slow (the Node runner starts it) when a config var has a name bash cannot export, or a stamped file a NUL', async () => {
    const appDir = await tempDir();
    const base: BuiltApp = { appDir, release: emptyRelease(), procfile: {}, files: {} };
    expect((await makeLaunchPlan({ ...base, release: { ...emptyRelease(), config_vars: { 'A-B': '1' } } })).fast).to.equal(false);
    expect((await makeLaunchPlan({ ...base, release: { ...emptyRelease(), config_vars: { BASHOPTS: '1' } } })).fast).to.equal(false);
    expect((await makeLaunchPlan({ ...base, files: { [PROCFILE]: Buffer.from('web: a\0b\n') } })).fast).to.equal(false);
  });

  it("a build's plan is byte for byte the one the runner's reader makes from the slug (classic and CNB)", async () => {
    const classic = await makeBuildpack(
      {
        detect: 'echo Classic',
        compile: 'true',
        release: "printf -- '---\\nconfig_vars:\\n  FROM_RELEASE: yes\\ndefault_process_types:\\n  worker: ./work\\n'",
      },
      'classic',
    );
    const cnb = await writeCnb(path.join(await tempDir('slugkit-cnb-'), 'test_web'), {
      id: 'test/web',
      api: '0.10',
      build: [
        'mkdir -p "$1/run/bin" "$1/run/env.launch/web"; printf "[types]\\nlaunch = true\\n" > "$1/run.toml"',
        'printf "on" > "$1/run/env.launch/web/WEB_ONLY.default"',
        `cat > "$1/launch.toml" <<'TOML'`,
        '[[processes]]',
        'type = "web"',
        'command = ["serve"]',
        'args = ["--port", "5000"]',
        'working-dir = "sub"',
        'default = true',
        'TOML',
      ].join('\n'),
    });
    const out = path.join(await tempDir(), 'slug.tgz');
    const source = await makeApp({ Procfile: 'release: ./migrate\n', 'sub/x': 'x' });
    const res = await runBuilder(['--buildpack', classic, '--buildpack', cnb, '-o', out], { input: await tarOf(source) });
    expect(res.exitCode, res.stderr).to.equal(0);
    const slug = path.join(await tempDir(), 'app');
    await mkdir(slug);
    await untar({ file: out, cwd: slug });
    const shipped = await readFile(path.join(slug, LAUNCH_PLAN));
    const remade = await makeLaunchPlan(await readApp(slug));
    expect(fields(remade.bytes)).to.deep.equal(fields(shipped));
    expect(fields(shipped)).to.include.members(['default', 'FROM_RELEASE', './work', './migrate', 'serve', 'sub', 'WEB_ONLY']);
  });
});
