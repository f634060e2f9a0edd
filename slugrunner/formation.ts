/**
 * Several process types side by side, as foreman runs a Procfile:
 *   slugrunner start web worker
 *   slugrunner start --formation web=2,worker=1
 * Each process runs the dyno shell in a process group of its own, with
 * DYNO=<type>.<n> and its own PORT; its output lines are prefixed
 * `web.1    | ` (coloured on a TTY only). When one process ends, or the
 * runner gets SIGTERM/SIGINT, every other group gets SIGTERM and, after the
 * grace period, SIGKILL.
 *
 * PORT: web.N gets base+N-1; the Kth other type (in formation order) gets
 * base+100*K+N-1, so worker.1 listens on 5100 beside web.1 on 5000. The base
 * is $PORT, else 5000.
 */
import type { ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Writable } from 'node:stream';
import { UsageError, UserError } from '../shared/errors.js';
import { log } from '../shared/log.js';
import { isProcessTypeName, type ProcessTypes } from '../shared/procfile.js';
import { MAX_PORT } from './environment.js';
import { type Start, spawnProcess } from './launcher.js';

/** Type -> how many processes of it, in the order given. */
export type Formation = Array<{ type: string; count: number }>;

const MAX_PER_TYPE = 100;

/** `start web worker` and/or `--formation web=2,worker=1`; the two are merged, the spec's counts winning. */
export function parseFormation(types: string[], spec: string | undefined): Formation {
  const formation: Formation = [];
  const set = (type: string, count: number, from: string) => {
    if (!isProcessTypeName(type)) throw new UsageError(`${from}: "${type}" is not a process type name (letters, digits, _ and -)`);
    const known = formation.find((f) => f.type === type);
    if (known) known.count = count;
    else formation.push({ type, count });
  };
  for (const type of types) set(type, 1, 'start');
  for (const item of (spec ?? '').split(',')) {
    if (spec === undefined) break;
    const m = /^([^=]+)=(\d+)$/.exec(item.trim());
    if (!m) throw new UsageError(`--formation "${spec}": write it as TYPE=COUNT[,TYPE=COUNT...], e.g. web=2,worker=1`);
    const count = Number(m[2]);
    if (count > MAX_PER_TYPE) throw new UsageError(`--formation ${m[1]}=${count}: at most ${MAX_PER_TYPE} processes of one type`);
    set(m[1], count, '--formation');
  }
  const running = formation.filter((f) => f.count > 0);
  if (running.length === 0)
    throw new UsageError('the formation runs no process: give a type with a count of 1 or more, e.g. --formation web=1');
  return running;
}

export interface Dyno {
  name: string;
  type: string;
  command: string;
  port: number;
}

/** The PORT of the `n`th process of a type: web from the base, the Kth other type from base+100*K. */
function dynoPorts(formation: Formation, basePort: number): Array<{ type: string; n: number; port: number }> {
  let other = 0;
  return formation.flatMap(({ type, count }) => {
    const offset = type === 'web' ? 0 : 100 * ++other;
    return Array.from({ length: count }, (_, i) => ({ type, n: i + 1, port: basePort + offset + i }));
  });
}

/** Every process of the formation gets a port there is: checked before anything is unpacked or started. */
export function checkFormationPorts(formation: Formation, basePort: number): void {
  const over = dynoPorts(formation, basePort).find((d) => d.port > MAX_PORT);
  if (over)
    throw new UsageError(
      `PORT=${basePort} leaves no port for ${over.type}.${over.n} (it would get ${over.port}, above ${MAX_PORT}): set a lower PORT`,
    );
}

/** The processes a formation starts, each with its DYNO name and PORT. */
export function planDynos(formation: Formation, processTypes: ProcessTypes, basePort: number): Dyno[] {
  const known = Object.keys(processTypes).sort();
  for (const { type } of formation) {
    if (!(type in processTypes)) {
      throw new UserError(
        `unknown process type "${type}": this app has ${known.length ? known.join(', ') : 'no process types (add a Procfile)'}`,
      );
    }
  }
  checkFormationPorts(formation, basePort);
  return dynoPorts(formation, basePort).map(({ type, n, port }) => ({ name: `${type}.${n}`, type, command: processTypes[type], port }));
}

const COLOURS = [36, 33, 32, 35, 34, 31];

/** Writes whole lines of one stream with a prefix; a last line without a newline is flushed at the end. */
function prefixer(out: Writable, prefix: string): { write: (chunk: Buffer) => void; end: () => void } {
  let partial = '';
  return {
    write(chunk) {
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      if (lines.length) out.write(lines.map((line) => prefix + line + '\n').join(''));
    },
    end() {
      if (partial) out.write(prefix + partial + '\n');
      partial = '';
    },
  };
}

/** How one dyno starts: the same resolution a single `start TYPE` uses (Procfile, CNB process, release). */
export interface PreparedDyno {
  start: Start;
  cwd?: string;
  type?: string;
  plan: Buffer;
  env: NodeJS.ProcessEnv;
  envReady: boolean;
  /** The command as the log shows it. */
  display: string;
}

export interface FormationOptions {
  dynos: Dyno[];
  appDir: string;
  /** Called once per dyno with the environment it starts from (PORT and DYNO set). */
  prepare(dyno: Dyno, base: NodeJS.ProcessEnv): Promise<PreparedDyno>;
  graceMs: number;
  quiet: boolean;
}

interface Running {
  dyno: Dyno;
  child: ChildProcess;
  done: Promise<void>;
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
/** Passed on to every process; the formation keeps running. */
const PASSED_SIGNALS: NodeJS.Signals[] = ['SIGHUP', 'SIGQUIT', 'SIGUSR2'];

/**
 * Runs the formation until every process has ended. Resolves with the exit
 * code of the first process that failed (exited non-zero, or died of a
 * signal the runner did not send), or 0 when all stopped cleanly.
 */
export async function runFormation(opts: FormationOptions): Promise<number> {
  const width = Math.max(...opts.dynos.map((d) => d.name.length));
  const tty = Boolean(process.stdout.isTTY);
  let stopping = false;
  let firstFailure: number | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  const running: Running[] = [];

  const signalGroup = (child: ChildProcess, signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // the group is already gone
    }
  };
  const stopAll = (why: string) => {
    if (stopping) return;
    stopping = true;
    if (!opts.quiet) log.step(`Stopping all processes with SIGTERM (${why})`);
    for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) signalGroup(r.child, 'SIGTERM');
    graceTimer = setTimeout(() => {
      for (const r of running) signalGroup(r.child, 'SIGKILL');
    }, opts.graceMs);
  };

  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const signal of STOP_SIGNALS) handlers.set(signal, () => stopAll(`${signal} received`));
  for (const signal of PASSED_SIGNALS)
    handlers.set(signal, () => {
      for (const r of running) signalGroup(r.child, signal);
    });
  // Resolve every dyno before any starts: a bad one fails the formation with nothing running.
  const prepared: PreparedDyno[] = [];
  for (const dyno of opts.dynos) prepared.push(await opts.prepare(dyno, { ...process.env, PORT: String(dyno.port), DYNO: dyno.name }));
  for (const [signal, handler] of handlers) process.on(signal, handler);

  opts.dynos.forEach((dyno, i) => {
    const label = dyno.name.padEnd(width);
    const prefix = tty ? `\x1b[${COLOURS[i % COLOURS.length]}m${label} |\x1b[0m ` : `${label} | `;
    const p = prepared[i];
    if (!opts.quiet) log.step(`Starting ${dyno.name}: ${p.display} (PORT=${dyno.port})`);
    const child = spawnProcess({ ...p, appDir: opts.appDir, dyno: dyno.name, stdio: ['ignore', 'pipe', 'pipe'], ownGroup: true });
    const out = prefixer(process.stdout, prefix);
    const err = prefixer(process.stderr, prefix);
    child.stdout?.on('data', out.write);
    child.stderr?.on('data', err.write);
    const done = new Promise<void>((resolve) => {
      child.on('error', (e) => {
        process.stderr.write(` !     cannot start ${dyno.name}: ${e.message}\n`);
        firstFailure ??= 127;
        stopAll(`${dyno.name} could not start`);
        resolve();
      });
      // 'close': the pipes are drained, so the last lines are out before the summary.
      child.on('close', (code, signal) => {
        out.end();
        err.end();
        // Whatever the process left running in its group goes with it.
        signalGroup(child, 'SIGKILL');
        // A process that ends on the SIGTERM the runner sent stopped cleanly; one that needed SIGKILL did not.
        const stoppedByUs = stopping && (signal === 'SIGTERM' || code === 143);
        const status = signal ? 128 + (osConstants.signals[signal] ?? 0) : (code ?? 1);
        const failed = status !== 0 && !stoppedByUs;
        if (failed) firstFailure ??= status;
        const ended = `${dyno.name} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`;
        if (stopping) {
          if (!opts.quiet) log.info(ended);
        } else stopAll(ended);
        resolve();
      });
    });
    running.push({ dyno, child, done });
  });

  await Promise.all(running.map((r) => r.done));
  if (graceTimer) clearTimeout(graceTimer);
  for (const [signal, handler] of handlers) process.off(signal, handler);
  return firstFailure ?? 0;
}
