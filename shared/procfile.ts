/**
 * Procfile parsing with herokuish's rules: `#` lines and lines without a colon
 * are skipped (so stray merge-conflict markers do no harm), the type is the
 * text before the first colon, the command is everything after it, and the
 * first definition of a type wins.
 */
export type ProcessTypes = Record<string, string>;

const TYPE_NAME = /^[A-Za-z0-9_-]+$/;

export function parseProcfile(text: string): ProcessTypes {
  const types: ProcessTypes = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const command = line.slice(colon + 1).trim();
    if (!TYPE_NAME.test(name) || command === '') continue;
    if (!(name in types)) types[name] = command;
  }
  return types;
}

export function isProcessTypeName(name: string): boolean {
  return TYPE_NAME.test(name);
}

/**
 * The one rule for which command a process type runs: each source overrides
 * the ones before it. Callers pass buildpack defaults in chain order, then the
 * app's Procfile, so a later buildpack wins and the Procfile wins over all.
 */
export function mergeProcessTypes(...sources: ProcessTypes[]): ProcessTypes {
  return Object.assign({}, ...sources) as ProcessTypes;
}
