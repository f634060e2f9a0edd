/**
 * The dyno environment: HOME and the working dir are the app dir, PORT
 * defaults to 5000, DYNO names the process, and release config_vars fill in
 * only what the platform has not already set.
 */
import { UsageError } from '../shared/errors.js';
import type { Release } from '../shared/release.js';

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
