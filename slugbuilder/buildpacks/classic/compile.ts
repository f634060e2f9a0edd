/**
 * Compile phase: `bin/compile BUILD_DIR CACHE_DIR ENV_DIR` for each buildpack
 * in turn. Before each one, the `export` files of the buildpacks before it are
 * sourced by bash, so PATH and friends carry over (multi-buildpack contract).
 */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../../shared/errors.js';
import { log } from '../../../shared/log.js';
import type { Buildpack } from '../prepare.js';
import { runScript } from '../run-script.js';

export interface CompileContext {
  buildDir: string;
  cacheDir: string;
  envDir: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
}

async function isExecutable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(() => true, () => false);
}

/**
 * bash sources each earlier `export` file, then execs the script, so the
 * script inherits what they exported without us parsing shell.
 */
const SOURCE_EXPORTS_THEN_EXEC = 'n=$1; shift; for ((i = 0; i < n; i++)); do . "$1" || exit 1; shift; done; exec "$@"';

export async function runWithExports(exports: string[], script: string, args: string[], ctx: CompileContext, what: string): Promise<void> {
  const result = await runScript('bash', ['-c', SOURCE_EXPORTS_THEN_EXEC, 'slugbuilder', String(exports.length), ...exports, script, ...args], {
    env: ctx.env,
    cwd: ctx.buildDir,
    timeoutMs: ctx.timeoutMs,
  });
  if (result.timedOut) throw new UserError(`${what} timed out after ${formatDuration(ctx.timeoutMs)} (raise it with --timeout)`);
  if (result.signal) throw new UserError(`${what} was killed by ${result.signal}`);
  if (result.exitCode !== 0) throw new UserError(`${what} failed (exit ${result.exitCode})`);
}

function formatDuration(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} minute${ms === 60_000 ? '' : 's'}`;
  return `${Math.round(ms / 1000)} s`;
}

/** Runs every buildpack's compile, in order. Returns the export files for later steps. */
export async function compileAll(buildpacks: Buildpack[], ctx: CompileContext): Promise<string[]> {
  const exports: string[] = [];
  for (const bp of buildpacks) {
    const compile = path.join(bp.dir, 'bin', 'compile');
    if (!(await isExecutable(compile))) throw new UserError(`buildpack ${bp.name} has no executable bin/compile`);
    if (buildpacks.length > 1) log.step(`Running buildpack ${bp.name}`);
    try {
      await runWithExports(exports, compile, [ctx.buildDir, ctx.cacheDir, ctx.envDir], ctx, `Buildpack ${bp.name}`);
    } catch (err) {
      if (err instanceof UserError) {
        // The classic wording, so operators' log greps keep working.
        throw new UserError(err.message.replace(/ failed \(exit (\d+)\)$/, ' failed to compile (exit $1)'));
      }
      throw err;
    }
    const exportFile = path.join(bp.dir, 'export');
    if (await access(exportFile).then(() => true, () => false)) exports.push(exportFile);
  }
  return exports;
}

/** `bin/pre-compile` and `bin/post-compile` in the app itself (Heroku's Python convention, herokuish's hooks). */
export async function runAppHook(name: 'pre-compile' | 'post-compile', exports: string[], ctx: CompileContext): Promise<void> {
  const hook = path.join(ctx.buildDir, 'bin', name);
  if (!(await isExecutable(hook))) return;
  log.step(`Running ${name} hook`);
  await runWithExports(exports, hook, [], ctx, `bin/${name}`);
}
