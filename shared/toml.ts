/**
 * TOML for the Cloud Native Buildpacks files (buildpack.toml, plan, layer
 * metadata, launch.toml, builder.toml, project.toml), through smol-toml: a
 * TOML 1.0 parser that reports the line of an error. Every error names the
 * file, so a user knows which buildpack or descriptor to fix.
 */
import { readFile } from 'node:fs/promises';
import { parse, stringify, TomlError } from 'smol-toml';
import { UserError } from './errors.js';

export type TomlTable = Record<string, unknown>;

/** Parses TOML text; `origin` names the file in the one-line error. */
export function parseToml(text: string, origin: string): TomlTable {
  try {
    return parse(text) as TomlTable;
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = err.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
      throw new UserError(`${origin}: invalid TOML at line ${err.line}: ${reason}`);
    }
    throw err;
  }
}

/** Reads and parses a TOML file; undefined when it does not exist. */
export async function readTomlFile(file: string, origin = file): Promise<TomlTable | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseToml(text, origin);
}

export function toToml(value: TomlTable): string {
  return stringify(value);
}
