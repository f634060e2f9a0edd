/**
 * The image's launcher layer and default process (issue 22 items 1, 2, 9),
 * through slugbuilder --image:
 *  - a run image without /bin/bash is refused in one line before the build;
 *  - --default-process is checked against the app's types;
 *  - under real Docker, on a run image made from a debootstrap minbase rootfs
 *    (bash, no Node, no slugrunner), pushed to a docker-registry on
 *    127.0.0.1: `docker run IMAGE` starts the default process (CNB exec.d
 *    run by bash), `docker run IMAGE start worker` another type, and
 *    `docker run IMAGE run 'CMD'` a one-off.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { extract } from 'tar';
import { makeApp, removeTempDirs, runBuilder, runRunner, tarOf, tempDir } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';
import { docker, ensureStackImage, requireDocker, STACK_IMAGE } from './helpers/docker.js';
import { writeRunImage } from './helpers/image-fixtures.js';
import { type RunningRegistry, startRegistry } from './helpers/registry.js';
import { requireTools } from './helpers/tools.js';

/** API 0.10: a default web process, a worker, exec.d in a launch layer, and a process naming a missing program. */
const BUILD = String.raw`
layer="$1/greeter"
mkdir -p "$layer/bin" "$layer/exec.d"
printf '#!/usr/bin/env bash\necho "greet $*"\n' > "$layer/bin/greet"
cat > "$layer/exec.d/greeting" <<'SH'
#!/usr/bin/env bash
printf 'GREETING = "from exec.d, %s"\n' "$(id -u)" >&3
SH
chmod +x "$layer/bin/greet" "$layer/exec.d/greeting"
printf '[types]\nlaunch = true\n' > "$1/greeter.toml"
cat > "$1/launch.toml" <<'TOML'
[[processes]]
type = "web"
command = ["bash", "-c", "echo \"web as $DYNO: $GREETING\""]
default = true

[[processes]]
type = "worker"
command = ["greet", "worker"]

[[processes]]
type = "broken"
command = ["nosuchprogram"]
TOML
`;

const ONE_LINE = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith(' !     ') && !l.startsWith(' !     Warning:'));

describe('image launcher layer and default process (slugbuilder --image)', function () {
  this.timeout(300_000);
  after(removeTempDirs);

  let root: string;
  let buildpack: string;
  let source: Buffer;
  before(async () => {
    root = await tempDir('slugkit-image-launcher-');
    buildpack = await writeCnb(path.join(root, 'bp'), { id: 'example/greeter', api: '0.10', build: BUILD });
    source = await tarOf(await makeApp({ 'index.txt': 'app\n' }));
  });

  it('refuses a run image without /bin/bash in one line, before the build', async () => {
    const rootfs = path.join(root, 'no-bash');
    await mkdir(path.join(rootfs, 'etc'), { recursive: true });
    await writeFile(path.join(rootfs, 'etc/os-release'), 'ID=none\n');
    await writeRunImage(path.join(root, 'no-bash-layout'), 'v1', { layers: [rootfs], version: '1' });
    const out = path.join(root, 'no-bash-out');
    const r = await runBuilder(
      [
        '--buildpack',
        buildpack,
        '--run-image',
        `oci:${path.join(root, 'no-bash-layout')}:v1`,
        '--image',
        `oci:${out}:app`,
        '-o',
        path.join(root, 's.tgz'),
      ],
      { input: source },
    );
    expect(r.exitCode).to.equal(1);
    expect(ONE_LINE(r.stderr)).to.deep.equal([
      ` !     run image oci:${path.join(root, 'no-bash-layout')}:v1 has no /bin/bash: the image's launcher is a bash script; use a run image with bash`,
    ]);
    expect(r.stderr).not.to.include('-----> Compiled slug');
    expect(existsSync(out)).to.equal(false);
  });

  it('applies opaque whiteouts when looking for /bin/bash, and keeps the answer by the run image digest', async () => {
    // Layer 1 has bash; layer 2 makes bin/ opaque (hiding bash) but brings its own sh.
    const lower = path.join(root, 'opq-lower');
    const upper = path.join(root, 'opq-upper');
    await mkdir(path.join(lower, 'bin'), { recursive: true });
    await writeFile(path.join(lower, 'bin/bash'), '', { mode: 0o755 });
    await mkdir(path.join(upper, 'bin'), { recursive: true });
    await writeFile(path.join(upper, 'bin/.wh..wh..opq'), '');
    await writeFile(path.join(upper, 'bin/sh'), '', { mode: 0o755 });
    // The same, but the opaque layer brings bash back itself: entries of its own layer stay.
    const again = path.join(root, 'opq-again');
    await mkdir(path.join(again, 'bin'), { recursive: true });
    await writeFile(path.join(again, 'bin/.wh..wh..opq'), '');
    await writeFile(path.join(again, 'bin/bash'), '', { mode: 0o755 });
    const hidden = path.join(root, 'opq-hidden-layout');
    const kept = path.join(root, 'opq-kept-layout');
    await writeRunImage(hidden, 'v1', { layers: [lower, upper], version: '1' });
    const keptImage = await writeRunImage(kept, 'v1', { layers: [lower, again], version: '1' });
    const cacheRoot = path.join(root, 'opq-cache');
    const env = { ...process.env, SLUGBUILDER_CACHE_DIR: cacheRoot };
    const build = (layout: string, out: string) =>
      runBuilder(['--buildpack', buildpack, '--run-image', `oci:${layout}:v1`, '--image', `oci:${path.join(root, out)}:app`], {
        input: source,
        env,
      });

    const refused = await build(hidden, 'opq-hidden-out');
    expect(refused.exitCode).to.equal(1);
    expect(ONE_LINE(refused.stderr)).to.deep.equal([
      ` !     run image oci:${hidden}:v1 has no /bin/bash: the image's launcher is a bash script; use a run image with bash`,
    ]);

    const built = await build(kept, 'opq-kept-out');
    expect(built.exitCode, built.stderr).to.equal(0);
    const keptFile = path.join(cacheRoot, 'layers', 'run-images', `${keptImage.manifestDigest.slice('sha256:'.length)}.json`);
    const list = JSON.parse(await readFile(keptFile, 'utf8')) as { files: string[] };
    expect(list.files).to.include('bin/bash');
    expect(list.files).not.to.include('bin/sh');

    // The next build reads the kept answer, not the layers: one that says "no bash" is believed.
    await writeFile(keptFile, JSON.stringify({ files: ['etc/os-release'], links: [] }));
    const fromCache = await build(kept, 'opq-kept-out-2');
    expect(fromCache.exitCode).to.equal(1);
    expect(ONE_LINE(fromCache.stderr)).to.deep.equal([
      ` !     run image oci:${kept}:v1 has no /bin/bash: the image's launcher is a bash script; use a run image with bash`,
    ]);
    // A kept file that is not a file list is ignored: the layers are read again.
    await writeFile(keptFile, '{"files": 3}');
    const reread = await build(kept, 'opq-kept-out-3');
    expect(reread.exitCode, reread.stderr).to.equal(0);
  });

  it('checks --default-process against the app types, in one line listing them', async () => {
    const rootfs = path.join(root, 'with-bash');
    await mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await writeFile(path.join(rootfs, 'bin/bash'), '', { mode: 0o755 });
    await writeRunImage(path.join(root, 'bash-layout'), 'v1', { layers: [rootfs], version: '1' });
    const out = path.join(root, 'default-out');
    const r = await runBuilder(
      [
        '--buildpack',
        buildpack,
        '--run-image',
        `oci:${path.join(root, 'bash-layout')}:v1`,
        '--image',
        `oci:${out}:app`,
        '--default-process',
        'clock',
      ],
      { input: source },
    );
    expect(r.exitCode).to.equal(1);
    expect(ONE_LINE(r.stderr)).to.deep.equal([' !     --default-process clock: this app has broken, web, worker']);
    expect(existsSync(path.join(out, 'index.json'))).to.equal(false);
  });

  it("the image's launcher layer starts the app from its plan with no Node beside it: exec.d, another type, a one-off, one error line", async () => {
    const rootfs = path.join(root, 'bash-only');
    await mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await writeFile(path.join(rootfs, 'bin/bash'), '', { mode: 0o755 });
    await writeRunImage(path.join(root, 'bash-only-layout'), 'v1', { layers: [rootfs], version: '1' });
    const appDir = path.join(await tempDir(), 'app');
    const layout = path.join(root, 'layer-out');
    const slug = path.join(root, 'layer-slug.tgz');
    const built = await runBuilder(
      [
        '--app-dir',
        appDir,
        '--buildpack',
        buildpack,
        '--run-image',
        `oci:${path.join(root, 'bash-only-layout')}:v1`,
        '--image',
        `oci:${layout}:app`,
        '-o',
        slug,
      ],
      { input: source },
    );
    expect(built.exitCode, built.stderr).to.equal(0);
    // The launcher layer sits right above the run image's one layer.
    const blob = async (digest: string) => readFile(path.join(layout, 'blobs/sha256', digest.slice(7)));
    const index = JSON.parse((await readFile(path.join(layout, 'index.json'))).toString());
    const manifest = JSON.parse((await blob(index.manifests[0].digest)).toString());
    const launcherDir = path.join(root, 'launcher-layer');
    await mkdir(launcherDir);
    await extract({ file: path.join(layout, 'blobs/sha256', manifest.layers[1].digest.slice(7)), cwd: launcherDir });
    // The app where the image has it (here: where it was built), unpacked once by the Node runner.
    expect((await runRunner(['--app-dir', appDir, '--slug', slug, '-q', 'run', 'true'])).exitCode).to.equal(0);
    const launch = (args: string[]) =>
      execa('bash', [path.join(launcherDir, 'slugkit/bin/slugrunner'), '--app-dir', appDir, '-q', ...args], {
        env: { PATH: '/usr/bin:/bin', SLUGKIT_DEBUG_START: '1' },
        extendEnv: false,
        stdin: 'ignore',
        reject: false,
      });
    const web = await launch(['start']);
    expect(web.exitCode, web.stderr).to.equal(0);
    expect(web.stderr).to.equal('slugrunner: fast start');
    expect(web.stdout).to.match(/^web as web\.1: from exec\.d, \d+$/);
    expect((await launch(['start', 'worker'])).stdout).to.equal('greet worker');
    const oneOff = await launch(['run', 'echo', '"$DYNO:"', '$GREETING']);
    expect(oneOff.stdout).to.match(/^run\.1: from exec\.d, \d+$/);
    const unknown = await launch(['start', 'clock']);
    expect(unknown.exitCode).to.equal(1);
    expect(ONE_LINE(unknown.stderr)).to.deep.equal([
      ' !     slugrunner (bash launcher): unknown process type "clock": this app has broken, web, worker',
    ]);
  });

  it("an image made from a slug with no launch plan (another tool's, an older slugkit's) gets one, and its launcher starts it", async () => {
    const rootfs = path.join(root, 'bash-only-2');
    await mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await writeFile(path.join(rootfs, 'bin/bash'), '', { mode: 0o755 });
    await writeRunImage(path.join(root, 'bash-only-2-layout'), 'v1', { layers: [rootfs], version: '1' });
    // A slug as another tool writes it: a Procfile and a .release, no .slugkit-launch.
    const slugRoot = await tempDir();
    await mkdir(path.join(slugRoot, 'app'));
    await writeFile(path.join(slugRoot, 'app/Procfile'), 'web: echo "web on $DYNO"\n');
    await writeFile(path.join(slugRoot, 'app/.release'), '---\nconfig_vars:\n  GREETING: hello\n');
    const slug = path.join(root, 'foreign-slug.tgz');
    await execa('tar', ['-czf', slug, '-C', path.join(slugRoot, 'app'), '.']);
    const layout = path.join(root, 'foreign-out');
    const made = await runBuilder([
      '--slug',
      slug,
      '--run-image',
      `oci:${path.join(root, 'bash-only-2-layout')}:v1`,
      '--image',
      `oci:${layout}:app`,
    ]);
    expect(made.exitCode, made.stderr).to.equal(0);
    const blobPath = (digest: string) => path.join(layout, 'blobs/sha256', digest.slice(7));
    const index = JSON.parse((await readFile(path.join(layout, 'index.json'))).toString());
    const manifest = JSON.parse((await readFile(blobPath(index.manifests[0].digest))).toString());
    const unpacked = path.join(root, 'foreign-image');
    await mkdir(unpacked);
    // The layers above the run image, in order: the launcher's, then the app's.
    for (const layer of manifest.layers.slice(1)) await extract({ file: blobPath(layer.digest), cwd: unpacked });
    expect(existsSync(path.join(unpacked, 'app/.slugkit-launch'))).to.equal(true);
    const web = await execa(
      'bash',
      [path.join(unpacked, 'slugkit/bin/slugrunner'), '--app-dir', path.join(unpacked, 'app'), '-q', 'start'],
      {
        env: { PATH: '/usr/bin:/bin', SLUGKIT_DEBUG_START: '1' },
        extendEnv: false,
        stdin: 'ignore',
        reject: false,
      },
    );
    expect(web.exitCode, web.stderr).to.equal(0);
    expect(web.stdout).to.equal('web on web.1');
  });

  describe('under Docker, on a debootstrap minbase run image (bash, no Node, no slugrunner)', () => {
    let registry: RunningRegistry | undefined;
    const images: string[] = [];
    after(async () => {
      for (const image of images) await docker(['rmi', '-f', image], { reject: false });
      await registry?.stop();
    });

    it('starts the default process with docker run, another type with start worker, and a one-off with run', async function () {
      this.timeout(1_200_000);
      await requireDocker(this);
      requireTools(this, 'docker-registry');
      await ensureStackImage();
      const noNode = await docker([
        'run',
        '--rm',
        '--entrypoint',
        '/bin/bash',
        STACK_IMAGE,
        '-c',
        'command -v node slugrunner || echo none',
      ]);
      expect(String(noNode.stdout).trim()).to.equal('none');
      await docker(['save', '-o', path.join(root, 'stack.tar'), STACK_IMAGE]);
      registry = await startRegistry();
      const ref = `${registry.host}/launcher-test/app:${process.pid}`;
      const appDir = path.join(await tempDir(), 'built-here');
      const b = await runBuilder(
        [
          '--app-dir',
          appDir,
          '--buildpack',
          buildpack,
          '--run-image',
          `docker-archive:${path.join(root, 'stack.tar')}`,
          '--image',
          `docker://${ref}`,
        ],
        { input: source },
      );
      expect(b.exitCode, b.stderr).to.equal(0);
      // Built away from /app: said once; the process whose program is nowhere: said once.
      expect(b.stderr).to.include(`Warning: the Cloud Native Buildpacks ran at ${appDir} but the image runs the app at /app`);
      expect(b.stderr).to.include("Warning: process broken runs nosuchprogram, which is neither on the run image's PATH nor in the app");
      expect(b.stderr).not.to.include('process web runs');
      expect(b.stderr).not.to.include('process worker runs');

      await docker(['pull', ref]);
      images.push(ref);
      const inspect = JSON.parse(String((await docker(['image', 'inspect', '--format', '{{json .Config}}', ref])).stdout));
      expect(inspect.Entrypoint).to.deep.equal(['/bin/bash', '/slugkit/bin/slugrunner']);
      expect(inspect.Cmd).to.deep.equal(['start', 'web']);

      const web = await docker(['run', '--rm', ref], { reject: false });
      expect(web.exitCode, String(web.stderr)).to.equal(0);
      expect(String(web.stdout)).to.match(/^web as web\.1: from exec\.d, \d+\n?$/);
      const worker = await docker(['run', '--rm', ref, 'start', 'worker'], { reject: false });
      expect(worker.exitCode, String(worker.stderr)).to.equal(0);
      expect(String(worker.stdout).trim()).to.equal('greet worker');
      const oneOff = await docker(['run', '--rm', ref, 'run', 'echo "$DYNO: $GREETING" && greet one-off'], { reject: false });
      expect(oneOff.exitCode, String(oneOff.stderr)).to.equal(0);
      expect(String(oneOff.stdout)).to.match(/^run\.1: from exec\.d, \d+\ngreet one-off\n?$/);
      const unknown = await docker(['run', '--rm', ref, 'start', 'clock'], { reject: false });
      expect(unknown.exitCode).to.equal(1);
      expect(ONE_LINE(String(unknown.stderr))).to.deep.equal([
        ' !     slugrunner (bash launcher): unknown process type "clock": this app has broken, web, worker',
      ]);
    });
  });
});
