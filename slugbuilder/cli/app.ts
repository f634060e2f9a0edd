/**
 * What several slugbuilder commands read the same way: the app named by
 * --app or SLUGBUILDER_APP, and the root of slugkit's caches.
 */
import os from 'node:os';
import path from 'node:path';
import { checkAppName } from '../buildpacks/cache-dir.js';

/** The app being built or cleared: --app, else SLUGBUILDER_APP, else none. */
export function appName(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (flag !== undefined) return checkAppName(flag, '--app');
  return env.SLUGBUILDER_APP ? checkAppName(env.SLUGBUILDER_APP, 'SLUGBUILDER_APP') : undefined;
}

/** Where slugkit caches: SLUGBUILDER_CACHE_DIR, else $XDG_CACHE_HOME/slugkit, else ~/.cache/slugkit. */
export function defaultCacheRoot(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return env.SLUGBUILDER_CACHE_DIR || path.join(xdg, 'slugkit');
}
