/**
 * The YAML a buildpack's `bin/release` prints. Real buildpacks print nothing,
 * a bare `---`, `--- {}` or a full document; all are valid. Anything that is
 * not a mapping of the known shapes is an error naming what was wrong.
 */
import { UserError } from './errors.js';
import type { ProcessTypes } from './procfile.js';

export interface Release {
  addons: string[];
  config_vars: Record<string, string>;
  default_process_types: ProcessTypes;
}

export function emptyRelease(): Release {
  return { addons: [], config_vars: {}, default_process_types: {} };
}

function stringMap(value: unknown, field: string, origin: string): Record<string, string> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new UserError(`${origin}: ${field} must be a mapping`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === null || v === undefined) continue;
    if (typeof v === 'object') throw new UserError(`${origin}: ${field}.${k} must be a string`);
    out[k] = String(v);
  }
  return out;
}

/** What buildpacks print when they have nothing to release: no YAML parser needed. */
const NOTHING_RELEASED = /^\s*(---\s*)?(\{\s*\}\s*)?$/;

/**
 * yaml is loaded on first real use: it is most of slugrunner's start-up cost,
 * and many slugs' releases are empty. A dynamic import (rather than a
 * require) lets the CLI bundle carry yaml and still run it only when needed.
 */
let yamlParse: typeof import('yaml').parse | undefined;
async function loadYaml(): Promise<typeof import('yaml').parse> {
  yamlParse ??= (await import('yaml')).parse;
  return yamlParse;
}

/** `origin` names the source in errors, e.g. "bin/release of buildpack nodejs". */
export async function parseRelease(text: string, origin: string): Promise<Release> {
  if (NOTHING_RELEASED.test(text)) return emptyRelease();
  const parse = await loadYaml();
  let doc: unknown;
  try {
    doc = parse(text, { prettyErrors: false });
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new UserError(`${origin} printed invalid YAML: ${first}`);
  }
  if (doc === null || doc === undefined) return emptyRelease();
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UserError(`${origin} printed YAML that is not a mapping`);
  const d = doc as Record<string, unknown>;
  const addons = d.addons ?? [];
  if (!Array.isArray(addons)) throw new UserError(`${origin}: addons must be a list`);
  return {
    addons: addons.map(String),
    config_vars: stringMap(d.config_vars, 'config_vars', origin),
    default_process_types: stringMap(d.default_process_types, 'default_process_types', origin),
  };
}
