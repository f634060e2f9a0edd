/**
 * The launcher as the lifecycle's own tests expect it, end to end: real bash
 * Cloud Native Buildpacks laid out as the spec says, built by slugbuilder,
 * started by slugrunner through the Node runner (a slug to unpack) and
 * through the fast start (the populated app dir, bash only).
 *
 *  - a launch layer's bin/ is on PATH (and lib/ on LD_LIBRARY_PATH) for a
 *    0.9 direct process ["env"], whose argv word once read as a plan record;
 *  - the platform's CNB_* variables never reach the process;
 *  - `run CMD ARG...` joins its words and runs them through bash;
 *  - a 0.8 shell process's args are evaluated as the lifecycle does.
 */
import path from 'node:path';
import { expect } from 'chai';
import { makeApp, removeTempDirs, runBuilder, runRunner, tarOf, tempDir } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';

/** API 0.9: one launch layer with bin/, lib/ and env/, and direct processes. */
const TOOLS_BUILD = String.raw`
layer="$1/tools"
mkdir -p "$layer/bin" "$layer/lib" "$layer/env"
printf '#!/usr/bin/env bash\necho tool-ran\n' > "$layer/bin/tool"
chmod +x "$layer/bin/tool"
printf 'orig-val' > "$layer/env/SOME_VAR"
printf '[types]\nlaunch = true\n' > "$1/tools.toml"
cat > "$1/launch.toml" <<'TOML'
[[processes]]
type = "tool"
command = ["tool"]

[[processes]]
type = "web"
command = ["env"]
default = true
TOML
`;

/** API 0.8: a shell process whose args hold quotes and a variable, as lifecycle's acceptance test has it. */
const SHELL_BUILD = String.raw`
cat > "$1/launch.toml" <<'TOML'
[[processes]]
type = "printer"
command = "printf"
args = ['VAR: "%s" PATH-HAS-TOOLS: %s\n', '$SOME_VAR', '$(command -v tool)']
TOML
`;

const PLATFORM = {
  CNB_APP_DIR: '/elsewhere',
  CNB_LAYERS_DIR: '/layers',
  CNB_PROCESS_TYPE: 'worker',
  CNB_PLATFORM_API: '0.12',
  CNB_DEPRECATION_MODE: 'quiet',
};

describe('the launcher as the lifecycle expects it (built by slugbuilder, started by slugrunner)', function () {
  this.timeout(180_000);
  after(removeTempDirs);

  let appDir: string;
  let slug: string;
  let layer: string;
  /** The issue's own case: a 0.9 buildpack whose only process is the direct ["env"]. */
  let envApp: { appDir: string; slug: string; layer: string };
  before(async () => {
    const only = path.join(await tempDir('slugkit-launcher-'), 'only-env');
    const onlyBuild = TOOLS_BUILD.replace(/\[\[processes\]\]\ntype = "tool"\ncommand = \["tool"\]\n\n/, '');
    const bp = await writeCnb(path.join(only, 'bp'), { id: 'example/only', api: '0.9', build: onlyBuild });
    envApp = {
      appDir: path.join(only, 'app'),
      slug: path.join(only, 'slug.tgz'),
      layer: path.join(only, 'app/.layers/example_only/tools'),
    };
    const made = await runBuilder(
      ['--app-dir', envApp.appDir, '--buildpack', bp, '--cache-dir', path.join(only, 'cache'), '-o', envApp.slug],
      {
        input: await tarOf(await makeApp({ 'index.txt': 'app\n' })),
      },
    );
    expect(made.exitCode, made.stderr).to.equal(0);

    const root = await tempDir('slugkit-launcher-');
    const tools = await writeCnb(path.join(root, 'tools'), { id: 'example/tools', api: '0.9', build: TOOLS_BUILD });
    const printer = await writeCnb(path.join(root, 'printer'), { id: 'example/printer', api: '0.8', build: SHELL_BUILD });
    appDir = path.join(root, 'app');
    slug = path.join(root, 'slug.tgz');
    const input = await tarOf(await makeApp({ 'index.txt': 'app\n' }));
    const built = await runBuilder(
      ['--app-dir', appDir, '--buildpack', tools, '--buildpack', printer, '--cache-dir', path.join(root, 'cache'), '-o', slug],
      { input },
    );
    expect(built.exitCode, built.stderr).to.equal(0);
    layer = path.join(appDir, '.layers/example_tools/tools');
  });

  /** Runs the runner in the app dir: `node` unpacks the slug first (the Node runner), `fast` starts from the app dir. */
  async function run(way: 'node' | 'fast', args: string[], env: Record<string, string> = {}, app = { appDir, slug }) {
    const slugArgs = way === 'node' ? ['--slug', app.slug] : [];
    const r = await runRunner(['--app-dir', app.appDir, ...slugArgs, '-q', ...args], {
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', SLUGKIT_DEBUG_START: '1', ...env },
    });
    expect(r.stderr).to.include(way === 'node' ? 'slugrunner: node start' : 'slugrunner: fast start');
    return { ...r, out: r.stdout.toString('utf8') };
  }

  const envOf = (out: string) => Object.fromEntries(out.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

  for (const way of ['node', 'fast'] as const) {
    describe(`through the ${way === 'node' ? 'Node runner' : 'fast start'}`, () => {
      it('puts a 0.9 launch layer\'s bin/ on PATH and lib/ on LD_LIBRARY_PATH for a direct process ["env"]', async () => {
        for (const [app, dir] of [
          [{ appDir, slug }, layer],
          [envApp, envApp.layer],
        ] as const) {
          const r = await run(way, ['start'], {}, app);
          expect(r.exitCode, r.stderr).to.equal(0);
          const env = envOf(r.out);
          expect(env.PATH).to.equal(`${dir}/bin:/usr/local/bin:/usr/bin:/bin`);
          expect(env.LD_LIBRARY_PATH).to.equal(`${dir}/lib`);
          expect(env.SOME_VAR).to.equal('orig-val');
        }
        // Every process kind: a direct process found by PATH, a one-off.
        expect((await run(way, ['start', 'tool'])).out).to.equal('tool-ran\n');
        expect((await run(way, ['run', 'tool'])).out).to.equal('tool-ran\n');
      });

      it('removes the platform variables CNB_APP_DIR, CNB_LAYERS_DIR, CNB_PROCESS_TYPE, CNB_PLATFORM_API, CNB_DEPRECATION_MODE', async () => {
        const started = await run(way, ['start', 'web'], PLATFORM);
        expect(started.exitCode, started.stderr).to.equal(0);
        const oneOff = await run(way, ['run', 'env'], PLATFORM);
        for (const out of [started.out, oneOff.out]) {
          expect(out).to.include('SOME_VAR=orig-val');
          expect(out).not.to.match(/^CNB_/m);
        }
      });

      it('run CMD ARG... joins its words and runs them through bash, as heroku run does', async () => {
        const r = await run(way, ['run', 'echo', '$SOME_VAR', '"two  words"', '|', 'tr', 'a-z', 'A-Z']);
        expect(r.exitCode, r.stderr).to.equal(0);
        expect(r.out).to.equal('ORIG-VAL TWO  WORDS\n');
      });

      it("evaluates a 0.8 shell process's args as the lifecycle does: quotes removed, variables expanded", async () => {
        const r = await run(way, ['start', 'printer']);
        expect(r.exitCode, r.stderr).to.equal(0);
        expect(r.out).to.equal(`VAR: orig-val PATH-HAS-TOOLS: ${layer}/bin/tool\n`);
      });
    });
  }
});
