/**
 * Classic and Cloud Native Buildpacks in one chain, through the real
 * slugbuilder CLI: the app is built in place in a temp `--app-dir` (never
 * /app: CI runs tests as root), and what a user sees is the slug's files,
 * its .release and .layers/config/metadata.toml, the exit code and the one
 * ` !     ` line of a failure.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { parse as parseTomlText } from 'smol-toml';
import { x as untar } from 'tar';
import { parse as parseYaml } from 'yaml';
import { type CliResult, type FileSpec, makeApp, makeBuildpack, removeTempDirs, runBuilder, tarOf, tempDir } from './helpers/cli.js';
import { type CnbSpec, detectWithPlan, writeCnb, writeComposite } from './helpers/cnb.js';

interface Built {
  res: CliResult;
  /** The slug unpacked. */
  slug: string;
  appDir: string;
  cacheDir: string;
  /** The -o file. */
  out: string;
}

async function cnb(spec: CnbSpec): Promise<string> {
  return writeCnb(path.join(await tempDir('slugkit-cnb-'), spec.id.replace(/\//g, '_')), spec);
}

async function build(files: Record<string, FileSpec>, args: string[], opts: { cacheDir?: string; appDir?: string } = {}): Promise<Built> {
  const app = await makeApp(files);
  const cacheDir = opts.cacheDir ?? path.join(await tempDir(), 'cache');
  const appDir = opts.appDir ?? path.join(await tempDir(), 'app');
  const out = path.join(await tempDir(), 'slug.tgz');
  const res = await runBuilder(['--app-dir', appDir, '--cache-dir', cacheDir, '-o', out, ...args], { input: await tarOf(app) });
  const slug = await tempDir('slugkit-slug-');
  if (res.exitCode === 0) await untar({ file: out, cwd: slug });
  return { res, slug, appDir, cacheDir, out };
}

function oneErrorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith(' !     '));
  expect(lines, stderr).to.have.length(1);
  return lines[0];
}

async function metadata(slug: string): Promise<Record<string, unknown>> {
  return parseTomlText(await readFile(path.join(slug, '.layers/config/metadata.toml'), 'utf8')) as Record<string, unknown>;
}

async function release(slug: string): Promise<{ default_process_types?: Record<string, string> }> {
  return parseYaml(await readFile(path.join(slug, '.release'), 'utf8')) as { default_process_types?: Record<string, string> };
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

describe('classic and CNB buildpacks in one chain (slugbuilder CLI)', function () {
  this.timeout(120_000);
  after(removeTempDirs);

  describe('mixed chains', () => {
    it('classic then CNB: the CNB sees the classic buildpack’s export', async () => {
      const classic = await makeBuildpack(
        { detect: 'echo First', compile: 'echo "export FROM_CLASSIC=hello-from-classic" > "$(dirname "$0")/../export"' },
        'first',
      );
      const bp = await cnb({ id: 'test/second', api: '0.10', build: 'echo "$FROM_CLASSIC" > seen-by-cnb' });
      const b = await build({ 'index.txt': 'x' }, ['--buildpack', classic, '--buildpack', bp]);
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect(await readFile(path.join(b.slug, 'seen-by-cnb'), 'utf8')).to.equal('hello-from-classic\n');
    });

    it('CNB then classic: the classic buildpack gets PATH from the CNB’s build layer', async () => {
      const bp = await cnb({
        id: 'test/tools',
        api: '0.9',
        build: [
          'mkdir -p "$1/tools/bin"',
          'printf "#!/bin/sh\\necho tool-ran\\n" > "$1/tools/bin/mytool"; chmod +x "$1/tools/bin/mytool"',
          'printf "[types]\\nbuild = true\\n" > "$1/tools.toml"',
        ].join('\n'),
      });
      const classic = await makeBuildpack({ compile: 'mytool > "$1/tool-output"' }, 'user');
      const b = await build({ 'index.txt': 'x' }, ['--buildpack', bp, '--buildpack', classic]);
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect(await readFile(path.join(b.slug, 'tool-output'), 'utf8')).to.equal('tool-ran\n');
      // A build-only layer is not in the slug.
      expect(await exists(path.join(b.slug, '.layers/test_tools/tools'))).to.equal(false);
    });
  });

  describe('one family per Buildpack API range, through a whole build', () => {
    it('0.8: a string command, direct, working-dir; rendered as shell lines in .release', async () => {
      const bp = await cnb({
        id: 'test/old',
        api: '0.8',
        build: [
          'mkdir -p "$1/web"; printf "[types]\\nlaunch = true\\n" > "$1/web.toml"',
          `cat > "$1/launch.toml" <<'TOML'`,
          '[[processes]]',
          'type = "web"',
          'command = "echo hi && sleep 1"',
          '[[processes]]',
          'type = "worker"',
          'command = "/bin/echo"',
          'args = ["a b"]',
          'direct = true',
          'working-dir = "/srv"',
          'TOML',
        ].join('\n'),
      });
      const b = await build({ 'index.txt': 'x' }, ['--buildpack', bp]);
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect((await release(b.slug)).default_process_types).to.deep.equal({ web: 'echo hi && sleep 1', worker: "/bin/echo 'a b'" });
      const md = await metadata(b.slug);
      expect(md.buildpacks).to.deep.equal([{ id: 'test/old', version: '0.0.1', api: '0.8' }]);
      expect(md.processes).to.deep.equal([
        {
          type: 'web',
          command: ['echo hi && sleep 1'],
          args: [],
          direct: false,
          default: false,
          'buildpack-id': 'test/old',
          'buildpack-api': '0.8',
        },
        {
          type: 'worker',
          command: ['/bin/echo'],
          args: ['a b'],
          direct: true,
          default: false,
          'working-dir': '/srv',
          'buildpack-id': 'test/old',
          'buildpack-api': '0.8',
        },
      ]);
      // The launch layer is in the slug, at the path the build used.
      expect(await readdir(path.join(b.slug, '.layers/test_old'))).to.deep.equal(['launch.toml', 'web', 'web.toml']);
    });

    it("0.9+: array commands exec'd directly; a later classic buildpack wins a type, the Procfile is over all", async () => {
      const bp = await cnb({
        id: 'test/modern',
        api: '0.9',
        build: [
          `cat > "$1/launch.toml" <<'TOML'`,
          '[[processes]]',
          'type = "web"',
          'command = ["node", "server.js"]',
          'args = ["--port", "5000"]',
          'default = true',
          '[[processes]]',
          'type = "worker"',
          'command = ["run-worker"]',
          '[[labels]]',
          'key = "org.example.team"',
          'value = "web"',
          'TOML',
        ].join('\n'),
      });
      const classic = await makeBuildpack(
        { compile: 'true', release: 'printf -- "---\\ndefault_process_types:\\n  worker: classic-worker\\n"' },
        'late',
      );
      const summary = path.join(await tempDir(), 'summary.json');
      const b = await build({ Procfile: 'clock: ./clock\n' }, ['--buildpack', bp, '--buildpack', classic, '--summary', summary]);
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect((await release(b.slug)).default_process_types).to.deep.equal({ web: 'node server.js --port 5000', worker: 'classic-worker' });
      const md = await metadata(b.slug);
      expect(md.processes).to.deep.equal([
        {
          type: 'web',
          command: ['node', 'server.js'],
          args: ['--port', '5000'],
          direct: true,
          default: true,
          'buildpack-id': 'test/modern',
          'buildpack-api': '0.9',
        },
      ]);
      expect(md.labels).to.deep.equal([{ key: 'org.example.team', value: 'web' }]);
      const json = JSON.parse(await readFile(summary, 'utf8'));
      expect(json.process_types).to.deep.equal({ web: 'node server.js --port 5000', worker: 'classic-worker', clock: './clock' });
      expect(json.buildpacks.map((x: { kind: string; id?: string; api?: string }) => [x.kind, x.id, x.api])).to.deep.equal([
        ['cnb', 'test/modern', '0.9'],
        ['classic', undefined, undefined],
      ]);
    });

    it('0.10+: detect and build get CNB_TARGET_* and both positional arguments and CNB_* paths', async () => {
      const bp = await cnb({
        id: 'test/targets',
        api: '0.10',
        extraToml: '[[targets]]\nos = "linux"',
        detect: '[ -n "$CNB_TARGET_OS" ] && [ "$1" = "$CNB_PLATFORM_DIR" ] && [ "$2" = "$CNB_BUILD_PLAN_PATH" ]',
        build:
          '[ "$1" = "$CNB_LAYERS_DIR" ] && [ "$2" = "$CNB_PLATFORM_DIR" ] && [ "$3" = "$CNB_BP_PLAN_PATH" ]; echo "$CNB_TARGET_OS/$CNB_TARGET_ARCH ${CNB_EXEC_ENV:-none} $(cat "$2/env/GREETING")" > target',
      });
      const b = await build({ 'index.txt': 'x' }, ['--buildpack', bp, '-e', 'GREETING=hello-there']);
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect(await readFile(path.join(b.slug, 'target'), 'utf8')).to.match(/^linux\/(amd64|arm64|[a-z0-9]+) none hello-there\n$/);
    });

    it('0.12: CNB_EXEC_ENV is production and exec-env is kept with the process', async () => {
      const bp = await cnb({
        id: 'test/execenv',
        api: '0.12',
        build: [
          'echo "$CNB_EXEC_ENV" > exec-env',
          `cat > "$1/launch.toml" <<'TOML'`,
          '[[processes]]',
          'type = "web"',
          'command = ["serve"]',
          'exec-env = ["production"]',
          'TOML',
        ].join('\n'),
      });
      const b = await build({ 'index.txt': 'x' }, ['--buildpack', bp]);
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect(await readFile(path.join(b.slug, 'exec-env'), 'utf8')).to.equal('production\n');
      expect((await metadata(b.slug)).processes).to.deep.equal([
        {
          type: 'web',
          command: ['serve'],
          args: [],
          direct: true,
          default: false,
          'exec-env': ['production'],
          'buildpack-id': 'test/execenv',
          'buildpack-api': '0.12',
        },
      ]);
    });
  });

  describe('builder.toml (--builder)', () => {
    it("the first group fails detect, the second builds; [stack] id and [[build.env]] apply; a composite's optional member drops out", async () => {
      const root = await tempDir('slugkit-builder-');
      await writeCnb(path.join(root, 'ruby'), { id: 'test/ruby', api: '0.10', detect: '[ -f Gemfile ] || exit 100' });
      await writeCnb(path.join(root, 'base'), {
        id: 'test/base',
        api: '0.10',
        detect: detectWithPlan('[[provides]]\nname = "base"\n[[requires]]\nname = "base"\n[requires.metadata]\nflavour = "plain"'),
        build: 'echo "stack=$STACK from-builder=$FROM_BUILDER" > base-ran; cp "$3" plan-seen',
      });
      await writeCnb(path.join(root, 'extra'), { id: 'test/extra', api: '0.10', detect: 'exit 100' });
      await writeComposite(path.join(root, 'meta'), {
        id: 'test/meta',
        api: '0.10',
        order: [[{ id: 'test/base' }, { id: 'test/extra', optional: true }]],
      });
      const file = path.join(root, 'builder.toml');
      await writeFile(
        file,
        [
          '[[buildpacks]]\nuri = "ruby"',
          '[[buildpacks]]\nuri = "base"',
          '[[buildpacks]]\nuri = "extra"',
          '[[buildpacks]]\nuri = "meta"',
          '[[order]]\n[[order.group]]\nid = "test/ruby"',
          '[[order]]\n[[order.group]]\nid = "test/meta"',
          '[stack]\nid = "test-stack"',
          '[[build.env]]\nname = "FROM_BUILDER"\nvalue = "yes"',
        ].join('\n\n'),
      );
      const b = await build({ 'index.txt': 'x' }, ['--builder', file]);
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect(b.res.stderr).to.match(/^-----> Detected buildpack test\/base@0\.0\.1$/m);
      expect(b.res.stderr).not.to.match(/test\/extra/);
      // The platform env (files) and the environment (not clear-env) both carry the builder's env.
      expect(await readFile(path.join(b.slug, 'base-ran'), 'utf8')).to.equal('stack=test-stack from-builder=yes\n');
      expect(parseTomlText(await readFile(path.join(b.slug, 'plan-seen'), 'utf8'))).to.deep.equal({
        entries: [{ name: 'base', metadata: { flavour: 'plain' } }],
      });
      expect(((await metadata(b.slug)).buildpacks as unknown[]).length).to.equal(1);
    });

    it('no group passes: one line listing the groups tried, exit 1, no slug', async () => {
      const root = await tempDir('slugkit-builder-');
      await writeCnb(path.join(root, 'a'), { id: 'test/a', api: '0.9', detect: 'exit 100' });
      await writeCnb(path.join(root, 'b'), { id: 'test/b', api: '0.9', detect: detectWithPlan('[[requires]]\nname = "node"') });
      const file = path.join(root, 'builder.toml');
      await writeFile(
        file,
        '[[buildpacks]]\nuri = "a"\n[[buildpacks]]\nuri = "b"\n[[order]]\n[[order.group]]\nid = "test/a"\n[[order]]\n[[order.group]]\nid = "test/b"\n',
      );
      const b = await build({ 'index.txt': 'x' }, ['--builder', file]);
      expect(b.res.exitCode).to.equal(1);
      expect(oneErrorLine(b.res.stderr)).to.equal(
        " !     no buildpack group passed detection (group 1: test/a@0.0.1 failed detect; group 2: plan unresolved: nothing at or before test/b@0.0.1 provides 'node'): check the app has what one of these buildpacks looks for, or choose buildpacks with --buildpack",
      );
      expect(await readdir(b.slug)).to.deep.equal([]);
    });

    it('its [[run.images]] image is the default --run-image for --image', async () => {
      const root = await tempDir('slugkit-builder-');
      const file = path.join(root, 'builder.toml');
      const runImage = `oci:${path.join(root, 'no-such-layout')}`;
      await writeFile(
        file,
        `[[order]]\n[[order.group]]\nuri = "${path.join(await tempDir(), 'unused')}"\n[[run.images]]\nimage = "${runImage}"\n`,
      );
      const r = await runBuilder(['--builder', file, '--image', `oci:${path.join(root, 'out')}`, '--app-dir', path.join(root, 'app')], {
        input: await tarOf(await makeApp({ a: 'b' })),
      });
      expect(r.exitCode).not.to.equal(0);
      expect(r.stderr).not.to.match(/needs --run-image/);
      expect(oneErrorLine(r.stderr)).to.include(path.join(root, 'no-such-layout'));
    });
  });

  describe('project.toml', () => {
    it("[build] exclude applies before any buildpack; [[build.buildpacks]] is the app's list and wins over .buildpacks; [[build.env]] is a config var, -e wins", async () => {
      const bp = await cnb({
        id: 'test/lister',
        api: '0.9',
        build: 'ls -A > listing; echo "$(cat "$2/env/COLOUR") $(cat "$2/env/SHAPE")" > env-seen',
      });
      const other = await makeBuildpack({ compile: 'touch "$1/wrong-buildpack"' }, 'other');
      const b = await build(
        {
          'project.toml': `[[build.buildpacks]]\nuri = "${bp}"\n\n[build]\nexclude = ["secret/", "*.log"]\n\n[[build.env]]\nname = "COLOUR"\nvalue = "blue"\n[[build.env]]\nname = "SHAPE"\nvalue = "round"\n`,
          '.buildpacks': `${other}\n`,
          'keep.txt': 'k',
          'debug.log': 'l',
          'secret/key': 's',
        },
        ['-e', 'SHAPE=square'],
      );
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect(b.res.stderr).to.match(/project\.toml lists buildpacks: using them, not the ones in \.buildpacks/);
      expect((await readFile(path.join(b.slug, 'listing'), 'utf8')).split('\n'))
        .to.include.members(['keep.txt', 'project.toml'])
        .and.not.include.members(['debug.log', 'secret']);
      expect(await exists(path.join(b.slug, 'wrong-buildpack'))).to.equal(false);
      expect(await readFile(path.join(b.slug, 'env-seen'), 'utf8')).to.equal('blue square\n');
    });

    it('[build] include keeps only the matching paths', async () => {
      const bp = await cnb({
        id: 'test/lister',
        api: '0.9',
        build: 'find . -path ./.layers -prune -o -type f -print | sort > ../listing-outside; mv ../listing-outside listing',
      });
      const b = await build(
        {
          'project.toml': `[[build.buildpacks]]\nuri = "${bp}"\n[build]\ninclude = ["src/", "project.toml"]\n`,
          'src/a.js': 'a',
          'other/b.js': 'b',
          'top.txt': 't',
        },
        [],
      );
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect(await readFile(path.join(b.slug, 'listing'), 'utf8')).to.equal('./project.toml\n./src/a.js\n');
    });
  });

  describe('plans, composites and the cache', () => {
    it("an [[or]] alternative resolves the plan and bin/build gets the requirer's metadata", async () => {
      const provider = await cnb({
        id: 'test/node',
        api: '0.9',
        detect: detectWithPlan('[[provides]]\nname = "yarn"\n[[or]]\n[[or.provides]]\nname = "node"'),
        build: 'cp "$3" node-plan',
      });
      const app = await cnb({
        id: 'test/app',
        api: '0.9',
        detect: detectWithPlan('[[requires]]\nname = "node"\n[requires.metadata]\nversion = "20"'),
      });
      const b = await build({ 'index.txt': 'x' }, ['--buildpack', provider, '--buildpack', app]);
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect(parseTomlText(await readFile(path.join(b.slug, 'node-plan'), 'utf8'))).to.deep.equal({
        entries: [{ name: 'node', metadata: { version: '20' } }],
      });
    });

    it('a cache layer comes back on the second build; a launch-only layer brings back its metadata alone', async () => {
      const bp = await cnb({
        id: 'test/cache',
        api: '0.10',
        build: [
          'echo "deps-before=$(cat "$1/deps/stamp" 2>/dev/null || echo none) web-meta=$(grep -c built "$1/web.toml" 2>/dev/null || echo 0) web-dir=$([ -d "$1/web" ] && echo yes || echo no)" > seen',
          'mkdir -p "$1/deps" "$1/web"; echo cached > "$1/deps/stamp"; echo page > "$1/web/index"',
          'printf "[types]\\ncache = true\\n" > "$1/deps.toml"',
          'printf "[types]\\nlaunch = true\\n[metadata]\\nbuilt = \\"yes\\"\\n" > "$1/web.toml"',
        ].join('\n'),
      });
      const cacheDir = path.join(await tempDir(), 'cache');
      const first = await build({ 'index.txt': 'x' }, ['--buildpack', bp], { cacheDir });
      expect(first.res.exitCode, first.res.stderr).to.equal(0);
      expect(await readFile(path.join(first.slug, 'seen'), 'utf8')).to.equal('deps-before=none web-meta=0 web-dir=no\n');
      const second = await build({ 'index.txt': 'x' }, ['--buildpack', bp], { cacheDir });
      expect(second.res.exitCode, second.res.stderr).to.equal(0);
      expect(await readFile(path.join(second.slug, 'seen'), 'utf8')).to.equal('deps-before=cached web-meta=1 web-dir=no\n');
      // The cache-only layer is in the cache, not the slug.
      expect(await readdir(path.join(second.slug, '.layers/test_cache'))).to.deep.equal(['web', 'web.toml']);
      expect(await readFile(path.join(cacheDir, '.cnb/test_cache/deps/stamp'), 'utf8')).to.equal('cached\n');
    });
  });

  describe('the app dir', () => {
    it('a classic build gives the same slug bytes whatever --app-dir is, and leaves the dir as it was found', async () => {
      const bp = await makeBuildpack({ compile: 'echo built > "$1/out"' }, 'plain');
      const app = await tarOf(await makeApp({ 'a.txt': 'a' }));
      const slugs: string[] = [];
      const absent = path.join(await tempDir(), 'deep/absent');
      const existing = path.join(await tempDir(), 'existing');
      await mkdir(existing);
      for (const appDir of [absent, existing]) {
        const out = path.join(await tempDir(), 's.tgz');
        const r = await runBuilder(['--app-dir', appDir, '--buildpack', bp, '--cache-dir', path.join(await tempDir(), 'c'), '-o', out], {
          input: app,
          env: { SOURCE_DATE_EPOCH: '0' },
        });
        expect(r.exitCode, r.stderr).to.equal(0);
        slugs.push(out);
      }
      expect((await readFile(slugs[0])).equals(await readFile(slugs[1]))).to.equal(true);
      expect(await exists(absent)).to.equal(false);
      expect(await readdir(existing)).to.deep.equal([]);
      const listing: string[] = [];
      await untar({ file: slugs[0], cwd: await tempDir(), onReadEntry: (e) => listing.push(e.path) });
      expect(listing.sort()).to.deep.equal(['./', './.release', './.slugkit-launch', './a.txt', './out']);
    });

    it('a non-empty --app-dir is a usage error before anything runs; a dir another build holds is refused', async () => {
      const busy = await tempDir();
      await writeFile(path.join(busy, 'file'), 'x');
      const r = await runBuilder(['--app-dir', busy, '-o', path.join(await tempDir(), 's.tgz')], {
        input: await tarOf(await makeApp({ a: 'b' })),
      });
      expect(r.exitCode).to.equal(2);
      expect(oneErrorLine(r.stderr)).to.match(/--app-dir .* is not empty: the app is built in place/);
      expect(await readdir(busy)).to.deep.equal(['file']);
      const claimed = await tempDir();
      await writeFile(path.join(claimed, '.slugbuilder-app-dir'), '');
      const r2 = await runBuilder(['--app-dir', claimed, '-o', path.join(await tempDir(), 's.tgz')], {
        input: await tarOf(await makeApp({ a: 'b' })),
      });
      expect(r2.exitCode).to.equal(2);
      expect(oneErrorLine(r2.stderr)).to.match(/is in use by another build/);
    });

    it('without --app-dir and with a CNB in the group, a temp dir is used with a warning', async () => {
      const bp = await cnb({ id: 'test/quiet', api: '0.9' });
      const out = path.join(await tempDir(), 's.tgz');
      // No /app on a test host is ever made or used: this build takes the temp-dir path when /app is absent.
      if (await exists('/app')) return;
      const r = await runBuilder(['--buildpack', bp, '--cache-dir', path.join(await tempDir(), 'c'), '-o', out], {
        input: await tarOf(await makeApp({ a: 'b' })),
      });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.match(/absolute paths Cloud Native Buildpacks write will not hold at run time; pass --app-dir/);
      expect(await exists('/app')).to.equal(false);
    });
  });

  describe('errors: one line naming the buildpack, exit 1, no slug', () => {
    const cases: Array<[string, () => Promise<string[]>, RegExp]> = [
      [
        'a detect error gives its exit code',
        async () => [await cnb({ id: 'test/broken', api: '0.9', detect: 'exit 3' })],
        /^ ! {5}buildpack test\/broken@0\.0\.1: bin\/detect failed \(exit 3\)$/,
      ],
      [
        'a failed build gives its exit code',
        async () => [await cnb({ id: 'test/fails', api: '0.9', build: 'exit 7' })],
        /^ ! {5}buildpack test\/fails@0\.0\.1: bin\/build failed \(exit 7\)$/,
      ],
      [
        'bad TOML in launch.toml names the file and line',
        async () => [await cnb({ id: 'test/badtoml', api: '0.9', build: 'printf "[[processes]]\\ntype = \\n" > "$1/launch.toml"' })],
        /^ ! {5}buildpack test\/badtoml@0\.0\.1: .*\.layers\/test_badtoml\/launch\.toml.*line 2/,
      ],
      [
        'unmet plan entries are named',
        async () => [
          await cnb({
            id: 'test/prov',
            api: '0.9',
            detect: detectWithPlan('[[provides]]\nname = "thing"\n[[requires]]\nname = "thing"'),
            build: 'printf "[[unmet]]\\nname = \\"thing\\"\\n" > "$1/build.toml"',
          }),
        ],
        /^ ! {5}buildpack test\/prov@0\.0\.1: unmet build plan entries: thing/,
      ],
      [
        'an unsupported API lists the supported ones',
        async () => [await cnb({ id: 'test/ancient', api: '0.6' })],
        /api "0\.6" is not a supported Buildpack API: slugkit supports 0\.7, 0\.8, 0\.9, 0\.10, 0\.11, 0\.12$/,
      ],
      [
        'a stack mismatch names the buildpack and the stack',
        async () => [await cnb({ id: 'test/old-stack', api: '0.8', extraToml: '[[stacks]]\nid = "heroku-18"' })],
        /buildpack test\/old-stack@0\.0\.1 supports stacks heroku-18; this build is heroku-24$/,
      ],
      [
        'a target mismatch names the buildpack and the targets',
        async () => [await cnb({ id: 'test/windows', api: '0.10', extraToml: '[[targets]]\nos = "windows"' })],
        /buildpack test\/windows@0\.0\.1 supports targets windows\/\*; this build is linux\//,
      ],
      [
        'slices are refused',
        async () => [await cnb({ id: 'test/slices', api: '0.9', build: 'printf "[[slices]]\\npaths = [\\"a\\"]\\n" > "$1/launch.toml"' })],
        /^ ! {5}buildpack test\/slices@0\.0\.1: launch\.toml \[\[slices\]\] are not supported/,
      ],
    ];
    for (const [name, make, line] of cases) {
      it(name, async () => {
        const bps = await make();
        const b = await build({ 'index.txt': 'x' }, [...bps.flatMap((d) => ['--buildpack', d]), '--stack', 'heroku-24']);
        expect(b.res.exitCode, b.res.stderr).to.equal(1);
        expect(oneErrorLine(b.res.stderr)).to.match(line);
        expect(b.res.stderr.trimEnd().split('\n').at(-1)).to.match(/^ ! {5}/);
        expect(await exists(b.appDir)).to.equal(false);
        expect(await exists(b.out)).to.equal(false);
      });
    }
  });
});
