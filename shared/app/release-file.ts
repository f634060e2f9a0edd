/**
 * `.release` and `Procfile` in an app dir: the builder writes the chain's
 * merged release, the runner and `--slug` read both back. Reads never follow
 * a link out of the app (a slug is hostile data).
 */
import { readFileInside, writeFileInside } from '../fs.js';
import { type ProcessTypes, parseProcfile } from '../procfile.js';
import { parseRelease, type Release } from '../release.js';
import { PROCFILE, RELEASE } from './layout.js';

/** The merged release as YAML, empty fields left out (`--- {}` when nothing was released). */
export async function releaseYaml(r: Release): Promise<string> {
  const doc: Partial<Release> = {};
  if (r.addons.length > 0) doc.addons = r.addons;
  if (Object.keys(r.config_vars).length > 0) doc.config_vars = r.config_vars;
  if (Object.keys(r.default_process_types).length > 0) doc.default_process_types = r.default_process_types;
  if (Object.keys(doc).length === 0) return '--- {}\n';
  const { stringify } = await import('yaml');
  return `---\n${stringify(doc)}`;
}

/** Writes `.release`; returns the bytes written (the launch plan records them). */
export async function writeRelease(appDir: string, release: Release): Promise<Buffer> {
  const bytes = Buffer.from(await releaseYaml(release));
  await writeFileInside(appDir, RELEASE, bytes);
  return bytes;
}

export interface AppFileNames {
  /** How errors name a file of the app, e.g. "the slug's .release"; the path in the app by default. */
  what?: (file: string) => string;
  /** How errors name the app, e.g. "the slug". */
  where?: string;
}

/** `.release` parsed, with its bytes (undefined when absent: an empty release). */
export async function readRelease(appDir: string, names: AppFileNames = {}): Promise<{ release: Release; bytes?: Buffer }> {
  const bytes = await readFileInside(appDir, RELEASE, names.what?.(RELEASE), names.where);
  const release = await parseRelease(bytes?.toString('utf8') ?? '', names.what?.(RELEASE) ?? `${appDir}/${RELEASE}`);
  return { release, bytes };
}

/** `Procfile` parsed, with its bytes (undefined when absent: no types). */
export async function readProcfile(appDir: string, names: AppFileNames = {}): Promise<{ procfile: ProcessTypes; bytes?: Buffer }> {
  const bytes = await readFileInside(appDir, PROCFILE, names.what?.(PROCFILE), names.where);
  return { procfile: parseProcfile(bytes?.toString('utf8') ?? ''), bytes };
}
