/**
 * What a Cloud Native Buildpack declares after its bin/build:
 * `<layers>/launch.toml` (processes, image labels, slices) and
 * `<layers>/build.toml` (plan entries it did not meet). The shape of a
 * process differs by Buildpack API: before 0.9 `command` is one string, run
 * through a shell unless `direct = true`; from 0.9 it is an array exec'd
 * directly and `direct` is gone. `working-dir` is read from 0.8, `exec-env`
 * from 0.12.
 */
import path from 'node:path';
import { execsProcessesDirectly, hasExecEnv, honoursWorkingDir } from '../../../shared/app/buildpack-api.js';
import type { LaunchProcess } from '../../../shared/app/launch-metadata.js';
import { UserError } from '../../../shared/errors.js';
import { readTextInside } from '../../../shared/fs.js';
import { parseToml, type TomlTable } from '../../../shared/toml.js';
import { type CnbRef, cnbLabel, insideOf } from './layers.js';

/** A launch.toml process as read: the launch metadata's shape, with the buildpack that declared it. */
export type CnbProcess = Omit<LaunchProcess, 'buildpackId' | 'buildpackApi'> & { buildpackId: string; api: string };

export interface LaunchMetadata {
  processes: CnbProcess[];
  labels: Array<{ key: string; value: string }>;
  slices: Array<{ paths: string[] }>;
}

const PROCESS_TYPE = /^[A-Za-z0-9._-]+$/;

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

/** The array of tables under `key`, each checked to be a table. */
function tables(doc: TomlTable, key: string, fail: (msg: string) => never): TomlTable[] {
  const v = doc[key];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every(isTable)) fail(`${key} must be an array of tables ([[${key}]])`);
  return v as TomlTable[];
}

function parseProcess(p: TomlTable, where: string, bp: CnbRef, fail: (msg: string) => never): CnbProcess {
  const modern = execsProcessesDirectly(bp.api);
  if (typeof p.type !== 'string' || !PROCESS_TYPE.test(p.type)) {
    fail(`${where}.type must be letters, digits, ".", "_" or "-"`);
  }
  let command: string[];
  let direct: boolean;
  if (modern) {
    if (!isStrings(p.command) || p.command.length === 0)
      fail(`${where}.command must be a non-empty array of strings (Buildpack API ${bp.api})`);
    if (p.direct !== undefined) fail(`${where}.direct is not supported from Buildpack API 0.9 (commands are exec'd directly)`);
    command = p.command as string[];
    direct = true;
  } else {
    if (typeof p.command !== 'string' || p.command === '') fail(`${where}.command must be a non-empty string (Buildpack API ${bp.api})`);
    if (p.direct !== undefined && typeof p.direct !== 'boolean') fail(`${where}.direct must be true or false`);
    command = [p.command as string];
    direct = (p.direct as boolean | undefined) ?? false;
  }
  if (p.args !== undefined && !isStrings(p.args)) fail(`${where}.args must be an array of strings`);
  if (p.default !== undefined && typeof p.default !== 'boolean') fail(`${where}.default must be true or false`);
  const process: CnbProcess = {
    type: p.type as string,
    command,
    args: (p.args as string[] | undefined) ?? [],
    direct,
    default: (p.default as boolean | undefined) ?? false,
    buildpackId: bp.id,
    api: bp.api,
  };
  // Before 0.8 the lifecycle ignores working-dir.
  if (p['working-dir'] !== undefined && honoursWorkingDir(bp.api)) {
    if (typeof p['working-dir'] !== 'string' || p['working-dir'] === '') fail(`${where}.working-dir must be a path`);
    process.workingDir = p['working-dir'] as string;
  }
  if (p['exec-env'] !== undefined && hasExecEnv(bp.api)) {
    if (!isStrings(p['exec-env'])) fail(`${where}.exec-env must be an array of strings`);
    process.execEnv = p['exec-env'] as string[];
  }
  return process;
}

/** Parses launch.toml text for one buildpack; `origin` names the file in errors. */
export function parseLaunchToml(text: string, origin: string, bp: CnbRef): LaunchMetadata {
  const doc = parseToml(text, `${cnbLabel(bp)}: ${origin}`);
  const fail = (msg: string): never => {
    throw new UserError(`${cnbLabel(bp)}: ${origin}: ${msg}`);
  };
  const processes: CnbProcess[] = [];
  tables(doc, 'processes', fail).forEach((p, i) => {
    const process = parseProcess(p, `processes[${i}]`, bp, fail);
    if (processes.some((q) => q.type === process.type)) fail(`process type ${process.type} is declared twice`);
    if (process.default && processes.some((q) => q.default)) fail(`more than one process has default = true (${process.type})`);
    processes.push(process);
  });
  const labels: LaunchMetadata['labels'] = [];
  tables(doc, 'labels', fail).forEach((l, i) => {
    if (typeof l.key !== 'string' || l.key === '') fail(`labels[${i}].key must be a non-empty string`);
    if (typeof l.value !== 'string') fail(`labels[${i}].value must be a string`);
    if (labels.some((x) => x.key === l.key)) fail(`label ${l.key as string} is declared twice`);
    labels.push({ key: l.key as string, value: l.value as string });
  });
  const slices: LaunchMetadata['slices'] = [];
  tables(doc, 'slices', fail).forEach((s, i) => {
    if (s.paths !== undefined && !isStrings(s.paths)) fail(`slices[${i}].paths must be an array of strings`);
    slices.push({ paths: (s.paths as string[] | undefined) ?? [] });
  });
  return { processes, labels, slices };
}

/** Reads `<layersDir>/launch.toml`; empty when the buildpack wrote none. */
export async function readLaunchToml(layersDir: string, bp: CnbRef): Promise<LaunchMetadata> {
  const file = path.join(layersDir, 'launch.toml');
  const { root, rel, where } = insideOf(layersDir, 'launch.toml');
  const text = await readTextInside(root, rel, `${cnbLabel(bp)}: ${rel}`, where);
  if (text === undefined) return { processes: [], labels: [], slices: [] };
  return parseLaunchToml(text, file, bp);
}

/**
 * The names a buildpack lists under `[[unmet]]` in `<layersDir>/build.toml`;
 * each must name an entry of the plan it was given.
 */
export async function readUnmet(layersDir: string, bp: CnbRef, planNames: readonly string[]): Promise<string[]> {
  const file = path.join(layersDir, 'build.toml');
  const { root, rel, where } = insideOf(layersDir, 'build.toml');
  const text = await readTextInside(root, rel, `${cnbLabel(bp)}: ${rel}`, where);
  if (text === undefined) return [];
  const doc = parseToml(text, `${cnbLabel(bp)}: ${file}`);
  const fail = (msg: string): never => {
    throw new UserError(`${cnbLabel(bp)}: ${file}: ${msg}`);
  };
  const names: string[] = [];
  for (const [i, u] of tables(doc, 'unmet', fail).entries()) {
    if (typeof u.name !== 'string' || u.name === '') fail(`unmet[${i}].name is required`);
    if (!planNames.includes(u.name as string)) fail(`unmet entry ${u.name as string} is not in the buildpack plan`);
    if (!names.includes(u.name as string)) names.push(u.name as string);
  }
  return names;
}
