/**
 * A built app as both programs see it: its release, its Procfile and, when
 * Cloud Native Buildpacks built it, their launch metadata, each with the
 * bytes it was read from (the launch plan stamps them). The runner and
 * `--slug` read one from an app dir; the builder assembles one from what its
 * chain returned, without reading back what it just wrote.
 */
import { readFileInside } from '../fs.js';
import type { ProcessTypes } from '../procfile.js';
import type { Release } from '../release.js';
import type { CnbApp } from './launch-metadata.js';
import { LAUNCH_METADATA, PROCFILE, RELEASE } from './layout.js';
import { type AppFileNames, readProcfile, readRelease } from './release-file.js';

export interface BuiltApp {
  appDir: string;
  release: Release;
  procfile: ProcessTypes;
  /** Present when Cloud Native Buildpacks built the app (it has their launch metadata). */
  cnb?: CnbApp;
  /** The bytes of each file of layout.ts's PLAN_STAMPED, undefined when absent. */
  files: Record<string, Buffer | undefined>;
}

/** Reads the app in `appDir`; a file that links out of the app is refused, never read. */
export async function readApp(appDir: string, names: AppFileNames = {}): Promise<BuiltApp> {
  const release = await readRelease(appDir, names);
  const procfile = await readProcfile(appDir, names);
  const metadata = await readFileInside(appDir, LAUNCH_METADATA, names.what?.(LAUNCH_METADATA), names.where);
  // Only an app built by Cloud Native Buildpacks loads the TOML parser.
  let cnb: CnbApp | undefined;
  if (metadata !== undefined) {
    const { cnbApp, parseLaunchMetadata } = await import('./launch-metadata.js');
    cnb = cnbApp(appDir, parseLaunchMetadata(metadata.toString('utf8'), `${appDir}/${LAUNCH_METADATA}`));
  }
  return {
    appDir,
    release: release.release,
    procfile: procfile.procfile,
    cnb,
    files: { [RELEASE]: release.bytes, [PROCFILE]: procfile.bytes, [LAUNCH_METADATA]: metadata },
  };
}
