/**
 * Real-Docker helpers for the image tests.
 *
 * Machines here reach only the npm registry and Debian's apt mirrors (no
 * Docker Hub), so the tests make their own base images and pass them as the
 * Dockerfiles' build ARGs:
 *  - a "stack" image: debootstrap'd Debian bookworm with what the images need
 *    from a stack (bash, git, python3 with venv, libstdc++ for node), made
 *    into an image with `docker import`;
 *  - a "node" image: that stack plus this machine's own `node` and `npm`, laid
 *    out where the official node images keep them (/usr/local/bin/node,
 *    /usr/local/lib/node_modules/npm).
 * Both are made once and reused by tag; `docker build` layer caching keeps the
 * slugkit images cheap to rebuild on every test run.
 */

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type Options, type ResultPromise } from 'execa';
import { ROOT } from './cli.js';
import { skipOrFail } from './tools.js';

/** Debian packages the test stack carries: what docs/docker.md asks of a stack image. */
const STACK_PACKAGES = ['bash', 'git', 'python3', 'python3-venv', 'libstdc++6', 'ca-certificates', 'procps'];
/** The tag names the package list, so changing the list makes a new image. */
const STACK_TAG = `bookworm-${createHash('sha256').update(STACK_PACKAGES.join(',')).digest('hex').slice(0, 8)}`;

export const STACK_IMAGE = process.env.SLUGKIT_TEST_STACK_IMAGE ?? `slugkit-test/stack:${STACK_TAG}`;
export const NODE_IMAGE = process.env.SLUGKIT_TEST_NODE_IMAGE ?? `slugkit-test/node:20-${STACK_TAG}`;
export const BUILDER_IMAGE = 'slugkit-test/slugbuilder:dev';
export const RUNNER_IMAGE = 'slugkit-test/slugrunner:dev';

const LOCAL_CA_DIR = '/usr/local/share/ca-certificates';
const DEBIAN_MIRROR = process.env.DEBOOTSTRAP_MIRROR ?? 'http://deb.debian.org/debian';

/**
 * The docker CLI to use. Debian's docker.io client (/usr/bin/docker) has
 * BuildKit built in; a newer standalone CLI earlier on PATH may lack the buildx
 * plugin and refuse `DOCKER_BUILDKIT=1 docker build`. SLUGKIT_DOCKER overrides.
 */
export function dockerBinary(): string {
  if (process.env.SLUGKIT_DOCKER) return process.env.SLUGKIT_DOCKER;
  return existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
}

/** Run the docker CLI; BuildKit on for builds. */
export function docker(args: string[], options: Options = {}): ResultPromise {
  return execa(dockerBinary(), args, {
    ...options,
    env: { DOCKER_BUILDKIT: '1', ...options.env },
  });
}

/** Why Docker cannot be used here, or undefined when it can. */
export async function dockerUnavailableReason(): Promise<string | undefined> {
  const result = await execa(dockerBinary(), ['info', '--format', '{{.ServerVersion}}'], {
    reject: false,
    timeout: 20_000,
  });
  if (result.failed && (result as { code?: string }).code === 'ENOENT') {
    return `no docker CLI (${dockerBinary()}): install Docker (Debian: apt-get install docker.io)`;
  }
  if (result.failed) {
    const detail = String(result.stderr || result.message).split('\n')[0];
    return `docker daemon not reachable (${detail})`;
  }
  if (!(await imageExists(STACK_IMAGE))) {
    if (process.getuid?.() !== 0) return `base image ${STACK_IMAGE} missing and creating it needs root (debootstrap)`;
    const which = await execa('sh', ['-c', 'command -v debootstrap'], { reject: false });
    if (which.failed) return `base image ${STACK_IMAGE} missing and debootstrap is not installed`;
  }
  return undefined;
}

/**
 * Mocha `before` guard: skip the suite with a printed reason when Docker is
 * unavailable, or fail it when CI is set (CI must always run these tests).
 */
export async function requireDocker(context: Mocha.Context): Promise<void> {
  const reason = await dockerUnavailableReason();
  if (!reason) return;
  skipOrFail(context, `needs Docker: ${reason}`);
}

/** An image's Config (Entrypoint, Cmd, User, Env, WorkingDir, ...) as docker inspect reports it. */
export async function imageConfig(tag: string): Promise<Record<string, unknown> & { Env?: string[] }> {
  const inspect = await docker(['image', 'inspect', '--format', '{{json .Config}}', tag]);
  return JSON.parse(String(inspect.stdout));
}

export async function imageExists(tag: string): Promise<boolean> {
  const result = await execa(dockerBinary(), ['image', 'inspect', '--format', '{{.Id}}', tag], { reject: false });
  return !result.failed;
}

/** debootstrap a minimal bookworm and import it as the test stack image (~1 min, once); other package lists make other stacks. */
export async function ensureStackImage(packages = STACK_PACKAGES, tag = STACK_IMAGE): Promise<void> {
  if (await imageExists(tag)) return;
  // /var/tmp: debootstrap needs a disk-backed, exec-able place for device nodes and chroot.
  const work = await mkdtemp(join(existsSync('/var/tmp') ? '/var/tmp' : tmpdir(), 'slugkit-stack-'));
  const rootfs = join(work, 'rootfs');
  try {
    await execa('debootstrap', ['--variant=minbase', `--include=${packages.join(',')}`, 'bookworm', rootfs, DEBIAN_MIRROR], {
      timeout: 600_000,
    });
    // Trust the CAs this machine added locally (Debian keeps them in
    // /usr/local/share/ca-certificates), e.g. a TLS-inspecting egress proxy,
    // so `npm ci` inside the image builds reaches the registry as the host does.
    if (existsSync(LOCAL_CA_DIR)) {
      await cp(LOCAL_CA_DIR, join(rootfs, LOCAL_CA_DIR), { recursive: true });
      await execa('chroot', [rootfs, 'update-ca-certificates'], { timeout: 120_000 });
    }
    // Package caches are dead weight in an image.
    await execa('sh', ['-c', `rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*`]);
    // `docker import -` reads the rootfs tar from stdin. It comes from tar(1),
    // not node-tar: a root filesystem holds device nodes, which node-tar skips.
    await execa('tar', ['-C', rootfs, '-c', '.'], { timeout: 300_000, buffer: false }).pipe(dockerBinary(), [
      'import',
      '--change',
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--change',
      'ENV LANG=C.UTF-8',
      // node ignores the system store unless told; npm and buildpacks need it.
      '--change',
      'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
      '--change',
      'CMD ["/bin/bash"]',
      '-',
      tag,
    ]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The test "node image": the stack plus this machine's node and npm. */
export async function ensureNodeImage(): Promise<void> {
  if (await imageExists(NODE_IMAGE)) return;
  await ensureStackImage();
  const context = await mkdtemp(join(tmpdir(), 'slugkit-node-image-'));
  try {
    await cp(await realpath(process.execPath), join(context, 'node'));
    const npmRoot = (await execa('npm', ['root', '-g'])).stdout.trim();
    await cp(join(npmRoot, 'npm'), join(context, 'npm'), { recursive: true, verbatimSymlinks: true });
    await docker(
      [
        'build',
        '-q',
        '-f',
        join(ROOT, 'test/fixtures/docker/node-image.Dockerfile'),
        '--build-arg',
        `STACK_IMAGE=${STACK_IMAGE}`,
        '-t',
        NODE_IMAGE,
        context,
      ],
      { timeout: 600_000 },
    );
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

let slugkitImages: Promise<void> | undefined;

/**
 * Build Dockerfile.builder and Dockerfile.runner from the working tree on the
 * locally made base images. Once per test process; layer caching makes a
 * rebuild with unchanged sources take seconds.
 */
export function buildSlugkitImages(): Promise<void> {
  slugkitImages ??= (async () => {
    await ensureStackImage();
    await ensureNodeImage();
    for (const [dockerfile, tag] of [
      ['Dockerfile.builder', BUILDER_IMAGE],
      ['Dockerfile.runner', RUNNER_IMAGE],
    ]) {
      const result = await docker(
        [
          'build',
          '-f',
          join(ROOT, dockerfile),
          '--build-arg',
          `STACK_IMAGE=${STACK_IMAGE}`,
          '--build-arg',
          `NODE_IMAGE=${NODE_IMAGE}`,
          '-t',
          tag,
          ROOT,
        ],
        { reject: false, timeout: 900_000, all: true },
      );
      if (result.failed) throw new Error(`docker build -f ${dockerfile} failed:\n${String(result.all).slice(-4000)}`);
    }
  })();
  return slugkitImages;
}

/** A unique container name so a failed test can always clean up after itself. */
export function containerName(label: string): string {
  return `slugkit-test-${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Remove containers by name, ignoring ones already gone. */
export async function removeContainers(names: string[]): Promise<void> {
  if (names.length === 0) return;
  await docker(['rm', '-f', ...names], { reject: false });
}

/**
 * Make a throwaway git repository holding a copy of `appDir` with one commit,
 * so tests can run `git archive HEAD` exactly as a user would.
 */
export async function gitRepoOf(appDir: string): Promise<string> {
  const repo = await mkdtemp(join(tmpdir(), 'slugkit-app-'));
  await cp(appDir, repo, { recursive: true });
  const git = (...args: string[]) => execa('git', args, { cwd: repo });
  await git('init', '-q', '-b', 'main');
  await git('add', '-A');
  await git('-c', 'user.name=slugkit test', '-c', 'user.email=test@slugkit.invalid', 'commit', '-q', '-m', 'app');
  return repo;
}

/** The host port Docker published for a container port (`-p 127.0.0.1::PORT`). */
export async function publishedPort(container: string, containerPort: number, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await docker(['port', container, `${containerPort}/tcp`], { reject: false });
    const match = /127\.0\.0\.1:(\d+)/.exec(String(result.stdout));
    if (match) return Number(match[1]);
    if (Date.now() > deadline) throw new Error(`container ${container} never published port ${containerPort}: ${result.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** GET a URL until it answers (the app inside needs a moment to unpack and start). */
export async function fetchWhenUp(url: string, timeoutMs = 60_000): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      return { status: response.status, body: await response.text() };
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`${url} never answered: ${String(lastError)}`);
}

export interface SlugBuild {
  exitCode: number | undefined;
  stderr: string;
  /** Size in bytes of what the builder wrote to stdout. */
  slugBytes: number;
}

/**
 * `git archive HEAD | docker run -i --rm <builder> [dockerArgs...] > slugFile`,
 * with the app directory committed into a throwaway repository first. The
 * run's Node mirror (test/helpers/isolate.ts) listens on the host's
 * 127.0.0.1, which a container reaches only on the host network.
 */
export async function buildSlugWithDocker(appDir: string, slugFile: string, dockerArgs: string[] = []): Promise<SlugBuild> {
  const mirror = process.env.NODEJS_ORG_MIRROR;
  if (mirror?.startsWith('http://127.0.0.1:')) dockerArgs = ['--network', 'host', '-e', `NODEJS_ORG_MIRROR=${mirror}`, ...dockerArgs];
  const repo = await gitRepoOf(appDir);
  try {
    const result = await execa('git', ['archive', 'HEAD'], { cwd: repo, buffer: false }).pipe(
      dockerBinary(),
      ['run', '-i', '--rm', ...dockerArgs, BUILDER_IMAGE],
      { stdout: { file: slugFile }, reject: false, timeout: 300_000 },
    );
    const { size } = await stat(slugFile);
    return { exitCode: result.exitCode, stderr: String(result.stderr), slugBytes: size };
  } finally {
    await rm(repo, { recursive: true, force: true });
  }
}

/**
 * A run image for Python apps: Dockerfile.runner on a stack that also has
 * libpq5, the shared library Debian's psycopg2 links (an app's virtualenv
 * brings its packages, not the system libraries they load). Python itself is
 * already in the test stack, at the build stack's version: the virtualenv
 * runs the stack's interpreter. Made once and reused by tag.
 */
export const PYTHON_STACK_PACKAGES = [...STACK_PACKAGES, 'libpq5'];
export const PYTHON_STACK_IMAGE = `slugkit-test/stack:bookworm-${createHash('sha256').update(PYTHON_STACK_PACKAGES.join(',')).digest('hex').slice(0, 8)}`;
export const PYTHON_RUNNER_IMAGE = 'slugkit-test/slugrunner:python-dev';

export async function buildPythonRunnerImage(): Promise<void> {
  await buildSlugkitImages();
  await ensureStackImage(PYTHON_STACK_PACKAGES, PYTHON_STACK_IMAGE);
  const args = ['build', '-f', join(ROOT, 'Dockerfile.runner'), '--build-arg', `STACK_IMAGE=${PYTHON_STACK_IMAGE}`];
  args.push('--build-arg', `NODE_IMAGE=${NODE_IMAGE}`, '-t', PYTHON_RUNNER_IMAGE, ROOT);
  const result = await docker(args, { reject: false, timeout: 900_000, all: true });
  if (result.failed) throw new Error(`docker build of the Python run image failed:\n${String(result.all).slice(-4000)}`);
}
