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
import { UserError } from '../shared/errors.js';
import { apiAtLeast, launchEnv, launchLayerDirs, runExecD, type Env } from '../shared/layer-env.js';
import { readTomlFile, type TomlTable } from '../shared/toml.js';
import { CNB_METADATA } from './environment.js';
import { quoteWords, type Start } from './launcher.js';

export interface CnbBuildpack {
  id: string;
  version?: string;
  api: string;
}

export interface CnbProcess {
  type: string;
  command: string[];
  args: string[];
  /** false: a shell process (API < 0.9 without `direct = true`). */
  direct: boolean;
  default: boolean;
  workingDir?: string;
  buildpackId?: string;
  buildpackApi: string;
}

export interface CnbApp {
  appDir: string;
  buildpacks: CnbBuildpack[];
  /** By type; a type listed twice is the later entry. */
  processes: Record<string, CnbProcess>;
  /** The type marked `default = true` (the last one, if several are). */
  defaultType?: string;
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Reads the app's metadata.toml; every problem is one line naming the file and the key. */
export async function readCnbApp(appDir: string): Promise<CnbApp> {
  const file = path.join(appDir, CNB_METADATA);
  const doc = (await readTomlFile(file)) ?? {};
  const fail = (what: string): never => {
    throw new UserError(`${file}: ${what}; rebuild the app`);
  };
  const tables = (key: string): TomlTable[] => {
    const v = doc[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) fail(`${key} must be an array of tables`);
    return v as TomlTable[];
  };

  const buildpacks: CnbBuildpack[] = tables('buildpacks').map((bp, i) => {
    if (typeof bp.id !== 'string' || !bp.id) fail(`buildpacks[${i}].id must be a string`);
    if (typeof bp.api !== 'string' || !/^\d+(\.\d+)?$/.test(bp.api)) fail(`buildpacks[${i}].api must be a version string like "0.10"`);
    return { id: bp.id as string, version: typeof bp.version === 'string' ? bp.version : undefined, api: bp.api as string };
  });

  const processes: Record<string, CnbProcess> = {};
  let defaultType: string | undefined;
  tables('processes').forEach((p, i) => {
    const where = `processes[${i}]`;
    if (typeof p.type !== 'string' || !/^[A-Za-z0-9._-]+$/.test(p.type)) fail(`${where}.type must be letters, digits, ".", "_" or "-"`);
    // Commands of API < 0.9 are strings; the builder stores them as [string], but take either.
    const command = typeof p.command === 'string' ? [p.command] : p.command;
    if (!isStrings(command) || command.length === 0 || command[0] === '') fail(`${where}.command must be a non-empty array of strings`);
    if (p.args !== undefined && !isStrings(p.args)) fail(`${where}.args must be an array of strings`);
    for (const key of ['direct', 'default'] as const) {
      if (p[key] !== undefined && typeof p[key] !== 'boolean') fail(`${where}.${key} must be true or false`);
    }
    if (p['working-dir'] !== undefined && typeof p['working-dir'] !== 'string') fail(`${where}.working-dir must be a string`);
    const buildpackId = typeof p['buildpack-id'] === 'string' ? p['buildpack-id'] : undefined;
    const api = typeof p['buildpack-api'] === 'string' ? p['buildpack-api'] : buildpacks.find((bp) => bp.id === buildpackId)?.api;
    if (!api) fail(`${where} names no buildpack-api and no listed buildpack-id`);
    const type = p.type as string;
    processes[type] = {
      type,
      command: command as string[],
      args: (p.args as string[] | undefined) ?? [],
      // From API 0.9 every process is direct; before, only one that says so.
      direct: typeof p.direct === 'boolean' ? p.direct : apiAtLeast(api as string, '0.9'),
      default: p.default === true,
      workingDir: (p['working-dir'] as string | undefined) || undefined,
      buildpackId,
      buildpackApi: api as string,
    };
    if (p.default === true) defaultType = type;
  });
  return { appDir, buildpacks, processes, defaultType };
}

const escapeId = (id: string) => id.replace(/\//g, '_');

function buildpackLayersDir(app: CnbApp, bp: CnbBuildpack): string {
  return path.join(app.appDir, '.layers', escapeId(bp.id));
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
    if (e.isFile() || (e.isSymbolicLink() && !(await stat(full).then((s) => s.isDirectory(), () => true)))) names.push(e.name);
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
