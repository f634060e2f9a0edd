/**
 * The Buildpack API versions slugkit speaks and what changes between them,
 * each rule a named predicate on a buildpack's `api`. A new API version is
 * one line in SUPPORTED_APIS plus a predicate here for each rule it changes;
 * callers ask the predicate, never compare versions themselves.
 */

/** The versions a buildpack.toml may declare. */
export const SUPPORTED_APIS = ['0.7', '0.8', '0.9', '0.10', '0.11', '0.12'] as const;

export function isSupportedApi(api: string): boolean {
  return (SUPPORTED_APIS as readonly string[]).includes(api);
}

/** True when Buildpack API `api` ("0.9", "1") is at least `min`; minor versions compare as numbers. */
export function apiAtLeast(api: string, min: string): boolean {
  const [a, b] = [api, min].map((v) => v.split('.').map((n) => Number(n)));
  const major = (a[0] ?? 0) - (b[0] ?? 0);
  return major !== 0 ? major > 0 : (a[1] ?? 0) >= (b[1] ?? 0);
}

/** 0.8: launch.toml's `working-dir` is honoured (before, the lifecycle ignores it). */
export const honoursWorkingDir = (api: string) => apiAtLeast(api, '0.8');

/**
 * 0.9: a process's `command` is an array exec'd directly (`direct` is gone),
 * the user's arguments replace `args`, and launch layers' `profile.d` scripts
 * are no longer sourced. Before, `command` is one string run by bash unless
 * `direct = true`, and user arguments are appended to `args`.
 */
export const execsProcessesDirectly = (api: string) => apiAtLeast(api, '0.9');
export const userArgsReplaceArgs = (api: string) => apiAtLeast(api, '0.9');
export const sourcesLayerProfiles = (api: string) => !apiAtLeast(api, '0.9');

/** 0.10: `[[targets]]` decide where a buildpack runs (before, `[[stacks]]`), and CNB_TARGET_* are set. */
export const usesTargets = (api: string) => apiAtLeast(api, '0.10');

/** 0.12: CNB_EXEC_ENV is set for build, detect and exec.d, and processes may name their `exec-env`. */
export const hasExecEnv = (api: string) => apiAtLeast(api, '0.12');
