/**
 * One build, phase by phase: source -> .slugignore -> buildpack choice ->
 * compile -> release -> process types -> slug. Each phase hands the next
 * plain data. The result goes to the caller's `deliver` (the outputs) while
 * the workspace still exists; it is removed whatever happens.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { forget, removeOnExit } from '../shared/fs.js';
import { UserError } from '../shared/errors.js';
import { configVarSecrets, MIN_SECRET_LENGTH, writeEnvDir, type EnvVars } from '../shared/env-dir.js';
import { displayUrl } from '../shared/http.js';
import { log, redact } from '../shared/log.js';
import { mergeProcessTypes, parseProcfile, type ProcessTypes } from '../shared/procfile.js';
import type { Release } from '../shared/release.js';
import { formatSize } from '../shared/tar/extract.js';
import { buildEnvironment } from './buildpacks/build-env.js';
import { settleCacheRemovals, withCacheDir } from './buildpacks/cache-dir.js';
import { packCache, restoreCache, uploadCache, type CacheUrls } from './buildpacks/cache-url.js';
import { chooseBuildpacks, type ChosenBuildpack } from './buildpacks/choose.js';
import { compileAll, runAppHook, type CompileContext } from './buildpacks/classic/compile.js';
import { releaseAll } from './buildpacks/classic/release.js';
import { writeLaunchPlan } from '../slugrunner/launch-plan.js';
import { applySlugignore } from './source/slugignore.js';
import { writeSlug, type SlugInfo } from './slug.js';
import { intakeSource } from './source/intake.js';

export interface BuildOptions {
  /** `--source` or TAR_URL; undefined reads stdin. */
  source?: string;
  stdin: Readable & { isTTY?: boolean };
  /** Explicit buildpacks (`--buildpack`, BUILDPACK_URL); empty means detect. */
  buildpacks: string[];
  cacheDir: string;
  /** `--cache-url`: CACHE_DIR fetched from there before compile, stored back after a successful build. */
  cacheUrls?: CacheUrls;
  /** Root of slugkit's own caches (fetched buildpacks). */
  cacheRoot: string;
  configVars: EnvVars;
  /** Names from slugbuilder's environment handed to buildpacks as they are (`--pass-env`). */
  passEnv: string[];
  stack: string;
  sourceVersion?: string;
  /** Only so its credentials are redacted from the first line on; the CLI uploads. */
  putUrl?: string;
  timeoutMs: number;
  mtime: Date;
  maxSourceBytes: number;
  maxFiles: number;
  maxSlugBytes: number;
  warnSlugBytes: number;
}

export interface BuildResult {
  slug: SlugInfo;
  buildpacks: Array<{ name: string; origin: string }>;
  processTypes: ProcessTypes;
  release: Release;
  /** The built app dir (what the slug holds): there until `deliver` returns. */
  appDir: string;
  sourceVersion?: string;
  stack: string;
}

/** What happens to a finished build before its workspace goes: the outputs. */
export type Deliver = (result: BuildResult) => Promise<void>;

export async function build(opts: BuildOptions, deliver: Deliver): Promise<BuildResult> {
  // URL credentials are secrets from the first line on: a buildpack may print
  // its environment long before the upload names PUT_URL.
  for (const url of [opts.source, opts.putUrl, opts.cacheUrls?.get, opts.cacheUrls?.put, ...opts.buildpacks]) if (url) displayUrl(url);
  const work = await mkdtemp(path.join(os.tmpdir(), 'slugbuilder-'));
  removeOnExit(work);
  try {
    return await buildIn(work, opts, deliver);
  } finally {
    await rm(work, { recursive: true, force: true });
    forget(work);
  }
}

async function buildIn(work: string, opts: BuildOptions, deliver: Deliver): Promise<BuildResult> {
  const buildDir = path.join(work, 'app');
  const envDir = path.join(work, 'env');
  const home = path.join(work, 'home');
  const tmpDir = path.join(work, 'tmp');
  // The cache dir is made by withCacheDir, under its lock.
  await Promise.all([mkdir(buildDir, { mode: 0o755 }), mkdir(home), mkdir(tmpDir)]);

  const sourceInfo = await intakeSource({ source: opts.source, stdin: opts.stdin, limits: { maxBytes: opts.maxSourceBytes, maxFiles: opts.maxFiles } }, buildDir);
  // As on Heroku, SOURCE_VERSION is the commit being built: told, or read from `git archive`'s header.
  const sourceVersion = opts.sourceVersion ?? sourceInfo.commit;
  await applySlugignore(buildDir);

  const secrets = configVarSecrets(opts.configVars);
  redact(...secrets.values);
  for (const name of secrets.tooShort) log.info(`${name} is shorter than ${MIN_SECRET_LENGTH} characters: too short to redact, it may appear in this log`);
  await writeEnvDir(envDir, opts.configVars);

  const env = buildEnvironment({
    stack: opts.stack,
    sourceVersion,
    requestId: randomUUID(),
    home,
    tmpDir,
    appDir: buildDir,
    passEnv: opts.passEnv,
    host: process.env,
    nodePath: process.execPath,
  });

  const chosen = await chooseBuildpacks({ buildpacks: opts.buildpacks, buildDir, env, workDir: work, cacheRoot: opts.cacheRoot });

  // Compile holds the cache dir's lock and works on a private copy that is
  // published only on success: concurrent builds sharing a cache run their
  // compiles one at a time, and a failed or killed build leaves the cache as it was.
  const packedCache = path.join(work, 'cache.tgz');
  const cacheSize = await withCacheDir(opts.cacheDir, async (cacheDir) => {
    if (opts.cacheUrls) await restoreCache(opts.cacheUrls.get, cacheDir);
    const ctx: CompileContext = { buildDir, cacheDir, envDir, env, timeoutMs: opts.timeoutMs };
    await runAppHook('pre-compile', [], ctx);
    const exports = await compileAll(chosen, ctx);
    await runAppHook('post-compile', exports, ctx);
    return opts.cacheUrls ? packCache(cacheDir, packedCache, opts.mtime) : 0;
  });

  const released = await releaseAll(chosen, { buildDir, env, timeoutMs: opts.timeoutMs });
  await writeLaunchPlan(buildDir);
  const processTypes = await discoverProcessTypes(buildDir, released, chosen);

  log.step('Compressing...');
  const slug = await writeSlug(buildDir, path.join(work, 'slug.tgz'), { mtime: opts.mtime, maxBytes: opts.maxSlugBytes });
  log.info('Done: slug built');
  log.step(`Compiled slug size is ${formatSize(slug.size)}`);
  if (slug.size > opts.warnSlugBytes) log.warn(`Warning: your slug size (${formatSize(slug.size)}) exceeds the soft limit (${formatSize(opts.warnSlugBytes)}), which may slow start-up`);

  const result: BuildResult = {
    slug,
    buildpacks: chosen.map((bp) => ({ name: bp.name, origin: bp.origin })),
    processTypes,
    release: released,
    appDir: buildDir,
    sourceVersion,
    stack: opts.stack,
  };
  await deliver(result);
  if (opts.cacheUrls) await uploadCache(opts.cacheUrls.put, packedCache, cacheSize);
  await settleCacheRemovals();
  return result;
}

/** The merged buildpack defaults, then the app's Procfile over all of them. */
async function discoverProcessTypes(buildDir: string, released: Release, chosen: ChosenBuildpack[]): Promise<ProcessTypes> {
  log.step('Discovering process types');
  const procfileText = await readFile(path.join(buildDir, 'Procfile'), 'utf8').catch(() => undefined);
  const declared = procfileText === undefined ? {} : parseProcfile(procfileText);
  if (procfileText !== undefined) log.info(`Procfile declares types -> ${Object.keys(declared).join(', ') || '(none)'}`);
  const defaults = released.default_process_types;
  log.info(`Default types for buildpack${chosen.length > 1 ? 's' : ''} -> ${Object.keys(defaults).join(', ') || '(none)'}`);
  return mergeProcessTypes(defaults, declared);
}
