/**
 * P7 and P8 of issue 14: what an image deploy pushes and how long the
 * daemonless image path takes, against a real registry (Debian's
 * docker-registry on 127.0.0.1) and, for P8, a real `docker build` +
 * `docker push`. Bytes are counted by a proxy in front of the registry (the
 * request bodies of blob uploads it passed on), not by the client.
 */

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { dockerBinary, dockerUnavailableReason } from '../test/helpers/docker.js';
import { makeRootfs, writeRunImage } from '../test/helpers/image-fixtures.js';
import { type RunningRegistry, startProxy, startRegistry, uploadedBytes } from '../test/helpers/registry.js';
import { hasCommand } from '../test/helpers/tools.js';
import { cli, fresh, type Row, ratioText, type Setup } from './cases.js';
import { megabytes, type Run, seconds, timed, timedShell } from './measure.js';

interface ImageBench {
  registry: RunningRegistry;
  /** docker://HOST/runner:24 in `registry`. */
  runImage: string;
  /** Slugs of the first and the code-changed build (made by P7, used by P8). */
  slugs: [string, string];
  stop(): Promise<void>;
}

let shared: Promise<ImageBench> | undefined;

function missingTools(): string | undefined {
  const missing = ['docker-registry', 'skopeo'].filter((t) => !hasCommand(t));
  return missing.length ? `needs ${missing.join(' and ')} (apt-get install docker-registry skopeo)` : undefined;
}

/** A registry with a busybox run image in it, and the app tree's source copied where one line can change. */
async function imageBench(s: Setup): Promise<ImageBench> {
  const registry = await startRegistry();
  const rootfs = fresh(path.join(s.work, 'p7-rootfs'));
  await makeRootfs(rootfs, '24');
  const layout = path.join(fresh(path.join(s.work, 'p7-run-image')), 'layout');
  await writeRunImage(layout, '24', { layers: [rootfs], version: '24' });
  await execa('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:24`, `docker://${registry.host}/runner:24`]);
  const slugs: [string, string] = [path.join(s.work, 'p7-slug-1.tgz'), path.join(s.work, 'p7-slug-2.tgz')];
  return { registry, runImage: `docker://${registry.host}/runner:24`, slugs, stop: () => registry.stop() };
}

function skipped(id: string, what: string, goal: string, reason: string): Row {
  return { id, what, slugkit: '—', baseline: '—', ratio: '—', goal, met: 'skipped', notes: [`skipped: ${reason}`] };
}

/** The registry's stored bytes (blobs and metadata): a second count, independent of the proxy. */
function storedBytes(registry: RunningRegistry): number {
  const dir = path.join(registry.dir, 'data');
  if (!existsSync(dir)) return 0;
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

/** P7: bytes the registry receives for a one-line change, over the bytes of the first push. */
export async function p7Push(s: Setup): Promise<Row> {
  const what = `bytes pushed for a one-line change, ${s.app.files.toLocaleString('en')}-file node app (node_modules)`;
  const goal = '≤ 0.05';
  const reason = missingTools();
  if (reason) return skipped('P7', what, goal, reason);
  shared ??= imageBench(s);
  const bench = await shared;
  const proxy = await startProxy(bench.registry.host);
  try {
    const src = fresh(path.join(s.work, 'p7-src'));
    cpSync(s.app.dir, src, { recursive: true });
    const cache = fresh(path.join(s.work, 'p7-cache'));
    // Its own cache root (the layer cache), so P8 starts from nothing.
    const env = { ...process.env, SLUGBUILDER_CACHE_DIR: fresh(path.join(s.work, 'p7-cache-root')) };
    const build = async (tag: string, slug: string) => {
      proxy.requests.length = 0;
      const before = storedBytes(bench.registry);
      const run = await timed(
        'node',
        [
          cli(s, 'slugbuilder'),
          '--source',
          src,
          '--buildpack',
          s.noopBuildpack,
          '--cache-dir',
          cache,
          '-o',
          slug,
          '--run-image',
          `docker://${proxy.host}/runner:24`,
          '--image',
          `docker://${proxy.host}/p7app:${tag}`,
        ],
        { env },
      );
      return { run, bytes: uploadedBytes(proxy.requests), stored: storedBytes(bench.registry) - before };
    };
    const first = await build('1', bench.slugs[0]);
    const server = path.join(src, 'server.js');
    writeFileSync(server, readFileSync(server, 'utf8').replace("s.end('ok')", "s.end('ok, v2')"));
    const second = await build('2', bench.slugs[1]);
    const ratio = second.bytes / first.bytes;
    return {
      id: 'P7',
      what,
      slugkit: `${second.bytes.toLocaleString('en')} bytes`,
      baseline: `first push ${megabytes(first.bytes)}`,
      ratio: ratio.toFixed(4),
      goal,
      met: ratio <= 0.05 ? 'yes' : 'no',
      notes: [
        `counted by a proxy in front of docker-registry: request body bytes of blob PATCH/PUT uploads; registry storage grew ${megabytes(first.stored)} then ${second.stored.toLocaleString('en')} bytes`,
        `builds (slugbuilder --source DIR --buildpack noop -o SLUG --run-image docker://… --image docker://…): first ${seconds(first.run.wallMs)}, second ${seconds(second.run.wallMs)}; the run image's layer is mounted from runner/, not sent`,
      ],
    };
  } finally {
    await proxy.stop();
  }
}

/**
 * P8: `slugbuilder --slug FILE --run-image … --image …` against `docker build`
 * (FROM the run image, COPY of the unpacked slug into /app) + `docker push`,
 * same slug, same registry, for a first push and for a code-only change.
 */
export async function p8Image(s: Setup): Promise<Row> {
  const what = 'image from a built slug and push: `slugbuilder --slug` vs `docker build` + `docker push`';
  const goal = '≤ 0.5× (first push and code-only change)';
  const reason = missingTools() ?? (await dockerUnavailableReason().then((r) => (r && !r.startsWith('base image') ? r : undefined)));
  if (reason) return skipped('P8', what, goal, reason);
  shared ??= imageBench(s);
  const bench = await shared;
  if (!bench.slugs.every((f) => existsSync(f)))
    return skipped('P8', what, goal, 'needs the slugs P7 builds: run P7 first (npm run bench -- P7 P8)');
  const host = bench.registry.host;
  const docker = dockerBinary();
  const runner = `${host}/runner:24`;
  const tags: string[] = [];
  try {
    // The base is pulled once beforehand, as a CI runner that builds often has it.
    await execa(docker, ['pull', '-q', runner]);
    const contexts = bench.slugs.map((slug, i) => {
      const ctx = fresh(path.join(s.work, `p8-context-${i + 1}`));
      mkdirSync(path.join(ctx, 'app'));
      execFileSync('tar', ['-xzf', slug, '-C', path.join(ctx, 'app')]);
      writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${runner}\nCOPY --chown=1000:1000 app/ /app/\nWORKDIR /app\n`);
      return ctx;
    });
    // An empty layer cache for the first push; the change finds the first push's layers there.
    const env = { ...process.env, SLUGBUILDER_CACHE_DIR: fresh(path.join(s.work, 'p8-cache-root')) };
    const ours = async (i: number) =>
      timed(
        'node',
        [
          cli(s, 'slugbuilder'),
          '--slug',
          bench.slugs[i],
          '--run-image',
          `docker://${runner}`,
          '--image',
          `docker://${host}/p8-slugkit:${i + 1}`,
        ],
        { env },
      );
    const theirs = async (i: number) => {
      const tag = `${host}/p8-docker:${i + 1}`;
      tags.push(tag);
      return timedShell(`"${docker}" build -q -t ${tag} "${contexts[i]}" > /dev/null\n"${docker}" push -q ${tag} > /dev/null`, {
        env: { ...process.env, DOCKER_BUILDKIT: '1' },
      });
    };
    const firstOurs = await ours(0);
    const firstTheirs = await theirs(0);
    const firstBuildah = await buildahRun(s, host, contexts[0], 1);
    const changeOurs = await ours(1);
    const changeTheirs = await theirs(1);
    const changeBuildah = await buildahRun(s, host, contexts[1], 2);
    const r1 = firstOurs.wallMs / firstTheirs.wallMs;
    const r2 = changeOurs.wallMs / changeTheirs.wallMs;
    const b = [firstBuildah, changeBuildah];
    const rb =
      typeof firstBuildah === 'string' || typeof changeBuildah === 'string'
        ? undefined
        : [firstOurs.wallMs / firstBuildah.wallMs, changeOurs.wallMs / changeBuildah.wallMs];
    return {
      id: 'P8',
      what: `${what}; and \`buildah bud\` + \`buildah push\``,
      slugkit: `first ${seconds(firstOurs.wallMs)}, change ${seconds(changeOurs.wallMs)}`,
      baseline: `docker: first ${seconds(firstTheirs.wallMs)}, change ${seconds(changeTheirs.wallMs)}; buildah: ${
        rb ? b.map((r, i) => `${i ? 'change' : 'first'} ${seconds((r as Run).wallMs)}`).join(', ') : 'skipped'
      }`,
      ratio: `docker ${ratioText(r1)}, ${ratioText(r2)}; buildah ${rb ? rb.map(ratioText).join(', ') : '—'}`,
      goal,
      met: r1 <= 0.5 && r2 <= 0.5 && (!rb || rb.every((r) => r <= 0.5)) ? 'yes' : 'no',
      notes: [
        rb
          ? `buildah ${buildahVersion()} (storage driver ${BUILDAH_DRIVER}, as root): \`buildah bud\` of the same Dockerfile and unpacked slug + \`buildah push\` to the same registry, an empty storage per run with the base pulled into it beforehand (not timed); CPU ${seconds((b[0] as Run).cpuMs)} / ${seconds((b[1] as Run).cpuMs)}`
          : `buildah skipped: ${typeof firstBuildah === 'string' ? firstBuildah : changeBuildah}`,
        `slug ${megabytes(statSync(bench.slugs[0]).size)} (P7's first build) and its one-line change; one run each, slugkit first; registry docker-registry on ${host}`,
        `slugkit unpacks the slug itself inside its time; docker gets the slug already unpacked as its build context and the base image already pulled`,
        `slugkit: CPU ${seconds(firstOurs.cpuMs)} / ${seconds(changeOurs.cpuMs)}; first push with an empty layer cache; on the change node_modules is hashed, found in the layer cache (not compressed) and skipped by HEAD, the app layer alone is compressed and pushed; docker's COPY makes one layer of the whole app, pushed again on the change`,
      ],
    };
  } finally {
    for (const tag of [...tags, runner]) await execa(docker, ['rmi', '-f', tag], { reject: false });
  }
}

const BUILDAH_DRIVER = process.env.BENCH_BUILDAH_DRIVER ?? 'overlay';

function buildahVersion(): string {
  return execFileSync('buildah', ['--version'], { encoding: 'utf8' }).trim().split(' ')[2] ?? '?';
}

/**
 * One buildah baseline run: an empty storage of its own (no layer cache from
 * an earlier run), the base pulled into it untimed, then `buildah bud` +
 * `buildah push` timed. A string is the reason it was skipped.
 */
async function buildahRun(s: Setup, host: string, context: string, n: number): Promise<Run | string> {
  if (!hasCommand('buildah')) return 'needs buildah (apt-get install buildah)';
  if (process.getuid?.() !== 0) return 'buildah is run as root here (rootless needs subuid set-up)';
  const store = fresh(path.join(s.work, `p8-buildah-store-${n}`));
  const flags = ['--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), '--storage-driver', BUILDAH_DRIVER];
  try {
    await execa('buildah', [...flags, 'pull', '-q', '--tls-verify=false', `${host}/runner:24`]);
    const tag = `${host}/p8-buildah:${n}`;
    const f = flags.map((a) => `"${a}"`).join(' ');
    return await timedShell(
      `buildah ${f} bud -q --pull=false --tls-verify=false -t ${tag} "${context}" > /dev/null\nbuildah ${f} push -q --tls-verify=false ${tag}`,
    );
  } finally {
    await execa('buildah', [...flags, 'rmi', '-a', '-f'], { reject: false });
  }
}

/** Stop the registry the image benchmarks share. */
export async function stopImageBench(): Promise<void> {
  if (shared) await (await shared).stop();
}
