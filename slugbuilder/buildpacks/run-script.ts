/**
 * Running buildpack scripts: the one place a build starts a process for a
 * buildpack or for the app's own build code. Each runs in the build's
 * sandbox (sandbox.ts) and in its own process group, so a timeout, a signal
 * to slugbuilder or slugbuilder's death (death-guard.ts) stops the script and
 * everything it started, with the output streamed live through the
 * Heroku-style formatter.
 */
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { execa, type ResultPromise } from 'execa';
import { UserError } from '../../shared/errors.js';
import { BuildpackOutput, ERROR_PREFIX, logWritable } from '../../shared/log.js';
import { formatDuration } from '../../shared/units.js';
import { guardGroup, releaseGroup } from './death-guard.js';
import { type Sandbox, type SandboxDirs, sandboxArgv, widen } from './sandbox.js';

const running = new Set<number>();

/** Stop every buildpack process group still running (signal or timeout). */
export function killAllChildren(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const pid of running) {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }
}

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  timeoutMs?: number;
  /** Capture stdout instead of streaming it to the log (detect, release). */
  captureStdout?: boolean;
  /** The build's sandbox, with every dir this script needs in reach (arguments, cwd, files it sources). */
  sandbox: Sandbox;
}

export interface RunResult {
  exitCode?: number;
  signal?: string;
  timedOut: boolean;
  stdout: string;
  /** The last non-blank line the script printed was a ` !     ` error line: it said why it failed. */
  endedWithError: boolean;
}

/** bwrap reports a child killed by signal N as exit 128+N, as a shell does: reported as the signal again. */
function signalFromExit(code: number | undefined): NodeJS.Signals | undefined {
  if (code === undefined || code <= 128) return undefined;
  const found = Object.entries(osConstants.signals).find(([, n]) => n === code - 128);
  return found?.[0] as NodeJS.Signals | undefined;
}

export async function runScript(file: string, args: string[], opts: RunOptions): Promise<RunResult> {
  const command = sandboxArgv(opts.sandbox, file, args, opts.cwd);
  const child: ResultPromise = execa(command.file, command.args, {
    env: opts.env,
    extendEnv: false,
    cwd: opts.cwd,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: Boolean(opts.captureStdout), stderr: false },
    reject: false,
    detached: true,
    // execa's own kill-on-timeout only reaches the leader; we stop the group below.
    cleanup: true,
  });
  const pid = child.pid;
  if (pid !== undefined) {
    running.add(pid);
    guardGroup(pid);
  }

  const formatters: BuildpackOutput[] = [];
  let endedWithError = false;
  const noteLine = (line: string) => {
    if (line.trim() !== '') endedWithError = line.startsWith(ERROR_PREFIX);
  };
  const relay = (stream: NodeJS.ReadableStream | null | undefined) => {
    if (!stream) return;
    const formatter = new BuildpackOutput(noteLine);
    formatters.push(formatter);
    stream.pipe(formatter).pipe(logWritable(), { end: false });
  };
  if (!opts.captureStdout) relay(child.stdout);
  relay(child.stderr);

  let timedOut = false;
  const timer = opts.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        if (pid !== undefined) {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }, opts.timeoutMs)
    : undefined;

  try {
    const result = await child;
    // Let the last lines reach the log before the next heading is printed.
    await Promise.all(formatters.map((f) => finished(f).catch(() => undefined)));
    const sandboxSignal = opts.sandbox.bwrap ? signalFromExit(result.exitCode) : undefined;
    return {
      exitCode: sandboxSignal ? undefined : result.exitCode,
      signal: sandboxSignal ?? result.signal,
      timedOut,
      stdout: typeof result.stdout === 'string' ? result.stdout : '',
      endedWithError,
    };
  } finally {
    if (timer) clearTimeout(timer);
    if (pid !== undefined) {
      // Background jobs the script left behind die with it.
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // group already empty
      }
      running.delete(pid);
      releaseGroup(pid);
    }
  }
}

export interface ScriptContext {
  buildDir: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** The build's sandbox: the app dir and the build's scratch dirs in reach. */
  sandbox: Sandbox;
}

/**
 * bash sources each earlier `export` file, then execs the script, so the
 * script inherits what they exported without us parsing shell.
 */
const SOURCE_EXPORTS_THEN_EXEC = 'n=$1; shift; for ((i = 0; i < n; i++)); do . "$1" || exit 1; shift; done; exec "$@"';

/**
 * Runs one script (a bin/compile, an app hook) with the earlier buildpacks'
 * `export` files sourced. `what` names it in errors ("Buildpack nodejs"), and
 * `failed` is the verb for a non-zero exit ("failed to compile").
 */
export async function runWithExports(
  exports: string[],
  script: string,
  args: string[],
  ctx: ScriptContext,
  what: string,
  failed = 'failed',
  dirs: SandboxDirs = {},
): Promise<void> {
  const result = await runScript(
    'bash',
    ['-c', SOURCE_EXPORTS_THEN_EXEC, 'slugbuilder', String(exports.length), ...exports, script, ...args],
    {
      env: ctx.env,
      cwd: ctx.buildDir,
      timeoutMs: ctx.timeoutMs,
      sandbox: widen(ctx.sandbox, { ...dirs, ro: [...(dirs.ro ?? []), ...exports.map((f) => path.dirname(f))] }),
    },
  );
  if (result.timedOut) throw new UserError(`${what} timed out after ${formatDuration(ctx.timeoutMs)} (raise it with --timeout)`);
  if (result.signal) throw new UserError(`${what} was killed by ${result.signal}`);
  if (result.exitCode !== 0) {
    // A script whose last words were its own ` !     ` line has named the cause and the fix.
    if (result.endedWithError) throw new UserError(`${what} ${failed} (exit ${result.exitCode})`, 1, { explained: true });
    throw new UserError(`${what} ${failed} (exit ${result.exitCode}): its output above says why`);
  }
}
