/**
 * The app's launch metadata, the contract between slugbuilder, the image
 * writer and slugrunner: `<app>/.layers/config/metadata.toml` (the
 * lifecycle's file name) lists the group's Cloud Native Buildpacks in chain
 * order, the CNB processes that won the chain's merge and the image labels.
 * The builder writes it after the chain; the image writer and the runner read
 * it back, from the build dir, a slug or an image. An app built by classic
 * buildpacks alone has none.
 */
import path from 'node:path';
import { UserError } from '../errors.js';
import { makeDirInside, readTextInside, writeFileInside } from '../fs.js';
import { parseToml, type TomlTable, toToml } from '../toml.js';
import { execsProcessesDirectly } from './buildpack-api.js';
import { buildpackLayersDir, LAUNCH_METADATA } from './layout.js';

export interface LaunchBuildpack {
  id: string;
  version?: string;
  api: string;
}

export interface LaunchProcess {
  type: string;
  /** Always an array; a command of API < 0.9 is stored as [string]. */
  command: string[];
  args: string[];
  /** false: run through bash (API < 0.9 without `direct = true`). */
  direct: boolean;
  default: boolean;
  workingDir?: string;
  /** API 0.12 `exec-env`: the execution environments the process is for. */
  execEnv?: string[];
  buildpackId?: string;
  buildpackApi: string;
}

export interface LaunchMetadata {
  buildpacks: LaunchBuildpack[];
  /** In the order written; a type listed twice is the later entry's. */
  processes: LaunchProcess[];
  labels: Array<{ key: string; value: string }>;
}

/**
 * Writes the file; nothing when the group has no CNB. Returns the bytes
 * written, which the launch plan records (so the builder need not read them back).
 */
export async function writeLaunchMetadata(appDir: string, meta: LaunchMetadata): Promise<Buffer | undefined> {
  if (meta.buildpacks.length === 0) return undefined;
  const doc = {
    buildpacks: meta.buildpacks.map((bp) => ({ id: bp.id, ...(bp.version ? { version: bp.version } : {}), api: bp.api })),
    processes: meta.processes.map((p) => ({
      type: p.type,
      command: p.command,
      args: p.args,
      direct: p.direct,
      default: p.default,
      ...(p.workingDir ? { 'working-dir': p.workingDir } : {}),
      ...(p.execEnv ? { 'exec-env': p.execEnv } : {}),
      ...(p.buildpackId ? { 'buildpack-id': p.buildpackId } : {}),
      'buildpack-api': p.buildpackApi,
    })),
    labels: meta.labels,
  };
  const bytes = Buffer.from(toToml(doc));
  await makeDirInside(appDir, path.dirname(LAUNCH_METADATA));
  await writeFileInside(appDir, LAUNCH_METADATA, bytes);
  return bytes;
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Reads the file back; undefined when the app has none. Every problem is one line naming the file and the key. */
export async function readLaunchMetadata(appDir: string): Promise<LaunchMetadata | undefined> {
  const text = await readTextInside(appDir, LAUNCH_METADATA);
  return text === undefined ? undefined : parseLaunchMetadata(text, path.join(appDir, LAUNCH_METADATA));
}

/** The file's text as LaunchMetadata; `file` names it in errors. */
export function parseLaunchMetadata(text: string, file: string): LaunchMetadata {
  const doc = parseToml(text, file);
  const fail = (what: string): never => {
    throw new UserError(`${file}: ${what}; rebuild the app`);
  };
  const tables = (key: string): TomlTable[] => {
    const v = doc[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x)))
      fail(`${key} must be an array of tables`);
    return v as TomlTable[];
  };

  const buildpacks: LaunchBuildpack[] = tables('buildpacks').map((bp, i) => {
    if (typeof bp.id !== 'string' || !bp.id) fail(`buildpacks[${i}].id must be a string`);
    if (typeof bp.api !== 'string' || !/^\d+(\.\d+)?$/.test(bp.api)) fail(`buildpacks[${i}].api must be a version string like "0.10"`);
    return { id: bp.id as string, version: typeof bp.version === 'string' ? bp.version : undefined, api: bp.api as string };
  });

  const processes = tables('processes').map((p, i): LaunchProcess => {
    const where = `processes[${i}]`;
    if (typeof p.type !== 'string' || !/^[A-Za-z0-9._-]+$/.test(p.type)) fail(`${where}.type must be letters, digits, ".", "_" or "-"`);
    const command = typeof p.command === 'string' ? [p.command] : p.command;
    if (!isStrings(command) || command.length === 0 || command[0] === '') fail(`${where}.command must be a non-empty array of strings`);
    if (p.args !== undefined && !isStrings(p.args)) fail(`${where}.args must be an array of strings`);
    for (const key of ['direct', 'default'] as const) {
      if (p[key] !== undefined && typeof p[key] !== 'boolean') fail(`${where}.${key} must be true or false`);
    }
    if (p['working-dir'] !== undefined && typeof p['working-dir'] !== 'string') fail(`${where}.working-dir must be a string`);
    if (p['exec-env'] !== undefined && !isStrings(p['exec-env'])) fail(`${where}.exec-env must be an array of strings`);
    const buildpackId = typeof p['buildpack-id'] === 'string' ? p['buildpack-id'] : undefined;
    const api = typeof p['buildpack-api'] === 'string' ? p['buildpack-api'] : buildpacks.find((bp) => bp.id === buildpackId)?.api;
    if (!api) fail(`${where} names no buildpack-api and no listed buildpack-id`);
    return {
      type: p.type as string,
      command: command as string[],
      args: (p.args as string[] | undefined) ?? [],
      // From API 0.9 every process is direct; before, only one that says so.
      direct: typeof p.direct === 'boolean' ? p.direct : execsProcessesDirectly(api as string),
      default: p.default === true,
      workingDir: (p['working-dir'] as string | undefined) || undefined,
      execEnv: p['exec-env'] as string[] | undefined,
      buildpackId,
      buildpackApi: api as string,
    };
  });

  const labels = tables('labels').map((l, i) => {
    if (typeof l.key !== 'string' || l.key === '' || typeof l.value !== 'string') fail(`labels[${i}] needs a string key and value`);
    return { key: l.key as string, value: l.value as string };
  });
  return { buildpacks, processes, labels };
}

/**
 * A CNB-built app as the runner launches it: the launch metadata with the
 * processes by type. The builder makes one from what the chain returned, the
 * runner from the file.
 */
export interface CnbApp {
  appDir: string;
  buildpacks: LaunchBuildpack[];
  /** By type; a type listed twice is the later entry. */
  processes: Record<string, LaunchProcess>;
  /** The type marked `default = true` (the last one, if several are). */
  defaultType?: string;
}

export function cnbApp(appDir: string, meta: LaunchMetadata | undefined): CnbApp {
  const processes: Record<string, LaunchProcess> = {};
  let defaultType: string | undefined;
  for (const p of meta?.processes ?? []) {
    processes[p.type] = p;
    if (p.default) defaultType = p.type;
  }
  return { appDir, buildpacks: meta?.buildpacks ?? [], processes, defaultType };
}

/** Reads the app's launch metadata; every problem is one line naming the file and the key. */
export async function readCnbApp(appDir: string): Promise<CnbApp> {
  return cnbApp(appDir, await readLaunchMetadata(appDir));
}

/** Each listed buildpack's layers dir, in chain order. */
export function cnbLayersDirs(app: CnbApp): string[] {
  return app.buildpacks.map((bp) => buildpackLayersDir(app.appDir, bp.id));
}
