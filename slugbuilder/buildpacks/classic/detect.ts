/**
 * Detect phase of one buildpack: `bin/detect BUILD_DIR` exits 0 when the
 * buildpack applies and prints a human name on stdout.
 */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { runScript } from '../run-script.js';
import { type Sandbox, widen } from '../sandbox.js';

export interface Detection {
  detected: boolean;
  /** The first line detect printed, if any. */
  name?: string;
}

/** A buildpack without an executable bin/detect does not detect anything. */
export async function detect(buildpackDir: string, buildDir: string, env: NodeJS.ProcessEnv, sandbox: Sandbox): Promise<Detection> {
  const script = path.join(buildpackDir, 'bin', 'detect');
  if (
    !(await access(script, constants.X_OK).then(
      () => true,
      () => false,
    ))
  )
    return { detected: false };
  const result = await runScript(script, [buildDir], {
    env,
    cwd: buildDir,
    captureStdout: true,
    timeoutMs: 60_000,
    sandbox: widen(sandbox, { ro: [buildpackDir] }),
  });
  const printed = result.stdout.split('\n')[0]?.trim();
  return { detected: result.exitCode === 0, name: printed || undefined };
}
