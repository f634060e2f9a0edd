/**
 * One build, phase by phase: source -> .slugignore -> buildpack choice ->
 * compile -> release -> process types -> slug. Each phase hands the next
 * plain data. The result goes to the caller's `deliver` (the outputs) while
 * the workspace still exists; it is removed whatever happens.
 */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { BuiltApp } from '../shared/app/app.js';
import { writeLaunchPlan } from '../shared/app/launch-plan.js';
import { PROCFILE } from '../shared/app/layout.js';
import { type AppProcesses, commandLines, resolveProcesses } from '../shared/app/processes.js';
import { readProcfile } from '../shared/app/release-file.js';
import { configVarSecrets, type EnvVars, MIN_SECRET_LENGTH, writeEnvDir } from '../shared/env-dir.js';
import { makeTempDir, removeTemp } from '../shared/fs.js';
import { displayUrl } from '../shared/http.js';
import { log, redact } from '../shared/log.js';
import type { ProcessTypes } from '../shared/procfile.js';
import type { Release } from '../shared/release.js';
import { claimTempDir, removeStaleTempDirs } from '../shared/stale-temp.js';
import { formatSize } from '../shared/units.js';
import { buildEnvironment } from './buildpacks/build-env.js';
import { type BuilderFile, resolveUri } from './buildpacks/builder-file.js';
import { settleCacheRemovals, withCacheDir } from './buildpacks/cache-dir.js';
import { type CacheUrls, cacheLimits, packCache, restoreCache, uploadCache } from './buildpacks/cache-url.js';
import { type ChainResult, compileChain, releaseChain } from './buildpacks/chain.js';
import { chooseBuildpacks, type GroupMemberBuildpack, type ListedBuildpack } from './buildpacks/choose.js';
import { type CompileContext, runAppHook } from './buildpacks/classic/compile.js';
import { type BuildTarget, buildTarget } from './buildpacks/cnb/detect.js';
import type { SbomFile } from './buildpacks/cnb/sbom.js';
import { appBuildpackList } from './buildpacks/prepare.js';
import type { ScriptContext } from './buildpacks/run-script.js';
import { canBuildWrite, resolveSandbox, type Sandbox, type SandboxMode, widen } from './buildpacks/sandbox.js';
import { LayerCache } from './image/layer-cache.js';
import type { SlugLayers } from './image/slug-layers.js';
import { writeAppSbom } from './sbom/app-sbom.js';
import { type SlugInfo, writeSlug } from './slug-parts.js';
import { type AppDir, claimAppDir } from './source/app-dir.js';
import { intakeSource } from './source/intake.js';
import { applyProjectFilters, keepProjectBuildpacks, type ProjectDescriptor, readProjectDescriptor } from './source/project-descriptor.js';
import { applySlugignore } from './source/slugignore.js';
import { StepTimer } from './step-timer.js';

export interface BuildOptions {
  /** `--source` or TAR_URL; undefined reads stdin. */
  source?: string;
  stdin: Readable & { isTTY?: boolean };
  /** Explicit buildpacks (`--buildpack`, BUILDPACK_URL); empty means project.toml, `.buildpacks`, then detect. */
  buildpacks: string[];
  /** `--builder FILE`, read: its order replaces the bundled one, its [[build.env]] joins the config vars. */
  builder?: BuilderFile;
  cacheDir: string;
  /** `--cache-url`: CACHE_DIR fetched from there before compile, stored back after a successful build. */
  cacheUrls?: CacheUrls;
  /** `--app-dir`: where the app is built in place; default /app in the builder image, else a temp dir. */
  appDir?: string;
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
  /** `--sandbox` (env SLUGKIT_SANDBOX): run buildpacks under bubblewrap. */
  sandbox: SandboxMode;
  /** The CNB target from the run image (--run-image, builder.toml [run]); unset: the build host's. */
  target?: Partial<BuildTarget>;
}

export interface BuildResult {
  slug: SlugInfo;
  buildpacks: BuildpackSummary[];
  processTypes: ProcessTypes;
  /** What `start` runs without a type (shared/app/processes.ts defaultProcessType). */
  defaultProcess: string;
  /** Each type's start, for the image's checks of what it runs. */
  processes: AppProcesses;
  release: Release;
  /** The built app dir (what the slug holds): there until `deliver` returns. */
  appDir: string;
  sourceVersion?: string;
  stack: string;
  /** The SBOM files the CNBs wrote (build and cache ones are nowhere else); none for --slug. */
  sboms?: SbomFile[];
  /** --slug with --image: the dependency trees went into layers straight from the slug and are not in appDir. */
  slugLayers?: SlugLayers;
  /**
   * No code of this build could have written the layer cache (buildpacks
   * sandboxed, or none ran): a kept layer is taken on its record. Else the
   * image's layers from the cache are inflated and checked against their diff_id.
   */
  layerCacheTrusted: boolean;
}

/** A buildpack of the chain as --summary lists it. */
export interface BuildpackSummary {
  name: string;
  origin: string;
  kind: 'classic' | 'cnb';
  id?: string;
  version?: string;
  api?: string;
  commit?: string;
  sha256?: string;
}

function summaryEntry(m: GroupMemberBuildpack): BuildpackSummary {
  const fetched = {
    ...(m.version?.commit ? { commit: m.version.commit } : {}),
    ...(m.version?.sha256 ? { sha256: m.version.sha256 } : {}),
  };
  if (m.kind === 'classic') return { name: m.name, origin: m.origin, kind: 'classic', ...fetched };
  const d = m.descriptor;
  return { name: m.name, origin: m.origin, kind: 'cnb', id: d.id, ...(d.version ? { version: d.version } : {}), api: d.api, ...fetched };
}

/** What happens to a finished build before its workspace goes: the outputs. */
export type Deliver = (result: BuildResult) => Promise<void>;

/** A build's workspace in the temp dir; a later build removes one whose builder was killed. */
const WORKSPACE_PREFIX = 'slugbuilder-';

export async function build(opts: BuildOptions, deliver: Deliver): Promise<BuildResult> {
  // URL credentials are secrets from the first line on: a buildpack may print
  // its environment long before the upload names PUT_URL.
  for (const url of [opts.source, opts.putUrl, opts.cacheUrls?.get, opts.cacheUrls?.put, ...opts.buildpacks]) if (url) displayUrl(url);
  // `--sandbox on` where bwrap cannot work is refused before the source is
  // read; `auto` is checked (one bwrap start) while the source is taken.
  const sandbox = resolveSandbox(opts.sandbox, { nodePath: process.execPath, host: process.env });
  if (opts.sandbox === 'on') await sandbox;
  else sandbox.catch(() => undefined); // awaited before detect; a source error may come first
  // Workspaces of builds that were killed (kill -9 runs no cleanup) go now.
  await removeStaleTempDirs(os.tmpdir(), WORKSPACE_PREFIX);
  const work = await makeTempDir(WORKSPACE_PREFIX);
  let appDir: AppDir | undefined;
  try {
    await claimTempDir(work);
    appDir = await claimAppDir(opts.appDir, work);
    return await buildIn(work, appDir, opts, sandbox, deliver);
  } finally {
    await appDir?.release();
    await removeTemp(work);
  }
}

async function buildIn(
  work: string,
  appDir: AppDir,
  opts: BuildOptions,
  sandboxed: Promise<Sandbox>,
  deliver: Deliver,
): Promise<BuildResult> {
  const timer = new StepTimer();
  const buildDir = appDir.dir;
  const envDir = path.join(work, 'env');
  const home = path.join(work, 'home');
  const tmpDir = path.join(work, 'tmp');
  // The cache dir is made by withCacheDir, under its lock.
  await Promise.all([mkdir(home), mkdir(tmpDir)]);

  const { sourceVersion, project } = await takeSource(opts, buildDir, work);
  timer.mark('source');

  // The builder's and project.toml's [[build.env]] are config vars too; -e and --env-file win.
  const configVars: EnvVars = { ...envList(opts.builder?.env), ...envList(project?.env), ...opts.configVars };
  const secrets = configVarSecrets(configVars);
  redact(...secrets.values);
  for (const name of secrets.tooShort)
    log.info(`${name} is shorter than ${MIN_SECRET_LENGTH} characters: too short to redact, it may appear in this log`);
  await writeEnvDir(envDir, configVars);
  // The CNB platform dir: env/ holds the same config vars, one file each.
  const platformDir = path.join(work, 'platform');
  await writeEnvDir(path.join(platformDir, 'env'), configVars);

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

  // What every buildpack process sees of this build: its app, scratch HOME and TMPDIR, config vars read-only.
  const sandbox = widen(await sandboxed, { rw: [buildDir, home, tmpDir], ro: [envDir, platformDir] });
  const target = await buildTarget(opts.target);
  const chosen = await chooseBuildpacks({
    ...(await explicitList(opts.buildpacks, project, buildDir)),
    builder: opts.builder,
    buildDir,
    env,
    workDir: work,
    cacheRoot: opts.cacheRoot,
    platformDir,
    scratchDir: path.join(work, 'detect'),
    platform: { stack: opts.stack, target },
    timeoutMs: opts.timeoutMs,
    sandbox,
  });
  if (!appDir.stable && chosen.some((m) => m.kind === 'cnb')) {
    log.warn(
      `Warning: building in ${buildDir}, a temporary dir: absolute paths Cloud Native Buildpacks write will not hold at run time; pass --app-dir (and the same slugrunner --app-dir)`,
    );
  }
  timer.mark('detect');

  // Compile holds the cache dir's lock and works on a private copy that is
  // published only on success: concurrent builds sharing a cache run their
  // compiles one at a time, and a failed or killed build leaves the cache as it was.
  const packedCache = path.join(work, 'cache.tgz');
  let chain: ChainResult | undefined;
  const cacheSize = await withCacheDir(opts.cacheDir, async (cacheDir) => {
    if (opts.cacheUrls)
      await restoreCache(opts.cacheUrls.get, cacheDir, cacheLimits({ maxBytes: opts.maxSourceBytes, maxFiles: opts.maxFiles }));
    const ctx: CompileContext = { buildDir, cacheDir, envDir, env, timeoutMs: opts.timeoutMs, sandbox };
    await runAppHook('pre-compile', [], ctx);
    chain = await compileChain(chosen, { ...ctx, platformDir, target, scratchDir: work });
    await runAppHook('post-compile', chain.exports, ctx);
    return opts.cacheUrls ? packCache(cacheDir, packedCache, opts.mtime) : 0;
  });
  timer.mark('compile');

  const { released, processTypes, processes } = await releaseApp(chosen, chain!, { buildDir, env, timeoutMs: opts.timeoutMs, sandbox });
  // After every buildpack: what the app was given, whichever buildpack installed it.
  await writeAppSbom(buildDir);
  timer.mark('release');

  log.step('Compressing...');
  // The image's app layers are kept there too: same compressor, keyed by tar.
  const layerCache = new LayerCache(path.join(opts.cacheRoot, 'layers'));
  // Every buildpack and hook has run: the cache's records bind its blobs unless their code could have written it.
  const layerCacheTrusted = !canBuildWrite(sandbox, layerCache.dir, [opts.cacheDir]);
  const slug = await writeSlug(buildDir, path.join(work, 'slug.tgz'), {
    mtime: opts.mtime,
    maxBytes: opts.maxSlugBytes,
    layerCache: layerCacheTrusted ? layerCache : layerCache.proving(),
  });
  log.info('Done: slug built');
  log.step(`Compiled slug size is ${formatSize(slug.size)}`);
  if (slug.size > opts.warnSlugBytes)
    log.warn(
      `Warning: your slug size (${formatSize(slug.size)}) exceeds the soft limit (${formatSize(opts.warnSlugBytes)}), which may slow start-up`,
    );
  timer.mark('compress');

  const result: BuildResult = {
    slug,
    buildpacks: chosen.map(summaryEntry),
    processTypes,
    defaultProcess: processes.defaultType,
    processes,
    release: released,
    appDir: buildDir,
    sourceVersion,
    stack: opts.stack,
    sboms: chain!.sboms,
    layerCacheTrusted,
  };
  await deliver(result);
  if (opts.cacheUrls) await uploadCache(opts.cacheUrls.put, packedCache, cacheSize);
  timer.mark('outputs');
  log.step(`Build steps took: ${timer.summary()}`);
  await settleCacheRemovals();
  return result;
}

function envList(list: Array<{ name: string; value: string }> | undefined): EnvVars {
  return Object.fromEntries((list ?? []).map((e) => [e.name, e.value]));
}

/**
 * The explicit buildpack list: the command line (--buildpack, BUILDPACK_URL),
 * else project.toml's, which wins over `.buildpacks` (said in the log), else
 * `.buildpacks` (read by choose.ts); empty means the builder's order.
 */
async function explicitList(
  given: string[],
  project: ProjectDescriptor | undefined,
  buildDir: string,
): Promise<{ buildpacks: ListedBuildpack[]; listedIn?: string }> {
  if (given.length > 0) return { buildpacks: given };
  if (!project || project.buildpacks.length === 0) return { buildpacks: [] };
  if ((await appBuildpackList(buildDir)).length > 0) log.info('project.toml lists buildpacks: using them, not the ones in .buildpacks');
  const buildpacks = project.buildpacks.map(
    (b): ListedBuildpack => (b.uri ? resolveUri(b.uri, path.join(buildDir, 'project.toml')) : { id: b.id!, version: b.version }),
  );
  return { buildpacks, listedIn: 'project.toml' };
}

/** The source into the app dir, .slugignore and project.toml's filters applied. */
async function takeSource(
  opts: BuildOptions,
  buildDir: string,
  work: string,
): Promise<{ sourceVersion?: string; project?: ProjectDescriptor }> {
  const sourceInfo = await intakeSource(
    { source: opts.source, stdin: opts.stdin, limits: { maxBytes: opts.maxSourceBytes, maxFiles: opts.maxFiles } },
    buildDir,
  );
  await applySlugignore(buildDir);
  const project = await readProjectDescriptor(buildDir).then(
    (p) => p && keepProjectBuildpacks(p, buildDir, path.join(work, 'project-buildpacks')),
  );
  if (project) await applyProjectFilters(buildDir, project);
  // As on Heroku, SOURCE_VERSION is the commit being built: told, or read from `git archive`'s header.
  return { sourceVersion: opts.sourceVersion ?? sourceInfo.commit, project };
}

/**
 * The release phase: .release and the launch metadata from the chain, the
 * Procfile over them, then the launch plan made from what was just written.
 */
async function releaseApp(
  chosen: GroupMemberBuildpack[],
  chain: ChainResult,
  ctx: ScriptContext,
): Promise<{ released: Release; processTypes: ProcessTypes; processes: AppProcesses }> {
  const { release: released, app: releasedApp } = await releaseChain(chosen, chain.launch, ctx);
  const app = await withProcfile(releasedApp, chosen);
  const processes = resolveProcesses(app);
  // After .release and metadata.toml: the plan records them as they were written.
  await writeLaunchPlan(app, processes);
  return { released, processTypes: commandLines(processes), processes };
}

/** The released app with its Procfile, the types each declares said in the log. */
async function withProcfile(released: Omit<BuiltApp, 'procfile'>, chosen: GroupMemberBuildpack[]): Promise<BuiltApp> {
  log.step('Discovering process types');
  // A Procfile linking out of the app is refused: its lines would go to the log, --summary and the image label.
  const { procfile, bytes } = await readProcfile(released.appDir);
  if (bytes !== undefined) log.info(`Procfile declares types -> ${Object.keys(procfile).join(', ') || '(none)'}`);
  const defaults = released.release.default_process_types;
  log.info(`Default types for buildpack${chosen.length > 1 ? 's' : ''} -> ${Object.keys(defaults).join(', ') || '(none)'}`);
  return { ...released, procfile, files: { ...released.files, [PROCFILE]: bytes } };
}
