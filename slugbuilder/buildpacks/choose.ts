/**
 * Which buildpacks build the app. An explicit list (`--buildpack`,
 * BUILDPACK_URL, or the app's `.buildpacks` file) runs in full, in order, even
 * where a buildpack's detect says no, as on Heroku. Otherwise the bundled
 * buildpacks are tried in order and the first whose detect exits 0 wins.
 */
import { UserError } from '../../shared/errors.js';
import { log } from '../../shared/log.js';
import { detect } from './classic/detect.js';
import { appBuildpackList, bundledBuildpacks, prepareBuildpack, type ResolveOptions } from './prepare.js';

export interface ChosenBuildpack {
  /** What detect called it, else its directory's name. */
  name: string;
  /** Where it came from, as it may be printed (no credentials). */
  origin: string;
  /** Working copy the scripts run from. */
  dir: string;
}

export interface ChooseOptions extends ResolveOptions {
  /** Explicit buildpacks from the command line; empty means the app's `.buildpacks`, then detection. */
  buildpacks: string[];
  buildDir: string;
  env: NodeJS.ProcessEnv;
}

/** Said to whoever pushed an app no bundled buildpack recognises: the app-side fix first. */
export const NOTHING_DETECTED =
  'no buildpack detected this app: add a package.json (Node.js), requirements.txt or pyproject.toml (Python), index.html (static site) or a Procfile to it, ' +
  'or a .buildpacks file listing the buildpacks to use (slugbuilder users: or pass --buildpack or BUILDPACK_URL)';

export async function chooseBuildpacks(o: ChooseOptions): Promise<ChosenBuildpack[]> {
  const resolve: ResolveOptions = { workDir: o.workDir, cacheRoot: o.cacheRoot };
  const explicit = o.buildpacks.length > 0 ? o.buildpacks : await appBuildpackList(o.buildDir);
  if (explicit.length > 0) {
    const chosen: ChosenBuildpack[] = [];
    for (const spec of explicit) {
      const bp = await prepareBuildpack(spec, resolve);
      const found = await detect(bp.dir, o.buildDir, o.env);
      const name = found.name ?? bp.name;
      log.step(found.detected ? `${name} app detected` : `Using buildpack ${bp.origin}`);
      chosen.push({ name, origin: bp.origin, dir: bp.dir });
    }
    return chosen;
  }
  for (const dir of await bundledBuildpacks()) {
    const bp = await prepareBuildpack(dir, resolve);
    const found = await detect(bp.dir, o.buildDir, o.env);
    if (found.detected) {
      const name = found.name ?? bp.name;
      log.step(`${name} app detected`);
      return [{ name, origin: bp.origin, dir: bp.dir }];
    }
  }
  log.step('Unable to select a buildpack');
  throw new UserError(NOTHING_DETECTED);
}
