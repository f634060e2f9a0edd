/**
 * The one check a fetched directory must pass before it is cached: it is a
 * Cloud Native Buildpack (its buildpack.toml says so, checked by the
 * descriptor reader), or a classic buildpack with an executable
 * `bin/compile`. For a classic one, `bin/detect` is
 * not required: a buildpack chosen explicitly (`--buildpack`, `BUILDPACK_URL`,
 * `.buildpacks`) runs detect only to learn its name, and runs whether detect
 * says yes, says no or is missing.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../../shared/errors.js';
import { readBuildpackDescriptor } from '../cnb/descriptor.js';

export async function validateBuildpack(dir: string, where: string): Promise<void> {
  if (await readBuildpackDescriptor(dir)) return;
  const compile = path.join(dir, 'bin', 'compile');
  let isFile = false;
  try {
    isFile = (await stat(compile)).isFile();
  } catch {
    isFile = false;
  }
  if (!isFile) {
    throw new UserError(
      `${where}: not a buildpack (no bin/compile at its root); point at a classic buildpack with bin/detect and bin/compile`,
    );
  }
  try {
    await access(compile, constants.X_OK);
  } catch {
    throw new UserError(`${where}: bin/compile is not executable; run 'chmod +x bin/compile' in the buildpack and publish it again`);
  }
}
