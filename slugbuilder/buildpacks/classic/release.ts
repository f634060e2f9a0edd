/**
 * Release phase: `bin/release BUILD_DIR` prints YAML with process types and
 * config vars. The last buildpack's release is saved as BUILD_DIR/.release,
 * where slugrunner reads it.
 */
import { access, constants, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../../shared/errors.js';
import { parseRelease, type Release } from '../../../shared/release.js';
import type { Buildpack } from '../prepare.js';
import { runScript } from '../run-script.js';

export async function release(bp: Buildpack, buildDir: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Release> {
  const script = path.join(bp.dir, 'bin', 'release');
  let yamlText = '';
  if (await access(script, constants.X_OK).then(() => true, () => false)) {
    const result = await runScript(script, [buildDir], { env, cwd: buildDir, captureStdout: true, timeoutMs });
    if (result.timedOut) throw new UserError(`bin/release of buildpack ${bp.name} timed out`);
    if (result.exitCode !== 0) throw new UserError(`bin/release of buildpack ${bp.name} failed (exit ${result.exitCode ?? result.signal})`);
    yamlText = result.stdout;
  }
  const parsed = await parseRelease(yamlText, `bin/release of buildpack ${bp.name}`);
  await writeFile(path.join(buildDir, '.release'), yamlText.trim() ? yamlText.replace(/\n*$/, '\n') : '--- {}\n');
  return parsed;
}
