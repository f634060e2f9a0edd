/**
 * Running buildpack scripts: each in its own process group, so a timeout or a
 * signal to slugbuilder stops the script and everything it started, with the
 * output streamed live through the Heroku-style formatter.
 */
import { finished } from 'node:stream/promises';
import { execa, type ResultPromise } from 'execa';
import { BuildpackOutput, logWritable } from '../../shared/log.js';

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
}

export interface RunResult {
  exitCode?: number;
  signal?: string;
  timedOut: boolean;
  stdout: string;
}

export async function runScript(file: string, args: string[], opts: RunOptions): Promise<RunResult> {
  const child: ResultPromise = execa(file, args, {
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
  if (pid !== undefined) running.add(pid);

  const formatters: BuildpackOutput[] = [];
  const relay = (stream: NodeJS.ReadableStream | null | undefined) => {
    if (!stream) return;
    const formatter = new BuildpackOutput();
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
    return {
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut,
      stdout: typeof result.stdout === 'string' ? result.stdout : '',
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
    }
  }
}
