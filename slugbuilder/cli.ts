#!/usr/bin/env -S node --
/**
 * slugbuilder: a source tarball in, a slug out.
 *   git archive HEAD | slugbuilder > slug.tgz
 * Logs go to stderr; stdout carries only the slug.
 *
 * The "--" in the #! line stops Node 20 from taking our --env-file for its own
 * (it reads the flag even after the script name, and exits 9 on a missing file).
 */
import { fstatSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runCli } from '../shared/cli-run.js';
import { type EnvVars, parseAssignment, readEnvDir, readEnvFile } from '../shared/env-dir.js';
import { UsageError } from '../shared/errors.js';
import { removeAllNow } from '../shared/fs.js';
import { configureNetTimeouts } from '../shared/http.js';
import { slugkitVersion } from '../shared/package.js';
import { sourceDateEpoch } from '../shared/tar/pack.js';
import { parseCount, parseDuration, parseSize } from '../shared/units.js';
import { type BuildOptions, type BuildResult, build } from './build.js';
import { checkPassEnv } from './buildpacks/build-env.js';
import { readBuilderFile } from './buildpacks/builder-file.js';
import { checkAppName, defaultCacheDir } from './buildpacks/cache-dir.js';
import { killAllChildren } from './buildpacks/run-script.js';
import { parseSandboxMode } from './buildpacks/sandbox.js';
import { CACHE_USAGE, cacheCommand } from './cli/cache.js';
import { manifestsCommand } from './cli/manifests.js';
import { preflight } from './cli/preflight.js';
import { rebaseCommand } from './cli/rebase.js';
import { fromSlug } from './from-slug.js';
import type { ExportPlan } from './image/export.js';
import { runImageTarget } from './image/run-target.js';
import { deliverAll, type Output } from './outputs/deliver.js';
import { imageOutputs } from './outputs/image.js';
import { IMAGE_OPTIONS, IMAGE_USAGE, type ImageFlags, parseImageFlags } from './outputs/image-flags.js';
import { checkSbomOutputDir, sbomOutput } from './outputs/sbom.js';
import { fileOutput, putOutput, stdoutOutput, summaryOutput } from './outputs/slug.js';
import { checkAppDir } from './source/app-dir.js';

const DEFAULT_STACK = 'heroku-24';

const USAGE =
  `Usage: slugbuilder [options] < source.tar[.gz] > slug.tgz

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
  -e, --env KEY=VALUE      config var for ENV_DIR; repeatable
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
Output (default: stdout when it is not a terminal):
  -o, --output FILE        write the slug to FILE
  --put-url URL            upload the slug with HTTP PUT (env PUT_URL)
  --summary FILE           write a JSON summary of the build
  --sbom-output-dir DIR    write every SBOM of the build (launch/, build/, cache/) into DIR,
                           new or empty, in pack's layout
Limits:
  --max-source-size SIZE   largest unpacked source (default 2G)
  --max-files N            most entries in the source (default 200000)
  --max-slug-size SIZE     largest compressed slug (default 500M; warns from 300M)
  -h, --help               show this help
  --version                show slugkit's and Node's versions and the default stack
` +
  IMAGE_USAGE +
  '\n' +
  CACHE_USAGE +
  '\nslugbuilder manifests [build] ...  Kubernetes YAML for an app or a build Job (see slugbuilder manifests --help)\n';

function defaultCacheRoot(): string {
  const xdg = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return process.env.SLUGBUILDER_CACHE_DIR || path.join(xdg, 'slugkit');
}

async function configVarsFrom(envDir: string | undefined, envFiles: string[], assignments: string[]): Promise<EnvVars> {
  // Later sources win: an operator's ENV_DIR, then env files, then -e flags.
  const vars: EnvVars = envDir ? await readEnvDir(envDir) : {};
  for (const file of envFiles) Object.assign(vars, await readEnvFile(file));
  for (const a of assignments) {
    const [k, v] = parseAssignment(a);
    vars[k] = v;
  }
  return vars;
}

/** Where the build's results go: the CLI's side of a build. */
export interface OutputFlags {
  output?: string;
  putUrl?: string;
  toStdout: boolean;
  summary?: string;
  image?: ImageFlags;
  sbomOutputDir?: string;
}

/** `slug`: an already built slug (--slug FILE): no source, no buildpacks. */
export type BuildArgs = BuildOptions & { outputs: OutputFlags; slug?: string };

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
function checkSlugFlags(v: Record<string, unknown>, image: ImageFlags | undefined): void {
  for (const name of BUILD_ONLY_FLAGS) {
    const value = v[name];
    if (value === undefined || (Array.isArray(value) && value.length === 0)) continue;
    throw new UsageError(`--slug FILE builds nothing: --${name} does not apply (see slugbuilder --help)`);
  }
  if (!image?.image && !image?.layer)
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

function checkPutUrl(url: string, flag = '--put-url (or PUT_URL)'): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  // The URL itself is not repeated: it usually carries a signature.
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) throw new UsageError(`${flag} is not an http(s) URL`);
}

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
  output: { type: 'string', short: 'o' },
  'put-url': { type: 'string' },
  summary: { type: 'string' },
  'sbom-output-dir': { type: 'string' },
  'max-source-size': { type: 'string' },
  'max-files': { type: 'string' },
  'max-slug-size': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  ...IMAGE_OPTIONS,
} as const;

/** parseArgs keeps the last of a repeated option silently: one that takes a single value given twice is a mistake. */
function rejectRepeats(tokens: Array<{ kind: string; name?: string; rawName?: string }>): void {
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== 'option' || !t.name) continue;
    const spec = (BUILD_OPTIONS as Record<string, { multiple?: boolean }>)[t.name];
    if (!spec || spec.multiple) continue;
    const shown = t.rawName && t.rawName !== `--${t.name}` ? `${t.rawName} (--${t.name})` : `--${t.name}`;
    if (seen.has(t.name)) throw new UsageError(`${shown} was given more than once: give it once (see slugbuilder --help)`);
    seen.add(t.name);
  }
}

export async function parseBuildArgs(argv: string[]): Promise<BuildArgs | 'help' | 'version'> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: false, tokens: true, options: BUILD_OPTIONS });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} (see slugbuilder --help)`);
  }
  rejectRepeats(parsed.tokens);
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.version) return 'version';
  const env = process.env;
  configureNetTimeouts({ timeout: v['net-timeout'], deadline: v['net-deadline'] }, env);
  const putUrl = v['put-url'] ?? (env.PUT_URL || undefined);
  if (putUrl) checkPutUrl(putUrl);
  const builder = v.builder !== undefined ? await readBuilderFile(v.builder) : undefined;
  // The builder's run image is the default base for --image.
  const image = parseImageFlags(v.image && !v['run-image'] && builder?.runImage ? { ...v, 'run-image': builder.runImage } : v);
  if (v.slug !== undefined) checkSlugFlags(v, image);
  if (v['sbom-output-dir'] !== undefined) await checkSbomOutputDir(v['sbom-output-dir']);
  const cacheGet = v['cache-url'] ?? (env.CACHE_URL || undefined);
  const cachePut = v['cache-put-url'] ?? (env.CACHE_PUT_URL || undefined);
  if (cachePut && !cacheGet)
    throw new UsageError('--cache-put-url (or CACHE_PUT_URL) needs --cache-url (or CACHE_URL), where the cache is fetched from');
  if (cacheGet) checkPutUrl(cacheGet, '--cache-url (or CACHE_URL)');
  if (cachePut) checkPutUrl(cachePut, '--cache-put-url (or CACHE_PUT_URL)');
  const toStdout = v.slug === undefined && !v.output && !putUrl && !image?.image;
  if (toStdout && process.stdout.isTTY) throw new UsageError('refusing to write a slug to a terminal: redirect stdout or use -o FILE');
  const maxFiles = v['max-files'] ? parseCount(v['max-files'], '--max-files') : 200_000;
  const maxSlugBytes = v['max-slug-size'] ? parseSize(v['max-slug-size'], '--max-slug-size') : 500 * 1024 ** 2;
  if (maxSlugBytes <= 0) throw new UsageError('--max-slug-size must be greater than zero');
  const cacheRoot = defaultCacheRoot();
  const app =
    v.app !== undefined
      ? checkAppName(v.app, '--app')
      : env.SLUGBUILDER_APP
        ? checkAppName(env.SLUGBUILDER_APP, 'SLUGBUILDER_APP')
        : undefined;
  const passEnv = checkPassEnv(v['pass-env'] ?? []);
  const bpFromEnv = env.BUILDPACK_URL ? [env.BUILDPACK_URL] : [];
  const sandbox =
    v.sandbox !== undefined
      ? parseSandboxMode(v.sandbox, '--sandbox')
      : env.SLUGKIT_SANDBOX
        ? parseSandboxMode(env.SLUGKIT_SANDBOX, 'SLUGKIT_SANDBOX')
        : 'auto';

  return {
    source: v.source ?? (env.TAR_URL || undefined),
    stdin: process.stdin,
    buildpacks: v.buildpack && v.buildpack.length > 0 ? v.buildpack : bpFromEnv,
    appDir: v['app-dir'] !== undefined ? await checkAppDir(v['app-dir']) : undefined,
    cacheDir: path.resolve(v['cache-dir'] ?? defaultCacheDir(cacheRoot, app)),
    cacheUrls: cacheGet ? { get: cacheGet, put: cachePut ?? cacheGet } : undefined,
    cacheRoot,
    configVars: await configVarsFrom(env.ENV_DIR || undefined, v['env-file'] ?? [], v.env ?? []),
    passEnv,
    builder,
    // A builder's [stack] id beats STACK from the environment (the builder image sets one), not --stack.
    stack: v.stack ?? builder?.stackId ?? (env.STACK || DEFAULT_STACK),
    sourceVersion: v['source-version'] ?? (env.SOURCE_VERSION || undefined),
    putUrl,
    timeoutMs: v.timeout ? parseDuration(v.timeout, '--timeout') : 15 * 60_000,
    mtime: sourceDateEpoch(env),
    maxSourceBytes: v['max-source-size'] ? parseSize(v['max-source-size'], '--max-source-size') : 2 * 1024 ** 3,
    maxFiles,
    maxSlugBytes,
    warnSlugBytes: Math.min(300 * 1024 ** 2, Math.floor(maxSlugBytes * 0.6)),
    sandbox,
    outputs: { output: v.output, putUrl, toStdout, summary: v.summary, image, sbomOutputDir: v['sbom-output-dir'] },
    slug: v.slug,
  };
}

/**
 * The outputs, in staging order; deliverAll commits the irreversible ones
 * (upload, push, stdout) first. --summary is last: it describes the others.
 */
function outputList(flags: OutputFlags, plan: ExportPlan | undefined, mtime: Date): Output[] {
  const list: Output[] = [];
  if (flags.putUrl) list.push(putOutput(flags.putUrl));
  if (flags.toStdout) list.push(stdoutOutput());
  if (flags.output) list.push(fileOutput(flags.output));
  if (flags.image) list.push(...imageOutputs(flags.image, plan, mtime));
  if (flags.sbomOutputDir) list.push(sbomOutput(flags.sbomOutputDir));
  if (flags.summary) list.push(summaryOutput(flags.summary));
  return list;
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

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'rebase') return rebaseCommand(argv.slice(1));
  if (argv[0] === 'manifests') return manifestsCommand(argv.slice(1));
  if (argv[0] === 'cache') return cacheCommand(argv.slice(1), defaultCacheRoot());
  const opts = await parseBuildArgs(argv);
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts === 'version') {
    process.stdout.write(`slugbuilder (slugkit) ${slugkitVersion()}\nnode ${process.version}\ndefault stack ${DEFAULT_STACK}\n`);
    return 0;
  }
  handleSignals();
  const plan = await preflight(opts.outputs, process.env, opts.cacheRoot);
  try {
    const outputs = outputList(opts.outputs, plan, opts.mtime);
    const deliver = (result: BuildResult) => deliverAll(outputs, result);
    if (opts.slug !== undefined) {
      await fromSlug(
        { slug: opts.slug, sourceVersion: opts.sourceVersion, stack: opts.stack, maxBytes: opts.maxSourceBytes, maxFiles: opts.maxFiles },
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
    await plan?.close();
  }
  return 0;
}

await runCli(() => main(process.argv.slice(2)));
