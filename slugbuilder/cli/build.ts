/**
 * `slugbuilder [options]`: the build command. Its flags become BuildOptions
 * for build.ts (or from-slug.ts with --slug) and the outputs the flags ask
 * for (outputs/index.ts), which are checked before any buildpack runs and
 * delivered all or nothing after the build.
 */
import { fstatSync } from 'node:fs';
import path from 'node:path';
import { checkHttpUrl, closest, DEFAULT_STACK, parseCommand, type Values } from '../../shared/command.js';
import { type EnvVars, parseAssignment, readEnvDir, readEnvFile } from '../../shared/env-dir.js';
import { UsageError } from '../../shared/errors.js';
import { removeAllNow } from '../../shared/fs.js';
import { configureNetTimeouts } from '../../shared/http.js';
import { sourceDateEpoch } from '../../shared/tar/pack.js';
import { parseCount, parseDuration, parseSize } from '../../shared/units.js';
import { type BuildOptions, type BuildResult, build } from '../build.js';
import { checkPassEnv } from '../buildpacks/build-env.js';
import { readBuilderFile } from '../buildpacks/builder-file.js';
import { defaultCacheDir } from '../buildpacks/cache-dir.js';
import { killAllChildren } from '../buildpacks/run-script.js';
import { parseSandboxMode } from '../buildpacks/sandbox.js';
import { fromSlug } from '../from-slug.js';
import { runImageTarget } from '../image/run-target.js';
import { nested } from '../outputs/app-out.js';
import type { RequestedOutput } from '../outputs/deliver.js';
import { deliverAll } from '../outputs/deliver.js';
import {
  checkOutputs,
  closeOutputs,
  exportPlanOf,
  IMAGE_USAGE,
  makeOutputs,
  OUTPUT_OPTIONS,
  OUTPUT_USAGE,
  parseOutputs,
} from '../outputs/index.js';
import { putUrlOf } from '../outputs/slug.js';
import { configureGzip } from '../slug.js';
import { checkAppDir } from '../source/app-dir.js';
import { appName, defaultCacheRoot } from './app.js';
import { checkBuildpackPaths } from './buildpack-paths.js';
import { CACHE_USAGE } from './cache.js';

/** The subcommands: a near miss of one as the first word is named. */
export const SUBCOMMANDS = ['rebase', 'manifests', 'cache'] as const;

export const BUILD_USAGE =
  `Usage: slugbuilder [options] < source.tar[.gz] > slug.tgz
       slugbuilder rebase|manifests|cache ...   (see slugbuilder COMMAND --help)

Source (default: stdin, tar or tar.gz):
  --source PATH|URL        a directory, a tarball, or an http(s) URL (env TAR_URL)
  --slug FILE              no build: a slug built earlier goes to --image/--layer
                           (no source, no buildpacks)
Buildpacks (default: detect among the bundled ones):
  --buildpack DIR|URL      use this buildpack; repeat for several (env BUILDPACK_URL);
                           a directory, a git URL with optional #ref, or a .tgz/.tar URL
  --builder FILE           a builder.toml (pack's schema): its [[order]] replaces the
                           bundled buildpacks' order; [stack] id, [run] image, [[build.env]]
  --app-dir DIR            build the app in place in DIR (absent or empty; default /app
                           when it is empty and writable, else a temp dir)
Build:
  -e, --env KEY=VALUE      config var for ENV_DIR; repeatable; -e KEY alone takes
                           KEY's value from slugbuilder's environment
  --env-file FILE          config vars from a dotenv file; repeatable
  --pass-env NAME          hand this variable of slugbuilder's environment to
                           buildpacks (they get a clean one); repeatable
  --app NAME               the app being built: keys the default cache (env SLUGBUILDER_APP)
  --cache-dir DIR          CACHE_DIR kept between builds (default ~/.cache/slugkit/apps/NAME
                           with --app, else ~/.cache/slugkit/cache)
  --cache-url URL          fetch CACHE_DIR as a tar.gz from URL before the build (404: none yet)
                           and PUT it back after a successful build (env CACHE_URL)
  --cache-put-url URL      PUT the cache here instead (env CACHE_PUT_URL): for stores that
                           sign GET and PUT apart, like S3
  --stack NAME             STACK for buildpacks (default ${DEFAULT_STACK})
  --source-version REV     SOURCE_VERSION for buildpacks (env SOURCE_VERSION)
  --timeout DURATION       stop a buildpack after this long (default 15m)
Network (every download, upload and registry request):
  --net-timeout DURATION   give up on a server that sends or takes no byte for this
                           long, retried up to 4 times (default 60s; env SLUGKIT_NET_TIMEOUT)
  --net-deadline DURATION  longest one transfer may take, retries included
                           (default 1h; env SLUGKIT_NET_DEADLINE)
  --sandbox auto|on|off    run buildpacks and the app's build code under bubblewrap, seeing
                           only this build's dirs and the stack (env SLUGKIT_SANDBOX;
                           default auto: sandboxed where bwrap works, else a warning)
` +
  OUTPUT_USAGE +
  `Limits:
  --max-source-size SIZE   largest unpacked source (default 2G)
  --max-files N            most entries in the source (default 200000)
  --max-slug-size SIZE     largest compressed slug (default 500M; warns from 300M)
` +
  IMAGE_USAGE +
  `Help:
  -h, --help               show this help
  --version                show slugkit's and Node's versions and the default stack

` +
  CACHE_USAGE +
  '\nslugbuilder manifests [build] ...  Kubernetes YAML for an app or a build Job (see slugbuilder manifests --help)\n';

const BUILD_OPTIONS = {
  source: { type: 'string' },
  slug: { type: 'string' },
  buildpack: { type: 'string', multiple: true },
  builder: { type: 'string' },
  env: { type: 'string', short: 'e', multiple: true },
  'env-file': { type: 'string', multiple: true },
  'pass-env': { type: 'string', multiple: true },
  app: { type: 'string' },
  'app-dir': { type: 'string' },
  'cache-dir': { type: 'string' },
  'cache-url': { type: 'string' },
  'cache-put-url': { type: 'string' },
  stack: { type: 'string' },
  'source-version': { type: 'string' },
  timeout: { type: 'string' },
  'net-timeout': { type: 'string' },
  'net-deadline': { type: 'string' },
  sandbox: { type: 'string' },
  'max-source-size': { type: 'string' },
  'max-files': { type: 'string' },
  'max-slug-size': { type: 'string' },
  ...OUTPUT_OPTIONS,
} as const;

const BUILD_COMMAND = {
  name: 'slugbuilder',
  usage: BUILD_USAGE,
  options: BUILD_OPTIONS,
  version: 'slugbuilder',
  strayHint: (word: string) => {
    const near = closest(word, SUBCOMMANDS);
    return near ? `did you mean slugbuilder ${near}?` : `to build ${word}, use --source ${word}`;
  },
} as const;

/** `slug`: an already built slug (--slug FILE): no source, no buildpacks. */
export type BuildArgs = BuildOptions & { outputs: RequestedOutput[]; slug?: string };

/** Flags that only mean something when a source is built. */
const BUILD_ONLY_FLAGS = [
  'source',
  'buildpack',
  'env',
  'env-file',
  'pass-env',
  'app',
  'cache-dir',
  'cache-url',
  'cache-put-url',
  'timeout',
  'sandbox',
] as const;

/** --slug takes the place of the source and the buildpacks: refuse what would be silently ignored. */
function checkSlugFlags(v: Values<typeof BUILD_OPTIONS>, outputs: RequestedOutput[]): void {
  for (const name of BUILD_ONLY_FLAGS) {
    const value = v[name];
    if (value === undefined || (Array.isArray(value) && value.length === 0)) continue;
    throw new UsageError(`--slug FILE builds nothing: --${name} does not apply (see slugbuilder --help)`);
  }
  if (!outputs.some((o) => o.flag === '--image' || o.flag === '--layer'))
    throw new UsageError('--slug FILE needs --image REF (with --run-image) or --layer FILE: the slug is already built');
  // A source redirected from a file would be silently ignored.
  let stdinFile = false;
  try {
    const st = fstatSync(0);
    stdinFile = st.isFile() && st.size > 0;
  } catch {
    stdinFile = false;
  }
  if (stdinFile) throw new UsageError('--slug FILE builds nothing: a source on stdin does not apply (see slugbuilder --help)');
}

async function configVarsFrom(
  envDir: string | undefined,
  envFiles: string[],
  assignments: string[],
  env: NodeJS.ProcessEnv,
): Promise<EnvVars> {
  // Later sources win: an operator's ENV_DIR, then env files, then -e flags.
  const vars: EnvVars = envDir ? await readEnvDir(envDir) : {};
  for (const file of envFiles) Object.assign(vars, await readEnvFile(file));
  for (const a of assignments) {
    const [k, v] = parseAssignment(a, env);
    vars[k] = v;
  }
  return vars;
}

/** The build's options, or undefined when --help or --version was answered. */
export async function parseBuildArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<BuildArgs | undefined> {
  const parsed = parseCommand(BUILD_COMMAND, argv);
  if (!parsed) return undefined;
  const v = parsed.values;
  configureNetTimeouts({ timeout: v['net-timeout'], deadline: v['net-deadline'] }, env);
  configureGzip(env.SLUGKIT_GZIP);
  const buildpacks = v.buildpack && v.buildpack.length > 0 ? v.buildpack : env.BUILDPACK_URL ? [env.BUILDPACK_URL] : [];
  // A local buildpack path that is not there fails now, before the source is read.
  await checkBuildpackPaths(buildpacks, v.buildpack?.length ? '--buildpack' : 'BUILDPACK_URL');
  const builder = v.builder !== undefined ? await readBuilderFile(v.builder) : undefined;
  const outputs = parseOutputs(v, { env, fromSlug: v.slug !== undefined, builderRunImage: builder?.runImage });
  if (v.slug !== undefined) checkSlugFlags(v, outputs);
  const cacheGet = v['cache-url'] ?? (env.CACHE_URL || undefined);
  const cachePut = v['cache-put-url'] ?? (env.CACHE_PUT_URL || undefined);
  if (cachePut && !cacheGet)
    throw new UsageError('--cache-put-url (or CACHE_PUT_URL) needs --cache-url (or CACHE_URL), where the cache is fetched from');
  if (cacheGet) checkHttpUrl(cacheGet, '--cache-url (or CACHE_URL)');
  if (cachePut) checkHttpUrl(cachePut, '--cache-put-url (or CACHE_PUT_URL)');
  const maxFiles = v['max-files'] ? parseCount(v['max-files'], '--max-files') : 200_000;
  const maxSlugBytes = v['max-slug-size'] ? parseSize(v['max-slug-size'], '--max-slug-size') : 500 * 1024 ** 2;
  if (maxSlugBytes <= 0) throw new UsageError('--max-slug-size must be greater than zero');
  const cacheRoot = defaultCacheRoot(env);
  const app = appName(v.app, env);
  const passEnv = checkPassEnv(v['pass-env'] ?? []);
  if (v['app-dir'] !== undefined && v['app-out'] !== undefined && nested(path.resolve(v['app-dir']), path.resolve(v['app-out'])))
    throw new UsageError(`--app-out ${v['app-out']} and --app-dir ${v['app-dir']} are inside one another: name a directory apart from it`);
  const sandbox =
    v.sandbox !== undefined
      ? parseSandboxMode(v.sandbox, '--sandbox')
      : env.SLUGKIT_SANDBOX
        ? parseSandboxMode(env.SLUGKIT_SANDBOX, 'SLUGKIT_SANDBOX')
        : 'auto';

  return {
    source: v.source ?? (env.TAR_URL || undefined),
    stdin: process.stdin,
    buildpacks,
    appDir: v['app-dir'] !== undefined ? await checkAppDir(v['app-dir']) : undefined,
    cacheDir: path.resolve(v['cache-dir'] ?? defaultCacheDir(cacheRoot, app)),
    cacheUrls: cacheGet ? { get: cacheGet, put: cachePut ?? cacheGet } : undefined,
    cacheRoot,
    configVars: await configVarsFrom(env.ENV_DIR || undefined, v['env-file'] ?? [], v.env ?? [], env),
    passEnv,
    builder,
    // A builder's [stack] id beats STACK from the environment (the builder image sets one), not --stack.
    stack: v.stack ?? builder?.stackId ?? (env.STACK || DEFAULT_STACK),
    sourceVersion: v['source-version'] ?? (env.SOURCE_VERSION || undefined),
    putUrl: putUrlOf(v, env),
    timeoutMs: v.timeout ? parseDuration(v.timeout, '--timeout') : 15 * 60_000,
    mtime: sourceDateEpoch(env),
    maxSourceBytes: v['max-source-size'] ? parseSize(v['max-source-size'], '--max-source-size') : 2 * 1024 ** 3,
    maxFiles,
    maxSlugBytes,
    warnSlugBytes: Math.min(300 * 1024 ** 2, Math.floor(maxSlugBytes * 0.6)),
    sandbox,
    outputs,
    slug: v.slug,
  };
}

/** Set once SIGTERM/SIGINT arrived: the signal handler owns the exit from then on. */
let interrupted = false;

/** SIGTERM/SIGINT mid-build: stop the buildpack's whole group, clean up, exit 128+N. */
function handleSignals(): void {
  const stop = (signal: NodeJS.Signals, code: number) => async () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(` !     Build interrupted by ${signal}\n`);
    killAllChildren('SIGTERM');
    // A short grace so buildpacks can tidy up, then nothing survives.
    await new Promise((resolve) => setTimeout(resolve, 500));
    killAllChildren('SIGKILL');
    removeAllNow();
    process.exit(code);
  };
  // on, not once: a second signal during the grace must not fall back to Node's default exit.
  process.on('SIGTERM', stop('SIGTERM', 143));
  process.on('SIGINT', stop('SIGINT', 130));
}

export async function buildCommand(argv: string[]): Promise<number> {
  const opts = await parseBuildArgs(argv);
  if (!opts) return 0;
  handleSignals();
  const requested = opts.outputs;
  try {
    await checkOutputs(requested, { env: process.env, cacheRoot: opts.cacheRoot });
    const outputs = makeOutputs(requested, opts.mtime);
    const deliver = (result: BuildResult) => deliverAll(outputs, result);
    const plan = exportPlanOf(requested);
    if (opts.slug !== undefined) {
      await fromSlug(
        {
          slug: opts.slug,
          sourceVersion: opts.sourceVersion,
          stack: opts.stack,
          maxBytes: opts.maxSourceBytes,
          maxFiles: opts.maxFiles,
          layers: requested.map((r) => r.slugLayers?.(opts.mtime)).find((l) => l !== undefined),
        },
        deliver,
      );
    } else {
      // CNB targets describe the run image, as the lifecycle's do.
      await build(plan ? { ...opts, target: await runImageTarget(plan.run) } : opts, deliver);
    }
  } catch (err) {
    // The killed buildpack makes the build fail too; that failure must not
    // print a second error line or exit 1 before the signal handler exits 143/130.
    if (interrupted) await new Promise(() => undefined);
    throw err;
  } finally {
    await closeOutputs(requested);
  }
  return 0;
}
