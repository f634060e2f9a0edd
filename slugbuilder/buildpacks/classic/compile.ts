/**
 * Compile of a classic buildpack: `bin/compile BUILD_DIR CACHE_DIR ENV_DIR`
 * with the `export` files of the buildpacks before it sourced, so PATH and
 * friends carry over (multi-buildpack contract; chain.ts runs the group);
 * the app's own `bin/pre-compile` and `bin/post-compile` around the chain.
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
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** Runs one classic buildpack's compile with the earlier `export` files sourced. */
export async function compileOne(bp: ChosenBuildpack, exports: readonly string[], ctx: CompileContext): Promise<void> {
  const compile = path.join(bp.dir, 'bin', 'compile');
  if (!(await isExecutable(compile))) throw new UserError(`buildpack ${bp.name} has no executable bin/compile: add one to the buildpack`);
  // "failed to compile" is the classic wording operators grep their logs for; it writes its `export` file into its own dir.
  await runWithExports([...exports], compile, [ctx.buildDir, ctx.cacheDir, ctx.envDir], ctx, `Buildpack ${bp.name}`, 'failed to compile', {
    rw: [bp.dir, ctx.cacheDir],
    ro: [ctx.envDir],
  });
}

/** `bin/pre-compile` and `bin/post-compile` in the app itself (Heroku's Python convention, herokuish's hooks). */
export async function runAppHook(name: 'pre-compile' | 'post-compile', exports: string[], ctx: CompileContext): Promise<void> {
  const hook = path.join(ctx.buildDir, 'bin', name);
  if (!(await isExecutable(hook))) return;
  log.step(`Running ${name} hook`);
  await runWithExports(exports, hook, [], ctx, `bin/${name}`, 'failed', { rw: [ctx.cacheDir], ro: [ctx.envDir] });
}
