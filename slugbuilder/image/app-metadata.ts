/**
 * What the image writer reads from a built app's CNB launch metadata,
 * `.layers/config/metadata.toml` (written by the builder after the chain, so
 * also present in a slug given with --slug): the order of the buildpacks,
 * for the order of their launch layers, and the `[[labels]]` for the image
 * config. An app without CNBs has no such file: no buildpacks, no labels.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../shared/errors.js';
import { parseToml, type TomlTable } from '../../shared/toml.js';

export function metadataFile(appDir: string): string {
  return path.join(appDir, '.layers', 'config', 'metadata.toml');
}

async function readMetadata(appDir: string): Promise<TomlTable | undefined> {
  const file = metadataFile(appDir);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseToml(text, `the app's ${path.relative(appDir, file)}`);
}

function entries(meta: TomlTable | undefined, key: string): TomlTable[] {
  const list = meta?.[key];
  return Array.isArray(list) ? list.filter((e): e is TomlTable => !!e && typeof e === 'object' && !Array.isArray(e)) : [];
}

/** The buildpack ids of [[buildpacks]], in chain order, as their layers dir names (`/` as `_`). */
export async function listedBuildpackDirs(appDir: string): Promise<string[]> {
  const ids = entries(await readMetadata(appDir), 'buildpacks').map((bp) => bp.id);
  return ids.filter((id): id is string => typeof id === 'string').map((id) => id.replace(/\//g, '_'));
}

/** [[labels]] as key -> value; a later entry with the same key wins (the builder allows none). */
export async function readAppLabels(appDir: string): Promise<Record<string, string>> {
  const labels: Record<string, string> = {};
  for (const entry of entries(await readMetadata(appDir), 'labels')) {
    if (typeof entry.key !== 'string' || typeof entry.value !== 'string' || entry.key === '') {
      throw new UserError(`the app's .layers/config/metadata.toml: each [[labels]] needs a string key and value`);
    }
    labels[entry.key] = entry.value;
  }
  return labels;
}
