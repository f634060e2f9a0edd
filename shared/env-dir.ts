/**
 * Config vars for the buildpack API: ENV_DIR holds one file per variable,
 * named after it, whose contents are the value (newlines allowed).
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { UsageError, UserError } from './errors.js';
import { withoutCredentials } from './http.js';

export type EnvVars = Record<string, string>;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `-e NAME=VALUE`, or `-e NAME` taking NAME's value from `env` (slugbuilder's
 * own environment), as `docker run -e` and `pack build --env` do.
 */
export function parseAssignment(text: string, env: NodeJS.ProcessEnv = {}): [string, string] {
  const eq = text.indexOf('=');
  const name = eq < 0 ? text : text.slice(0, eq);
  // The value is never echoed: it may be a secret.
  if (name === '') throw new UsageError('-e needs KEY=VALUE, got no variable name before "=": write it as NAME=VALUE');
  if (!NAME.test(name))
    throw new UsageError(`-e ${name}=...: "${name}" is not a variable name (letters, digits and _, not starting with a digit)`);
  if (eq >= 0) return [name, text.slice(eq + 1)];
  const value = env[name];
  if (value === undefined)
    throw new UsageError(`-e ${name}: ${name} is not set in slugbuilder's environment; export it or write it as ${name}=VALUE`);
  return [name, value];
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

/**
 * A config var holds a secret when a part of its name (split at "_") ends in
 * KEY, SECRET, TOKEN, PASSWORD, PASSWD, PASSPHRASE or CREDENTIAL(S), or is
 * PASS, PWD, AUTH, PRIVATE, DSN, SALT or SIGNATURE: API_KEY, DB_PASSWORD,
 * GITHUBTOKEN, SENTRY_DSN, but not AUTHOR or PASSENGER_COUNT.
 */
const SECRET_PART =
  /^(.*(KEY|SECRET|TOKEN|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?)|KEYS|SECRETS|TOKENS|PASS|PWD|AUTH|PRIVATE|DSN|SALT|SIGNATURE)$/;

/** Shorter secret values are not redacted: hiding "node" or "pw" would blank ordinary words all over the log. */
export const MIN_SECRET_LENGTH = 6;

export function isSecretName(name: string): boolean {
  return name
    .toUpperCase()
    .split('_')
    .some((part) => SECRET_PART.test(part));
}

/** URLs inside a value (DATABASE_URL, a list of mirrors): their credentials are secrets whatever the name. */
const URL_IN_TEXT = /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s,;'"<>]+/g;

export interface ConfigVarSecrets {
  /** Values to redact. */
  values: string[];
  /** Names of secret-named vars whose value is too short to redact. */
  tooShort: string[];
}

/**
 * The config var values to keep out of every log line: whole values of
 * secret-named vars (at least MIN_SECRET_LENGTH characters), and the
 * credentials of every URL in any value. Other values are settings
 * (NODE_ENV=production, GREETING=hello) and print as they are.
 */
export function configVarSecrets(vars: EnvVars): ConfigVarSecrets {
  const found: ConfigVarSecrets = { values: [], tooShort: [] };
  for (const [name, value] of Object.entries(vars)) {
    // withoutCredentials registers a URL's credentials with redact() itself.
    for (const url of value.match(URL_IN_TEXT) ?? []) {
      try {
        withoutCredentials(new URL(url));
      } catch {
        // not a URL after all
      }
    }
    if (!isSecretName(name)) continue;
    if (value.trim().length >= MIN_SECRET_LENGTH) found.values.push(value);
    else if (value !== '') found.tooShort.push(name);
  }
  return found;
}
