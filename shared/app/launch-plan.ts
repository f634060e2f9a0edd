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
 *   slugkit-launch 2
 *   fast | execd | slow              execd: bash starts it where there is no
 *                                    Node (it runs the exec.d itself); slow:
 *                                    only the Node runner may start it
 *   stamp PATH 1 CONTENT | stamp PATH 0    the files it was made from
 *   var NAME VALUE                   a release config var
 *   default TYPE                     what start runs without a type
 *   proc TYPE DISPLAY shell CWD LINE
 *   proc TYPE DISPLAY direct CWD N ARG...
 *   env TAG RULE NAME VALUE DELIM    a launch layer variable (RULE path:
 *                                    VALUE is a dir under the app prepended with ":")
 *   profile TAG FILE                 a launch layer profile.d script
 *   execd TAG FILE 0|1               a launch layer exec.d executable, in the
 *                                    order they run; 1: it gets CNB_EXEC_ENV
 *
 * TAG is a process type, or empty for every process. Paths are relative to
 * the app dir, so the plan holds wherever the app is run from. A plan is
 * current while the stamped files (.release, Procfile, the CNB metadata) hold
 * what they held when it was made.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { isDirSync, readFileInside, writeFileInside } from '../fs.js';
import { type EnvOp, envDirOps, launchLayerDirs } from '../layer-env.js';
import type { BuiltApp } from './app.js';
import { hasExecEnv, sourcesLayerProfiles } from './buildpack-api.js';
import { type CnbApp, cnbLayersDirs } from './launch-metadata.js';
import { LAUNCH_PLAN, PLAN_STAMPED } from './layout.js';
import { type AppProcesses, resolveProcesses } from './processes.js';

const MAGIC = 'slugkit-launch 2';

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

/** How bash may start a plan: fully, only without Node (exec.d to run), or not at all. */
type PlanStatus = 'fast' | 'execd' | 'slow';

/**
 * Makes the plan for an app from what its reader (readApp) or the builder
 * holds: the stamped files' bytes, the release, the Procfile and the CNB
 * launch metadata; only the launch layers are read here. A caller that has
 * resolved the processes already passes them: nothing is worked out twice.
 */
export async function makeLaunchPlan(app: BuiltApp, processes: AppProcesses = resolveProcesses(app)): Promise<LaunchPlan> {
  const { appDir, cnb } = app;
  const fields: (string | Buffer)[] = [];
  let fast = true;
  let execd = false;
  const stamps: (string | Buffer)[] = [];
  for (const name of PLAN_STAMPED) {
    const content = app.files[name];
    // bash reads a file up to its first NUL: such a file cannot be compared.
    if (content?.includes(0)) fast = false;
    stamps.push('stamp', name, ...(content === undefined ? ['0'] : ['1', content.includes(0) ? '' : content]));
  }

  for (const [name, value] of Object.entries(app.release.config_vars)) {
    if (!shellSettable(name) || value.includes('\0')) fast = false;
    else fields.push('var', name, value);
  }

  fields.push('default', processes.defaultType);
  const rel = (p: string) => (path.isAbsolute(p) && (p === appDir || p.startsWith(appDir + path.sep)) ? path.relative(appDir, p) : p);
  for (const proc of Object.values(processes.byType)) {
    if (proc.kind !== 'cnb') fields.push('proc', proc.type, proc.display, 'shell', '', proc.display);
    else if ('argv' in proc.start)
      fields.push('proc', proc.type, proc.display, 'direct', rel(proc.cwd), String(proc.start.argv.length), ...proc.start.argv);
    else fields.push('proc', proc.type, proc.display, 'shell', rel(proc.cwd), proc.start.shell);
  }

  if (cnb) {
    const layers = await launchLayerDirs(cnbLayersDirs(cnb));
    const { ops, slow } = await layerOps(layers, rel);
    if (slow) fast = false;
    fields.push(...ops);
    // exec.d: the Node runner runs them where it is (full TOML); the image's launcher runs them in bash.
    const execs = await execDFiles(cnb, layers, Object.keys(processes.byType));
    for (const [tag, file, execEnv] of execs) fields.push('execd', tag, rel(file), execEnv ? '1' : '0');
    if (execs.length > 0) execd = true;
    // Profile scripts of buildpacks before API 0.9: every process's, then each type's own.
    const common = await layerProfiles(cnb);
    for (const file of common) fields.push('profile', '', rel(file));
    for (const type of Object.keys(processes.byType)) {
      for (const file of (await layerProfiles(cnb, type)).slice(common.length)) fields.push('profile', type, rel(file));
    }
  }
  if (fields.some((f) => typeof f === 'string' && f.includes('\0'))) fast = false;

  const status: PlanStatus = !fast ? 'slow' : execd ? 'execd' : 'fast';
  const all = [MAGIC, status, ...stamps, ...fields.map((f) => (typeof f === 'string' ? f.replace(/\0/g, '') : f))];
  const bytes = Buffer.concat(all.flatMap((f) => [typeof f === 'string' ? Buffer.from(f) : f, Buffer.alloc(1)]));
  return { bytes, fast: status === 'fast' };
}

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

/**
 * The launch layers' exec.d executables in the order runExecD
 * (shared/layer-env.ts) runs them: every layer's exec.d/*, then every
 * layer's exec.d/<type>/*; with whether the layer's buildpack gets
 * CNB_EXEC_ENV (API 0.12).
 */
async function execDFiles(cnb: CnbApp, layers: string[], types: string[]): Promise<[string, string, boolean][]> {
  const dirs = cnbLayersDirs(cnb);
  const apiOf = new Map(cnb.buildpacks.map((bp, i) => [dirs[i], bp.api]));
  const out: [string, string, boolean][] = [];
  const execEnv = (layer: string) => hasExecEnv(apiOf.get(path.dirname(layer)) ?? '0');
  for (const layer of layers) for (const file of await filesIn(path.join(layer, 'exec.d'))) out.push(['', file, execEnv(layer)]);
  for (const type of types) {
    for (const layer of layers) for (const file of await filesIn(path.join(layer, 'exec.d', type))) out.push([type, file, execEnv(layer)]);
  }
  return out;
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

/** At build time, after the release and launch metadata are written: the plan goes into the slug. */
export async function writeLaunchPlan(app: BuiltApp, processes?: AppProcesses): Promise<void> {
  const plan = await makeLaunchPlan(app, processes);
  await writeFileInside(app.appDir, LAUNCH_PLAN, plan.bytes);
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
  const layers = await launchLayerDirs(cnbLayersDirs({ ...app, buildpacks: app.buildpacks.filter((bp) => sourcesLayerProfiles(bp.api)) }));
  const scripts: string[] = [];
  for (const layer of layers) scripts.push(...(await filesIn(path.join(layer, 'profile.d'))));
  if (processType) for (const layer of layers) scripts.push(...(await filesIn(path.join(layer, 'profile.d', processType))));
  return scripts;
}
