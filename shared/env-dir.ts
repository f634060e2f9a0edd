/**
 * Config vars for the buildpack API: ENV_DIR holds one file per variable,
 * named after it, whose contents are the value (newlines allowed).
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { UsageError, UserError } from './errors.js';

export type EnvVars = Record<string, string>;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseAssignment(text: string): [string, string] {
  const eq = text.indexOf('=');
  const name = eq < 0 ? text : text.slice(0, eq);
  if (eq < 0 || !NAME.test(name)) throw new UsageError(`-e expects KEY=VALUE with a valid variable name, got "${name}"`);
  return [name, text.slice(eq + 1)];
}

export async function readEnvFile(file: string): Promise<EnvVars> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new UserError(`cannot read env file ${file}: check the path`);
  }
  return parseDotenv(text);
}

export async function readEnvDir(dir: string): Promise<EnvVars> {
  const vars: EnvVars = {};
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    throw new UserError(`ENV_DIR ${dir} cannot be read: it must be a directory of one file per variable`);
  }
  for (const name of names.sort()) {
    if (!NAME.test(name)) continue;
    vars[name] = await readFile(path.join(dir, name), 'utf8');
  }
  return vars;
}

export async function writeEnvDir(dir: string, vars: EnvVars): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [name, value] of Object.entries(vars)) {
    await writeFile(path.join(dir, name), value, { mode: 0o600 });
  }
}

/** Names that say their value is a credential, whatever it looks like. */
const SECRET_NAME = /(SECRET|TOKEN|PASS|PWD|KEY|AUTH|CREDENTIAL|PRIVATE|SIGNATURE|CERT|SALT|DSN|(^|_)URL$)/i;
/** Values that are settings, not secrets: plain words, numbers, booleans (NODE_ENV=production, WEB_CONCURRENCY=4). */
const PLAIN_SETTING = /^([A-Za-z]+|[0-9.]+)$/;

/**
 * The config var values to keep out of every log line. Redacting a plain word
 * such as "http" or "production" would blank it all over the build output,
 * so those are kept unless the variable's name says it is a credential.
 */
export function secretValues(vars: EnvVars): string[] {
  return Object.entries(vars)
    .filter(([name, value]) => SECRET_NAME.test(name) || !PLAIN_SETTING.test(value))
    .map(([, value]) => value);
}
