/**
 * The chain's CNB labels at release, merged in chain order. How a CNB
 * process becomes a command line (in `.release` too) is
 * shared/app/processes.ts's cnbCommandLine; the launch metadata itself is
 * shared/app/launch-metadata.ts.
 */
import type { LaunchMetadata } from './launch-toml.js';

/** Labels of the group in order, a later buildpack's value of a key winning. */
export function mergeLabels(launches: readonly LaunchMetadata[]): Array<{ key: string; value: string }> {
  const byKey = new Map<string, string>();
  for (const l of launches) for (const { key, value } of l.labels) byKey.set(key, value);
  return [...byKey].map(([key, value]) => ({ key, value }));
}
