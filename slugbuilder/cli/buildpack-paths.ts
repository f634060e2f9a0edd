/**
 * --buildpack and BUILDPACK_URL name local paths the same way `.buildpacks`
 * does, but they are known before the source is read: a path that is not
 * there fails at once, in the words the user typed. URLs and registry names
 * (heroku/nodejs with no local dir of that name) are left to the fetch.
 */
import { UserError } from '../../shared/errors.js';
import { exists } from '../../shared/fs.js';
import { isLocalPathSpec } from '../buildpacks/fetch/spec.js';

export async function checkBuildpackPaths(specs: readonly string[], from: '--buildpack' | 'BUILDPACK_URL'): Promise<void> {
  for (const spec of specs) {
    if (!isLocalPathSpec(spec) || (await exists(spec))) continue;
    throw new UserError(
      `${from} ${spec}: ${spec} does not exist (a buildpack is a directory, a .tgz file, a git or tarball URL, or a registry name like heroku/nodejs)`,
    );
  }
}
