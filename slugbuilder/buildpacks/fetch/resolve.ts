/**
 * Buildpacks from anywhere: turn a `--buildpack` / `BUILDPACK_URL` /
 * `.buildpacks` spec that is not a local directory into a directory the
 * buildpack chain can run.
 *
 *   spec.ts      what the spec is (git or tarball; heroku/NAME is the registry's tarball), its URL without credentials
 *   cache.ts     the cache entry, its lock, atomic publish, the copy out
 *   git.ts       shallow git fetch of a branch, tag or commit
 *   tarball.ts   streamed download (or local read) with progress and sha256, extract, strip the top dir
 *   validate.ts  the result has an executable bin/compile
 *
 * Network rules: a commit sha (or a tarball) already in the cache is used
 * without touching the network; branches, tags and the default branch are
 * fetched again (git only downloads what changed). With `offline`, anything in
 * the cache is used as it is and nothing is fetched. A tarball on this machine
 * (a path or file: URL) is read again each time and never cached.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../../shared/errors.js';
import { log } from '../../../shared/log.js';
import { CacheEntry, type CacheMeta } from './cache.js';
import { checkoutTree, fetchCommit } from './git.js';
import { type BuildpackSpec, cacheKey, describe, parseBuildpackSpec } from './spec.js';
import { downloadTarball } from './tarball.js';
import { validateBuildpack } from './validate.js';

export { parseBuildpackSpec } from './spec.js';

export interface ResolvedBuildpack {
  /** The build's own writable copy: `into` from the options. */
  dir: string;
  /** Repository or archive name, for log lines. */
  name: string;
  /** The URL without credentials: safe to print. */
  url: string;
  /** The ref asked for after `#`, if any. */
  ref?: string;
  /** The commit that was checked out (git buildpacks only). */
  commit?: string;
  /** The sha256 of the archive (tarball buildpacks only). */
  sha256?: string;
}

export interface ResolveOptions {
  /** Root of slugkit's cache; buildpacks live in `<cacheDir>/buildpacks/`. */
  cacheDir: string;
  /** Never touch the network: use the cache as it is, or fail. */
  offline?: boolean;
  /**
   * Where the build's copy goes (must not exist yet). Buildpacks write into
   * their own directory (`export`), which must reach neither the cache nor
   * another build, so each build gets its own copy, made once.
   */
  into: string;
}

export async function resolveBuildpack(spec: string, opts: ResolveOptions): Promise<ResolvedBuildpack> {
  const parsed = parseBuildpackSpec(spec);
  const entry = new CacheEntry(opts.cacheDir, cacheKey(parsed));
  const what = describe(parsed);
  const resolved = { dir: opts.into, name: parsed.name, url: parsed.display, ref: parsed.ref };
  if (parsed.local) {
    log.step(`Reading buildpack ${what}`);
    await mkdir(opts.into, { recursive: true });
    const sha256 = await downloadTarball(parsed, opts.into).finally(() => rm(`${opts.into}.strip`, { recursive: true, force: true }));
    await validateBuildpack(opts.into, `Buildpack ${what}`);
    return { ...resolved, sha256 };
  }

  return entry.withLock(what, async () => {
    await entry.removeLeftovers();
    const cached = await entry.readMeta();
    let meta: CacheMeta;
    if (cached && (cached.pinned || opts.offline)) {
      log.step(`Using cached buildpack ${what}${cached.commit ? ` (${cached.commit.slice(0, 12)})` : ''}`);
      meta = cached;
    } else if (opts.offline) {
      throw new UserError(
        `Buildpack ${what} is not in the buildpack cache and the build is offline; run one build with network access first`,
      );
    } else {
      log.step(`Fetching buildpack ${what}`);
      meta = await fetchIntoCache(parsed, entry, cached);
    }
    await mkdir(path.dirname(opts.into), { recursive: true });
    await entry.copyOut(opts.into);
    return { ...resolved, commit: meta.commit, sha256: meta.sha256 };
  });
}

/** Fetch into a temp dir in the entry, validate, then publish it as the entry's tree. */
async function fetchIntoCache(spec: BuildpackSpec, entry: CacheEntry, cached: CacheMeta | undefined): Promise<CacheMeta> {
  const where = `Buildpack ${describe(spec)}`;
  if (spec.source === 'tarball') {
    const meta: CacheMeta = { url: spec.display, source: 'tarball', pinned: !spec.latest };
    await stageAndPublish(entry, meta, async (staged) => {
      meta.sha256 = await downloadTarball(spec, staged);
      await validateBuildpack(staged, where);
    });
    return meta;
  }

  const { commit, pinned } = await fetchCommit(entry.repo, spec);
  const meta: CacheMeta = { url: spec.display, ref: spec.ref, source: 'git', commit, pinned };
  if (cached?.commit === commit) {
    log.info(`Up to date at ${commit.slice(0, 12)}`);
    return cached;
  }
  await stageAndPublish(entry, meta, async (staged) => {
    await checkoutTree(entry.repo, commit, staged);
    await validateBuildpack(staged, where);
  });
  log.info(`Checked out ${commit.slice(0, 12)}`);
  return meta;
}

/** Fill a temp dir and publish it; on failure the temp dir goes and the cache keeps what it had. */
async function stageAndPublish(entry: CacheEntry, meta: CacheMeta, fill: (staged: string) => Promise<void>): Promise<void> {
  const staged = await entry.tempDir();
  try {
    await fill(staged);
    await entry.publish(staged, meta);
  } finally {
    await rm(staged, { recursive: true, force: true });
    await rm(`${staged}.strip`, { recursive: true, force: true });
  }
}
