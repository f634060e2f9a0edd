/**
 * Every path in a built app dir, the contract between slugbuilder (which
 * writes them), the image writer and slugrunner (which read them back from a
 * build dir, a slug or an image). Paths are relative to the app dir.
 * bin/dyno.bash spells the plan's name and stamped files again (bash cannot
 * import this); test/app-layout.test.ts keeps the two the same.
 *
 * Small on purpose: a classic start imports it and nothing else of the
 * contract's CNB side (no TOML parser).
 */
import path from 'node:path';

/** The merged `bin/release` output (YAML): config vars, default process types. */
export const RELEASE = '.release';
/** The app's own process types. */
export const PROCFILE = 'Procfile';
/** Cloud Native Buildpacks' launch layers: `.layers/<buildpack dir>/<layer>/`. */
export const LAYERS = '.layers';
/** The launch metadata (the lifecycle's name): the group's CNBs, their processes, the labels. */
export const LAUNCH_METADATA = path.join(LAYERS, 'config', 'metadata.toml');
/** SBOMs of what the app runs with (`launch/<buildpack dir>/[<layer>/]sbom.<ext>`), as the lifecycle's `<layers>/sbom/`. */
export const SBOM = path.join(LAYERS, 'sbom');
/** The launch plan bin/dyno.bash starts a process from (shared/app/launch-plan.ts). */
export const LAUNCH_PLAN = '.slugkit-launch';
/** The files a launch plan was made from: it is current while they hold what they held. */
export const PLAN_STAMPED: readonly string[] = [RELEASE, PROCFILE, LAUNCH_METADATA];
/** Names only the builder writes: a source that ships one has it removed before the build. */
export const BUILDER_OWNED: readonly string[] = [RELEASE, LAUNCH_PLAN, LAYERS];

/** A buildpack's directory name under `.layers/`: its id with `/` as `_`. */
export function layersDirName(id: string): string {
  return id.replace(/\//g, '_');
}

/** `<appDir>/.layers/<id with / as _>`: the buildpack's launch layers (its CNB_LAYERS_DIR at build). */
export function buildpackLayersDir(appDir: string, id: string): string {
  return path.join(appDir, LAYERS, layersDirName(id));
}
