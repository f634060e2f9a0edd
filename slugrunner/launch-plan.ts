/**
 * The launch plan: everything bin/dyno.bash needs to start a process of an
 * app, resolved ahead of time so that a start from a populated app dir needs
 * no Node. slugbuilder writes it into the app (so it is in the slug and the
 * image) right after the release; the Node runner makes it afresh after an
 * intake and rewrites it when the one on disk is missing or stale.
 *
 * Format (`<app>/.slugkit-launch`): NUL-terminated fields, read by bash with
 * `mapfile -d ''` and never sourced, so no value is ever evaluated.
 *
 *   slugkit-launch 1
 *   fast | slow                      slow: only the Node runner may start it
 *   stamp PATH 1 CONTENT | stamp PATH 0    the files it was made from
 *   var NAME VALUE                   a release config var
 *   default TYPE                     the CNB process marked default
 *   proc TYPE DISPLAY shell CWD LINE
 *   proc TYPE DISPLAY direct CWD N ARG...
 *   env TAG RULE NAME VALUE DELIM    a launch layer variable (RULE path:
 *                                    VALUE is a dir under the app prepended with ":")
 *   profile TAG FILE                 a launch layer profile.d script
 *
 * TAG is a process type, or empty for every process. Paths are relative to
 * the app dir, so the plan holds wherever the app is run from. A plan is
 * current while the stamped files (.release, Procfile, the CNB metadata) hold
 * what they held when it was made.
 */
import { statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { readFileInside, writeFileInside } from '../shared/fs.js';
import { type EnvOp, envDirOps, launchLayerDirs } from '../shared/layer-env.js';
import { mergeProcessTypes } from '../shared/procfile.js';
import type { CnbApp } from './cnb-launch.js';
import { type AppInfo, CNB_METADATA, readAppInfo } from './environment.js';

export const LAUNCH_PLAN = '.slugkit-launch';
const MAGIC = 'slugkit-launch 1';
const STAMPED = ['.release', 'Procfile', CNB_METADATA];

/** Names bash exports without side effects; bin/dyno.bash checks the same list. */
const BASH_SPECIAL = new Set([
  'EUID',
  'PPID',
  'SHELLOPTS',
  'UID',
  'RANDOM',
  'SRANDOM',
  'SECONDS',
  'LINENO',
  'EPOCHSECONDS',
  'EPOCHREALTIME',
  'HISTCMD',
  'FUNCNAME',
  'GROUPS',
  'IFS',
  'PS4',
  'SHLVL',
  'PWD',
  'OLDPWD',
  'OPTIND',
  'OPTARG',
  'DIRSTACK',
  'PIPESTATUS',
  'COMP_WORDBREAKS',
  '_',
]);
export function shellSettable(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !BASH_SPECIAL.has(name) && !/^(BASH|__dyno_|__slug_)/.test(name);
}

export interface LaunchPlan {
  /** The encoded plan, as written to the app dir. */
  bytes: Buffer;
  /**
   * Whether bash alone can start it. Not when exec.d executables must run at
   * launch, or a variable has a name bash cannot export (the Node runner then
   * computes the environment itself).
   */
  fast: boolean;
}

/**
 * Makes the plan for the app in `appDir` from its .release, Procfile and CNB
 * launch metadata and layers. A caller that has read them already (the
 * runner, before it starts the process) passes them in: nothing is parsed twice.
 */
export async function makeLaunchPlan(appDir: string, read?: { app: AppInfo; cnb?: CnbApp }): Promise<LaunchPlan> {
  const fields: (string | Buffer)[] = [];
  let fast = true;
  const stamps: (string | Buffer)[] = [];
  for (const name of STAMPED) {
    const content = await readFileInside(appDir, name);
    // bash reads a file up to its first NUL: such a file cannot be compared.
    if (content?.includes(0)) fast = false;
    stamps.push('stamp', name, ...(content === undefined ? ['0'] : ['1', content.includes(0) ? '' : content]));
  }

  const app = read?.app ?? (await readAppInfo(appDir));
  for (const [name, value] of Object.entries(app.release.config_vars)) {
    if (!shellSettable(name) || value.includes('\0')) fast = false;
    else fields.push('var', name, value);
  }

  const cnbLaunch = app.cnb ? await import('./cnb-launch.js') : undefined;
  const cnb = cnbLaunch && (read?.cnb ?? (await cnbLaunch.readCnbApp(appDir)));
  const types = mergeProcessTypes(app.release.default_process_types, cnb ? cnbLaunch.cnbCommandLines(cnb) : {}, app.procfile);
  if (cnb?.defaultType) fields.push('default', cnb.defaultType);
  const rel = (p: string) => (path.isAbsolute(p) && (p === appDir || p.startsWith(appDir + path.sep)) ? path.relative(appDir, p) : p);
  for (const [type, line] of Object.entries(types)) {
    if (cnb && cnbLaunch && !Object.hasOwn(app.procfile, type) && Object.hasOwn(cnb.processes, type)) {
      const { start, display, cwd } = cnbLaunch.cnbStart(cnb, cnb.processes[type]);
      if ('argv' in start) fields.push('proc', type, display, 'direct', rel(cwd), String(start.argv.length), ...start.argv);
      else fields.push('proc', type, display, 'shell', rel(cwd), start.shell);
    } else {
      fields.push('proc', type, line, 'shell', '', line);
    }
  }

  if (cnb) {
    const layers = await launchLayerDirs(cnb.buildpacks.map((bp) => cnbLaunch.buildpackLayersDir(cnb, bp)));
    const { ops, slow } = await layerOps(layers, rel);
    if (slow) fast = false;
    fields.push(...ops);
    if (await hasExecD(layers)) fast = false;
    // Profile scripts of buildpacks before API 0.9: every process's, then each type's own.
    const common = await cnbLaunch.layerProfiles(cnb);
    for (const file of common) fields.push('profile', '', rel(file));
    for (const type of Object.keys(types)) {
      for (const file of (await cnbLaunch.layerProfiles(cnb, type)).slice(common.length)) fields.push('profile', type, rel(file));
    }
  }
  if (fields.some((f) => typeof f === 'string' && f.includes('\0'))) fast = false;

  const all = [MAGIC, fast ? 'fast' : 'slow', ...stamps, ...fields.map((f) => (typeof f === 'string' ? f.replace(/\0/g, '') : f))];
  const bytes = Buffer.concat(all.flatMap((f) => [typeof f === 'string' ? Buffer.from(f) : f, Buffer.alloc(1)]));
  return { bytes, fast };
}

const isDirSync = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

/**
 * The launch env operations of launchEnv (shared/layer-env.ts) in its order:
 * per buildpack, all its layers' bin/ and lib/, then each layer's env/,
 * env.launch/ and env.launch/<type>/ files.
 */
async function layerOps(layers: string[], rel: (p: string) => string): Promise<{ ops: string[]; slow: boolean }> {
  const ops: string[] = [];
  let slow = false;
  const push = (tag: string, list: EnvOp[]) => {
    for (const op of list) {
      if (!shellSettable(op.name)) slow = true;
      else ops.push('env', tag, op.rule, op.name, op.value, op.delim);
    }
  };
  for (let i = 0; i < layers.length; ) {
    const parent = path.dirname(layers[i]);
    let end = i;
    while (end < layers.length && path.dirname(layers[end]) === parent) end++;
    const group = layers.slice(i, end);
    for (const dir of group) {
      if (isDirSync(path.join(dir, 'bin'))) ops.push('env', '', 'path', 'PATH', rel(path.join(dir, 'bin')), '');
      if (isDirSync(path.join(dir, 'lib'))) ops.push('env', '', 'path', 'LD_LIBRARY_PATH', rel(path.join(dir, 'lib')), '');
    }
    for (const dir of group) {
      push('', await envDirOps(path.join(dir, 'env')));
      push('', await envDirOps(path.join(dir, 'env.launch')));
      for (const type of await subdirNames(path.join(dir, 'env.launch'))) push(type, await envDirOps(path.join(dir, 'env.launch', type)));
    }
    i = end;
  }
  return { ops, slow };
}

async function subdirNames(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() || (e.isSymbolicLink() && isDirSync(path.join(dir, e.name))))
    .map((e) => e.name)
    .sort();
}

/** Whether any launch layer has exec.d executables (for any process). */
async function hasExecD(layers: string[]): Promise<boolean> {
  for (const layer of layers) {
    const dir = path.join(layer, 'exec.d');
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isDirectory()) return true;
      const inner = await readdir(path.join(dir, e.name)).catch(() => []);
      if (inner.length > 0) return true;
    }
  }
  return false;
}

/**
 * Writes the plan into the app dir when the one there differs (missing, stale,
 * from another slugkit). Best effort: a read-only app dir keeps what it has,
 * and the Node runner hands its fresh plan to the launch directly.
 */
export async function refreshLaunchPlan(appDir: string, plan: LaunchPlan): Promise<void> {
  // A plan that is a link out of the app (a hostile slug's) is not read: it differs, and is replaced.
  const current = await readFileInside(appDir, LAUNCH_PLAN).catch(() => undefined);
  if (current?.equals(plan.bytes)) return;
  // A fresh random temp name (never a guessable one a slug could ship as a link), renamed over the plan.
  await writeFileInside(appDir, LAUNCH_PLAN, plan.bytes).catch(() => undefined);
}

/** At build time, after the release is written: the plan goes into the slug. */
export async function writeLaunchPlan(appDir: string): Promise<void> {
  const plan = await makeLaunchPlan(appDir);
  await writeFileInside(appDir, LAUNCH_PLAN, plan.bytes);
}
