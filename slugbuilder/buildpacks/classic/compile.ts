/**
 * Compile phase of a chain: `bin/compile BUILD_DIR CACHE_DIR ENV_DIR` for each
 * buildpack in turn, each with the `export` files of the ones before it
 * sourced, so PATH and friends carry over (multi-buildpack contract); the
 * app's own `bin/pre-compile` and `bin/post-compile` around them.
 */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../../shared/errors.js';
import { log } from '../../../shared/log.js';
import type { ChosenBuildpack } from '../choose.js';
import { runWithExports, type ScriptContext } from '../run-script.js';

export interface CompileContext extends ScriptContext {
  cacheDir: string;
  envDir: string;
}

async function isExecutable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(() => true, () => false);
}

/** Runs every buildpack's compile, in order. Returns the export files for later steps. */
export async function compileAll(buildpacks: ChosenBuildpack[], ctx: CompileContext): Promise<string[]> {
  const exports: string[] = [];
  for (const bp of buildpacks) {
    const compile = path.join(bp.dir, 'bin', 'compile');
    if (!(await isExecutable(compile))) throw new UserError(`buildpack ${bp.name} has no executable bin/compile: add one to the buildpack`);
    if (buildpacks.length > 1) log.step(`Running buildpack ${bp.name}`);
    // "failed to compile" is the classic wording operators grep their logs for.
    await runWithExports(exports, compile, [ctx.buildDir, ctx.cacheDir, ctx.envDir], ctx, `Buildpack ${bp.name}`, 'failed to compile');
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
