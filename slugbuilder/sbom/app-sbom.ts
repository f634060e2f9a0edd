/**
 * slugkit's own SBOM of the built app, for every slug and image, whatever
 * built it: CycloneDX 1.5 JSON at `.layers/sbom/launch/slugkit/sbom.cdx.json`
 * (sbom/layout.ts), so the slug carries it, the image has it in its SBOM
 * layer and --sbom-output-dir gets it under `launch/slugkit/`.
 *
 * Derived from the built app after the whole chain rather than written by
 * the bundled buildpacks, so it covers Heroku's own buildpacks and any other
 * that installs the same way (and a buildpack cannot forge it: the path is
 * builder-owned and written last). It lists:
 *  - the Node.js runtime in `.heroku/node` (its `include/node/node_version.h`,
 *    as nodejs.org ships it) and the npm bundled with it;
 *  - the npm packages of `package-lock.json` (lockfile v1 to v3) that are
 *    installed in the app (pruned dev dependencies are not);
 *  - the Python runtime of the virtualenv in `.heroku/python` (`pyvenv.cfg`,
 *    else Heroku's `.heroku/python-version`) and every distribution in its
 *    site-packages (`*.dist-info/METADATA`).
 * Nothing in it depends on the clock or the machine, so the slug stays
 * byte-identical. An app with none of these gets no file. A file that cannot
 * be read is left out with a warning: the SBOM never fails a build.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { readTextInside } from '../../shared/fs.js';
import { log } from '../../shared/log.js';
import { slugkitVersion } from '../../shared/package.js';
import { writeAppSbomFile } from './layout.js';

/** Below the app's `.layers/sbom/`. */
export const APP_SBOM_PATH = 'launch/slugkit/sbom.cdx.json';

export interface Component {
  type: 'application' | 'library' | 'platform';
  name: string;
  version: string;
  purl?: string;
  'bom-ref'?: string;
  hashes?: Array<{ alg: string; content: string }>;
}

async function read(appDir: string, rel: string): Promise<string | undefined> {
  try {
    return await readTextInside(appDir, rel);
  } catch (err) {
    log.warn(`Warning: the app's SBOM leaves out ${rel}: ${(err as Error).message}`);
    return undefined;
  }
}

/** `rel` (a lockfile key is hostile data: no `..`) is a directory in the app with no link on the way. */
async function isRealDir(appDir: string, rel: string): Promise<boolean> {
  const parts = rel.split('/');
  if (parts.some((p) => p === '..' || p === '.' || p === '')) return false;
  let at = appDir;
  for (const part of parts) {
    at = path.join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st?.isDirectory()) return false;
  }
  return true;
}

function npmPurl(name: string, version: string): string {
  const [scope, bare] = name.startsWith('@') ? name.split('/', 2) : ['', name];
  return `pkg:npm/${scope ? `${encodeURIComponent(scope)}/` : ''}${encodeURIComponent(bare)}@${encodeURIComponent(version)}`;
}

/** `sha512-<base64>` (npm's integrity) as a CycloneDX hash. */
function integrityHash(integrity: unknown): Component['hashes'] {
  if (typeof integrity !== 'string') return undefined;
  const m = /^sha(256|384|512)-([A-Za-z0-9+/=]+)$/.exec(integrity.split(/\s+/)[0]);
  return m ? [{ alg: `SHA-${m[1]}`, content: Buffer.from(m[2], 'base64').toString('hex') }] : undefined;
}

function npmComponent(name: string, version: string, integrity: unknown): Component {
  const purl = npmPurl(name, version);
  const hashes = integrityHash(integrity);
  return { type: 'library', name, version, purl, 'bom-ref': purl, ...(hashes ? { hashes } : {}) };
}

/** The packages of package-lock.json installed under node_modules. */
async function npmPackages(appDir: string): Promise<Component[]> {
  const text = await read(appDir, 'package-lock.json');
  if (text === undefined) return [];
  let lock: Record<string, unknown>;
  try {
    lock = JSON.parse(text);
  } catch {
    log.warn("Warning: the app's SBOM leaves out package-lock.json: it is not JSON");
    return [];
  }
  const out: Component[] = [];
  const packages = lock.packages;
  if (packages && typeof packages === 'object') {
    // Lockfile v2/v3: "node_modules/a/node_modules/@s/b" -> @s/b.
    for (const [key, raw] of Object.entries(packages as Record<string, Record<string, unknown>>)) {
      if (!key.startsWith('node_modules/') || !raw || typeof raw !== 'object' || raw.link === true) continue;
      const version = raw.version;
      if (typeof version !== 'string') continue;
      const name = typeof raw.name === 'string' ? raw.name : key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
      if (await isRealDir(appDir, key)) out.push(npmComponent(name, version, raw.integrity));
    }
    return out;
  }
  // Lockfile v1: nested "dependencies".
  const walk = async (deps: unknown, under: string): Promise<void> => {
    if (!deps || typeof deps !== 'object') return;
    for (const [name, raw] of Object.entries(deps as Record<string, Record<string, unknown>>)) {
      if (!raw || typeof raw !== 'object' || typeof raw.version !== 'string') continue;
      const dir = `${under}node_modules/${name}`;
      if (!(await isRealDir(appDir, dir))) continue;
      out.push(npmComponent(name, raw.version, raw.integrity));
      await walk(raw.dependencies, `${dir}/`);
    }
  };
  await walk(lock.dependencies, '');
  return out;
}

async function nodeRuntime(appDir: string): Promise<Component[]> {
  if (!(await isRealDir(appDir, '.heroku/node'))) return [];
  const out: Component[] = [];
  const header = await read(appDir, '.heroku/node/include/node/node_version.h');
  const part = (name: string) => new RegExp(`^#define NODE_${name}_VERSION (\\d+)`, 'm').exec(header ?? '')?.[1];
  const [major, minor, patch] = [part('MAJOR'), part('MINOR'), part('PATCH')];
  if (major && minor && patch) {
    const version = `${major}.${minor}.${patch}`;
    out.push({ type: 'platform', name: 'node', version, purl: `pkg:generic/node@${version}`, 'bom-ref': `pkg:generic/node@${version}` });
  }
  const npm = await read(appDir, '.heroku/node/lib/node_modules/npm/package.json');
  try {
    const version = npm === undefined ? undefined : JSON.parse(npm).version;
    if (typeof version === 'string') out.push(npmComponent('npm', version, undefined));
  } catch {
    // An npm without a readable package.json is simply not listed.
  }
  return out;
}

/** PEP 503 normalisation, as purl's pypi type asks. */
function pypiName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

async function pythonPackages(appDir: string): Promise<Component[]> {
  if (!(await isRealDir(appDir, '.heroku/python'))) return [];
  const out: Component[] = [];
  const cfg = await read(appDir, '.heroku/python/pyvenv.cfg');
  const heroku = cfg === undefined ? await read(appDir, '.heroku/python-version') : undefined;
  const version = /^version(?:_info)?\s*=\s*(\d+\.\d+\.\d+)/m.exec(cfg ?? '')?.[1] ?? /(\d+\.\d+\.\d+)/.exec(heroku ?? '')?.[1];
  if (version)
    out.push({
      type: 'platform',
      name: 'python',
      version,
      purl: `pkg:generic/python@${version}`,
      'bom-ref': `pkg:generic/python@${version}`,
    });
  const libs = (await readdir(path.join(appDir, '.heroku/python/lib')).catch(() => [] as string[]))
    .filter((d) => /^python\d/.test(d))
    .sort();
  for (const lib of libs) {
    const site = `.heroku/python/lib/${lib}/site-packages`;
    if (!(await isRealDir(appDir, site))) continue;
    for (const dist of (await readdir(path.join(appDir, site))).filter((d) => d.endsWith('.dist-info')).sort()) {
      const meta = await read(appDir, `${site}/${dist}/METADATA`);
      const name = /^Name:\s*(.+?)\s*$/m.exec(meta ?? '')?.[1];
      const v = /^Version:\s*(.+?)\s*$/m.exec(meta ?? '')?.[1];
      if (!name || !v) continue;
      const purl = `pkg:pypi/${pypiName(name)}@${encodeURIComponent(v)}`;
      out.push({ type: 'library', name, version: v, purl, 'bom-ref': purl });
    }
  }
  return out;
}

/** The app as the SBOM's subject: package.json's name and version when it has them. */
async function appComponent(appDir: string): Promise<Record<string, string>> {
  const text = await read(appDir, 'package.json');
  try {
    const pkg = text === undefined ? {} : JSON.parse(text);
    const name = typeof pkg.name === 'string' && pkg.name ? pkg.name : 'app';
    return { type: 'application', name, ...(typeof pkg.version === 'string' ? { version: pkg.version } : {}), 'bom-ref': 'app' };
  } catch {
    return { type: 'application', name: 'app', 'bom-ref': 'app' };
  }
}

/** The CycloneDX document, or undefined when the app holds nothing it lists. */
export async function appSbom(appDir: string): Promise<Record<string, unknown> | undefined> {
  const found = [...(await nodeRuntime(appDir)), ...(await npmPackages(appDir)), ...(await pythonPackages(appDir))];
  if (found.length === 0) return undefined;
  // One entry per package and version, however many paths hold it.
  const byRef = new Map<string, Component>();
  for (const c of found) byRef.set(c['bom-ref'] ?? `${c.name}@${c.version}`, c);
  const components = [...byRef.values()].sort((a, b) => {
    const [x, y] = [a['bom-ref'] ?? a.name, b['bom-ref'] ?? b.name];
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    version: 1,
    metadata: {
      tools: { components: [{ type: 'application', name: 'slugkit', version: slugkitVersion() }] },
      component: await appComponent(appDir),
    },
    components,
  };
}

/** Writes the app's SBOM into its `.layers/sbom/`; nothing when there is nothing to list. */
export async function writeAppSbom(appDir: string): Promise<void> {
  const doc = await appSbom(appDir);
  if (doc) await writeAppSbomFile(appDir, APP_SBOM_PATH, `${JSON.stringify(doc, null, 2)}\n`);
}
