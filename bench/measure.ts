/**
 * Measuring child processes: wall time from here, CPU time and peak RSS from
 * GNU time (`/usr/bin/time`), which reads them from the kernel when the child
 * exits, so short peaks are not missed the way polling would miss them.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export interface Run {
  wallMs: number;
  /** user + system CPU time of the child (and what it waited for). */
  cpuMs: number;
  /** Largest resident set of the command, in bytes. */
  peakRss: number;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  stdinFile?: string;
  stdoutFile?: string;
}

const GNU_TIME = '/usr/bin/time';
export const haveGnuTime = existsSync(GNU_TIME);
const scratch = mkdtempSync(path.join(tmpdir(), 'slugkit-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

function parseGnuTime(file: string): Pick<Run, 'cpuMs' | 'peakRss'> {
  const [user, sys, rssKb] = readFileSync(file, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  return { cpuMs: (user + sys) * 1000, peakRss: rssKb * 1024 };
}

/** Run `command args...` to completion; throw with its stderr if it fails. */
export async function timed(command: string, args: string[], opts: RunOptions = {}): Promise<Run> {
  const timeFile = path.join(scratch, 'time.txt');
  const argv = haveGnuTime ? [GNU_TIME, '-f', '%U %S %M', '-o', timeFile, command, ...args] : [command, ...args];
  const start = performance.now();
  await execa(argv[0], argv.slice(1), {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: opts.env === undefined,
    stdin: opts.stdinFile ? { file: opts.stdinFile } : 'ignore',
    stdout: opts.stdoutFile ? { file: opts.stdoutFile } : 'ignore',
    stderr: 'pipe',
  });
  const wallMs = performance.now() - start;
  return { wallMs, ...(haveGnuTime ? parseGnuTime(timeFile) : { cpuMs: NaN, peakRss: NaN }) };
}

/** A bash script, timed as a whole (`/usr/bin/time` inside it can time one stage). */
export async function timedShell(script: string, opts: RunOptions = {}): Promise<Run> {
  return timed('bash', ['-c', `set -euo pipefail\n${script}`], opts);
}

/** The file GNU time writes when a shell script times one of its own stages. */
export function stageTimeFile(): string {
  return path.join(scratch, 'stage-time.txt');
}

export function readStageTime(): Pick<Run, 'cpuMs' | 'peakRss'> {
  return parseGnuTime(stageTimeFile());
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Alternate candidate and baseline `times` times after one warm-up each, so
 * a burst of load elsewhere on the machine hits both alike; medians win.
 */
export async function compare(
  times: number,
  candidate: () => Promise<Run>,
  baseline: () => Promise<Run>,
): Promise<{ candidate: Run[]; baseline: Run[] }> {
  await candidate();
  await baseline();
  const out = { candidate: [] as Run[], baseline: [] as Run[] };
  for (let i = 0; i < times; i++) {
    out.candidate.push(await candidate());
    out.baseline.push(await baseline());
  }
  return out;
}

export function medianRun(runs: Run[]): Run {
  return {
    wallMs: median(runs.map((r) => r.wallMs)),
    cpuMs: median(runs.map((r) => r.cpuMs)),
    peakRss: Math.max(...runs.map((r) => r.peakRss)),
  };
}

export function seconds(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

export function megabytes(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}
