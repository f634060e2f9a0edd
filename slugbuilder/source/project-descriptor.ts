/**
 * `project.toml`, the project descriptor an app may carry: which source
 * files the build sees ([build] include/exclude, gitignore-style), the app's
 * own buildpacks and build-time env. Schema 0.1 uses [project] and [build];
 * schema 0.2 ([_] schema-version = "0.2") puts the same under [io.buildpacks].
 */
import { copyFile, lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { copyTree } from '../../shared/copy-tree.js';
import { UserError } from '../../shared/errors.js';
import { checkNoLinksInside, readTextInside } from '../../shared/fs.js';
import { parseToml, type TomlTable } from '../../shared/toml.js';
import { type EnvVar, parseEnvList } from '../buildpacks/builder-file.js';
import { removeByPatterns } from './path-filter.js';

/** A buildpack the app asks for: by uri (directory, tarball, git URL) or by id and version. */
export interface ProjectBuildpack {
  uri?: string;
  id?: string;
  version?: string;
}

export interface ProjectDescriptor {
  file: string;
  schemaVersion: '0.1' | '0.2';
  /** Only these paths are kept (gitignore-style); exclusive with `exclude`. */
  include?: string[];
  /** These paths are removed (gitignore-style). */
  exclude?: string[];
  buildpacks: ProjectBuildpack[];
  env: EnvVar[];
}

function table(v: unknown): TomlTable | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) ? (v as TomlTable) : undefined;
}

function fail(file: string, problem: string): never {
  throw new UserError(`${file}: ${problem}`);
}

function patterns(t: TomlTable, key: string, file: string, where: string): string[] | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((p) => typeof p === 'string')) fail(file, `${where}${key} must be a list of strings`);
  return v as string[];
}

function parseBuildpacks(value: unknown, file: string, what: string): ProjectBuildpack[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((b) => table(b))) fail(file, `${what} must be an array of tables ([[${what}]])`);
  return (value as TomlTable[]).map((b, i) => {
    if (b.script !== undefined)
      fail(
        file,
        `[[${what}]] entry ${i + 1} is an inline buildpack (script), which slugkit does not run: put it in a buildpack directory and give its uri`,
      );
    const pick = (k: string) => {
      const v = b[k];
      if (v !== undefined && typeof v !== 'string') fail(file, `[[${what}]] ${k} must be a string`);
      return v as string | undefined;
    };
    const entry = { uri: pick('uri'), id: pick('id'), version: pick('version') };
    if (!entry.uri && !entry.id) fail(file, `[[${what}]] entry ${i + 1} needs a uri, or an id and version`);
    if (entry.uri && entry.id) fail(file, `[[${what}]] entry ${i + 1} has both uri and id: give one`);
    if (entry.uri?.startsWith('docker:') || entry.uri?.startsWith('urn:cnb:')) {
      fail(
        file,
        `[[${what}]] ${entry.uri} names an image or registry buildpack, which slugkit cannot run: use a directory, a tarball URL or a git URL`,
      );
    }
    return Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined)) as ProjectBuildpack;
  });
}

/** Validates a parsed project.toml; `file` names it in every error. */
export function parseProjectDescriptor(t: TomlTable, file: string): ProjectDescriptor {
  const meta = table(t._);
  const declared = meta?.['schema-version'];
  if (declared !== undefined && declared !== '0.1' && declared !== '0.2') {
    fail(file, `schema-version ${JSON.stringify(declared)} is not supported: slugkit reads 0.1 and 0.2`);
  }
  const io = table(table(t.io)?.buildpacks);
  const schemaVersion = declared === '0.1' ? '0.1' : declared === '0.2' || io ? '0.2' : '0.1';

  let build: TomlTable;
  let buildpacks: ProjectBuildpack[];
  let env: EnvVar[];
  if (schemaVersion === '0.2') {
    build = io ?? {};
    if (build.pre !== undefined || build.post !== undefined) {
      fail(file, '[io.buildpacks.pre] and [io.buildpacks.post] groups are not supported: list every buildpack in [[io.buildpacks.group]]');
    }
    buildpacks = parseBuildpacks(build.group, file, 'io.buildpacks.group');
    env = parseEnvList(table(build.build)?.env, file, 'io.buildpacks.build.env');
  } else {
    build = table(t.build) ?? {};
    buildpacks = parseBuildpacks(build.buildpacks, file, 'build.buildpacks');
    env = parseEnvList(build.env, file, 'build.env');
  }
  const where = schemaVersion === '0.2' ? '[io.buildpacks] ' : '[build] ';
  const include = patterns(build, 'include', file, where);
  const exclude = patterns(build, 'exclude', file, where);
  if (include && exclude) fail(file, `${where}has both include and exclude: use one of them`);
  return { file, schemaVersion, include, exclude, buildpacks, env };
}

/** Reads `<appDir>/project.toml`; undefined when the app has none. */
export async function readProjectDescriptor(appDir: string, name = 'project.toml'): Promise<ProjectDescriptor | undefined> {
  const text = await readTextInside(appDir, name);
  return text === undefined ? undefined : parseProjectDescriptor(parseToml(text, name), name);
}

/** A uri that is a path (not a URL, not git's host:path), relative to project.toml's dir. */
function relativePathUri(uri: string): string | undefined {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(uri) || path.isAbsolute(uri)) return undefined;
  const rel = path.normalize(uri).replace(/\/+$/, '');
  return rel === '.' || rel.startsWith('..') ? undefined : rel;
}

/**
 * pack resolves a relative buildpack uri against project.toml's dir in the
 * source as given, before include/exclude shape the app: buildpacks/samples'
 * bash-script app excludes its own buildpack dir. So each buildpack dir (or
 * tarball) inside the source is copied to `intoDir` first, and its uri points
 * at the copy; the app's copy then goes the way the filters say.
 */
export async function keepProjectBuildpacks(descriptor: ProjectDescriptor, appDir: string, intoDir: string): Promise<ProjectDescriptor> {
  const buildpacks: ProjectBuildpack[] = [];
  for (const [i, b] of descriptor.buildpacks.entries()) {
    const rel = b.uri === undefined ? undefined : relativePathUri(b.uri);
    const st = rel === undefined ? undefined : await lstat(path.join(appDir, rel)).catch(() => undefined);
    if (rel === undefined || !st || !(st.isDirectory() || st.isFile())) {
      buildpacks.push(b);
      continue;
    }
    // A link on the way would take the copy out of the source.
    await checkNoLinksInside(appDir, path.join(rel, 'x'), `${descriptor.file}: buildpack uri ${b.uri}`);
    const copy = path.join(intoDir, `${i + 1}-${path.basename(rel)}`);
    await mkdir(intoDir, { recursive: true });
    if (st.isDirectory()) await copyTree(path.join(appDir, rel), copy);
    else await copyFile(path.join(appDir, rel), copy);
    buildpacks.push({ ...b, uri: copy });
  }
  return { ...descriptor, buildpacks };
}

/**
 * Applies include/exclude to the source in `dir` before any buildpack runs,
 * as `.slugignore` is: excluded paths are removed, or, with include, every
 * path not included. Returns how many paths were removed.
 */
export async function applyProjectFilters(dir: string, descriptor: ProjectDescriptor): Promise<number> {
  const patternsGiven = descriptor.include ?? descriptor.exclude;
  if (!patternsGiven || patternsGiven.length === 0) return 0;
  return removeByPatterns(dir, patternsGiven, descriptor.include !== undefined ? 'include' : 'exclude');
}
