/**
 * Starting the process the way a dyno does, through bin/dyno.bash: the one
 * launch script bin/slugrunner's fast start runs too. It makes the dyno
 * environment from the launch plan, sources the profile scripts and execs
 * the process (see that file). Here the process gets its own group: signals
 * to the runner go to the whole group, and after the grace period the group
 * is killed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Start } from '../shared/app/processes.js';
import { packageRoot } from '../shared/package.js';

export type { Start };

/** What bin/dyno.bash starts a process from, for one dyno or each of a formation's. */
export interface ProcessSpec {
  start: Start;
  appDir: string;
  /** Where the process runs; the app dir by default. Profile scripts are always sourced in the app dir. */
  cwd?: string;
  /** The process type (its layer env and profile scripts), none for a one-off. */
  type?: string;
  dyno: string;
  /** The launch plan (shared/app/launch-plan.ts), handed to the script on fd 3. */
  plan: Buffer;
  /** The environment to start from; with `envReady` it is the process's whole environment. */
  env: NodeJS.ProcessEnv;
  envReady: boolean;
}

export interface LaunchOptions extends ProcessSpec {
  graceMs: number;
  /** 'ignore' when the runner read the slug from stdin: the process gets an empty stdin, not the rest of the slug. */
  stdin: 'inherit' | 'ignore';
}

export interface SpawnOptions extends ProcessSpec {
  /** stdin, stdout, stderr; fd 3 carries the plan. */
  stdio: ['inherit' | 'ignore', 'inherit' | 'pipe', 'inherit' | 'pipe'];
  /** Its own process group, so the whole group can be signalled. */
  ownGroup: boolean;
}

export const DYNO_SCRIPT = () => path.join(packageRoot(), 'bin', 'dyno.bash');

/**
 * `run echo '$HOME'` as one command line for bash: the words joined by
 * spaces, as `heroku run`, herokuish's /exec and the lifecycle launcher's
 * user-provided commands take them, so `$HOME` is expanded in the dyno.
 */
export function commandFromWords(words: string[]): string {
  return words.join(' ');
}

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];

/** Starts bin/dyno.bash for one process, the launch plan on its fd 3. */
export function spawnProcess(opts: SpawnOptions): ChildProcess {
  const cwd = opts.cwd ?? opts.appDir;
  const words = 'argv' in opts.start ? ['direct', cwd, ...opts.start.argv] : ['shell', cwd, opts.start.shell];
  const env = { ...opts.env };
  if (opts.envReady) env.SLUGKIT_ENV_READY = '1';
  else delete env.SLUGKIT_ENV_READY;
  const child = spawn('bash', [DYNO_SCRIPT(), opts.appDir, opts.dyno, opts.type ?? '', ...words], {
    cwd: opts.appDir,
    env,
    stdio: [...opts.stdio, 'pipe'],
    detached: opts.ownGroup,
  });
  const planPipe = child.stdio[3] as Writable | null;
  // The script may be gone before it read the plan (killed): that is reported by its exit.
  planPipe?.on('error', () => undefined);
  planPipe?.end(opts.plan);
  return child;
}

/** Runs the process to its end and resolves with the exit code the runner should use. */
export function launch(opts: LaunchOptions): Promise<number> {
  // A separate group lets us signal everything the app starts; an interactive
  // one-off (a TTY on stdin) stays in the terminal's foreground group instead.
  const ownGroup = !process.stdin.isTTY;
  const child = spawnProcess({ ...opts, stdio: [opts.stdin, 'inherit', 'inherit'], ownGroup });

  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      if (ownGroup) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      // the group is already gone
    }
  };

  let graceTimer: NodeJS.Timeout | undefined;
  const handlers = new Map<NodeJS.Signals, () => void>();
  const unhook = () => {
    if (graceTimer) clearTimeout(graceTimer);
    for (const [sig, handler] of handlers) process.off(sig, handler);
  };
  for (const signal of FORWARDED) {
    const handler = () => {
      signalGroup(signal);
      if ((signal === 'SIGTERM' || signal === 'SIGINT') && !graceTimer) {
        graceTimer = setTimeout(() => signalGroup('SIGKILL'), opts.graceMs);
      }
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }

  return new Promise((resolve) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      unhook();
      process.stderr.write(` !     cannot run bash: ${err.message}\n`);
      resolve(err.code === 'EACCES' ? 126 : 127);
    });
    child.on('exit', (code, signal) => {
      unhook();
      // When the main process ends the dyno ends: nothing it left running survives.
      if (ownGroup) signalGroup('SIGKILL');
      if (signal) resolve(128 + (osConstants.signals[signal] ?? 0));
      else resolve(code ?? 1);
    });
  });
}
