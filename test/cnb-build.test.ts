/**
 * The CNB build side on real bash buildpacks: bin/build's arguments and
 * CNB_* variables per API family, layers restored from and saved to the
 * cache, untyped layers dropped, store.toml kept, unmet plan entries, the
 * build env one buildpack's layers give the next (and classic buildpacks),
 * launch.toml per API, and the one-line errors.
 */

import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { parseToml } from '../shared/toml.js';
import { buildCnb, type CnbBuildInput, type CnbBuildpack, classicBuildEnv } from '../slugbuilder/buildpacks/cnb/build.js';
import { parseLaunchToml } from '../slugbuilder/buildpacks/cnb/launch-toml.js';
import { buildpackCacheDir, buildpackLayersDir, finalizeLayers } from '../slugbuilder/buildpacks/cnb/layers.js';
import { removeTempDirs, tempDir, writeTree } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';

const BASE_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

async function cnb(id: string, api: string, build: string, extra: Partial<CnbBuildpack> = {}): Promise<CnbBuildpack> {
  const dir = await writeCnb(await tempDir('slugkit-cnb-'), { id, api, build, version: extra.version });
  return { id, version: extra.version ?? '0.0.1', api, dir, ...extra };
}

async function workspace(config: Record<string, string> = {}) {
  const appDir = await tempDir('slugkit-app-');
  const platformDir = await tempDir('slugkit-platform-');
  await mkdir(path.join(platformDir, 'env'));
  await writeTree(platformDir, Object.fromEntries(Object.entries(config).map(([k, v]) => [`env/${k}`, v])));
  const cacheDir = await tempDir('slugkit-cache-');
  return { appDir, platformDir, cacheDir };
}

function input(
  bp: CnbBuildpack,
  ws: { appDir: string; platformDir: string; cacheDir: string },
  more: Partial<CnbBuildInput> = {},
): CnbBuildInput {
  return { buildpack: bp, ...ws, plan: [], env: BASE_ENV, ...more };
}

/** Lines `KEY=value` a test buildpack wrote to a file in the app. */
async function seen(file: string): Promise<Record<string, string>> {
  const text = await readFile(file, 'utf8');
  return Object.fromEntries(
    text
      .trimEnd()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

async function failure(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err, 'expected a failure').to.be.instanceOf(Error);
  return (err as Error).message;
}

const RECORD_INPUTS = `{
  echo "1=$1"; echo "2=$2"; echo "3=$3"; echo "PWD=$PWD"
  echo "CNB_LAYERS_DIR=$CNB_LAYERS_DIR"; echo "CNB_PLATFORM_DIR=$CNB_PLATFORM_DIR"
  echo "CNB_BP_PLAN_PATH=$CNB_BP_PLAN_PATH"; echo "CNB_BUILDPACK_DIR=$CNB_BUILDPACK_DIR"
  echo "CNB_TARGET_OS=\${CNB_TARGET_OS:-unset}"; echo "CNB_TARGET_ARCH=\${CNB_TARGET_ARCH:-unset}"
  echo "CNB_TARGET_DISTRO_NAME=\${CNB_TARGET_DISTRO_NAME:-unset}"; echo "CNB_EXEC_ENV=\${CNB_EXEC_ENV:-unset}"
} > inputs.txt
cp "$3" plan-seen.toml`;

describe('CNB build', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  describe('API 0.7/0.8: bin/build inputs, a launch layer and launch.toml with string commands', () => {
    it('runs bin/build in the app dir with layers dir, platform dir and plan as $1..$3 and CNB_* variables', async () => {
      const ws = await workspace();
      const bp = await cnb(
        'example/web',
        '0.8',
        `${RECORD_INPUTS}
mkdir -p "$1/web/bin"
printf '#!/bin/sh\\necho hello\\n' > "$1/web/bin/hello"
chmod +x "$1/web/bin/hello"
printf '[types]\\nlaunch = true\\n[metadata]\\nversion = "1.2"\\n' > "$1/web.toml"
cat > "$1/launch.toml" <<TOML
[[processes]]
type = "web"
command = "$1/web/bin/hello --port \\$PORT"
default = true
working-dir = "sub"

[[processes]]
type = "hello-direct"
command = "$1/web/bin/hello"
args = ["a b", "c"]
direct = true

[[labels]]
key = "org.example.built-by"
value = "example/web"

[[slices]]
paths = ["public/*", "assets"]
TOML`,
      );
      const plan = [
        { name: 'web', metadata: { version: '1.2', launch: true } },
        { name: 'tools', metadata: {} },
      ];
      const target = { os: 'linux', arch: 'amd64', distro: { name: 'ubuntu', version: '24.04' } };
      const result = await buildCnb(input(bp, ws, { plan, target }));

      const layersDir = buildpackLayersDir(ws.appDir, 'example/web');
      expect(layersDir).to.equal(path.join(ws.appDir, '.layers', 'example_web'));
      const got = await seen(path.join(ws.appDir, 'inputs.txt'));
      expect(got['1']).to.equal(layersDir);
      expect(got['2']).to.equal(ws.platformDir);
      expect(got.PWD).to.equal(ws.appDir);
      expect(got.CNB_LAYERS_DIR).to.equal(layersDir);
      expect(got.CNB_PLATFORM_DIR).to.equal(ws.platformDir);
      expect(got.CNB_BP_PLAN_PATH).to.equal(got['3']);
      expect(got.CNB_BUILDPACK_DIR).to.equal(bp.dir);
      // Targets come from API 0.10, exec-env from 0.12.
      expect(got.CNB_TARGET_OS).to.equal('unset');
      expect(got.CNB_EXEC_ENV).to.equal('unset');
      expect(existsSync(got['3']), 'plan file is removed after the build').to.equal(false);
      const planSeen = parseToml(await readFile(path.join(ws.appDir, 'plan-seen.toml'), 'utf8'), 'plan');
      expect(planSeen).to.deep.equal({
        entries: [
          { name: 'web', metadata: { version: '1.2', launch: true } },
          { name: 'tools', metadata: {} },
        ],
      });

      expect(result.layers.map((l) => [l.name, l.launch, l.build, l.cache, l.metadata])).to.deep.equal([
        ['web', true, false, false, { version: '1.2' }],
      ]);
      expect(result.buildLayers).to.deep.equal([]);
      expect(result.launch).to.deep.equal({
        processes: [
          {
            type: 'web',
            command: [`${layersDir}/web/bin/hello --port $PORT`],
            args: [],
            direct: false,
            default: true,
            workingDir: 'sub',
            buildpackId: 'example/web',
            api: '0.8',
          },
          {
            type: 'hello-direct',
            command: [`${layersDir}/web/bin/hello`],
            args: ['a b', 'c'],
            direct: true,
            default: false,
            buildpackId: 'example/web',
            api: '0.8',
          },
        ],
        labels: [{ key: 'org.example.built-by', value: 'example/web' }],
        slices: [{ paths: ['public/*', 'assets'] }],
      });

      await finalizeLayers({ appDir: ws.appDir, cacheDir: ws.cacheDir, buildpacks: [bp] });
      expect(await readFile(path.join(layersDir, 'web/bin/hello'), 'utf8')).to.equal('#!/bin/sh\necho hello\n');
      expect(existsSync(path.join(layersDir, 'launch.toml'))).to.equal(true);
      expect(await readdir(path.join(ws.appDir, '.layers'))).to.deep.equal(['example_web']);
    });

    it('a failing bin/build is one line with the buildpack id, version and exit code', async () => {
      const ws = await workspace();
      const bp = await cnb('example/fail', '0.8', 'echo compiling; exit 3', { version: '1.2.0' });
      expect(await failure(buildCnb(input(bp, ws)))).to.equal('buildpack example/fail@1.2.0: bin/build failed (exit 3)');
    });
  });

  describe('API 0.9+: layers across two builds', () => {
    // First build: a cache layer, a launch-only layer, an untyped layer and store.toml.
    // Second build: records what came back, keeps the cache layer and reuses the launch layer.
    const BUILD = `L="$1"
{
  for f in "$L"/*.toml; do [ -e "$f" ] || continue; echo "== $(basename "$f")"; cat "$f"; done
  echo "== ls"; ls "$L"
  if [ -f "$L/deps/marker" ]; then echo "marker: $(cat "$L/deps/marker")"; fi
} > "$PWD/restored.txt"
if [ -f "$L/store.toml" ]; then count=2; else count=1; fi
printf '[metadata]\\ncount = %s\\n' "$count" > "$L/store.toml"
if [ ! -f "$L/deps/marker" ]; then mkdir -p "$L/deps"; echo cached > "$L/deps/marker"; fi
printf '[types]\\ncache = true\\n[metadata]\\nversion = "1.0"\\n' > "$L/deps.toml"
if [ ! -f "$L/runtime.toml" ]; then mkdir -p "$L/runtime"; echo rt > "$L/runtime/file"; fi
printf '[types]\\nlaunch = true\\n[metadata]\\nsha = "abc"\\n' > "$L/runtime.toml"
mkdir -p "$L/scratch"; echo tmp > "$L/scratch/file"
printf '[metadata]\\nnote = "no types"\\n' > "$L/scratch.toml"
mkdir -p "$L/stray"`;

    it('restores cache layers with contents and metadata, launch-only layers as metadata, and store.toml; drops untyped layers', async () => {
      const bp = await cnb('example/cache', '0.9', BUILD);
      const first = await workspace();
      const r1 = await buildCnb(input(bp, first));
      const layers1 = buildpackLayersDir(first.appDir, bp.id);
      expect(r1.layers.map((l) => l.name)).to.deep.equal(['deps', 'runtime']);
      expect(existsSync(path.join(layers1, 'scratch')), 'untyped layer dropped').to.equal(false);
      await finalizeLayers({ appDir: first.appDir, cacheDir: first.cacheDir, buildpacks: [bp] });
      // The slug keeps launch layers and launch.toml only.
      expect(existsSync(path.join(layers1, 'runtime/file'))).to.equal(true);
      for (const gone of ['deps', 'deps.toml', 'store.toml', 'scratch.toml', 'stray']) {
        expect(existsSync(path.join(layers1, gone)), gone).to.equal(false);
      }

      const second = { ...(await workspace()), cacheDir: first.cacheDir };
      await buildCnb(input(bp, second));
      const restored = await readFile(path.join(second.appDir, 'restored.txt'), 'utf8');
      expect(restored).to.equal(
        [
          '== deps.toml',
          '[metadata]',
          'version = "1.0"',
          '== runtime.toml',
          '[metadata]',
          'sha = "abc"',
          '== store.toml',
          '[metadata]',
          'count = 1',
          '== ls',
          'deps',
          'deps.toml',
          'runtime.toml',
          'store.toml',
          'marker: cached',
          '',
        ].join('\n'),
      );
      const layers2 = buildpackLayersDir(second.appDir, bp.id);
      // The launch layer the buildpack reused (launch = true, no directory) is the previous build's.
      expect(await readFile(path.join(layers2, 'runtime/file'), 'utf8')).to.equal('rt\n');
      await finalizeLayers({ appDir: second.appDir, cacheDir: second.cacheDir, buildpacks: [bp] });
      const kept = buildpackCacheDir(second.cacheDir, bp.id);
      expect(await readFile(path.join(kept, 'store.toml'), 'utf8')).to.equal('[metadata]\ncount = 2\n');
      expect(await readFile(path.join(kept, 'deps/marker'), 'utf8')).to.equal('cached\n');
    });

    it('a reused launch layer with nothing to reuse fails with one line', async () => {
      const ws = await workspace();
      const bp = await cnb('example/reuse', '0.9', `printf '[types]\\nlaunch = true\\n' > "$1/gone.toml"`);
      const layer = path.join(buildpackLayersDir(ws.appDir, bp.id), 'gone');
      expect(await failure(buildCnb(input(bp, ws)))).to.equal(
        `buildpack example/reuse@0.0.1: launch layer gone has no directory and no earlier build to reuse it from; create ${layer}`,
      );
    });

    it('finalize drops the cache of buildpacks no longer in the build', async () => {
      const ws = await workspace();
      const old = await cnb('example/old', '0.9', `mkdir -p "$1/c"; printf '[types]\\ncache = true\\n' > "$1/c.toml"`);
      const now = await cnb('example/now', '0.9', 'true');
      await buildCnb(input(old, ws));
      await finalizeLayers({ appDir: ws.appDir, cacheDir: ws.cacheDir, buildpacks: [old] });
      expect(existsSync(buildpackCacheDir(ws.cacheDir, old.id))).to.equal(true);
      const next = { ...(await workspace()), cacheDir: ws.cacheDir };
      await buildCnb(input(now, next));
      await finalizeLayers({ appDir: next.appDir, cacheDir: next.cacheDir, buildpacks: [now] });
      expect(existsSync(buildpackCacheDir(ws.cacheDir, old.id))).to.equal(false);
    });

    it('bad layer TOML names the file and line', async () => {
      const ws = await workspace();
      const bp = await cnb('example/bad', '0.9', `printf '[types]\\nlaunch = yes\\n' > "$1/x.toml"`);
      const file = path.join(buildpackLayersDir(ws.appDir, bp.id), 'x.toml');
      expect(await failure(buildCnb(input(bp, ws)))).to.match(
        new RegExp(`^buildpack example/bad@0\\.0\\.1: ${file}: invalid TOML at line 2: `),
      );
    });
  });

  describe('build.toml unmet entries', () => {
    const UNMET = `printf '[[unmet]]\\nname = "node"\\n\\n[[unmet]]\\nname = "npm"\\n' > "$1/build.toml"`;
    const plan = [
      { name: 'node', metadata: { version: '20' } },
      { name: 'npm', metadata: {} },
      { name: 'yarn', metadata: {} },
    ];

    it('fails with the names no later buildpack provides', async () => {
      const bp = await cnb('example/unmet', '0.9', UNMET);
      expect(await failure(buildCnb(input(bp, await workspace(), { plan, laterProvides: ['npm'] })))).to.equal(
        'buildpack example/unmet@0.0.1: unmet build plan entries: node (no later buildpack in the group provides them)',
      );
      expect(await failure(buildCnb(input(bp, await workspace(), { plan })))).to.equal(
        'buildpack example/unmet@0.0.1: unmet build plan entries: node, npm (no later buildpack in the group provides them)',
      );
    });

    it('hands entries a later buildpack provides on, and rejects a name not in its plan', async () => {
      const bp = await cnb('example/unmet', '0.9', UNMET);
      const result = await buildCnb(input(bp, await workspace(), { plan, laterProvides: ['node', 'npm'] }));
      expect(result.unmet).to.deep.equal([
        { name: 'node', metadata: { version: '20' } },
        { name: 'npm', metadata: {} },
      ]);
      const file = path.join('.layers', 'example_stray', 'build.toml');
      const stray = await cnb('example/stray', '0.9', `printf '[[unmet]]\\nname = "ruby"\\n' > "$1/build.toml"`);
      const message = await failure(buildCnb(input(stray, await workspace(), { plan })));
      expect(message).to.match(/^buildpack example\/stray@0\.0\.1: \/.*: unmet entry ruby is not in the buildpack plan$/);
      expect(message).to.contain(file);
    });
  });

  describe('build env between buildpacks (API 0.10 targets, 0.12 exec-env)', () => {
    const FIRST = `mkdir -p "$1/tools/bin" "$1/tools/include" "$1/tools/env" "$1/tools/env.build" "$1/tools/env.launch" "$1/run/bin"
printf '[types]\\nbuild = true\\n' > "$1/tools.toml"
printf '[types]\\nlaunch = true\\n' > "$1/run.toml"
printf 'hello' > "$1/tools/env/GREETING.override"
printf '%s' '-O2' > "$1/tools/env.build/CFLAGS.append"
printf ' ' > "$1/tools/env.build/CFLAGS.delim"
printf 'launch-only' > "$1/tools/env.launch/MODE"`;
    const SECOND = `${RECORD_INPUTS}
{ echo "PATH=$PATH"; echo "CPATH=\${CPATH:-}"; echo "GREETING=\${GREETING:-}"; echo "CFLAGS=\${CFLAGS:-}"
  echo "MODE=\${MODE:-unset}"; echo "CONFIG=\${CONFIG:-unset}"; } > env.txt`;

    it('a later buildpack sees the earlier build layers, env/ and env.build/ files, and the config vars', async () => {
      const ws = await workspace({ CONFIG: 'from-platform', PATH: '/platform/bin' });
      const first = await cnb('example/first', '0.10', FIRST);
      const second = await cnb('example/second', '0.10', SECOND);
      const env = { ...BASE_ENV, CFLAGS: '-g' };
      const r1 = await buildCnb(input(first, ws, { env }));
      const tools = path.join(buildpackLayersDir(ws.appDir, first.id), 'tools');
      expect(r1.buildLayers).to.deep.equal([tools]);
      const target = { os: 'linux', arch: 'arm64', distro: { name: 'ubuntu', version: '24.04' } };
      await buildCnb(input(second, ws, { env, earlierBuildLayers: r1.buildLayers, target }));
      expect(await seen(path.join(ws.appDir, 'env.txt'))).to.deep.equal({
        PATH: `/platform/bin:${tools}/bin:${BASE_ENV.PATH}`,
        CPATH: `${tools}/include`,
        GREETING: 'hello',
        CFLAGS: '-g -O2',
        MODE: 'unset',
        CONFIG: 'from-platform',
      });
      const inputs = await seen(path.join(ws.appDir, 'inputs.txt'));
      expect([inputs.CNB_TARGET_OS, inputs.CNB_TARGET_ARCH, inputs.CNB_TARGET_DISTRO_NAME, inputs.CNB_EXEC_ENV]).to.deep.equal([
        'linux',
        'arm64',
        'ubuntu',
        'unset',
      ]);

      // The same additions reach a classic buildpack after the CNBs.
      const classic = await classicBuildEnv(env, r1.buildLayers);
      expect(classic).to.deep.equal({
        PATH: `${tools}/bin:${BASE_ENV.PATH}`,
        CPATH: `${tools}/include`,
        GREETING: 'hello',
        CFLAGS: '-g -O2',
      });
    });

    it('clear-env keeps the config vars out; API 0.12 gets CNB_EXEC_ENV', async () => {
      const ws = await workspace({ CONFIG: 'from-platform' });
      const second = await cnb('example/second', '0.12', SECOND, { clearEnv: true });
      await buildCnb(input(second, ws, { execEnv: 'test' }));
      expect((await seen(path.join(ws.appDir, 'env.txt'))).CONFIG).to.equal('unset');
      expect((await seen(path.join(ws.appDir, 'inputs.txt'))).CNB_EXEC_ENV).to.equal('test');
      const defaulted = await workspace();
      await buildCnb(input({ ...second, clearEnv: false }, defaulted));
      expect((await seen(path.join(defaulted.appDir, 'inputs.txt'))).CNB_EXEC_ENV).to.equal('production');
    });
  });

  describe('launch.toml per API', () => {
    const ref = (api: string) => ({ id: 'example/p', version: '1.0.0', api });
    const prefix = 'buildpack example/p@1.0.0: launch.toml: ';
    const parse = (api: string, text: string) => parseLaunchToml(text, 'launch.toml', ref(api));
    const message = (api: string, text: string) => {
      try {
        parse(api, text);
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };

    it('0.7/0.8: a string command through the shell unless direct; working-dir from 0.8', () => {
      const text = '[[processes]]\ntype = "web"\ncommand = "bundle exec puma"\nworking-dir = "/app/web"\n';
      expect(parse('0.8', text).processes[0]).to.include({ direct: false, default: false, workingDir: '/app/web' });
      expect(parse('0.8', text).processes[0].command).to.deep.equal(['bundle exec puma']);
      expect(parse('0.7', text).processes[0]).to.not.have.property('workingDir');
      expect(message('0.8', '[[processes]]\ntype = "web"\ncommand = ["puma"]\n')).to.equal(
        `${prefix}processes[0].command must be a non-empty string (Buildpack API 0.8)`,
      );
    });

    it("0.9+: an array command exec'd directly, default, no direct key; exec-env from 0.12", () => {
      const text =
        '[[processes]]\ntype = "worker.v2"\ncommand = ["bin/worker", "--queue"]\nargs = ["jobs"]\ndefault = true\nexec-env = ["test"]\n';
      expect(parse('0.9', text).processes).to.deep.equal([
        {
          type: 'worker.v2',
          command: ['bin/worker', '--queue'],
          args: ['jobs'],
          direct: true,
          default: true,
          buildpackId: 'example/p',
          api: '0.9',
        },
      ]);
      expect(parse('0.12', text).processes[0].execEnv).to.deep.equal(['test']);
      expect(message('0.9', '[[processes]]\ntype = "web"\ncommand = "puma"\n')).to.equal(
        `${prefix}processes[0].command must be a non-empty array of strings (Buildpack API 0.9)`,
      );
      expect(message('0.10', '[[processes]]\ntype = "web"\ncommand = ["puma"]\ndirect = true\n')).to.equal(
        `${prefix}processes[0].direct is not supported from Buildpack API 0.9 (commands are exec'd directly)`,
      );
    });

    it('rejects bad types, two defaults, duplicate labels and bad TOML with one line', () => {
      expect(message('0.9', '[[processes]]\ntype = "web server"\ncommand = ["x"]\n')).to.equal(
        `${prefix}processes[0].type must be letters, digits, ".", "_" or "-"`,
      );
      const two =
        '[[processes]]\ntype = "a"\ncommand = ["x"]\ndefault = true\n[[processes]]\ntype = "b"\ncommand = ["y"]\ndefault = true\n';
      expect(message('0.9', two)).to.equal(`${prefix}more than one process has default = true (b)`);
      expect(message('0.9', '[[labels]]\nkey = "k"\nvalue = "1"\n[[labels]]\nkey = "k"\nvalue = "2"\n')).to.equal(
        `${prefix}label k is declared twice`,
      );
      expect(message('0.9', '[[processes]]\ntype = "web"\n\ncommand = [\n')).to.match(
        /^buildpack example\/p@1\.0\.0: launch\.toml: invalid TOML at line \d+: /,
      );
      expect(parse('0.9', '[[slices]]\npaths = ["a/*"]\n[[slices]]\n')).to.deep.equal({
        processes: [],
        labels: [],
        slices: [{ paths: ['a/*'] }, { paths: [] }],
      });
    });
  });
});
