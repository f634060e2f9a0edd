/**
 * The environment Cloud Native Buildpack layers give, at build time (to later
 * buildpacks) and at launch (to the app's processes), by the Buildpack API's
 * rules. The builder and the runner both use it, so it imports nothing from
 * either.
 *
 * Buildpacks are walked in group order and each buildpack's layers in
 * alphabetical order. At build time each layer is done completely (paths,
 * then env files) before the next; at launch the lifecycle's launcher
 * prepends the path directories of all of a buildpack's layers first, then
 * applies their env files, and so does launchEnv.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from './errors.js';
import { isDir } from './fs.js';
import { parseToml } from './toml.js';

export type Env = Record<string, string>;

/** A process environment without its unset entries, as the layer rules take it. */
export function stringEnv(env: NodeJS.ProcessEnv): Env {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}
export type Phase = 'build' | 'launch';

/** Layer sub-directories and the path variables they are prepended to. */
export const LAYER_PATH_VARS: Record<Phase, ReadonlyArray<readonly [string, readonly string[]]>> = {
  build: [
    ['bin', ['PATH']],
    ['lib', ['LD_LIBRARY_PATH', 'LIBRARY_PATH']],
    ['include', ['CPATH']],
    ['pkgconfig', ['PKG_CONFIG_PATH']],
  ],
  launch: [
    ['bin', ['PATH']],
    ['lib', ['LD_LIBRARY_PATH']],
  ],
};

/** The comparison lives with the other Buildpack API rules; said here for callers that import it from here. */
export { apiAtLeast } from './app/buildpack-api.js';

function sorted(names: string[]): string[] {
  return names.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
}

/** Names of the directories in `dir`, sorted; none when it is absent. */
export async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const names: string[] = [];
  for (const e of entries) {
    if (e.isDirectory() || (e.isSymbolicLink() && (await isDir(path.join(dir, e.name))))) names.push(e.name);
  }
  return sorted(names);
}

function prefixed(value: string | undefined, delim: string): string {
  return value ? delim + value : '';
}

/** Prepends `layerDir`'s bin/, lib/, ... to their variables, for the phase. */
export async function addLayerPaths(env: Env, layerDir: string, phase: Phase): Promise<Env> {
  const out = { ...env };
  for (const [sub, vars] of LAYER_PATH_VARS[phase]) {
    const dir = path.join(path.resolve(layerDir), sub);
    if (!(await isDir(dir))) continue;
    for (const name of vars) out[name] = dir + prefixed(out[name], path.delimiter);
  }
  return out;
}

export type EnvRule = 'override' | 'default' | 'prepend' | 'append';

/** One env file: the variable, how it is applied, its value and the delimiter for prepend/append. */
export interface EnvOp {
  rule: EnvRule;
  name: string;
  value: string;
  delim: string;
}

/**
 * The env files of one directory, in the order they apply. The variable is
 * the file name up to the first dot; the rest picks the rule: none or
 * `.override` sets, `.default` sets when empty, `.append`/`.prepend` join
 * with the contents of `NAME.delim` (nothing when there is none). Contents
 * are used verbatim; other suffixes (`.delim` itself) mean nothing.
 */
export async function envDirOps(dir: string): Promise<EnvOp[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const files: string[] = [];
  for (const e of entries) {
    if (e.isFile() || (e.isSymbolicLink() && !(await isDir(path.join(dir, e.name))))) files.push(e.name);
  }
  const delim = async (name: string) => readFile(path.join(dir, `${name}.delim`), 'utf8').catch(() => '');
  const ops: EnvOp[] = [];
  for (const file of sorted(files)) {
    const dot = file.indexOf('.');
    const name = dot < 0 ? file : file.slice(0, dot);
    const rule = dot < 0 ? 'override' : file.slice(dot + 1);
    if (!name || !['override', 'default', 'prepend', 'append'].includes(rule)) continue;
    const value = await readFile(path.join(dir, file), 'utf8');
    ops.push({ rule: rule as EnvRule, name, value, delim: rule === 'prepend' || rule === 'append' ? await delim(name) : '' });
  }
  return ops;
}

/** Applies env files' operations to an environment. */
export function applyEnvOps(env: Env, ops: readonly EnvOp[]): Env {
  const out = { ...env };
  for (const { rule, name, value, delim } of ops) {
    if (rule === 'override') out[name] = value;
    else if (rule === 'default') {
      if (!out[name]) out[name] = value;
    } else if (rule === 'prepend') out[name] = value + prefixed(out[name], delim);
    else out[name] = out[name] ? out[name] + delim + value : value;
  }
  return out;
}

/** Applies the env files in one directory (see envDirOps). */
export async function applyEnvDir(env: Env, dir: string): Promise<Env> {
  return applyEnvOps(env, await envDirOps(dir));
}

/** What one build layer gives the buildpacks after it: paths, then env/ and env.build/. */
export async function applyBuildLayer(env: Env, layerDir: string): Promise<Env> {
  let out = await addLayerPaths(env, layerDir, 'build');
  out = await applyEnvDir(out, path.join(layerDir, 'env'));
  return applyEnvDir(out, path.join(layerDir, 'env.build'));
}

/** The build env after the given build layers (in the order the buildpacks made them). */
export async function applyBuildLayers(env: Env, layerDirs: readonly string[]): Promise<Env> {
  let out = { ...env };
  for (const dir of layerDirs) out = await applyBuildLayer(out, dir);
  return out;
}

/** What one launch layer gives a process: paths, then env/, env.launch/, env.launch/<process>/. */
export async function applyLaunchLayer(env: Env, layerDir: string, processType?: string): Promise<Env> {
  let out = await addLayerPaths(env, layerDir, 'launch');
  out = await applyEnvDir(out, path.join(layerDir, 'env'));
  out = await applyEnvDir(out, path.join(layerDir, 'env.launch'));
  if (processType) out = await applyEnvDir(out, path.join(layerDir, 'env.launch', processType));
  return out;
}

/**
 * Launch layer directories in launch order: each buildpack's layers dir (in
 * group order), its layer directories alphabetically.
 */
export async function launchLayerDirs(buildpackLayersDirs: readonly string[]): Promise<string[]> {
  const dirs: string[] = [];
  for (const bpDir of buildpackLayersDirs) {
    for (const name of await subdirs(bpDir)) dirs.push(path.join(bpDir, name));
  }
  return dirs;
}

/**
 * The launch env for a process from the launch layers (see launchLayerDirs).
 * Consecutive layers of one buildpack (one parent dir) are taken together:
 * all their bin/ and lib/ first, then their env files, as the launcher does,
 * so an env file can build on any of its buildpack's path directories.
 */
export async function launchEnv(env: Env, layerDirs: readonly string[], processType?: string): Promise<Env> {
  let out = { ...env };
  for (let i = 0; i < layerDirs.length; ) {
    const parent = path.dirname(path.resolve(layerDirs[i]));
    let end = i;
    while (end < layerDirs.length && path.dirname(path.resolve(layerDirs[end])) === parent) end++;
    const group = layerDirs.slice(i, end);
    for (const dir of group) out = await addLayerPaths(out, dir, 'launch');
    for (const dir of group) {
      out = await applyEnvDir(out, path.join(dir, 'env'));
      out = await applyEnvDir(out, path.join(dir, 'env.launch'));
      if (processType) out = await applyEnvDir(out, path.join(dir, 'env.launch', processType));
    }
    i = end;
  }
  return out;
}

/**
 * Config vars from `<platform>/env/NAME` for a buildpack's detect or build:
 * a path variable (PATH, LD_LIBRARY_PATH, ...) gets the value prepended, any
 * other variable is set to it.
 */
export async function applyPlatformEnv(env: Env, platformDir: string): Promise<Env> {
  const out = { ...env };
  const dir = path.join(platformDir, 'env');
  const pathVars = new Set(LAYER_PATH_VARS.build.flatMap(([, vars]) => vars));
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of sorted(entries.filter((x) => x.isFile()).map((x) => x.name))) {
    const value = await readFile(path.join(dir, e), 'utf8');
    out[e] = pathVars.has(e) ? value + prefixed(out[e], path.delimiter) : value;
  }
  return out;
}

async function executables(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const files: string[] = [];
  for (const e of entries) {
    if (e.isFile() || (e.isSymbolicLink() && !(await isDir(path.join(dir, e.name))))) files.push(e.name);
  }
  return sorted(files).map((f) => path.join(dir, f));
}

/** Runs one exec.d executable with fd 3 a pipe and returns what it wrote there. */
function runOneExecD(file: string, env: Env, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [], { env, cwd, stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
    const chunks: Buffer[] = [];
    const fd3 = child.stdio[3] as NodeJS.ReadableStream | null;
    fd3?.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', (err) => reject(new UserError(`exec.d ${file} cannot be run: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(chunks).toString('utf8'));
      else reject(new UserError(`exec.d ${file} failed (${signal ? `killed by ${signal}` : `exit ${code}`})`));
    });
  });
}

export interface ExecDOptions {
  appDir: string;
  processType?: string;
  /** Variables only the exec.d executables of this layer see (CNB_EXEC_ENV for API 0.12). */
  extraEnv?: (layerDir: string) => Env | undefined;
}

/**
 * Runs the layers' exec.d executables at launch: first every layer's
 * `exec.d/*`, then every layer's `exec.d/<process>/*` (layers in launch
 * order, files alphabetically), each in the env so far with the app dir as
 * its working dir. Each writes `NAME = "value"` TOML to fd 3; those values
 * override the env before the next one runs.
 */
export async function runExecD(env: Env, layerDirs: readonly string[], opts: ExecDOptions): Promise<Env> {
  let out = { ...env };
  const dirs = layerDirs.map((d) => [d, path.join(d, 'exec.d')]);
  if (opts.processType) dirs.push(...layerDirs.map((d) => [d, path.join(d, 'exec.d', opts.processType!)]));
  for (const [layerDir, dir] of dirs) {
    const extra = opts.extraEnv?.(layerDir) ?? {};
    for (const file of await executables(dir)) {
      const text = await runOneExecD(file, { ...out, ...extra }, opts.appDir);
      const vars = parseToml(text, `exec.d ${file} output`);
      for (const [name, value] of Object.entries(vars)) {
        if (typeof value !== 'string') throw new UserError(`exec.d ${file} output: ${name} must be a string`);
        out = { ...out, [name]: value };
      }
    }
  }
  return out;
}
