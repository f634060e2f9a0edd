/**
 * `npm run bench`: the measurements of docs/BENCHMARKS.md (P1-P9, P1-PIGZ, P6-DJANGO), each against a baseline
 * measured in the same run on the same generated data, printed as a markdown
 * table (stdout) with notes; progress goes to stderr.
 *
 *   BENCH_QUICK=1 npm run bench   small data and fewer repeats, for a smoke run
 *   npm run bench -- P1 P5        only the named measurements
 */

import { mkdirSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNodeMirror } from '../scripts/node-mirror.js';
import { p1Pigz, p1SlugWriter, p2Unpack, p3Start, p4Build, p5Memory, p6Rebuild, type Row, removeSetAside, type Setup } from './cases.js';
import { ensureTree } from './data.js';
import { p6Django } from './django.js';
import { ensureMinimalSlug, ensureNoopBuildpack, ensureSourceTar } from './fixtures.js';
import { p7Push, p8Image, stopImageBench } from './images.js';
import { haveGnuTime } from './measure.js';
import { p9PushToServing } from './pipeline.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const quick = process.env.BENCH_QUICK === '1';
const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function setup(): Promise<Setup> {
  if (!haveGnuTime) throw new Error('GNU time (/usr/bin/time) is needed for CPU and peak RSS figures: apt-get install time');
  const data = path.join(repo, '.bench-data');
  const work = path.join(data, quick ? 'work-quick' : 'work');
  mkdirSync(work, { recursive: true });
  const MiB = 1024 ** 2;
  const appSpec = quick ? { files: 1000, bytes: 12 * MiB, seed: 1 } : { files: 10_000, bytes: 120 * MiB, seed: 1 };
  // The big tree: many files plus a few large ones, so a file held in memory would show.
  const bigSpec = quick
    ? { files: 2000, bytes: 100 * MiB, bigFiles: [30 * MiB], seed: 2 }
    : { files: 20_000, bytes: 1024 * MiB, bigFiles: [256 * MiB, 128 * MiB], seed: 2 };
  const appDir = path.join(data, quick ? 'app-quick' : 'app');
  const bigDir = path.join(data, quick ? 'big-quick' : 'big');
  const app = { dir: appDir, ...ensureTree(appDir, appSpec, progress) };
  const big = { dir: bigDir, ...ensureTree(bigDir, bigSpec, progress) };
  const noopBuildpack = ensureNoopBuildpack(path.join(data, 'noop-buildpack'));
  const appTar = await ensureSourceTar(appDir, `${appDir}.tar`);
  const minimalSlug = await ensureMinimalSlug({
    builderCli: path.join(repo, 'dist', 'slugbuilder', 'cli.js'),
    appDir: path.join(repo, 'examples', 'hello'),
    buildpack: noopBuildpack,
    cacheDir: path.join(work, 'hello-cache'),
    file: path.join(work, 'hello-slug.tgz'),
  });
  const times = quick ? { p1: 2, p2: 2, p3: 5, p4: 1, p6: 1, p9: 1 } : { p1: 5, p2: 5, p3: 15, p4: 3, p6: 2, p9: 3 };
  return { repo, work, app, big, appTar, noopBuildpack, minimalSlug, times };
}

function machine(): string[] {
  return [
    `machine: ${availableParallelism()} CPUs (nproc), ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}, ${process.platform}/${process.arch}`,
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  ];
}

function table(rows: Row[]): string {
  const head = ['id', 'what', 'slugkit', 'baseline (same run)', 'ratio', 'goal', 'met'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(`| ${[r.id, r.what, r.slugkit, r.baseline, r.ratio, r.goal, r.met].join(' | ')} |`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const started = new Date();
  const info = machine();
  const s = await setup();
  // The nodejs buildpack (P6) installs Node from NODEJS_ORG_MIRROR: without one, a mirror on
  // 127.0.0.1 made from this Node (nodejs.org may be unreachable), in the report's notes.
  if (!process.env.NODEJS_ORG_MIRROR) {
    const mirror = await startNodeMirror();
    process.env.NODEJS_ORG_MIRROR = mirror.url;
    info.push(`NODEJS_ORG_MIRROR: a mirror on 127.0.0.1 serving this machine's node ${process.version}`);
  }
  const rows: Row[] = [];
  const step = async (id: string, run: () => Promise<Row>) => {
    progress(`${id}...`);
    const row = await run();
    progress(`${id}: ${row.slugkit} vs ${row.baseline} = ${row.ratio} (goal ${row.goal}: ${row.met})`);
    rows.push(row);
  };
  // `npm run bench -- P2 P5` runs only those (P2 needs P1's slug from an earlier run).
  const only = process.argv.slice(2).map((id) => id.toUpperCase());
  const cases: Array<[string, () => Promise<Row>]> = [
    ['P1', () => p1SlugWriter(s)],
    ['P1-PIGZ', () => p1Pigz(s)],
    ['P2', () => p2Unpack(s, path.join(s.work, 'p1-slug.tgz'))],
    ['P3', () => p3Start(s)],
    ['P4', () => p4Build(s)],
    ['P5', () => p5Memory(s)],
    ['P6', () => p6Rebuild(s)],
    ['P6-DJANGO', () => p6Django(s)],
    ['P7', () => p7Push(s)],
    ['P8', () => p8Image(s)],
    ['P9', () => p9PushToServing(s)],
  ];
  try {
    for (const [id, run] of cases) if (only.length === 0 || only.includes(id)) await step(id, run);
  } finally {
    await stopImageBench();
  }

  const out = [
    `slugkit benchmarks${quick ? ' (BENCH_QUICK=1: small data, few repeats)' : ''}, ${started.toISOString()}`,
    ...info,
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
    `times are medians of alternating runs (P1 ${s.times.p1}, P2 ${s.times.p2}, P3 ${s.times.p3}, P4 ${s.times.p4}, P6 ${s.times.p6}, P9 ${s.times.p9} each, after a warm-up)`,
    '',
    table(rows),
    '',
    'notes:',
    ...rows.flatMap((r) => r.notes.map((n) => `- ${r.id} ${n}`)),
    '',
    `goals met: ${
      rows
        .filter((r) => r.met === 'yes')
        .map((r) => r.id)
        .join(', ') || 'none'
    }; not met: ${
      rows
        .filter((r) => r.met === 'no')
        .map((r) => r.id)
        .join(', ') || 'none'
    }; pending: ${
      rows
        .filter((r) => r.met === 'pending')
        .map((r) => r.id)
        .join(', ') || 'none'
    }; skipped: ${
      rows
        .filter((r) => r.met === 'skipped')
        .map((r) => r.id)
        .join(', ') || 'none'
    }`,
  ];
  process.stdout.write(out.join('\n') + '\n');
  removeSetAside();
}

await main();
