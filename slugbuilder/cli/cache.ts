/**
 * `slugbuilder cache clear [--app NAME | --all]`: removes the default build
 * cache of one app, the shared one (no app named), or everything slugkit
 * caches, so the next build starts cold.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseCommand } from '../../shared/command.js';
import { UsageError, UserError } from '../../shared/errors.js';
import { liveHolder } from '../../shared/file-lock.js';
import { exists, removeInside } from '../../shared/fs.js';
import { log } from '../../shared/log.js';
import { clearCacheDir, defaultCacheDir, defaultCacheDirs } from '../buildpacks/cache-dir.js';
import { appName } from './app.js';

export const CACHE_USAGE = `Usage: slugbuilder cache clear [--app NAME | --all]
  Removes a build cache, so the next build starts cold (refused while a build uses it):
  --app NAME   that app's cache (default: env SLUGBUILDER_APP, else the shared cache of builds without --app)
  --all        everything slugkit caches: every app's cache, the shared one, the image
               layers (layers/) and the fetched buildpacks (buildpacks/)
  The caches live in $SLUGBUILDER_CACHE_DIR, else $XDG_CACHE_HOME/slugkit, else ~/.cache/slugkit;
  a --cache-dir DIR or --cache-url of your own is yours to remove.
`;

const CACHE = {
  name: 'slugbuilder cache',
  usage: CACHE_USAGE,
  options: { app: { type: 'string' }, all: { type: 'boolean' } },
  positionals: { known: ['clear'], max: 1 },
} as const;

export async function cacheCommand(argv: string[], cacheRoot: string, env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand(CACHE, argv);
  if (!parsed) return 0;
  const { values: v, positionals } = parsed;
  if (positionals[0] !== 'clear') throw new UsageError('slugbuilder cache expects "clear" (see slugbuilder cache --help)');
  if (v.all && v.app !== undefined) throw new UsageError('cache clear takes --app NAME or --all, not both');
  const dirs = v.all ? await defaultCacheDirs(cacheRoot) : [defaultCacheDir(cacheRoot, appName(v.app, env))];
  for (const dir of dirs) {
    const label = `the cache at ${dir}`;
    log.step((await clearCacheDir(dir, label)) ? `Cleared ${label}` : `No cache at ${dir}`);
  }
  if (v.all) {
    await clearKept(cacheRoot, 'layers', 'the image layer cache');
    await clearBuildpacks(cacheRoot);
  }
  return 0;
}

/** The image layer cache: safe to remove under a build, which takes its own link to a blob before using it. */
async function clearKept(cacheRoot: string, rel: string, what: string): Promise<void> {
  const dir = path.join(cacheRoot, rel);
  if (!(await exists(dir))) {
    log.step(`No ${what} at ${dir}`);
    return;
  }
  await removeInside(cacheRoot, rel, what);
  log.step(`Cleared ${what} at ${dir}`);
}

/** Fetched buildpacks: an entry a build is fetching or copying out of (its lock held) is not pulled away. */
async function clearBuildpacks(cacheRoot: string): Promise<void> {
  const dir = path.join(cacheRoot, 'buildpacks');
  const entries = await readdir(dir).catch(() => undefined);
  if (!entries) {
    log.step(`No buildpack cache at ${dir}`);
    return;
  }
  for (const key of entries) {
    const holder = await liveHolder(path.join(dir, key, 'lock'));
    if (holder) throw new UserError(`the buildpack cache at ${dir} is in use by a build (${holder}): clear it when the build has finished`);
  }
  await removeInside(cacheRoot, 'buildpacks', 'the buildpack cache');
  log.step(`Cleared the buildpack cache at ${dir}`);
}
