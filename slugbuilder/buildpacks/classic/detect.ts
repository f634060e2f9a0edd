/**
 * Detect phase: `bin/detect BUILD_DIR` exits 0 when the buildpack applies and
 * prints a human name on stdout.
 */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import type { Buildpack } from '../prepare.js';
import { runScript } from '../run-script.js';

export interface Detection {
  detected: boolean;
  /** detect's stdout (first line), or the buildpack's name when it printed none. */
  name: string;
}

export async function detect(buildpack: Buildpack, buildDir: string, env: NodeJS.ProcessEnv): Promise<Detection> {
  const script = path.join(buildpack.dir, 'bin', 'detect');
  try {
    await access(script, constants.X_OK);
  } catch {
    return { detected: false, name: buildpack.name };
  }
  const result = await runScript(script, [buildDir], { env, cwd: buildDir, captureStdout: true, timeoutMs: 60_000 });
  const printed = result.stdout.split('\n')[0]?.trim();
  return { detected: result.exitCode === 0, name: printed || buildpack.name };
}
