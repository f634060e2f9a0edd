/**
 * `buildpack.toml`, the Cloud Native Buildpack descriptor. A directory
 * without one (or with Heroku's registry metadata and bin/compile) is a
 * classic buildpack; a CNB is a component (bin/detect and bin/build) or a
 * composite (an [[order]] of other buildpacks, no bin/).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { isSupportedApi, SUPPORTED_APIS } from '../../../shared/app/buildpack-api.js';
import { UserError } from '../../../shared/errors.js';
import { readTomlFile, type TomlTable } from '../../../shared/toml.js';

/** The Buildpack API versions slugkit runs (shared/app/buildpack-api.ts): the range the current lifecycle supports. */
export { SUPPORTED_APIS };

/** Ids the spec keeps for the platform's own layers and metadata. */
const RESERVED_IDS = new Set(['config', 'app', 'sbom']);
const ID_CHARS = /^[A-Za-z0-9./-]+$/;

export interface GroupMember {
  /** A CNB's id; for a member named by uri (builder files), the uri as written. */
  id: string;
  version?: string;
  optional: boolean;
  /** Set when a builder file names the member by uri (how it names a classic buildpack). */
  uri?: string;
}

export interface TargetDistro {
  name?: string;
  version?: string;
}

export interface Target {
  os?: string;
  arch?: string;
  variant?: string;
  distros: TargetDistro[];
}

export interface BuildpackDescriptor {
  /** The buildpack.toml that was read. */
  file: string;
  dir: string;
  kind: 'component' | 'composite';
  api: string;
  id: string;
  /** Required for components; composites may leave it out. */
  version?: string;
  name?: string;
  homepage?: string;
  /** true: config vars are not put in detect's and build's environment. */
  clearEnv: boolean;
  /** `sbom-formats`: the SBOM media types its bin/build may write (cnb/sbom.ts checks them). */
  sbomFormats: string[];
  /** [[stacks]] ids (Buildpack API before 0.10); "*" matches any stack. */
  stacks: string[];
  /** [[targets]] (Buildpack API 0.10 on). */
  targets: Target[];
  /** A composite's groups; empty for a component. */
  order: GroupMember[][];
}

/** Shared with the runner, which reads launch layers per API too. */
export { apiAtLeast } from '../../../shared/app/buildpack-api.js';

/** How a buildpack is named in messages: id@version. */
export function buildpackLabel(d: { id: string; version?: string }): string {
  return d.version ? `${d.id}@${d.version}` : d.id;
}

async function exists(p: string): Promise<'file' | 'dir' | undefined> {
  return stat(p).then(
    (s) => (s.isDirectory() ? 'dir' : 'file'),
    () => undefined,
  );
}

/** The files that decide what a buildpack dir is, as named in the one line for a dir that is neither kind. */
async function filesFound(dir: string, table: TomlTable): Promise<string> {
  const found: string[] = [`buildpack.toml (${typeof table.api === 'string' ? `api ${JSON.stringify(table.api)}` : 'no api'})`];
  for (const script of ['detect', 'compile', 'release', 'build']) {
    if ((await exists(path.join(dir, 'bin', script))) === 'file') found.push(`bin/${script}`);
  }
  return found.join(', ');
}

/**
 * Reads `<dir>/buildpack.toml`; undefined for a classic buildpack. A CNB is a
 * buildpack.toml with `api` and `[buildpack] id`, and bin/build or [[order]].
 * Heroku's own classic buildpacks ship a buildpack.toml too (registry
 * metadata: `[buildpack] name`, `[publish.*]`, no api): a dir with bin/compile
 * whose buildpack.toml is not a CNB's is classic, whatever else it ships.
 */
export async function readBuildpackDescriptor(dir: string): Promise<BuildpackDescriptor | undefined> {
  const file = path.join(dir, 'buildpack.toml');
  const table = await readTomlFile(file);
  if (!table) return undefined;
  const info = table.buildpack;
  const hasId = typeof info === 'object' && info !== null && !Array.isArray(info) && (info as TomlTable).id !== undefined;
  const hasApi = table.api !== undefined;
  const hasBuild = (await exists(path.join(dir, 'bin', 'build'))) === 'file';
  const hasCompile = (await exists(path.join(dir, 'bin', 'compile'))) === 'file';
  if (!(hasApi && hasId && (hasBuild || table.order !== undefined)) && hasCompile) return undefined;
  if (!hasApi && !hasId) {
    throw new UserError(
      `buildpack ${dir} is neither a classic buildpack nor a Cloud Native Buildpack: found ${await filesFound(dir, table)}; ` +
        'a classic buildpack needs bin/compile, a CNB a buildpack.toml with api and [buildpack] id, and bin/build or [[order]]',
    );
  }
  const d = parseBuildpackDescriptor(table, file);
  const bin = await exists(path.join(dir, 'bin'));
  const where = `buildpack ${buildpackLabel(d)} (${file})`;
  if (d.kind === 'composite') {
    if (bin) throw new UserError(`${where} has both [[order]] and bin/: a composite buildpack has no bin/, a component no [[order]]`);
  } else {
    for (const script of ['detect', 'build']) {
      if ((await exists(path.join(dir, 'bin', script))) !== 'file') {
        throw new UserError(
          `${where} has no bin/${script}: a component buildpack needs bin/detect and bin/build (found ${await filesFound(dir, table)})`,
        );
      }
    }
  }
  return d;
}

function fail(file: string, problem: string): never {
  throw new UserError(`${file}: ${problem}`);
}

function optionalString(table: TomlTable, key: string, file: string, where: string): string | undefined {
  const v = table[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(file, `${where}${key} must be a string`);
  return v;
}

function tableArray(value: unknown, file: string, what: string): TomlTable[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((t) => typeof t !== 'object' || t === null || Array.isArray(t))) {
    fail(file, `${what} must be an array of tables ([[${what}]])`);
  }
  return value as TomlTable[];
}

/** An [[order]] list: groups of id/version/optional (buildpack.toml and builder.toml share it). */
export function parseOrder(value: unknown, file: string, allowUri = false): GroupMember[][] {
  return tableArray(value, file, 'order').map((entry, i) => {
    const group = tableArray(entry.group, file, 'order.group');
    if (group.length === 0) fail(file, `[[order]] ${i + 1} has no [[order.group]] members`);
    return group.map((m) => parseMember(m, file, `[[order]] ${i + 1}: `, allowUri));
  });
}

function parseMember(m: TomlTable, file: string, where: string, allowUri: boolean): GroupMember {
  const id = optionalString(m, 'id', file, where);
  const uri = allowUri ? optionalString(m, 'uri', file, where) : undefined;
  const optional = m.optional ?? false;
  if (typeof optional !== 'boolean') fail(file, `${where}optional must be true or false`);
  if (id && uri) fail(file, `${where}a group member has both id and uri: name it by one`);
  if (uri) return { id: uri, uri, optional };
  if (!id) fail(file, `${where}a group member has no id${allowUri ? ' (or uri, for a classic buildpack)' : ''}`);
  return { id, version: optionalString(m, 'version', file, where), optional };
}

function parseTargets(value: unknown, file: string): Target[] {
  return tableArray(value, file, 'targets').map((t) => ({
    os: optionalString(t, 'os', file, '[[targets]] '),
    arch: optionalString(t, 'arch', file, '[[targets]] '),
    variant: optionalString(t, 'variant', file, '[[targets]] '),
    distros: tableArray(t.distros, file, 'targets.distros').map((d) => ({
      name: optionalString(d, 'name', file, '[[targets.distros]] '),
      version: optionalString(d, 'version', file, '[[targets.distros]] '),
    })),
  }));
}

/** Validates a parsed buildpack.toml; `file` names it in every error. Does not look at bin/. */
export function parseBuildpackDescriptor(table: TomlTable, file: string): BuildpackDescriptor {
  const api = table.api;
  if (typeof api !== 'string' || !isSupportedApi(api)) {
    const shown = api === undefined ? 'no api' : `api ${JSON.stringify(api)}`;
    fail(file, `${shown} is not a supported Buildpack API: slugkit supports ${SUPPORTED_APIS.join(', ')}`);
  }
  const bp = table.buildpack;
  if (typeof bp !== 'object' || bp === null || Array.isArray(bp)) fail(file, 'has no [buildpack] table');
  const info = bp as TomlTable;
  const id = optionalString(info, 'id', file, '[buildpack] ');
  if (!id) fail(file, '[buildpack] id is required');
  if (!ID_CHARS.test(id)) fail(file, `buildpack id "${id}" may only hold letters, digits, ".", "/" and "-"`);
  if (RESERVED_IDS.has(id)) fail(file, `buildpack id "${id}" is reserved (config, app and sbom are): choose another id`);
  const version = optionalString(info, 'version', file, '[buildpack] ');
  const clearEnv = info['clear-env'] ?? false;
  if (typeof clearEnv !== 'boolean') fail(file, '[buildpack] clear-env must be true or false');
  const sbomFormats = info['sbom-formats'] ?? [];
  if (!Array.isArray(sbomFormats) || !sbomFormats.every((f) => typeof f === 'string'))
    fail(file, '[buildpack] sbom-formats must be an array of media types (strings)');

  const order = parseOrder(table.order, file);
  const kind = order.length > 0 ? 'composite' : 'component';
  if (kind === 'component' && !version) fail(file, `[buildpack] version is required for buildpack ${id}`);

  const stacks = tableArray(table.stacks, file, 'stacks').map((s) => {
    const sid = optionalString(s, 'id', file, '[[stacks]] ');
    if (!sid) fail(file, '[[stacks]] entry has no id');
    return sid;
  });

  return {
    file,
    dir: path.dirname(file),
    kind,
    api,
    id,
    version,
    name: optionalString(info, 'name', file, '[buildpack] '),
    homepage: optionalString(info, 'homepage', file, '[buildpack] '),
    clearEnv,
    sbomFormats: sbomFormats as string[],
    stacks,
    targets: parseTargets(table.targets, file),
    order,
  };
}
