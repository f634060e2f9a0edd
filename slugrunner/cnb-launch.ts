/**
 * Cloud Native Buildpack processes, launched as the lifecycle's launcher
 * launches them. The builder leaves `<app>/.layers/config/metadata.toml`:
 * the group's CNBs in chain order and the processes they won in the chain
 * merge. From it and the launch layers under `<app>/.layers/<id>/` this
 * module gives the launch environment, the profile scripts a shell process
 * sources and how a process starts. The CLI loads it only for apps that have
 * the file, so a classic slug pays nothing for it.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { type LaunchBuildpack, type LaunchProcess, layersDirName, readLaunchMetadata } from '../shared/launch-metadata.js';
import { apiAtLeast, type Env, launchEnv, launchLayerDirs, runExecD } from '../shared/layer-env.js';
import { quoteWords } from '../shared/shell.js';
import type { Start } from './launcher.js';

export type CnbBuildpack = LaunchBuildpack;
export type CnbProcess = LaunchProcess;

export interface CnbApp {
  appDir: string;
  buildpacks: CnbBuildpack[];
  /** By type; a type listed twice is the later entry. */
  processes: Record<string, CnbProcess>;
  /** The type marked `default = true` (the last one, if several are). */
  defaultType?: string;
}

/** Reads the app's launch metadata; every problem is one line naming the file and the key. */
export async function readCnbApp(appDir: string): Promise<CnbApp> {
  const meta = await readLaunchMetadata(appDir);
  const processes: Record<string, CnbProcess> = {};
  let defaultType: string | undefined;
  for (const p of meta?.processes ?? []) {
    processes[p.type] = p;
    if (p.default) defaultType = p.type;
  }
  return { appDir, buildpacks: meta?.buildpacks ?? [], processes, defaultType };
}

export function buildpackLayersDir(app: CnbApp, bp: CnbBuildpack): string {
  return path.join(app.appDir, '.layers', layersDirName(bp.id));
}

/**
 * The environment of a process: the launch layers' bin/, lib/ and env files
 * (buildpacks in chain order), then their exec.d executables. `processType`
 * picks `env.launch/<type>/` and `exec.d/<type>/`; a one-off has none.
 */
export async function cnbEnvironment(base: Env, app: CnbApp, processType?: string): Promise<Env> {
  const layers = await launchLayerDirs(app.buildpacks.map((bp) => buildpackLayersDir(app, bp)));
  const env = await launchEnv(base, layers, processType);
  const apiOf = new Map(app.buildpacks.map((bp) => [buildpackLayersDir(app, bp), bp.api]));
  const execEnv = base.CNB_EXEC_ENV || 'production';
  return runExecD(env, layers, {
    appDir: app.appDir,
    processType,
    extraEnv: (layer) => (apiAtLeast(apiOf.get(path.dirname(layer)) ?? '0', '0.12') ? { CNB_EXEC_ENV: execEnv } : undefined),
  });
}

async function filesIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const names: string[] = [];
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (
      e.isFile() ||
      (e.isSymbolicLink() &&
        !(await stat(full).then(
          (s) => s.isDirectory(),
          () => true,
        )))
    )
      names.push(e.name);
  }
  return names.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)).map((n) => path.join(dir, n));
}

/**
 * The `profile.d` scripts a shell-run process sources, from the launch layers
 * of buildpacks before API 0.9 (0.9 dropped them): every layer's
 * `profile.d/*`, then every layer's `profile.d/<type>/*`.
 */
export async function layerProfiles(app: CnbApp, processType?: string): Promise<string[]> {
  const dirs = app.buildpacks.filter((bp) => !apiAtLeast(bp.api, '0.9')).map((bp) => buildpackLayersDir(app, bp));
  const layers = await launchLayerDirs(dirs);
  const scripts: string[] = [];
  for (const layer of layers) scripts.push(...(await filesIn(path.join(layer, 'profile.d'))));
  if (processType) for (const layer of layers) scripts.push(...(await filesIn(path.join(layer, 'profile.d', processType))));
  return scripts;
}

/** A word a shell expands ($VAR, $(...)) but does not split, as the launcher treats the tokens of a shell process. */
function expandedWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `"${word.replace(/["\\]/g, '\\$&')}"`;
}

export interface CnbStart {
  start: Start;
  /** The command line shown in the log and by `types`. */
  display: string;
  cwd: string;
}

/**
 * How a process starts, with the user's arguments as the launcher takes
 * them: extra entries of an array command always come first; user arguments
 * replace `args` (for a buildpack before API 0.9 they are appended to them,
 * as the lifecycle does). A direct process execs command[0]; a shell process
 * runs its command as a script when it has no arguments, else runs the
 * command and each argument as one shell-expanded word each.
 */
export function cnbStart(app: CnbApp, proc: CnbProcess, userArgs: string[] = []): CnbStart {
  const [first, ...always] = proc.command;
  let args: string[];
  if (userArgs.length === 0) args = proc.args;
  else if (always.length > 0 || apiAtLeast(proc.buildpackApi, '0.9')) args = userArgs;
  else args = [...proc.args, ...userArgs];
  const cwd = proc.workingDir ? path.resolve(app.appDir, proc.workingDir) : app.appDir;
  if (proc.direct) {
    const argv = [first, ...always, ...args];
    return { start: { argv }, display: quoteWords(argv), cwd };
  }
  const line = args.length === 0 && always.length === 0 ? first : [first, ...always, ...args].map(expandedWord).join(' ');
  return { start: { shell: line }, display: line, cwd };
}

/** Each process as the command line `types` shows. */
export function cnbCommandLines(app: CnbApp): Record<string, string> {
  const lines: Record<string, string> = {};
  for (const [type, proc] of Object.entries(app.processes)) lines[type] = cnbStart(app, proc).display;
  return lines;
}
