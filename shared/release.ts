/**
 * The YAML a buildpack's `bin/release` prints. Real buildpacks print nothing,
 * a bare `---`, `--- {}` or a full document; all are valid. Anything that is
 * not a mapping of the known shapes is an error naming what was wrong.
 */
import { createRequire } from 'node:module';
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

/** `origin` names the source in errors, e.g. "bin/release of buildpack nodejs". */
/** What buildpacks print when they have nothing to release: no YAML parser needed. */
const NOTHING_RELEASED = /^\s*(---\s*)?(\{\s*\}\s*)?$/;

/**
 * yaml is loaded on first real use: it is most of slugrunner's start-up cost,
 * and most slugs' releases are empty.
 */
let yamlParse: typeof import('yaml').parse | undefined;
function loadYaml(): typeof import('yaml').parse {
  yamlParse ??= (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse;
  return yamlParse;
}

export function parseRelease(text: string, origin: string): Release {
  if (NOTHING_RELEASED.test(text)) return emptyRelease();
  let doc: unknown;
  try {
    doc = loadYaml()(text, { prettyErrors: false });
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
