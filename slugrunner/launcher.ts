/**
 * Starting the process the way a dyno does. A shell start: bash sources the
 * launch layers' `profile.d` scripts (Cloud Native Buildpacks before API
 * 0.9), `.profile.d/*.sh` (byte order) and `.profile`, then execs
 * `bash -c COMMAND` in the working dir, so exports reach the process and
 * `$VARS` and `#` behave as on Heroku. A direct start (a CNB process) is
 * exec'd with no shell and no profile scripts. Either way the process gets
 * its own group: signals to the runner go to the whole group, and after the
 * grace period the group is killed.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants as osConstants } from 'node:os';

/**
 * $1 is the working dir, $2 the number of layer profile scripts, then those
 * scripts, then the command. LC_ALL=C pins the glob order to bytes, then is
 * restored so the app sees the locale it was given.
 */
const DYNO_SHELL = [
  '__slug_wd=$1; __slug_n=$2; shift 2',
  '__slug_layer_profiles=("${@:1:$__slug_n}"); shift "$__slug_n"; __slug_cmd=$1',
  'for __slug_f in "${__slug_layer_profiles[@]}"; do . "$__slug_f"; done',
  '__slug_lc=${LC_ALL-__unset__}; export LC_ALL=C; __slug_profiles=(.profile.d/*.sh)',
  'if [ "$__slug_lc" = __unset__ ]; then unset LC_ALL; else export LC_ALL=$__slug_lc; fi; unset __slug_lc',
  'for __slug_f in "${__slug_profiles[@]}"; do [ -f "$__slug_f" ] && . "$__slug_f"; done',
  'unset __slug_f __slug_profiles __slug_layer_profiles __slug_n',
  'if [ -f .profile ]; then . ./.profile; fi',
  'cd -- "$__slug_wd" || exit 1; unset __slug_wd',
  'exec bash -c "$__slug_cmd"',
].join('\n');

/** How the process starts: a command line run by bash, or an argv exec'd as it is. */
export type Start = { shell: string; profiles?: string[] } | { argv: string[] };

export interface LaunchOptions {
  start: Start;
  appDir: string;
  /** Where the process runs; the app dir by default. Profile scripts are always sourced in the app dir. */
  cwd?: string;
  env: NodeJS.ProcessEnv;
  graceMs: number;
  /** 'ignore' when the runner read the slug from stdin: the process gets an empty stdin, not the rest of the slug. */
  stdin: 'inherit' | 'ignore';
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `run echo 'a b'` as one command string, each word quoted as it was given. */
export function commandFromWords(words: string[]): string {
  if (words.length === 1) return words[0];
  return words.map(shellQuote).join(' ');
}

/** Words as a command line that runs exactly them, whatever they contain. */
export function quoteWords(words: string[]): string {
  return words.map(shellQuote).join(' ');
}

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];

/** What a process is started from, for one dyno or each of a formation's. */
export interface SpawnOptions {
  start: Start;
  appDir: string;
  cwd?: string;
  env: NodeJS.ProcessEnv;
  stdio: StdioOptions;
  /** Its own process group, so the whole group can be signalled. */
  ownGroup: boolean;
}

/** Starts the process: the dyno shell for a command line, the argv itself for a direct one. */
export function spawnProcess(opts: SpawnOptions): { child: ChildProcess; file: string; direct: boolean } {
  const cwd = opts.cwd ?? opts.appDir;
  const direct = 'argv' in opts.start;
  const [file, args] =
    'argv' in opts.start
      ? [opts.start.argv[0], opts.start.argv.slice(1)]
      : ['bash', ['-c', DYNO_SHELL, 'slugrunner', cwd, String(opts.start.profiles?.length ?? 0), ...(opts.start.profiles ?? []), opts.start.shell]];
  const child = spawn(file, args, {
    cwd: direct ? cwd : opts.appDir,
    env: direct ? { ...opts.env, PWD: cwd } : opts.env,
    stdio: opts.stdio,
    detached: opts.ownGroup,
  });
  return { child, file, direct };
}

/** Runs the process to its end and resolves with the exit code the runner should use. */
export function launch(opts: LaunchOptions): Promise<number> {
  // A separate group lets us signal everything the app starts; an interactive
  // one-off (a TTY on stdin) stays in the terminal's foreground group instead.
  const ownGroup = !process.stdin.isTTY;
  const { child, file, direct } = spawnProcess({ ...opts, stdio: [opts.stdin, 'inherit', 'inherit'], ownGroup });

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
      // As a shell would: 127 for a command that is not there, 126 for one that cannot be run.
      if (direct && err.code === 'ENOENT') {
        const where = file.includes('/') ? '' : ' on PATH';
        process.stderr.write(` !     cannot run ${file}: not found${where}; check the buildpack's launch.toml and that --app-dir is the dir the app was built in\n`);
        resolve(127);
      } else {
        process.stderr.write(` !     cannot run ${file}: ${err.message}\n`);
        resolve(err.code === 'EACCES' ? 126 : 127);
      }
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
