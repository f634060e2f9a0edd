/**
 * Which command each process type of an app runs, the one rule every user of
 * it asks (`slugrunner types` and `start`, the formation, the launch plan,
 * the build's `--summary` and image labels, `--slug` images): the Procfile
 * wins over a Cloud Native Buildpack process, which wins over the release's
 * default_process_types. The default type is the CNB process marked
 * default, else web, else the only type (defaultProcessType).
 *
 * A CNB process starts as the lifecycle's launcher starts it (cnbStart), and
 * the same rendering is its command line everywhere, `.release` included.
 */
import path from 'node:path';
import { quoteWords } from '../shell.js';
import type { BuiltApp } from './app.js';
import { userArgsReplaceArgs } from './buildpack-api.js';
import type { LaunchProcess } from './launch-metadata.js';

/** How a process starts: a command line run by bash, or an argv exec'd as it is. */
export type Start = { shell: string } | { argv: string[] };

/** Where a type's command came from. */
export type ProcessKind = 'procfile' | 'cnb' | 'release';

export interface ProcessStart {
  start: Start;
  /** The command line shown in the log, by `types`, in `--summary` and the image labels. */
  display: string;
  /** Absolute: the app dir, or a CNB process's working-dir in it. */
  cwd: string;
}

export interface AppProcess extends ProcessStart {
  type: string;
  kind: ProcessKind;
  /** The CNB process, for kind 'cnb'. */
  cnb?: LaunchProcess;
}

export interface AppProcesses {
  /** In the order `types` lists them. */
  byType: Record<string, AppProcess>;
  /** What `start` runs without a type. */
  defaultType: string;
}

export function resolveProcesses(app: Pick<BuiltApp, 'appDir' | 'release' | 'procfile' | 'cnb'>): AppProcesses {
  const byType: Record<string, AppProcess> = {};
  // Object.assign order: a type keeps the place it first had, its value is the winner's.
  for (const [type, line] of Object.entries(app.release.default_process_types)) {
    byType[type] = { type, kind: 'release', ...shellStart(app.appDir, line) };
  }
  for (const [type, proc] of Object.entries(app.cnb?.processes ?? {})) {
    byType[type] = { type, kind: 'cnb', cnb: proc, ...cnbStart(app.appDir, proc) };
  }
  for (const [type, line] of Object.entries(app.procfile)) {
    byType[type] = { type, kind: 'procfile', ...shellStart(app.appDir, line) };
  }
  return { byType, defaultType: defaultProcessType(Object.keys(byType), app.cnb?.defaultType) };
}

/**
 * What runs when no type is named (`slugrunner start`, the image's Cmd): the
 * CNB process marked `default = true`, else web, else the only type; web
 * when there is no telling (start then lists the types).
 */
export function defaultProcessType(types: readonly string[], cnbDefault?: string): string {
  if (cnbDefault !== undefined && types.includes(cnbDefault)) return cnbDefault;
  if (types.includes('web') || types.length !== 1) return 'web';
  return types[0];
}

/** type -> command line, as `types --json`, `--summary` and the image label show them. */
export function commandLines(processes: AppProcesses): Record<string, string> {
  return Object.fromEntries(Object.values(processes.byType).map((p) => [p.type, p.display]));
}

/**
 * How a type starts with the user's arguments: appended to a command line
 * (quoted), or as a CNB process takes them (cnbStart).
 */
export function startWithArgs(appDir: string, proc: AppProcess, args: readonly string[]): ProcessStart {
  if (args.length === 0) return proc;
  if (proc.cnb) return cnbStart(appDir, proc.cnb, args);
  return shellStart(appDir, `${proc.display} ${quoteWords(args)}`);
}

function shellStart(appDir: string, line: string): ProcessStart {
  return { start: { shell: line }, display: line, cwd: appDir };
}

/**
 * One token of a shell process with arguments, as the lifecycle's launcher
 * evaluates it: the token is put between double quotes and evaluated by
 * `eval echo`, so `$VAR` and `$(...)` expand and quotes inside it are
 * removed (`VAR: "%s"` gives `VAR: %s`), and the result stays one word.
 * Plain words stay as they are; a token without `"` or `\` is the same
 * double-quoted; any other is written as that eval.
 */
function evaluatedWord(word: string): string {
  // echo would take these as its options.
  if (/^-[neE]+$/.test(word)) return `"$(eval ${quoteWords([`echo "${word}"`])})"`;
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  if (!/["\\]/.test(word) && !word.endsWith('\n')) return `"${word}"`;
  return `"$(eval ${quoteWords([`echo "${word}"`])})"`;
}

/**
 * How a CNB process starts, with the user's arguments as the launcher takes
 * them: extra entries of an array command always come first; user arguments
 * replace `args` (for a buildpack before API 0.9 they are appended to them,
 * as the lifecycle does). A direct process execs command[0]; a shell process
 * runs its command as a script when it has no arguments, else runs the
 * command and each argument as one shell-expanded word each.
 */
export function cnbStart(appDir: string, proc: LaunchProcess, userArgs: readonly string[] = []): ProcessStart {
  const [first, ...always] = proc.command;
  let args: readonly string[];
  if (userArgs.length === 0) args = proc.args;
  else if (always.length > 0 || userArgsReplaceArgs(proc.buildpackApi)) args = userArgs;
  else args = [...proc.args, ...userArgs];
  const cwd = proc.workingDir ? path.resolve(appDir, proc.workingDir) : appDir;
  if (proc.direct) {
    const argv = [first, ...always, ...args];
    return { start: { argv }, display: quoteWords(argv), cwd };
  }
  const line = args.length === 0 && always.length === 0 ? first : [first, ...always, ...args].map(evaluatedWord).join(' ');
  return { start: { shell: line }, display: line, cwd };
}

/** A CNB process's command line, as `.release` and `types` give it. */
export function cnbCommandLine(proc: LaunchProcess): string {
  return cnbStart('/', proc).display;
}
