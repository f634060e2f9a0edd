/**
 * Run images for the image tests, built here from a small rootfs (busybox
 * from Debian's busybox-static when installed) and written as an OCI layout
 * by hand, independently of the code under test. The run image carries a
 * stand-in `slugrunner` shell script (the real runner needs Node, which a
 * busybox image does not have): it runs the Procfile's command for a type.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync } from 'node:fs';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { create as tarCreate } from 'tar';
import { freePort } from './registry.js';
import { hasCommand, requireTools, skipOrFail } from './tools.js';

export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const APPLETS = ['sh', 'cat', 'sed', 'head', 'httpd', 'env', 'ls', 'echo', 'id', 'sleep', 'test', '['];

const SLUGRUNNER_STUB = `#!/bin/sh
# Test stand-in for slugrunner: "start TYPE" runs the Procfile command for TYPE.
[ "$1" = start ] || { echo "stub slugrunner: only 'start TYPE'" >&2; exit 64; }
cd /app || exit 1
cmd=$(sed -n "s/^$2:[[:space:]]*//p" Procfile | head -n 1)
[ -n "$cmd" ] || { echo "stub slugrunner: no $2 in Procfile" >&2; exit 1; }
exec sh -c "$cmd"
`;

function sha256(b: Buffer): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

/** A rootfs with busybox (if installed), the runner stub and a version file. */
export async function makeRootfs(dir: string, version: string): Promise<void> {
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await mkdir(path.join(dir, 'usr/local/bin'), { recursive: true });
  await mkdir(path.join(dir, 'etc'), { recursive: true });
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  if (BUSYBOX) {
    copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
    await chmod(path.join(dir, 'bin/busybox'), 0o755);
    for (const applet of APPLETS) await symlink('busybox', path.join(dir, 'bin', applet));
  }
  // slugbuilder refuses a run image without /bin/bash (its launcher layer is bash): present, if only as busybox.
  await symlink('busybox', path.join(dir, 'bin/bash'));
  await writeFile(path.join(dir, 'usr/local/bin/slugrunner'), SLUGRUNNER_STUB, { mode: 0o755 });
  await writeFile(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/app:/bin/sh\n');
  await writeFile(path.join(dir, 'etc/run-image-version'), version + '\n');
}

async function tarOf(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = tarCreate({ cwd: dir, portable: true, gzip: false }, ['.']);
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

export interface RunImageOptions {
  /** One layer per directory. */
  layers: string[];
  /** Docker schema 2 media types instead of OCI ones. */
  docker?: boolean;
  /** Write an image index with these platforms (the same layers under each). */
  platforms?: Array<{ os: string; architecture: string; variant?: string }>;
  architecture?: string;
  version: string;
  /** The config's User, e.g. "1500:0". */
  user?: string;
  /** Labels besides org.example.run-image. */
  labels?: Record<string, string>;
}

export interface RunImageInfo {
  manifestDigest: string;
  /** Digest of the index when platforms were given. */
  indexDigest?: string;
  layerDigests: string[];
  diffIds: string[];
}

/** Write (or add a tag to) an OCI layout holding a run image. */
export async function writeRunImage(layoutDir: string, tag: string, opts: RunImageOptions): Promise<RunImageInfo> {
  const types = opts.docker
    ? {
        manifest: 'application/vnd.docker.distribution.manifest.v2+json',
        config: 'application/vnd.docker.container.image.v1+json',
        layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
        index: 'application/vnd.docker.distribution.manifest.list.v2+json',
      }
    : {
        manifest: 'application/vnd.oci.image.manifest.v1+json',
        config: 'application/vnd.oci.image.config.v1+json',
        layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
        index: 'application/vnd.oci.image.index.v1+json',
      };
  const blobs = path.join(layoutDir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (bytes: Buffer) => {
    const digest = sha256(bytes);
    await writeFile(path.join(blobs, digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };
  const layers: Array<{ digest: string; size: number }> = [];
  const diffIds: string[] = [];
  for (const dir of opts.layers) {
    const tar = await tarOf(dir);
    diffIds.push(sha256(tar));
    layers.push(await put(gzipSync(tar, { level: 6 })));
  }
  const platforms = opts.platforms ?? [{ os: 'linux', architecture: opts.architecture ?? 'amd64' }];
  const manifests: Array<{ digest: string; size: number; platform: { os: string; architecture: string; variant?: string } }> = [];
  for (const platform of platforms) {
    const config = {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      created: '2024-01-01T00:00:00Z',
      config: {
        Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/root', 'RUN_IMAGE_VERSION=' + opts.version],
        Cmd: ['sh'],
        ...(opts.user ? { User: opts.user } : {}),
        Labels: { 'org.example.run-image': opts.version, ...opts.labels },
      },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `test fixture layer ${i + 1}` })),
    };
    const cfg = await put(Buffer.from(JSON.stringify(config)));
    const manifest = {
      schemaVersion: 2,
      mediaType: types.manifest,
      config: { mediaType: types.config, ...cfg },
      layers: layers.map((l) => ({ mediaType: types.layer, ...l })),
    };
    manifests.push({ ...(await put(Buffer.from(JSON.stringify(manifest)))), platform });
  }
  let top: { mediaType: string; digest: string; size: number };
  let indexDigest: string | undefined;
  if (opts.platforms) {
    const index = { schemaVersion: 2, mediaType: types.index, manifests: manifests.map((m) => ({ mediaType: types.manifest, ...m })) };
    const idx = await put(Buffer.from(JSON.stringify(index)));
    top = { mediaType: types.index, ...idx };
    indexDigest = idx.digest;
  } else {
    top = { mediaType: types.manifest, digest: manifests[0].digest, size: manifests[0].size };
  }
  const indexFile = path.join(layoutDir, 'index.json');
  let existing: { manifests: Array<{ annotations?: Record<string, string> }> } = { manifests: [] };
  if (existsSync(indexFile)) existing = JSON.parse(await readFile(indexFile, 'utf8'));
  const kept = existing.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== tag);
  await writeFile(path.join(layoutDir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    indexFile,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.index.includes('oci') ? types.index : 'application/vnd.oci.image.index.v1+json',
      manifests: [...kept, { ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return { manifestDigest: manifests[0].digest, indexDigest, layerDigests: layers.map((l) => l.digest), diffIds };
}

/** A tiny app as a build leaves it: Procfile, a page, a script. */
export async function makeApp(dir: string, page = 'hello from slugkit\n'): Promise<void> {
  await mkdir(path.join(dir, 'public'), { recursive: true });
  await mkdir(path.join(dir, '.profile.d'), { recursive: true });
  await writeFile(path.join(dir, 'Procfile'), 'web: httpd -f -p ${BIND:-0.0.0.0}:${PORT:-5000} -h /app/public\n');
  await writeFile(path.join(dir, 'public/index.html'), page);
  await writeFile(path.join(dir, 'bin-run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 });
  await writeFile(path.join(dir, '.release'), '---\ndefault_process_types:\n  web: httpd\n');
}

// ---- tools and running images ----

export const execFileP = promisify(execFile);

export { requireTools };

export function requireRoot(ctx: Mocha.Context, why: string): void {
  if (process.getuid?.() !== 0) skipOrFail(ctx, `needs root (${why})`);
}

export async function dockerAvailable(): Promise<boolean> {
  if (!hasCommand('docker')) return false;
  try {
    await execFileP('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

export function requireDocker(ctx: Mocha.Context, ok: boolean): void {
  if (!ok) skipOrFail(ctx, 'needs a Docker daemon that answers `docker info` (.ci/setup.d/40-docker.sh starts one)');
}

/** GET until the server answers, or give up after `tries` attempts. */
export async function fetchWhenReady(url: string, tries = 100): Promise<{ status: number; body: string }> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const res = await fetch(url);
      return { status: res.status, body: await res.text() };
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} never answered: ${String(last)}`);
}

/**
 * Unpack an OCI layout image with umoci and start its entrypoint + cmd in a
 * chroot of the rootfs, with the image's env and working dir (read from the
 * runtime-spec config umoci generates). Host network, bound to 127.0.0.1.
 */
export async function startUnpacked(
  layoutDir: string,
  tag: string,
  bundle: string,
): Promise<{ port: number; child: ChildProcess; stop: () => Promise<void> }> {
  await execFileP('umoci', ['unpack', '--image', `${layoutDir}:${tag}`, bundle]);
  const spec = JSON.parse(await readFile(path.join(bundle, 'config.json'), 'utf8')) as {
    process: { args: string[]; env: string[]; cwd: string };
  };
  const port = await freePort();
  const env: Record<string, string> = {};
  for (const e of spec.process.env) {
    const i = e.indexOf('=');
    env[e.slice(0, i)] = e.slice(i + 1);
  }
  Object.assign(env, { PORT: String(port), BIND: '127.0.0.1' });
  // The fixture rootfs is busybox, which cannot run the bash launcher layer: its stub slugrunner stands in.
  const args =
    spec.process.args[1] === '/slugkit/bin/slugrunner' ? ['/usr/local/bin/slugrunner', ...spec.process.args.slice(2)] : spec.process.args;
  const chroot = ['/usr/sbin/chroot', '/sbin/chroot', '/usr/bin/chroot'].find((p) => existsSync(p)) ?? 'chroot';
  const child = spawn(chroot, [path.join(bundle, 'rootfs'), '/bin/sh', '-c', 'cd "$0" && exec "$@"', spec.process.cwd, ...args], {
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('error', (err) => console.error(`chroot failed: ${err.message}`));
  return {
    port,
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await done;
      }
    },
  };
}

export async function skopeoInspect(ref: string, raw = false): Promise<Record<string, unknown>> {
  const args = ['inspect', ...(raw ? ['--raw'] : []), ...(ref.startsWith('docker://') ? ['--tls-verify=false'] : []), ref];
  const { stdout } = await execFileP('skopeo', args, { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** The run images most tests use, all in one OCI layout. */
export interface RunImages {
  layout: string;
  v24: RunImageInfo;
  v241: RunImageInfo;
  docker: RunImageInfo;
  multi: RunImageInfo;
  arm: RunImageInfo;
}

export async function makeRunImages(root: string): Promise<RunImages> {
  const base = path.join(root, 'rootfs-24');
  const base241 = path.join(root, 'rootfs-24.1');
  const extra = path.join(root, 'rootfs-extra');
  await makeRootfs(base, '24');
  await makeRootfs(base241, '24.1');
  await mkdir(path.join(extra, 'etc'), { recursive: true });
  await writeFile(path.join(extra, 'etc/motd'), 'run image 24.1\n');
  const layout = path.join(root, 'runner');
  return {
    layout,
    v24: await writeRunImage(layout, '24', { layers: [base], version: '24' }),
    v241: await writeRunImage(layout, '24.1', { layers: [base241, extra], version: '24.1' }),
    docker: await writeRunImage(layout, '24-docker', { layers: [base], version: '24', docker: true }),
    multi: await writeRunImage(layout, '24-multi', {
      layers: [base],
      version: '24',
      platforms: [
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
        { os: 'linux', architecture: 'amd64' },
      ],
    }),
    arm: await writeRunImage(layout, '24-arm64', { layers: [base], version: '24', architecture: 'arm64' }),
  };
}

/**
 * `docker run` of a fixture app image's web process: what it answers on /,
 * then the container and the image removed. The busybox fixture cannot run
 * the bash launcher layer, so its stub slugrunner stands in as the entrypoint
 * (test/image-launcher runs the real launcher).
 */
export async function answerOfFixtureImage(image: string): Promise<{ status: number; body: string }> {
  const port = await freePort();
  const run = ['run', '-d', '--rm', '-p', `127.0.0.1:${port}:5000`, '-e', 'PORT=5000', '--entrypoint', '/usr/local/bin/slugrunner'];
  const { stdout: id } = await execFileP('docker', [...run, image, 'start', 'web']);
  try {
    return await fetchWhenReady(`http://127.0.0.1:${port}/`);
  } finally {
    await execFileP('docker', ['rm', '-f', id.trim()]).catch(() => undefined);
    await execFileP('docker', ['rmi', image]).catch(() => undefined);
  }
}
