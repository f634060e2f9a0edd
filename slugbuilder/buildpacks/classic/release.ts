/**
 * Release phase: every buildpack's `bin/release BUILD_DIR` prints YAML with
 * default process types, config vars and addons. They are merged in chain
 * order (with the CNBs' processes, chain.ts), a later buildpack winning, and
 * the result is saved as BUILD_DIR/.release, where slugrunner reads it.
 */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../../shared/errors.js';
import { mergeProcessTypes } from '../../../shared/procfile.js';
import { emptyRelease, parseRelease, type Release } from '../../../shared/release.js';
import type { ChosenBuildpack } from '../choose.js';
import { runScript, type ScriptContext } from '../run-script.js';
import { widen } from '../sandbox.js';

/** One buildpack's release; a buildpack without bin/release releases nothing. */
export async function release(bp: ChosenBuildpack, ctx: ScriptContext): Promise<Release> {
  const script = path.join(bp.dir, 'bin', 'release');
  if (
    !(await access(script, constants.X_OK).then(
      () => true,
      () => false,
    ))
  )
    return emptyRelease();
  const origin = `bin/release of buildpack ${bp.name}`;
  const result = await runScript(script, [ctx.buildDir], {
    env: ctx.env,
    cwd: ctx.buildDir,
    captureStdout: true,
    timeoutMs: ctx.timeoutMs,
    sandbox: widen(ctx.sandbox, { ro: [bp.dir] }),
  });
  if (result.timedOut) throw new UserError(`${origin} timed out: fix the buildpack or raise --timeout`);
  if (result.exitCode !== 0) throw new UserError(`${origin} failed (exit ${result.exitCode ?? result.signal}): its output above says why`);
  return parseRelease(result.stdout, origin);
}

/** Later releases win per key; addons are the union, in first-seen order. */
export function mergeReleases(releases: Release[]): Release {
  return {
    addons: [...new Set(releases.flatMap((r) => r.addons))],
    config_vars: Object.assign({}, ...releases.map((r) => r.config_vars)) as Record<string, string>,
    default_process_types: mergeProcessTypes(...releases.map((r) => r.default_process_types)),
  };
}
