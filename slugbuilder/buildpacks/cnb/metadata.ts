/**
 * The app's launch metadata, the contract between slugbuilder and
 * slugrunner: `<app>/.layers/config/metadata.toml` (the lifecycle's file
 * name) lists the group's CNBs, the CNB processes that won the chain's merge
 * and the image labels. Every process type also goes into `.release` as a
 * shell command line, so a classic runner can still start it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { toToml } from '../../../shared/toml.js';
import type { CnbProcess, LaunchMetadata } from './launch-toml.js';
import { layersRoot, type CnbRef } from './layers.js';

export interface LaunchInfo {
  buildpacks: CnbRef[];
  processes: CnbProcess[];
  labels: Array<{ key: string; value: string }>;
}

/** A word as bash reads it back unchanged. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_\/.:=@%+,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * A CNB process as one shell command line: a direct process's words each
 * quoted, a shell process (API < 0.9, not direct) its command as written;
 * args appended, quoted.
 */
export function shellCommand(p: CnbProcess): string {
  const head = p.direct ? p.command.map(shellQuote) : [p.command[0]];
  return [...head, ...p.args.map(shellQuote)].join(' ');
}

/** Labels of the group in order, a later buildpack's value of a key winning. */
export function mergeLabels(launches: readonly LaunchMetadata[]): LaunchInfo['labels'] {
  const byKey = new Map<string, string>();
  for (const l of launches) for (const { key, value } of l.labels) byKey.set(key, value);
  return [...byKey].map(([key, value]) => ({ key, value }));
}

export function metadataFile(appDir: string): string {
  return path.join(layersRoot(appDir), 'config', 'metadata.toml');
}

/** Writes `<app>/.layers/config/metadata.toml`; nothing when the group has no CNB. */
export async function writeLaunchMetadata(appDir: string, info: LaunchInfo): Promise<void> {
  if (info.buildpacks.length === 0) return;
  const doc = {
    buildpacks: info.buildpacks.map((bp) => ({ id: bp.id, version: bp.version, api: bp.api })),
    processes: info.processes.map((p) => ({
      type: p.type,
      command: p.command,
      args: p.args,
      direct: p.direct,
      default: p.default,
      ...(p.workingDir ? { 'working-dir': p.workingDir } : {}),
      ...(p.execEnv ? { 'exec-env': p.execEnv } : {}),
      'buildpack-id': p.buildpackId,
      'buildpack-api': p.api,
    })),
    labels: info.labels,
  };
  await mkdir(path.dirname(metadataFile(appDir)), { recursive: true });
  await writeFile(metadataFile(appDir), toToml(doc));
}
