/**
 * The launch environment of a Cloud Native Buildpack process, made as the
 * lifecycle's launcher makes it: the launch layers' bin/, lib/ and env files
 * (buildpacks in chain order), then their exec.d executables. What the layers
 * and processes are is the built app's contract (shared/app/); running exec.d
 * at start is the runner's. The CLI loads it only for CNB-built apps whose
 * plan bash cannot apply alone.
 */
import path from 'node:path';
import { hasExecEnv } from '../shared/app/buildpack-api.js';
import { type CnbApp, cnbLayersDirs } from '../shared/app/launch-metadata.js';
import { type Env, launchEnv, launchLayerDirs, runExecD } from '../shared/layer-env.js';

/** `processType` picks `env.launch/<type>/` and `exec.d/<type>/`; a one-off has none. */
export async function cnbEnvironment(base: Env, app: CnbApp, processType?: string): Promise<Env> {
  base = withoutPlatformVars(base);
  const dirs = cnbLayersDirs(app);
  const layers = await launchLayerDirs(dirs);
  const env = await launchEnv(base, layers, processType);
  const apiOf = new Map(app.buildpacks.map((bp, i) => [dirs[i], bp.api]));
  const execEnv = base.CNB_EXEC_ENV || 'production';
  return runExecD(env, layers, {
    appDir: app.appDir,
    processType,
    extraEnv: (layer) => (hasExecEnv(apiOf.get(path.dirname(layer)) ?? '0') ? { CNB_EXEC_ENV: execEnv } : undefined),
  });
}

/** The platform's own variables, which the lifecycle's launcher removes before exec.d and the process (bin/dyno.bash does too). */
const PLATFORM_VARS = ['CNB_APP_DIR', 'CNB_LAYERS_DIR', 'CNB_PROCESS_TYPE', 'CNB_PLATFORM_API', 'CNB_DEPRECATION_MODE'];

function withoutPlatformVars(env: Env): Env {
  const out = { ...env };
  for (const name of PLATFORM_VARS) delete out[name];
  return out;
}
