/**
 * A builder definition in pack's `builder.toml` schema: the buildpacks a
 * build may use ([[buildpacks]] uri, optionally id/version) and the order
 * their groups are detected in. Classic buildpacks have no id, so a group
 * names them (or any buildpack) by uri: `[[order.group]] uri = "./nodejs"`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../shared/errors.js';
import { readTomlFile, type TomlTable } from '../../shared/toml.js';
import { type BuildpackDescriptor, buildpackLabel, type GroupMember, parseOrder } from './cnb/descriptor.js';
import type { BuildpackLookup, OrderBuildpack } from './cnb/order.js';

export interface BuilderBuildpack {
  /** As written in the file. */
  uri: string;
  /** What to fetch: an absolute directory (relative uris are relative to the file) or a URL. */
  location: string;
  id?: string;
  version?: string;
}

export interface EnvVar {
  name: string;
  value: string;
}

export interface BuilderFile {
  file: string;
  buildpacks: BuilderBuildpack[];
  order: GroupMember[][];
  /** [stack] id (deprecated in pack, still the STACK of a slugkit build). */
  stackId?: string;
  /** [build] image, else [stack] build-image. */
  buildImage?: string;
  /** The default --run-image: the first [[run.images]] image, else [stack] run-image. */
  runImage?: string;
  runImageMirrors: string[];
  /** [[build.env]], in file order. */
  env: EnvVar[];
}

/** `user@host:path`, git's ssh form. */
const SCP_LIKE = /^([A-Za-z0-9._~-]+@)?[A-Za-z0-9.-]+:(?!\/\/).+$/;

function table(v: unknown): TomlTable | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) ? (v as TomlTable) : undefined;
}

function fail(file: string, problem: string): never {
  throw new UserError(`${file}: ${problem}`);
}

function str(t: TomlTable | undefined, key: string, file: string, where: string): string | undefined {
  const v = t?.[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(file, `${where}${key} must be a string`);
  return v;
}

function tables(v: unknown, file: string, what: string): TomlTable[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((t) => table(t))) fail(file, `${what} must be an array of tables ([[${what}]])`);
  return v as TomlTable[];
}

/** Where a buildpack uri points: a URL stays one, a path is made absolute from the file's directory. */
export function resolveUri(uri: string, file: string): string {
  if (/^(docker:|urn:cnb:|from=)/i.test(uri)) {
    fail(
      file,
      `buildpack uri "${uri}" names an image or registry buildpack, which slugkit cannot run: use a directory, a tarball URL or a git URL`,
    );
  }
  if (/^file:\/\//i.test(uri)) return fileURLToPath(uri);
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(uri) || SCP_LIKE.test(uri)) return uri;
  return path.resolve(path.dirname(path.resolve(file)), uri);
}

/** `[[build.env]] name/value` (builder.toml and project.toml share it). */
export function parseEnvList(value: unknown, file: string, what: string): EnvVar[] {
  return tables(value, file, what).map((e, i) => {
    const name = str(e, 'name', file, `[[${what}]] `);
    const v = e.value;
    if (!name || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      fail(file, `[[${what}]] entry ${i + 1} needs a name that is a valid variable name`);
    if (typeof v !== 'string') fail(file, `[[${what}]] ${name} needs a string value`);
    return { name, value: v };
  });
}

/** Validates a parsed builder.toml; `file` names it in every error. */
export function parseBuilderFile(t: TomlTable, file: string): BuilderFile {
  if (t.extensions !== undefined || t['order-extensions'] !== undefined) {
    fail(file, 'image extensions ([[extensions]], [[order-extensions]]) are not supported: remove them');
  }
  const buildpacks = tables(t.buildpacks, file, 'buildpacks').map((b, i) => {
    const uri = str(b, 'uri', file, '[[buildpacks]] ');
    if (!uri) fail(file, `[[buildpacks]] entry ${i + 1} has no uri: give the directory, tarball or git URL it comes from`);
    return {
      uri,
      location: resolveUri(uri, file),
      id: str(b, 'id', file, '[[buildpacks]] '),
      version: str(b, 'version', file, '[[buildpacks]] '),
    };
  });
  const order = parseOrder(t.order, file, true);
  if (order.length === 0) fail(file, 'has no [[order]]: add at least one [[order]] with [[order.group]] members');
  // A group may name a buildpack by uri without listing it in [[buildpacks]].
  for (const m of order.flat()) {
    if (!m.uri) continue;
    const location = resolveUri(m.uri, file);
    if (!buildpacks.some((b) => b.location === location)) buildpacks.push({ uri: m.uri, location, id: undefined, version: undefined });
  }

  const stack = table(t.stack);
  const build = table(t.build);
  const run = table(t.run);
  const runImages = tables(run?.images, file, 'run.images').map((r) => {
    const image = str(r, 'image', file, '[[run.images]] ');
    if (!image) fail(file, '[[run.images]] entry has no image');
    const mirrors = r.mirrors ?? [];
    if (!Array.isArray(mirrors) || !mirrors.every((m) => typeof m === 'string'))
      fail(file, '[[run.images]] mirrors must be a list of strings');
    return { image, mirrors: mirrors as string[] };
  });
  const stackMirrors = stack?.['run-image-mirrors'] ?? [];
  if (!Array.isArray(stackMirrors) || !stackMirrors.every((m) => typeof m === 'string'))
    fail(file, '[stack] run-image-mirrors must be a list of strings');

  return {
    file,
    buildpacks,
    order,
    stackId: str(stack, 'id', file, '[stack] '),
    buildImage: str(build, 'image', file, '[build] ') ?? str(stack, 'build-image', file, '[stack] '),
    runImage: runImages[0]?.image ?? str(stack, 'run-image', file, '[stack] '),
    runImageMirrors: runImages[0]?.mirrors ?? (stackMirrors as string[]),
    env: parseEnvList(build?.env, file, 'build.env'),
  };
}

export async function readBuilderFile(file: string): Promise<BuilderFile> {
  const t = await readTomlFile(file);
  if (!t) throw new UserError(`builder file ${file} does not exist: check the --builder path`);
  return parseBuilderFile(t, file);
}

/** A builder's buildpack once fetched: where it is and its descriptor (undefined = classic). */
export interface FetchedBuildpack {
  entry: BuilderBuildpack;
  dir: string;
  descriptor?: BuildpackDescriptor;
}

/**
 * The lookup detectOrder uses for a builder: members named by uri find their
 * [[buildpacks]] entry, members named by id (also inside composites) the CNB
 * with that id and version. Every top-level member is checked here, so an
 * unknown id is one line before anything runs.
 */
export function builderLookup(builder: BuilderFile, fetched: FetchedBuildpack[]): BuildpackLookup {
  const file = builder.file;
  for (const f of fetched) {
    const d = f.descriptor;
    if (f.entry.id && d?.id !== f.entry.id) {
      fail(file, `[[buildpacks]] ${f.entry.uri} is listed as ${f.entry.id} but holds ${d ? d.id : 'a classic buildpack'}: fix the id`);
    }
    if (f.entry.version && d && d.version !== f.entry.version) {
      fail(
        file,
        `[[buildpacks]] ${f.entry.uri} is listed as ${f.entry.id ?? d.id}@${f.entry.version} but holds ${buildpackLabel(d)}: fix the version`,
      );
    }
  }
  const asOrderBuildpack = (f: FetchedBuildpack): OrderBuildpack => ({
    id: f.descriptor?.id ?? f.entry.uri,
    version: f.descriptor?.version,
    dir: f.dir,
    descriptor: f.descriptor,
  });
  const find = (m: GroupMember): OrderBuildpack => {
    if (m.uri) {
      const location = resolveUri(m.uri, file);
      const f = fetched.find((x) => x.entry.location === location);
      if (!f) fail(file, `the group member ${m.uri} was not fetched`);
      return asOrderBuildpack(f);
    }
    const matches = fetched.filter((f) => f.descriptor?.id === m.id && (!m.version || f.descriptor.version === m.version));
    if (matches.length === 0) {
      const name = m.version ? `${m.id}@${m.version}` : m.id;
      fail(file, `no [[buildpacks]] entry provides ${name}, which a group names: add it to [[buildpacks]] or fix the group`);
    }
    const versions = new Set(matches.map((f) => f.descriptor!.version));
    if (versions.size > 1) {
      fail(file, `${m.id} is in [[buildpacks]] as ${[...versions].join(' and ')}: give the group member a version`);
    }
    return asOrderBuildpack(matches[0]);
  };
  for (const m of builder.order.flat()) find(m);
  return async (m) => find(m);
}
