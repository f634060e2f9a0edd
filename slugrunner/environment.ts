/**
 * The dyno environment: HOME and the working dir are the app dir, PORT
 * defaults to 5000, DYNO names the process, and release config_vars fill in
 * only what the platform has not already set.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../shared/errors.js';
import { readTextInside } from '../shared/fs.js';
import { mergeProcessTypes, type ProcessTypes, parseProcfile } from '../shared/procfile.js';
import { parseRelease, type Release } from '../shared/release.js';

/**
 * shared/launch-metadata.ts's LAUNCH_METADATA, said again here so that a
 * classic start only checks for the file and loads no TOML parser.
 */
export const CNB_METADATA = path.join('.layers', 'config', 'metadata.toml');

export interface AppInfo {
  release: Release;
  procfile: ProcessTypes;
  /** Procfile first, then the release's default_process_types. */
  processTypes: ProcessTypes;
  /** The app was built by Cloud Native Buildpacks (it has their launch metadata). */
  cnb: boolean;
}

export async function readAppInfo(appDir: string): Promise<AppInfo> {
  // A slug is hostile data: a .release or Procfile linking out of the app is refused, never read.
  const releaseText = (await readTextInside(appDir, '.release')) ?? '';
  const release = await parseRelease(releaseText, `${appDir}/.release`);
  const procfileText = (await readTextInside(appDir, 'Procfile')) ?? '';
  const procfile = parseProcfile(procfileText);
  const cnb = existsSync(path.join(appDir, CNB_METADATA));
  return { release, procfile, processTypes: mergeProcessTypes(release.default_process_types, procfile), cnb };
}

export const DEFAULT_PORT = 5000;
export const MAX_PORT = 65535;

/**
 * The port `start` listens from: PORT, or 5000 when it is unset or empty.
 * Anything but a port number is refused rather than replaced, so a typo in
 * the platform's config never starts the app on a port nobody routes to.
 */
export function basePort(env: NodeJS.ProcessEnv): number {
  const raw = env.PORT;
  if (raw === undefined || raw === '') return DEFAULT_PORT;
  if (!/^[1-9][0-9]{0,4}$/.test(raw) || Number(raw) > MAX_PORT) {
    const shown = raw.length > 20 ? `${raw.slice(0, 20)}...` : raw;
    throw new UsageError(`PORT="${shown}" is not a port number: set it to 1-${MAX_PORT}, or unset it for ${DEFAULT_PORT}`);
  }
  return Number(raw);
}

export function dynoEnvironment(base: NodeJS.ProcessEnv, appDir: string, dyno: string, release: Release): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [name, value] of Object.entries(release.config_vars)) {
    if (env[name] === undefined) env[name] = value;
  }
  env.HOME = appDir;
  env.PORT = base.PORT || String(DEFAULT_PORT);
  env.DYNO = base.DYNO || dyno;
  env.PWD = appDir;
  return env;
}
