/**
 * The world's buildpacks, unmodified, through the real CLI: a classic
 * buildpack laid out exactly like Heroku's own (registry buildpack.toml next
 * to bin/detect, bin/compile, bin/release and lib/) from a dir, a git URL, a
 * tarball URL and a `heroku/NAME` registry name against a mirror on
 * 127.0.0.1; the one-line refusals of image and CNB-registry buildpacks;
 * project.toml laid out like buildpacks/samples' bash-script app; the
 * lifecycle's rules for pre-0.6 layer metadata and a broken bin/detect;
 * CNB_TARGET_* from the run image.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { extract } from 'tar';
import { makeApp, removeTempDirs, runBuilder, slugEntries, tarOf, tempDir, writeTree } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';
import { GitFixture, gitHttpBackend } from './helpers/git-server.js';
import { serveFiles, startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { writeRunImage } from './helpers/image-fixtures.js';
import { requireTools } from './helpers/tools.js';

/** heroku-buildpack-nodejs's buildpack.toml, as Heroku's buildpack registry reads it. */
const HEROKU_BUILDPACK_TOML = `[buildpack]
name = "Node.js"

[publish.Ignore]
files = [
  "etc/",
  "spec/",
  "test/",
  ".gitignore",
  ".github/",
  "hatchet.json",
  "Gemfile",
  "Gemfile.lock"
]

[publish.Vendor]
"lib/vendor/resolve-version-linux" = "https://example.invalid/resolve-version-linux"
`;

const HEROKU_LAYOUT: Record<string, string | { content: string; mode: number }> = {
  'buildpack.toml': HEROKU_BUILDPACK_TOML,
  'bin/detect': {
    content: '#!/usr/bin/env bash\n[ -f "$1/package.json" ] && echo "Node.js" && exit 0\necho "no package.json" >&2\nexit 1\n',
    mode: 0o755,
  },
  'bin/compile': {
    content:
      '#!/usr/bin/env bash\nset -euo pipefail\nBP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)\nsource "$BP_DIR/lib/output.sh"\nheader "Installing node"\necho "built by heroku-layout" > "$1/built-by.txt"\n',
    mode: 0o755,
  },
  'bin/release': { content: "#!/usr/bin/env bash\ncat <<'YAML'\n---\ndefault_process_types:\n  web: npm start\nYAML\n", mode: 0o755 },
  'lib/output.sh': 'header() { echo "-----> $*"; }\n',
};

async function herokuLayoutDir(name = 'heroku-buildpack-nodejs'): Promise<string> {
  return writeTree(path.join(await tempDir('slugkit-heroku-bp-'), name), HEROKU_LAYOUT);
}

/** Builds a Node-looking app with `buildpack`; the slug's files and the CLI's result. */
async function build(buildpack: string, env: NodeJS.ProcessEnv = {}, cwd?: string) {
  const root = await tempDir('slugkit-world-');
  const slug = path.join(root, 'slug.tgz');
  const r = await runBuilder(
    ['--source', await makeApp({ 'package.json': '{}\n' }), '--buildpack', buildpack, '--cache-dir', path.join(root, 'cache'), '-o', slug],
    { env: { ...process.env, ...env }, cwd },
  );
  let builtBy: string | undefined;
  if (r.exitCode === 0) {
    const out = path.join(root, 'out');
    await mkdir(out);
    await extract({ file: slug, cwd: out });
    builtBy = await readFile(path.join(out, 'built-by.txt'), 'utf8');
  }
  return { ...r, builtBy };
}

function oneErrorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith(' !     '));
  expect(lines, stderr).to.have.length(1);
  return lines[0];
}

describe("the world's buildpacks, unmodified", function () {
  this.timeout(90_000);
  after(removeTempDirs);

  describe("Heroku's classic buildpack layout (registry buildpack.toml, bin/compile)", () => {
    let server: TestHttpServer | undefined;
    afterEach(async () => {
      await server?.close();
      server = undefined;
    });

    it('builds from a directory as a classic buildpack', async () => {
      const r = await build(await herokuLayoutDir());
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.builtBy).to.equal('built by heroku-layout\n');
      expect(r.stderr).to.include('Node.js app detected');
      expect(r.stderr).to.include('-----> Installing node');
    });

    it('builds from a git URL (smart HTTP on 127.0.0.1)', async function () {
      requireTools(this, 'git');
      const srv = await tempDir('slugkit-heroku-git-');
      const repo = await GitFixture.create(srv, 'heroku-buildpack-nodejs');
      await repo.commit(HEROKU_LAYOUT, 'v250');
      await repo.tag('v250');
      await repo.push();
      server = await startHttpServer(gitHttpBackend(srv));
      const r = await build(`${server.origin}/heroku-buildpack-nodejs.git#v250`);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.builtBy).to.equal('built by heroku-layout\n');
    });

    it('builds from a tarball URL', async () => {
      server = await startHttpServer(serveFiles({ '/nodejs.tgz': await tarOf(await herokuLayoutDir(), true) }));
      const r = await build(`${server.origin}/nodejs.tgz`);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.builtBy).to.equal('built by heroku-layout\n');
    });

    it('a Cloud Native Buildpack fetched from a tarball URL builds as a CNB', async () => {
      const dir = await writeCnb(path.join(await tempDir('slugkit-cnb-url-'), 'cnb'), {
        id: 'example/fetched',
        api: '0.10',
        build: 'echo "built by heroku-layout" > built-by.txt\n',
      });
      server = await startHttpServer(serveFiles({ '/cnb.tgz': await tarOf(dir, true) }));
      const r = await build(`${server.origin}/cnb.tgz`);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.builtBy).to.equal('built by heroku-layout\n');
      expect(r.stderr).to.include('example/fetched');
    });

    it('a dir with neither bin/compile nor a CNB buildpack.toml is one line naming the files found', async () => {
      const dir = await writeTree(path.join(await tempDir(), 'broken'), {
        'buildpack.toml': HEROKU_BUILDPACK_TOML,
        'bin/detect': { content: '#!/bin/sh\nexit 0\n', mode: 0o755 },
      });
      const r = await build(dir);
      expect(r.exitCode).to.not.equal(0);
      expect(oneErrorLine(r.stderr)).to.equal(
        ` !     buildpack ${dir} is neither a classic buildpack nor a Cloud Native Buildpack: found buildpack.toml (no api), bin/detect; ` +
          'a classic buildpack needs bin/compile, a CNB a buildpack.toml with api and [buildpack] id, and bin/build or [[order]]',
      );
    });
  });

  describe("Heroku's buildpack registry names (heroku/NAME)", () => {
    let server: TestHttpServer | undefined;
    afterEach(async () => {
      await server?.close();
      server = undefined;
    });

    it('heroku/nodejs is fetched from SLUGKIT_BUILDPACK_REGISTRY/buildpacks/heroku/nodejs.tgz', async () => {
      server = await startHttpServer(serveFiles({ '/buildpacks/heroku/nodejs.tgz': await tarOf(await herokuLayoutDir(), true) }));
      const r = await build('heroku/nodejs', { SLUGKIT_BUILDPACK_REGISTRY: server.origin });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.builtBy).to.equal('built by heroku-layout\n');
      expect(server.count('/buildpacks/heroku/nodejs.tgz')).to.equal(1);
      expect(r.stderr).to.include(`${server.origin}/buildpacks/heroku/nodejs.tgz`);
    });

    it('a name the registry does not have is one line naming it as written and the URL tried', async () => {
      server = await startHttpServer(serveFiles({}));
      const r = await build('vendr/mypack', { SLUGKIT_BUILDPACK_REGISTRY: `${server.origin}/buildpacks/` });
      expect(r.exitCode).to.not.equal(0);
      expect(oneErrorLine(r.stderr)).to.match(
        new RegExp(`^ ! {5}Buildpack vendr/mypack \\(${server.origin}/buildpacks/vendr/mypack\\.tgz\\): download failed with HTTP 404`),
      );
    });

    it('a local directory of that name wins over the registry', async () => {
      server = await startHttpServer(serveFiles({}));
      const cwd = await tempDir('slugkit-cwd-');
      await writeTree(path.join(cwd, 'heroku', 'nodejs'), HEROKU_LAYOUT);
      const r = await build('heroku/nodejs', { SLUGKIT_BUILDPACK_REGISTRY: server.origin }, cwd);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.builtBy).to.equal('built by heroku-layout\n');
      expect(server.requests).to.have.length(0);
    });

    for (const spec of ['urn:cnb:registry:heroku/nodejs@1.0.0', 'docker://docker.io/heroku/buildpack-nodejs:latest']) {
      it(`${spec.split(':')[0]}: buildpacks are refused in one line, without touching the network`, async () => {
        const r = await build(spec);
        expect(r.exitCode).to.not.equal(0);
        expect(oneErrorLine(r.stderr)).to.equal(
          ` !     Buildpack ${spec} names an image or CNB registry buildpack, which slugkit cannot run: use a directory, a tarball URL, a git URL or a Heroku registry name (heroku/NAME)`,
        );
      });
    }
  });

  describe("project.toml as pack reads it: buildpacks/samples' bash-script app", () => {
    const BUILDPACK = {
      'bash-script-buildpack/buildpack.toml':
        'api = "0.7"\n\n[buildpack]\nid = "samples/bash-script"\nversion = "0.0.1"\nname = "Bash Script Buildpack"\n\n[[stacks]]\nid = "*"\n',
      'bash-script-buildpack/bin/detect': { content: '#!/usr/bin/env bash\n[ -f app.sh ] || exit 100\n', mode: 0o755 },
      'bash-script-buildpack/bin/build': {
        content:
          '#!/usr/bin/env bash\nset -euo pipefail\necho "built by samples/bash-script" > built-by.txt\ncat > "$1/launch.toml" <<\'TOML\'\n[[processes]]\ntype = "web"\ncommand = "./app.sh"\nTOML\n',
        mode: 0o755,
      },
      'app.sh': { content: '#!/usr/bin/env bash\necho hello\n', mode: 0o755 },
      'README.md': '# Bash Script\n',
    };
    const SCHEMAS: Record<string, string> = {
      '0.1 ([[build.buildpacks]])':
        '[project]\nid = "io.buildpacks.bash-script"\nname = "Bash Script"\nversion = "1.0.0"\n\n[build]\nexclude = ["README.md", "bash-script-buildpack"]\n\n[[build.buildpacks]]\nuri = "bash-script-buildpack/"\n',
      '0.2 ([[io.buildpacks.group]])':
        '[_]\nschema-version = "0.2"\nid = "io.buildpacks.bash-script"\nname = "Bash Script"\n\n[io.buildpacks]\nexclude = ["README.md", "bash-script-buildpack"]\n\n[[io.buildpacks.group]]\nuri = "bash-script-buildpack/"\n',
    };
    for (const [schema, projectToml] of Object.entries(SCHEMAS)) {
      it(`schema ${schema}: a relative uri finds the buildpack the app excludes; the excluded dir stays out of the slug`, async () => {
        const root = await tempDir('slugkit-project-');
        const app = await makeApp({ ...BUILDPACK, 'project.toml': projectToml });
        const slug = path.join(root, 'slug.tgz');
        const r = await runBuilder(['--source', app, '--cache-dir', path.join(root, 'cache'), '-o', slug]);
        expect(r.exitCode, r.stderr).to.equal(0);
        expect(r.stderr).to.include('Detected buildpack samples/bash-script@0.0.1');
        const entries = await slugEntries(slug);
        const paths = entries.map((e) => e.path.replace(/^\.\//, '').replace(/\/$/, ''));
        expect(entries.find((e) => e.path.endsWith('built-by.txt'))?.body).to.equal('built by samples/bash-script\n');
        expect(paths).to.include('app.sh');
        expect(paths.filter((p) => p.startsWith('bash-script-buildpack') || p === 'README.md')).to.deep.equal([]);
      });
    }
  });

  describe("the lifecycle's rules for a CNB's files and detect", () => {
    /** Builds `app` with the given builder args; the slug path is returned for "nothing written" checks. */
    async function cnbBuild(args: string[], app: Record<string, string> = { 'index.txt': 'x\n' }) {
      const root = await tempDir('slugkit-cnbrules-');
      const slug = path.join(root, 'slug.tgz');
      const r = await runBuilder([
        '--source',
        await makeApp(app),
        '--cache-dir',
        path.join(root, 'cache'),
        '--app-dir',
        path.join(root, 'app'),
        '-o',
        slug,
        ...args,
      ]);
      return { ...r, slug };
    }

    it('pre-0.6 layer metadata (launch = true at the top level) fails in one line naming the file and the fix', async () => {
      const bp = await writeCnb(path.join(await tempDir(), 'old-layers'), {
        id: 'test/old-layers',
        api: '0.7',
        build: 'mkdir -p "$1/node/bin"\nprintf \'launch = true\\ncache = true\\n[metadata]\\nv = "1"\\n\' > "$1/node.toml"',
      });
      const r = await cnbBuild(['--buildpack', bp]);
      expect(r.exitCode).to.not.equal(0);
      const line = oneErrorLine(r.stderr);
      expect(line).to.match(/^ ! {5}buildpack test\/old-layers@0\.0\.1: \/.*\/\.layers\/test_old-layers\/node\.toml: /);
      expect(line).to.include(
        'launch = true, cache = true at the top level is the pre-0.6 layer form: move them under [types] (e.g. [types] launch = true)',
      );
    });

    it('a required buildpack whose detect exits 1 shows its output and fails the explicit group', async () => {
      const bp = await writeCnb(path.join(await tempDir(), 'picky'), {
        id: 'test/picky',
        api: '0.10',
        detect: 'echo "picky: no app.sh in $PWD"\nexit 1',
      });
      const r = await cnbBuild(['--buildpack', bp]);
      expect(r.exitCode).to.not.equal(0);
      expect(r.stderr).to.match(/^ {7}======== Output: test\/picky@0\.0\.1 ========\n {7}picky: no app\.sh in \//m);
      expect(oneErrorLine(r.stderr)).to.equal(' !     buildpack test/picky@0.0.1: bin/detect failed (exit 1)');
      expect(r.stderr).to.not.include('optional');
    });

    it("a required member's broken detect fails its group, the next group builds, and the log says required", async () => {
      const root = await tempDir('slugkit-builder-');
      await writeCnb(path.join(root, 'picky'), { id: 'test/picky', api: '0.10', detect: 'echo "picky: no app.sh"\nexit 1' });
      await writeCnb(path.join(root, 'plain'), { id: 'test/plain', api: '0.10', build: 'echo plain > built-by.txt' });
      const file = path.join(root, 'builder.toml');
      await writeFile(
        file,
        '[[buildpacks]]\nuri = "picky"\n[[buildpacks]]\nuri = "plain"\n' +
          '[[order]]\n[[order.group]]\nid = "test/picky"\n[[order]]\n[[order.group]]\nid = "test/plain"\n',
      );
      const r = await cnbBuild(['--builder', file]);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.match(/^ {7}======== Output: test\/picky@0\.0\.1 ========\n {7}picky: no app\.sh$/m);
      expect(r.stderr).to.include(
        ' !     buildpack test/picky@0.0.1: bin/detect failed (exit 1) (a required buildpack: its group failed, a later group was chosen)',
      );
      expect(r.stderr).to.not.include('optional buildpack');
      expect(r.stderr).to.match(/^-----> Detected buildpack test\/plain@0\.0\.1$/m);
    });
  });

  describe('targets describe the run image (--run-image), not the build host', () => {
    const DETECT =
      'echo "target seen: $CNB_TARGET_OS/$CNB_TARGET_ARCH ${CNB_TARGET_DISTRO_NAME:-none} ${CNB_TARGET_DISTRO_VERSION:-none}" >&2\nexit 0';

    async function buildOnRunImage(opts: { labels?: Record<string, string>; osRelease?: string }) {
      const root = await tempDir('slugkit-target-');
      // A run image needs /bin/bash (the image's launcher layer is bash).
      const base = await writeTree(path.join(root, 'rootfs'), { 'bin/bash': '' });
      const layers = [base];
      if (opts.osRelease) layers.push(await writeTree(path.join(root, 'os'), { 'etc/os-release': opts.osRelease }));
      await writeRunImage(path.join(root, 'run'), 'latest', { layers, version: '1', architecture: 'arm64', labels: opts.labels });
      const bp = await writeCnb(path.join(root, 'bp'), { id: 'test/targets', api: '0.10', detect: DETECT });
      return runBuilder([
        '--source',
        await makeApp({ 'index.txt': 'x\n' }),
        '--buildpack',
        bp,
        '--cache-dir',
        path.join(root, 'cache'),
        '--app-dir',
        path.join(root, 'app'),
        '--run-image',
        `oci:${path.join(root, 'run')}:latest`,
        '--image',
        `oci:${path.join(root, 'out')}:app`,
      ]);
    }

    it("from the run image's config and io.buildpacks.base.distro.* labels", async () => {
      const r = await buildOnRunImage({
        labels: { 'io.buildpacks.base.distro.name': 'testos', 'io.buildpacks.base.distro.version': '9.9' },
        osRelease: 'ID=otheros\nVERSION_ID="1.0"\n',
      });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.match(/^ {7}target seen: linux\/arm64 testos 9\.9$/m);
    });

    it("from the run image's own os-release when it has no distro labels", async () => {
      const r = await buildOnRunImage({ osRelease: 'NAME="Test OS"\nID=testos\nVERSION_ID="1.2"\n' });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.match(/^ {7}target seen: linux\/arm64 testos 1\.2$/m);
    });
  });
});
