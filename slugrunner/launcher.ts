/**
 * Starting the process the way a dyno does: bash sources `.profile.d/*.sh`
 * (byte order) and `.profile`, then execs `bash -c COMMAND`, so exports reach
 * the process and `$VARS` and `#` behave as on Heroku. Signals to the runner
 * go to the whole process group; after the grace period the group is killed.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants as osConstants } from 'node:os';

/**
 * $1 is the command. LC_ALL=C pins the glob order to bytes, then is restored
 * so the app sees the locale it was given.
 */
const DYNO_SHELL = [
  '__slug_cmd=$1; shift',
  '__slug_lc=${LC_ALL-__unset__}; export LC_ALL=C; __slug_profiles=(.profile.d/*.sh)',
  'if [ "$__slug_lc" = __unset__ ]; then unset LC_ALL; else export LC_ALL=$__slug_lc; fi; unset __slug_lc',
  'for __slug_f in "${__slug_profiles[@]}"; do [ -f "$__slug_f" ] && . "$__slug_f"; done',
  'unset __slug_f __slug_profiles',
  'if [ -f .profile ]; then . ./.profile; fi',
  'exec bash -c "$__slug_cmd"',
].join('\n');

export interface LaunchOptions {
  command: string;
  appDir: string;
  env: NodeJS.ProcessEnv;
  graceMs: number;
  /** 'ignore' when the runner read the slug from stdin: the process gets an empty stdin, not the rest of the slug. */
  stdin: 'inherit' | 'ignore';
}

/** `run echo 'a b'` as one command string, each word quoted as it was given. */
export function commandFromWords(words: string[]): string {
  if (words.length === 1) return words[0];
  return words.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];

/** Runs the process to its end and resolves with the exit code the runner should use. */
export function launch(opts: LaunchOptions): Promise<number> {
  // A separate group lets us signal everything the app starts; an interactive
  // one-off (a TTY on stdin) stays in the terminal's foreground group instead.
  const ownGroup = !process.stdin.isTTY;
  const child = spawn('bash', ['-c', DYNO_SHELL, 'slugrunner', opts.command], {
    cwd: opts.appDir,
    env: opts.env,
    stdio: [opts.stdin, 'inherit', 'inherit'],
    detached: ownGroup,
  });

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
    child.on('error', (err) => {
      process.stderr.write(` !     cannot start bash: ${err.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => {
      if (graceTimer) clearTimeout(graceTimer);
      for (const [sig, handler] of handlers) process.off(sig, handler);
      // When the main process ends the dyno ends: nothing it left running survives.
      if (ownGroup) signalGroup('SIGKILL');
      if (signal) resolve(128 + (osConstants.signals[signal] ?? 0));
      else resolve(code ?? 1);
    });
  });
}

/**
 * One process of a formation: the dyno shell in a process group of its own,
 * stdio as the caller wants it. The caller signals it with `-child.pid`.
 */
export function spawnInGroup(opts: { command: string; appDir: string; env: NodeJS.ProcessEnv; stdio: StdioOptions }): ChildProcess {
  return spawn('bash', ['-c', DYNO_SHELL, 'slugrunner', opts.command], { cwd: opts.appDir, env: opts.env, stdio: opts.stdio, detached: true });
}
