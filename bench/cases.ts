/**
 * The six measurements (P1-P6, docs/BENCHMARKS.md). Each runs slugkit and its baseline on the
 * same data in the same run, and returns one row of the table plus notes
 * that say where the time went.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { compressorName } from '../slugbuilder/slug.js';
import { hasCommand } from '../test/helpers/tools.js';
import { compare, median, medianRun, megabytes, type Run, readStageTime, seconds, stageTimeFile, timed, timedShell } from './measure.js';

export interface Row {
  id: string;
  what: string;
  slugkit: string;
  baseline: string;
  ratio: string;
  goal: string;
  met: 'yes' | 'no' | 'pending' | 'skipped';
  notes: string[];
}

export interface Setup {
  repo: string;
  work: string;
  /** The ~120 MB node_modules-like app tree and its file count / bytes. */
  app: { dir: string; files: number; bytes: number };
  /** The ~1 GB tree for P5. */
  big: { dir: string; files: number; bytes: number };
  appTar: string;
  noopBuildpack: string;
  minimalSlug: string;
  times: { p1: number; p2: number; p3: number; p4: number; p6: number; p9: number };
}

export const cli = (s: Setup, name: 'slugbuilder' | 'slugrunner') => path.join(s.repo, 'dist', name, 'cli.js');
/** `bin/slugrunner`: the runner's entry point, what npm links and the runner image runs. */
export const runnerBin = (s: Setup) => path.join(s.repo, 'bin', 'slugrunner');
const child = (s: Setup) => path.join(s.repo, 'dist', 'bench', 'child.js');

/**
 * Run directories are set aside (renamed) rather than deleted between runs:
 * on this ext4, the extraction that follows `rm -rf` of a 10k-file tree takes
 * 6-7 s instead of 1 s (measured with `tar -xzf` alone), whichever side of a
 * comparison runs next, which drowns the figure being measured. They are
 * removed once the last measurement is done (removeSetAside).
 */
const setAside: string[] = [];

export function fresh(dir: string): string {
  if (existsSync(dir)) {
    const aside = `${dir}.aside-${process.pid}-${setAside.length}`;
    renameSync(dir, aside);
    setAside.push(aside);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function removeSetAside(): void {
  for (const dir of setAside.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function ratioText(r: number): string {
  return `${r.toFixed(2)}×`;
}

export function cpuNote(label: string, runs: Run[]): string {
  const m = medianRun(runs);
  return `${label}: median wall ${seconds(m.wallMs)}, CPU ${seconds(m.cpuMs)}, peak RSS ${megabytes(m.peakRss)} (wall of each run: ${runs.map((r) => seconds(r.wallMs)).join(', ')})`;
}

async function sha256Of(script: string): Promise<string> {
  const { stdout } = await execa('bash', ['-c', `set -o pipefail; ${script} | sha256sum`]);
  return stdout.split(' ')[0];
}

/** P1: packTree + parallel gzip (slugbuilder's writeSlug) against `tar -czf`. */
export async function p1SlugWriter(s: Setup): Promise<Row> {
  const slug = path.join(s.work, 'p1-slug.tgz');
  const gnu = path.join(s.work, 'p1-gnu.tgz');
  const runs = await compare(
    s.times.p1,
    () => timed('node', [child(s), 'write-slug', s.app.dir, slug]),
    () => timed('tar', ['-czf', gnu, '-C', s.app.dir, '.']),
  );
  const ours = medianRun(runs.candidate);
  const base = medianRun(runs.baseline);
  const ratio = ours.wallMs / base.wallMs;

  // Size against gzip -6 of exactly the same tar bytes, and proof that the slug holds them.
  const writeTar = `node ${child(s)} write-tar ${s.app.dir}`;
  const { stdout: gzipSize } = await execa('bash', ['-c', `set -o pipefail; ${writeTar} | gzip -6 | wc -c`]);
  const slugSize = statSync(slug).size;
  const sizeRatio = slugSize / Number(gzipSize);
  await execa('gzip', ['-t', slug]);
  const same = (await sha256Of(`gzip -dc ${slug}`)) === (await sha256Of(writeTar));
  const met = ratio <= 0.5 && Math.abs(sizeRatio - 1) <= 0.01 && same;
  return {
    id: 'P1',
    what: `slug writer, ${s.app.files.toLocaleString('en')} files / ${megabytes(s.app.bytes)}`,
    slugkit: `${seconds(ours.wallMs)}, ${megabytes(slugSize)}`,
    baseline: `\`tar -czf\` ${seconds(base.wallMs)}, ${megabytes(statSync(gnu).size)}`,
    ratio: ratioText(ratio),
    goal: '≤ 0.5×, size within 1% of gzip -6',
    met: met ? 'yes' : 'no',
    notes: [
      cpuNote(`slugkit writeSlug (packTree + ${compressorName()}, level 6)`, runs.candidate),
      cpuNote('tar -czf (GNU tar + gzip -6)', runs.baseline),
      `size: slug ${slugSize} bytes vs gzip -6 of the same tar ${gzipSize.trim()} bytes (${((sizeRatio - 1) * 100).toFixed(2)}%); gzip -t ok; decompresses to the slug's tar (its parts' tars joined, written single-threaded): ${same ? 'yes' : 'NO'}`,
    ],
  };
}

/**
 * P1-PIGZ: the same slug writer against `tar | pigz -6` (parallel gzip, as
 * many threads as cores), the native peer of slugkit's parallel gzip: parity is the goal.
 */
export async function p1Pigz(s: Setup): Promise<Row> {
  const what = `slug writer vs \`tar -cf - \\| pigz -6\`, ${s.app.files.toLocaleString('en')} files / ${megabytes(s.app.bytes)}`;
  const goal = '≤ 1.0×, size within 1% of gzip -6';
  if (!hasCommand('pigz'))
    return {
      id: 'P1-PIGZ',
      what,
      slugkit: '—',
      baseline: '—',
      ratio: '—',
      goal,
      met: 'skipped',
      notes: ['skipped: needs pigz (apt-get install pigz)'],
    };
  const slug = path.join(s.work, 'p1-pigz-slug.tgz');
  const out = path.join(s.work, 'p1-pigz.tgz');
  const runs = await compare(
    s.times.p1,
    () => timed('node', [child(s), 'write-slug', s.app.dir, slug]),
    () => timedShell(`tar -cf - -C "${s.app.dir}" . | pigz -6 > "${out}"`),
  );
  const ours = medianRun(runs.candidate);
  const base = medianRun(runs.baseline);
  const ratio = ours.wallMs / base.wallMs;
  const writeTar = `node ${child(s)} write-tar ${s.app.dir}`;
  const { stdout: gzipSize } = await execa('bash', ['-c', `set -o pipefail; ${writeTar} | gzip -6 | wc -c`]);
  const slugSize = statSync(slug).size;
  const pigzSize = statSync(out).size;
  const sizeRatio = slugSize / Number(gzipSize);
  return {
    id: 'P1-PIGZ',
    what,
    slugkit: `${seconds(ours.wallMs)}, ${megabytes(slugSize)}`,
    baseline: `\`tar \\| pigz -6\` ${seconds(base.wallMs)}, ${megabytes(pigzSize)}`,
    ratio: ratioText(ratio),
    goal,
    met: ratio <= 1.0 && Math.abs(sizeRatio - 1) <= 0.01 ? 'yes' : 'no',
    notes: [
      cpuNote(`slugkit writeSlug (packTree + ${compressorName()}, level 6)`, runs.candidate),
      cpuNote('tar -cf - | pigz -6 (GNU tar, pigz 1 thread per core)', runs.baseline),
      `size against gzip -6 of the same tar (${gzipSize.trim()} bytes): slug ${slugSize} bytes (${((sizeRatio - 1) * 100).toFixed(2)}%), pigz ${pigzSize} bytes (${((pigzSize / Number(gzipSize) - 1) * 100).toFixed(2)}%; GNU tar's bytes, not the same tar)`,
    ],
  };
}

/** P2: slugrunner's unpack (runnerBin, running `true` after it) against `tar -xzf`. */
export async function p2Unpack(s: Setup, slug: string): Promise<Row> {
  const dir = path.join(s.work, 'p2-app');
  const runner = runnerBin(s);
  const runs = await compare(
    s.times.p2,
    async () => {
      fresh(dir);
      return timed(runner, ['--app-dir', dir, '--slug', slug, '-q', 'run', 'true']);
    },
    async () => {
      fresh(dir);
      return timed('tar', ['-xzf', slug, '-C', dir]);
    },
  );
  const ours = medianRun(runs.candidate);
  const base = medianRun(runs.baseline);
  const ratio = ours.wallMs / base.wallMs;

  // Where the time goes: each stage alone, in a fresh process like the CLI.
  const stage = async (label: string, run: () => Promise<Run>) => {
    const r: Run[] = [];
    for (let i = 0; i < Math.max(1, Math.min(3, s.times.p2)); i++) r.push(await run());
    const m = medianRun(r);
    return `${label}: ${seconds(m.wallMs)} wall, ${seconds(m.cpuMs)} CPU`;
  };
  const breakdown = [
    await stage('node start-up only (`node -e 0`)', () => timed('node', ['-e', '0'])),
    await stage('Node gunzip only', () => timed('node', [child(s), 'gunzip', slug])),
    await stage('`gzip -dc` only', () => timedShell(`gzip -dc ${slug} > /dev/null`)),
    await stage('Node gunzip + node-tar parse, nothing written', () => timed('node', [child(s), 'list', slug])),
    await stage('extractArchive alone (no CLI)', async () => {
      fresh(dir);
      return timed('node', [child(s), 'extract', slug, dir]);
    }),
    await stage('floor: Node gunzip + node-tar parse + one mkdir per dir, open/write/close per file, no checks', async () => {
      fresh(dir);
      return timed('node', [child(s), 'extract-floor', slug, dir]);
    }),
  ];
  fresh(dir);
  return {
    id: 'P2',
    what: `slugrunner unpack of the P1 slug`,
    slugkit: seconds(ours.wallMs),
    baseline: `\`tar -xzf\` ${seconds(base.wallMs)}`,
    ratio: ratioText(ratio),
    goal: '≤ 1.0×',
    met: ratio <= 1.0 ? 'yes' : 'no',
    notes: [cpuNote('slugrunner --slug FILE run true', runs.candidate), cpuNote('tar -xzf', runs.baseline), ...breakdown],
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Start a web process and return how long it took until it answered 200 on PORT. */
async function timeToFirst200(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, port: number): Promise<number> {
  const start = performance.now();
  const proc = execa(command, args, { cwd, env, extendEnv: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', reject: false });
  let exited = false;
  void proc.then(() => {
    exited = true;
  });
  try {
    for (;;) {
      if (exited) throw new Error(`${command} ${args.join(' ')} exited before answering: ${(await proc).stderr}`);
      const ok = await fetch(`http://127.0.0.1:${port}/`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return performance.now() - start;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await proc;
    clearTimeout(timer);
  }
}

/**
 * P3: `bin/slugrunner start web` until the first 200, against `bash -c "<command>"`, two ways:
 * on a populated app dir (an image, a restarted dyno: the fast start, no Node) and unpacking
 * the slug into an empty app dir first (the Node runner, then the same launch script).
 */
export async function p3Start(s: Setup): Promise<Row> {
  const appDir = path.join(s.work, 'p3-app');
  const unpacked = fresh(path.join(s.work, 'p3-unpacked'));
  const populated = fresh(path.join(s.work, 'p3-populated'));
  await execa('tar', ['-xzf', s.minimalSlug, '-C', unpacked]);
  await execa('tar', ['-xzf', s.minimalSlug, '-C', populated]);
  const runner = runnerBin(s);
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  const fast: number[] = [];
  const unpack: number[] = [];
  const theirs: number[] = [];
  for (let i = -1; i < s.times.p3; i++) {
    const port = await freePort();
    const a = await timeToFirst200(runner, ['--app-dir', populated, '-q', 'start', 'web'], s.work, { ...base, PORT: String(port) }, port);
    const port1 = await freePort();
    fresh(appDir);
    const u = await timeToFirst200(
      runner,
      ['--app-dir', appDir, '--slug', s.minimalSlug, '-q', 'start', 'web'],
      s.work,
      { ...base, PORT: String(port1) },
      port1,
    );
    const port2 = await freePort();
    const b = await timeToFirst200(
      'bash',
      ['-c', 'node server.js'],
      unpacked,
      { ...base, PORT: String(port2), HOME: unpacked, DYNO: 'web.1' },
      port2,
    );
    // The first round warms the page cache (and, for a slug built before plans, writes the plan) and is left out.
    if (i >= 0) {
      fast.push(a);
      unpack.push(u);
      theirs.push(b);
    }
  }
  // Where the extra time goes: each step of a start alone, in a fresh process.
  const step = async (label: string, run: () => Promise<Run>) => {
    const r: Run[] = [];
    for (let i = 0; i < Math.max(3, Math.min(10, s.times.p3)); i++) r.push(await run());
    return `${label}: ${seconds(median(r.map((x) => x.wallMs)))} wall, ${seconds(median(r.map((x) => x.cpuMs)))} CPU`;
  };
  const cliJs = cli(s, 'slugrunner');
  const breakdown = [
    await step('`bash -c true` (one bash start)', () => timed('bash', ['-c', 'true'])),
    await step('`node -e 0` (bare Node start-up)', () => timed('node', ['-e', '0'])),
    await step('`slugrunner --help` (start-up + loading its modules)', () => timed('node', [cliJs, '--help'])),
    await step('`slugrunner --slug FILE types` into an empty dir (+ unpacking)', async () => {
      fresh(appDir);
      return timed('node', [cliJs, '--app-dir', appDir, '--slug', s.minimalSlug, '-q', 'types']);
    }),
  ];
  fresh(appDir);
  const extra = median(fast) - median(theirs);
  const extraUnpack = median(unpack) - median(theirs);
  return {
    id: 'P3',
    what: '`bin/slugrunner start web` to first HTTP 200 (examples/hello): populated app dir; unpack + start',
    slugkit: `${seconds(median(fast))}; ${seconds(median(unpack))}`,
    baseline: `\`bash -c "node server.js"\` ${seconds(median(theirs))}`,
    ratio: `+${extra.toFixed(0)} ms; +${extraUnpack.toFixed(0)} ms`,
    goal: '≤ 50 ms extra',
    met: extra <= 50 ? 'yes' : 'no',
    notes: [
      `fast start (populated app dir, current launch plan, no Node) runs (ms): ${fast.map((x) => x.toFixed(0)).join(', ')}`,
      `unpack + start (--slug into an empty app dir: the Node runner, then bin/dyno.bash) runs (ms): ${unpack.map((x) => x.toFixed(0)).join(', ')}`,
      `bash -c runs (ms): ${theirs.map((x) => x.toFixed(0)).join(', ')}`,
      'met is judged on the populated app dir (an image, a mounted app, a restarted dyno); the unpack path pays Node start-up and the unpack on top.',
      ...breakdown,
    ],
  };
}

/** P4: slugbuilder end to end with a no-op buildpack, against the same steps as a shell pipeline. */
export async function p4Build(s: Setup): Promise<Row> {
  const cache = path.join(s.work, 'p4-cache');
  const slug = path.join(s.work, 'p4-slug.tgz');
  const shellSlug = path.join(s.work, 'p4-shell.tgz');
  const bp = s.noopBuildpack;
  const script = [
    `build=$(mktemp -d) env=$(mktemp -d)`,
    `tar -xf - -C "$build"`,
    `"${bp}/bin/detect" "$build" > /dev/null`,
    `"${bp}/bin/compile" "$build" "${cache}" "$env"`,
    `"${bp}/bin/release" "$build" > "$build/.release"`,
    `tar -czf "${shellSlug}" -C "$build" .`,
    `rm -rf "$build" "$env"`,
  ].join('\n');
  fresh(cache);
  const runs = await compare(
    s.times.p4,
    // A fresh cache root for every run: each is a first build, with nothing kept from the last (the slug's parts).
    () =>
      timed('node', [cli(s, 'slugbuilder'), '--buildpack', bp, '--cache-dir', cache, '-o', slug], {
        stdinFile: s.appTar,
        env: { ...process.env, SLUGBUILDER_CACHE_DIR: fresh(path.join(s.work, 'p4-cache-root')) },
      }),
    () => timedShell(script, { stdinFile: s.appTar }),
  );
  const ours = medianRun(runs.candidate);
  const base = medianRun(runs.baseline);
  const ratio = ours.wallMs / base.wallMs;
  return {
    id: 'P4',
    what: 'slugbuilder end to end, no-op buildpack, P1 tree as a tar on stdin',
    slugkit: `${seconds(ours.wallMs)}, ${megabytes(statSync(slug).size)}`,
    baseline: `shell pipeline ${seconds(base.wallMs)}, ${megabytes(statSync(shellSlug).size)}`,
    ratio: ratioText(ratio),
    goal: '≤ 1.2×',
    met: ratio <= 1.2 ? 'yes' : 'no',
    notes: [cpuNote('slugbuilder', runs.candidate), cpuNote('tar -x; detect; compile; release; tar -cz', runs.baseline)],
  };
}

/** P5: peak RSS of slugbuilder while the ~1 GB tree streams in on stdin. */
export async function p5Memory(s: Setup): Promise<Row> {
  const cache = fresh(path.join(s.work, 'p5-cache'));
  const cacheRoot = fresh(path.join(s.work, 'p5-cache-root'));
  const slug = path.join(s.work, 'p5-slug.tgz');
  const run = await timedShell(
    `tar -cf - -C "${s.big.dir}" . | SLUGBUILDER_CACHE_DIR="${cacheRoot}" /usr/bin/time -f '%U %S %M' -o "${stageTimeFile()}" node "${cli(s, 'slugbuilder')}" --buildpack "${s.noopBuildpack}" --cache-dir "${cache}" --max-slug-size 2G -o "${slug}"`,
  );
  const node = readStageTime();
  const slugSize = statSync(slug).size;
  rmSync(slug, { force: true });
  return {
    id: 'P5',
    what: `slugbuilder peak RSS, ${megabytes(s.big.bytes)} / ${s.big.files.toLocaleString('en')} files on stdin`,
    slugkit: megabytes(node.peakRss),
    baseline: '—',
    ratio: '—',
    goal: '≤ 150 MB',
    met: node.peakRss <= 150 * 1024 ** 2 ? 'yes' : 'no',
    notes: [
      `build took ${seconds(run.wallMs)} wall, slugbuilder CPU ${seconds(node.cpuMs)}, slug ${megabytes(slugSize)}; RSS is the node process's own peak (ru_maxrss via GNU time)`,
    ],
  };
}

/** P6: warm rebuild of examples/node-express with the nodejs buildpack, against the cold build. */
export async function p6Rebuild(s: Setup): Promise<Row> {
  const example = path.join(s.repo, 'examples', 'node-express');
  const buildpack = path.join(s.repo, 'buildpacks', 'nodejs');
  const row = { id: 'P6', what: 'warm rebuild of examples/node-express (nodejs buildpack)', goal: '≤ 0.2×' };
  if (!existsSync(path.join(example, 'package.json')) || !existsSync(path.join(buildpack, 'bin', 'compile'))) {
    return {
      ...row,
      slugkit: '—',
      baseline: '—',
      ratio: '—',
      met: 'pending',
      notes: ['examples/node-express or buildpacks/nodejs is not in the tree yet'],
    };
  }
  const cache = path.join(s.work, 'p6-cache');
  const slug = path.join(s.work, 'p6-slug.tgz');
  const build = (env: NodeJS.ProcessEnv) =>
    timed('node', [cli(s, 'slugbuilder'), '--source', example, '--buildpack', buildpack, '--cache-dir', cache, '-o', slug], { env });
  const { cold, warm, c, w, ratio } = await warmVsCold(s, cache, build);
  rmSync(cache, { recursive: true, force: true });
  return {
    ...row,
    slugkit: `warm ${seconds(w.wallMs)}`,
    baseline: `cold ${seconds(c.wallMs)}`,
    ratio: ratioText(ratio),
    met: ratio <= 0.2 ? 'yes' : 'no',
    notes: [cpuNote('cold (empty cache dir; packages from the npm registry)', cold), cpuNote('warm (same cache dir)', warm)],
  };
}

/**
 * P6's pairs: a build on an emptied cache dir and an emptied cache root (so no
 * slug part kept by the last pair), then the same build warm; the medians and warm/cold.
 */
export async function warmVsCold(
  s: Setup,
  cache: string,
  build: (env: NodeJS.ProcessEnv) => Promise<Run>,
): Promise<{ cold: Run[]; warm: Run[]; c: Run; w: Run; ratio: number }> {
  const cold: Run[] = [];
  const warm: Run[] = [];
  for (let i = 0; i < s.times.p6; i++) {
    fresh(cache);
    const env = { ...process.env, SLUGBUILDER_CACHE_DIR: fresh(`${cache}-root`) };
    cold.push(await build(env));
    warm.push(await build(env));
  }
  const c = medianRun(cold);
  const w = medianRun(warm);
  return { cold, warm, c, w, ratio: w.wallMs / c.wallMs };
}
