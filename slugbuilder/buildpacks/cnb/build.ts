/**
 * Build phase for one Cloud Native Buildpack: restores its layers from the
 * cache, runs `bin/build <layers> <platform> <plan>` in the app dir with the
 * same paths in CNB_* variables, then reads the layers, launch.toml and
 * build.toml it left. The caller runs the group in order, passing each
 * buildpack the build layers the earlier ones made, and calls
 * finalizeLayers (layers.ts) once all have run.
 */
import { access, constants, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hasExecEnv } from '../../../shared/app/buildpack-api.js';
import { UserError } from '../../../shared/errors.js';
import { makeTempDir, removeTemp } from '../../../shared/fs.js';
import { applyBuildLayers, applyPlatformEnv, type Env } from '../../../shared/layer-env.js';
import { runScript } from '../run-script.js';
import { NO_SANDBOX, type Sandbox, widen } from '../sandbox.js';
import { type BuildTarget, targetEnv } from './detect.js';
import { type LaunchMetadata, readLaunchToml, readUnmet } from './launch-toml.js';
import { buildLayerDirs, type CnbRef, cnbLabel, collectLayers, type Layer, restoreLayers } from './layers.js';
import { buildpackPlanToml, type Require } from './plan.js';
import { collectSboms, type SbomFile } from './sbom.js';

export interface CnbBuildpack extends CnbRef {
  /** The buildpack's root (buildpack.toml, bin/). */
  dir: string;
  /** buildpack.toml `clear-env`: config vars are not put in its environment. */
  clearEnv?: boolean;
  /** buildpack.toml `sbom-formats`: the SBOM media types it may write. */
  sbomFormats?: readonly string[];
}

/** One entry of a buildpack plan: a require whose name this buildpack provided. */
export type PlanEntry = Require;

export interface CnbBuildInput {
  buildpack: CnbBuildpack;
  appDir: string;
  /** Holds env/NAME files with the config vars. */
  platformDir: string;
  /** The app's build cache; CNB layers are kept under .cnb/ in it. */
  cacheDir?: string;
  plan: PlanEntry[];
  /** The clean build environment. */
  env: Env;
  /** Build layer dirs of the buildpacks before this one, in order (earlier results' buildLayers). */
  earlierBuildLayers?: readonly string[];
  target?: BuildTarget;
  /** API 0.12 CNB_EXEC_ENV; production when not given. */
  execEnv?: string;
  /**
   * Plan entry names a later buildpack of the group also provides: an entry
   * this one leaves unmet goes on to that one. Any other unmet entry fails
   * the build.
   */
  laterProvides?: readonly string[];
  timeoutMs?: number;
  /** `export` files of earlier classic buildpacks: sourced before bin/build, as for a classic compile. */
  exports?: readonly string[];
  /** The build's sandbox; the app, the buildpack's own dir and its plan are added. None when not given. */
  sandbox?: Sandbox;
  /** Where the buildpack plan is written (default: the system temp dir). */
  scratchDir?: string;
}

export interface CnbBuildResult {
  /** The layers it kept, by name. */
  layers: Layer[];
  /** Its build layer dirs: append to earlierBuildLayers for the next buildpack. */
  buildLayers: string[];
  launch: LaunchMetadata;
  /** Entries it left unmet, for the next buildpack that provides them. */
  unmet: PlanEntry[];
  /** The SBOM files it wrote, read before a later buildpack runs. */
  sboms: SbomFile[];
}

/** The same bash helper run-script.ts's runWithExports uses: source each export file, then exec. */
const SOURCE_EXPORTS_THEN_EXEC = 'n=$1; shift; for ((i = 0; i < n; i++)); do . "$1" || exit 1; shift; done; exec "$@"';

/**
 * A classic buildpack's environment with what the CNBs before it made for
 * build time (their build layers' paths and env files), so a CNB's build
 * environment reaches later classic buildpacks too.
 */
export function classicBuildEnv(env: Env, earlierBuildLayers: readonly string[]): Promise<Env> {
  return applyBuildLayers(env, earlierBuildLayers);
}

async function runBuild(input: CnbBuildInput, layersDir: string, planPath: string): Promise<void> {
  const bp = input.buildpack;
  const script = path.join(bp.dir, 'bin', 'build');
  if (
    !(await access(script, constants.X_OK).then(
      () => true,
      () => false,
    ))
  ) {
    throw new UserError(`${cnbLabel(bp)} has no executable bin/build`);
  }
  let env = await applyBuildLayers(input.env, input.earlierBuildLayers ?? []);
  if (!bp.clearEnv) env = await applyPlatformEnv(env, input.platformDir);
  // Both positional arguments and CNB_* variables: real buildpacks read either.
  env = {
    ...env,
    CNB_BUILDPACK_DIR: bp.dir,
    CNB_LAYERS_DIR: layersDir,
    CNB_PLATFORM_DIR: input.platformDir,
    CNB_BP_PLAN_PATH: planPath,
  };
  if (input.target) env = { ...env, ...targetEnv(bp.api, input.target) };
  if (hasExecEnv(bp.api)) env = { ...env, CNB_EXEC_ENV: input.execEnv ?? 'production' };

  // A classic buildpack's `export` reaches later CNBs as it reaches later classic ones.
  const exports = input.exports ?? [];
  const [file, args] =
    exports.length === 0
      ? [script, [layersDir, input.platformDir, planPath]]
      : [
          'bash',
          [
            '-c',
            SOURCE_EXPORTS_THEN_EXEC,
            'slugbuilder',
            String(exports.length),
            ...exports,
            script,
            layersDir,
            input.platformDir,
            planPath,
          ],
        ];
  const result = await runScript(file, args, {
    env,
    cwd: input.appDir,
    timeoutMs: input.timeoutMs,
    sandbox: widen(input.sandbox ?? NO_SANDBOX, {
      rw: [input.appDir],
      ro: [bp.dir, input.platformDir, path.dirname(planPath), ...exports.map((f) => path.dirname(f))],
    }),
  });
  if (result.timedOut)
    throw new UserError(
      `${cnbLabel(bp)}: bin/build timed out after ${Math.round((input.timeoutMs ?? 0) / 1000)} s (raise it with --timeout)`,
    );
  if (result.signal) throw new UserError(`${cnbLabel(bp)}: bin/build was killed by ${result.signal}`);
  if (result.exitCode !== 0) throw new UserError(`${cnbLabel(bp)}: bin/build failed (exit ${result.exitCode})`);
}

/** Runs one CNB's build; see CnbBuildInput for what the caller threads through the group. */
export async function buildCnb(input: CnbBuildInput): Promise<CnbBuildResult> {
  const bp = input.buildpack;
  const layersDir = await restoreLayers({ appDir: input.appDir, cacheDir: input.cacheDir, buildpack: bp });
  const planDir = await makeTempDir('slugkit-plan-', input.scratchDir);
  try {
    const planPath = path.join(planDir, 'plan.toml');
    await writeFile(planPath, buildpackPlanToml(input.plan));
    await runBuild(input, layersDir, planPath);
  } finally {
    await removeTemp(planDir);
  }

  const layers = await collectLayers({ layersDir, cacheDir: input.cacheDir, buildpack: bp });
  const unmetNames = await readUnmet(
    layersDir,
    bp,
    input.plan.map((e) => e.name),
  );
  const later = new Set(input.laterProvides ?? []);
  const stranded = unmetNames.filter((n) => !later.has(n));
  if (stranded.length) {
    throw new UserError(
      `${cnbLabel(bp)}: unmet build plan entries: ${stranded.join(', ')} (no later buildpack in the group provides them)`,
    );
  }
  const launch = await readLaunchToml(layersDir, bp);
  const sboms = await collectSboms({ layersDir, layers, buildpack: bp, formats: bp.sbomFormats ?? [] });
  return {
    layers,
    buildLayers: buildLayerDirs(layers),
    launch,
    unmet: input.plan.filter((e) => unmetNames.includes(e.name)),
    sboms,
  };
}
