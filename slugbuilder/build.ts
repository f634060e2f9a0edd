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
import { secretValues, writeEnvDir, type EnvVars } from '../shared/env-dir.js';
import { displayUrl } from '../shared/http.js';
import { log, redact } from '../shared/log.js';
import { mergeProcessTypes, parseProcfile, type ProcessTypes } from '../shared/procfile.js';
import type { Release } from '../shared/release.js';
import { formatSize } from '../shared/tar/extract.js';
import { appBuildpackList, bundledBuildpacks, prepareBuildpack, type Buildpack } from './buildpacks/prepare.js';
import { settleCacheRemovals, withCacheDir } from './buildpacks/cache-dir.js';
import { compileAll, runAppHook, type CompileContext } from './buildpacks/classic/compile.js';
import { detect } from './buildpacks/classic/detect.js';
import { release } from './buildpacks/classic/release.js';
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
  /** Root of slugkit's own caches (fetched buildpacks). */
  cacheRoot: string;
  configVars: EnvVars;
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
  for (const url of [opts.source, opts.putUrl, ...opts.buildpacks]) if (url) displayUrl(url);
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
  // The cache dir is made by withCacheDir, under its lock.
  await Promise.all([mkdir(buildDir, { mode: 0o755 }), mkdir(home)]);

  const sourceInfo = await intakeSource({ source: opts.source, stdin: opts.stdin, limits: { maxBytes: opts.maxSourceBytes, maxFiles: opts.maxFiles } }, buildDir);
  // As on Heroku, SOURCE_VERSION is the commit being built: told, or read from `git archive`'s header.
  const sourceVersion = opts.sourceVersion ?? sourceInfo.commit;
  await applySlugignore(buildDir);

  redact(...secretValues(opts.configVars));
  await writeEnvDir(envDir, opts.configVars);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    STACK: opts.stack,
    REQUEST_ID: randomUUID(),
    // A scratch HOME: tools that write to ~ must not pollute the slug or the operator's home.
    HOME: home,
    APP_DIR: buildDir,
  };
  if (sourceVersion) env.SOURCE_VERSION = sourceVersion;
  else delete env.SOURCE_VERSION;
  // Buildpacks and the app's hooks are untrusted code: they get neither the
  // upload URL (which could overwrite stored slugs) nor the source URL's credentials.
  delete env.PUT_URL;
  delete env.TAR_URL;

  const chosen = await chooseBuildpacks(opts, { work, buildDir, env });

  // Compile holds the cache dir's lock and works on a private copy that is
  // published only on success: concurrent builds sharing a cache run their
  // compiles one at a time, and a failed or killed build leaves the cache as it was.
  await withCacheDir(opts.cacheDir, async (cacheDir) => {
    const ctx: CompileContext = { buildDir, cacheDir, envDir, env, timeoutMs: opts.timeoutMs };
    await runAppHook('pre-compile', [], ctx);
    const exports = await compileAll(chosen, ctx);
    await runAppHook('post-compile', exports, ctx);
  });

  const last = chosen[chosen.length - 1];
  const released = await release(last, buildDir, env, opts.timeoutMs);
  const processTypes = await discoverProcessTypes(buildDir, released);

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
  await settleCacheRemovals();
  return result;
}

interface ChoiceContext {
  work: string;
  buildDir: string;
  env: NodeJS.ProcessEnv;
}

async function chooseBuildpacks(opts: BuildOptions, c: ChoiceContext): Promise<Buildpack[]> {
  const resolve = { workDir: c.work, cacheRoot: opts.cacheRoot };
  const explicit = opts.buildpacks.length > 0 ? opts.buildpacks : await appBuildpackList(c.buildDir);
  if (explicit.length > 0) {
    const chosen: Buildpack[] = [];
    for (const spec of explicit) {
      const bp = await prepareBuildpack(spec, resolve);
      const found = await detect(bp, c.buildDir, c.env);
      bp.name = found.name;
      // An explicitly chosen buildpack runs even when its detect says no, as on Heroku.
      log.step(found.detected ? `${found.name} app detected` : `Using buildpack ${bp.origin}`);
      chosen.push(bp);
    }
    return chosen;
  }
  for (const dir of await bundledBuildpacks()) {
    const bp = await prepareBuildpack(dir, resolve);
    const found = await detect(bp, c.buildDir, c.env);
    if (found.detected) {
      bp.name = found.name;
      log.step(`${found.name} app detected`);
      return [bp];
    }
  }
  log.step('Unable to select a buildpack');
  throw new UserError('no buildpack detected this app: add a Procfile, or choose one with --buildpack or BUILDPACK_URL');
}

async function discoverProcessTypes(buildDir: string, released: Release): Promise<ProcessTypes> {
  log.step('Discovering process types');
  const procfileText = await readFile(path.join(buildDir, 'Procfile'), 'utf8').catch(() => undefined);
  const declared = procfileText === undefined ? {} : parseProcfile(procfileText);
  if (procfileText !== undefined) log.info(`Procfile declares types -> ${Object.keys(declared).join(', ') || '(none)'}`);
  const defaults = released.default_process_types;
  log.info(`Default types for buildpack -> ${Object.keys(defaults).join(', ') || '(none)'}`);
  return mergeProcessTypes(defaults, declared);
}
