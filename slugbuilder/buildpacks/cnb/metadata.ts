/**
 * What the chain's CNB processes and labels become at release: every process
 * type goes into `.release` as a shell command line, so a classic runner can
 * still start it, and the labels merge in chain order. The launch metadata
 * itself is shared/launch-metadata.ts.
 */
import { shellQuote } from '../../../shared/shell.js';
import type { CnbProcess, LaunchMetadata } from './launch-toml.js';

/**
 * A CNB process as one shell command line: a direct process's words each
 * quoted, a shell process (API < 0.9, not direct) its command as written;
 * args appended, quoted.
 */
export function shellCommand(p: CnbProcess): string {
  const head = p.direct ? p.command.map(shellQuote) : [p.command[0]];
  return [...head, ...p.args.map(shellQuote)].join(' ');
}

/** Labels of the group in order, a later buildpack's value of a key winning. */
export function mergeLabels(launches: readonly LaunchMetadata[]): Array<{ key: string; value: string }> {
  const byKey = new Map<string, string>();
  for (const l of launches) for (const { key, value } of l.labels) byKey.set(key, value);
  return [...byKey].map(([key, value]) => ({ key, value }));
}
