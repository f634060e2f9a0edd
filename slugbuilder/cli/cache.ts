/**
 * `slugbuilder cache clear [--app NAME | --all]`: removes the default build
 * cache of one app, the shared one (no app named), or all of them, so the
 * next build starts cold. Fetched buildpacks are kept.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../../shared/errors.js';
import { log } from '../../shared/log.js';
import { checkAppName, clearCacheDir, defaultCacheDir, defaultCacheDirs } from '../buildpacks/cache-dir.js';

export const CACHE_USAGE = `Usage: slugbuilder cache clear [--app NAME | --all]
  Removes a default build cache (refused while a build uses it):
  --app NAME   that app's cache (default: env SLUGBUILDER_APP, else the shared cache of builds without --app)
  --all        every app's cache and the shared one
`;

export async function cacheCommand(argv: string[], cacheRoot: string): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { app: { type: 'string' }, all: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} (see slugbuilder cache --help)`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(CACHE_USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'clear')
    throw new UsageError('slugbuilder cache expects "clear" (see slugbuilder cache --help)');
  if (v.all && v.app) throw new UsageError('cache clear takes --app NAME or --all, not both');
  const app = v.all
    ? undefined
    : v.app !== undefined
      ? checkAppName(v.app, '--app')
      : process.env.SLUGBUILDER_APP
        ? checkAppName(process.env.SLUGBUILDER_APP, 'SLUGBUILDER_APP')
        : undefined;
  const dirs = v.all ? await defaultCacheDirs(cacheRoot) : [defaultCacheDir(cacheRoot, app)];
  for (const dir of dirs) {
    const label = `the cache at ${dir}`;
    log.step((await clearCacheDir(dir, label)) ? `Cleared ${label}` : `No cache at ${dir}`);
  }
  return 0;
}
