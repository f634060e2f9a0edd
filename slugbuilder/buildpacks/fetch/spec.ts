/**
 * Parsing a buildpack spec (`--buildpack`, `BUILDPACK_URL`, a `.buildpacks`
 * line) that is not a local directory into what to fetch and how.
 *
 * Credentials in a URL are a secret: they are registered with `redact()` the
 * moment we see them, and everything that is printed or used as a cache key
 * is built from `display`, the URL without them.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../../../shared/errors.js';
import { basicAuthorization, withoutCredentials } from '../../../shared/http.js';

export type BuildpackSource = 'git' | 'tarball';

export interface BuildpackSpec {
  source: BuildpackSource;
  /** The URL to fetch from, credentials included: hand it to git or fetch only. */
  fetchUrl: string;
  /** The URL without credentials or query values: the only form that is printed or stored. */
  display: string;
  /** The URL without credentials, query kept: the cache key is made from it (hashed), never printed. */
  bare: string;
  /** Branch, tag or commit after `#`; undefined means the default branch. */
  ref?: string;
  /** A short human name: the repository or archive name. */
  name: string;
  /** Basic-auth header value for tarball downloads (Node's fetch refuses URLs with credentials). */
  authorization?: string;
  /** A tarball read from this machine (file: URL or path): read again on each build, never cached. */
  local?: boolean;
  /** A registry name: its tarball is the latest release, fetched again on each online build. */
  latest?: boolean;
}

const TARBALL_EXTENSIONS = ['.tgz', '.tar.gz', '.tar'];

/** `user@host:path`, git's scp-like ssh syntax: no scheme, a colon before any slash. */
const SCP_LIKE = /^([A-Za-z0-9._~-]+@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?!\/\/)(.+)$/;

/** A full commit id (sha1 or sha256): pinned content, never fetched twice. */
export function isCommitSha(ref: string | undefined): boolean {
  return ref !== undefined && /^([0-9a-f]{40}|[0-9a-f]{64})$/i.test(ref);
}

/** `#ref` is the part after the first `#`; an empty ref is a typo, not "default branch". */
function splitRef(spec: string): { base: string; ref?: string } {
  const hash = spec.indexOf('#');
  if (hash < 0) return { base: spec };
  const base = spec.slice(0, hash);
  const ref = spec.slice(hash + 1);
  if (ref === '')
    throw new UserError(`Buildpack ${safeForMessage(base)}#: empty ref after '#'; name a branch, tag or commit, or drop the '#'`);
  if (/\s|\.\.|^-|[~^:?*[\\]/.test(ref)) {
    throw new UserError(`Buildpack ${safeForMessage(base)}: '${ref}' is not a valid git ref; name a branch, tag or commit`);
  }
  return { base, ref };
}

/**
 * Best effort for an unparseable spec: drop anything between `//` and `@` so
 * even a malformed URL never echoes a token back.
 */
function safeForMessage(text: string): string {
  return text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@]*@/, '$1');
}

function lastSegment(pathname: string): string {
  const parts = pathname.split('/').filter(Boolean);
  return decodeURIComponent(parts[parts.length - 1] ?? '');
}

function stripExtension(name: string, extensions: string[]): string {
  for (const ext of extensions) if (name.toLowerCase().endsWith(ext)) return name.slice(0, -ext.length);
  return name;
}

function isTarballPath(pathname: string): boolean {
  const lower = pathname.toLowerCase();
  return TARBALL_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** Heroku's buildpack registry, where `heroku buildpacks:set NAMESPACE/NAME` finds a buildpack's tarball. */
export const DEFAULT_BUILDPACK_REGISTRY = 'https://buildpack-registry.s3.amazonaws.com';

/** `heroku/nodejs`, `heroku-community/apt`: a registry name, tried only when no local dir has that name. */
const REGISTRY_NAME = /^([a-z0-9][a-z0-9_-]*)\/([a-z0-9][a-z0-9_.-]*)$/i;

/** The registry base: SLUGKIT_BUILDPACK_REGISTRY (a mirror, an air-gapped site) up to `/buildpacks`, else Heroku's. */
function registryBase(env: NodeJS.ProcessEnv): string {
  const raw = env.SLUGKIT_BUILDPACK_REGISTRY?.trim();
  if (!raw) return DEFAULT_BUILDPACK_REGISTRY;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:' && url.protocol !== 'file:')) {
    throw new UserError(
      `SLUGKIT_BUILDPACK_REGISTRY '${safeForMessage(raw)}' is not an http(s) or file URL: give the registry's base, e.g. ${DEFAULT_BUILDPACK_REGISTRY}`,
    );
  }
  return raw.replace(/\/+$/, '').replace(/\/buildpacks$/, '');
}

/**
 * A spec that can only be a path on this machine (a directory or a tarball):
 * no URL scheme, not git's user@host:path, not a registry name, not an image.
 */
export function isLocalPathSpec(spec: string): boolean {
  const trimmed = spec.trim();
  if (/^(urn:cnb:|docker:)/i.test(trimmed) || REGISTRY_NAME.test(trimmed)) return false;
  const base = trimmed.split('#')[0];
  return !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(base) && !SCP_LIKE.test(base);
}

export function parseBuildpackSpec(spec: string, env: NodeJS.ProcessEnv = process.env): BuildpackSpec {
  const trimmed = spec.trim();
  if (/^(urn:cnb:|docker:)/i.test(trimmed)) {
    throw new UserError(
      `Buildpack ${safeForMessage(trimmed)} names an image or CNB registry buildpack, which slugkit cannot run: use a directory, a tarball URL, a git URL or a Heroku registry name (heroku/NAME)`,
    );
  }
  const registry = REGISTRY_NAME.exec(trimmed);
  if (registry) {
    const [, namespace, name] = registry;
    const tarball = parseBuildpackSpec(`${registryBase(env)}/buildpacks/${namespace}/${name}.tgz`, {});
    // Named as written, then where it came from: a typo'd local dir shows up as what it is.
    return { ...tarball, display: `${namespace}/${name} (${tarball.display})`, latest: true };
  }
  const { base, ref } = splitRef(trimmed);

  const hasScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(base);
  // A path to an archive on this machine (`./bp.tgz`, `/srv/bp.tar.gz`): a tarball, like its file: URL.
  if (!hasScheme && isTarballPath(base) && !SCP_LIKE.test(base)) {
    if (ref !== undefined)
      throw new UserError(`Buildpack ${base}#${ref}: a tarball cannot take a #ref; drop it, or point at a git repository`);
    const fetchUrl = pathToFileURL(path.resolve(base)).href;
    return {
      source: 'tarball',
      fetchUrl,
      display: base,
      bare: fetchUrl,
      ref,
      name: stripExtension(path.basename(base), TARBALL_EXTENSIONS) || 'buildpack',
      local: true,
    };
  }
  const scp = hasScheme ? null : SCP_LIKE.exec(base);
  if (scp) {
    // git@host:owner/repo.git: handed to git (and so to ssh) exactly as written.
    const name = stripExtension(lastSegment(scp[3]), ['.git']) || scp[2];
    return { source: 'git', fetchUrl: base, display: base, bare: base, ref, name };
  }

  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new UserError(
      `Buildpack '${safeForMessage(trimmed)}' is not a local directory, a git URL (https://, git://, file://, ssh://, git@host:path), a tarball URL (.tgz, .tar.gz, .tar) or a registry name (heroku/NAME)`,
    );
  }
  const { display, bare, username, password } = withoutCredentials(url);

  switch (url.protocol) {
    case 'http:':
    case 'https:': {
      if (!url.hostname) throw new UserError(`Buildpack ${display}: the URL has no host`);
      if (isTarballPath(url.pathname)) {
        if (ref !== undefined) {
          throw new UserError(`Buildpack ${display}#${ref}: a tarball URL cannot take a #ref; drop it, or point at a git repository`);
        }
        const name = stripExtension(lastSegment(url.pathname), TARBALL_EXTENSIONS) || url.hostname;
        const authorization = username || password ? basicAuthorization(username, password) : undefined;
        return { source: 'tarball', fetchUrl: bare, display, bare, ref, name, authorization };
      }
      return { source: 'git', fetchUrl: url.href, display, bare, ref, name: gitName(url) };
    }
    case 'git:':
      // The git protocol has no authentication: user-info would only be taken as part of the host name.
      if (!url.hostname) throw new UserError(`Buildpack ${display}: the URL has no host`);
      return { source: 'git', fetchUrl: bare, display, bare, ref, name: gitName(url) };
    case 'ssh:':
    case 'git+ssh:':
    case 'ssh+git:':
      if (!url.hostname) throw new UserError(`Buildpack ${display}: the URL has no host`);
      return { source: 'git', fetchUrl: url.href, display, bare, ref, name: gitName(url) };
    case 'file:':
      if (isTarballPath(url.pathname)) {
        if (ref !== undefined)
          throw new UserError(`Buildpack ${display}#${ref}: a tarball cannot take a #ref; drop it, or point at a git repository`);
        const name = stripExtension(lastSegment(url.pathname), TARBALL_EXTENSIONS) || 'buildpack';
        return { source: 'tarball', fetchUrl: bare, display, bare, ref, name, local: true };
      }
      return { source: 'git', fetchUrl: bare, display, bare, ref, name: gitName(url) };
    default:
      throw new UserError(
        `Buildpack ${display}: unsupported URL scheme '${url.protocol}'; use https://, http://, git://, file://, ssh://, git@host:path or a .tgz/.tar.gz/.tar URL`,
      );
  }
}

function gitName(url: URL): string {
  return stripExtension(lastSegment(url.pathname), ['.git']) || url.hostname || 'buildpack';
}

/** The cache entry name: sha256 of the credential-free URL and ref, so tokens never shape paths. */
export function cacheKey(spec: BuildpackSpec): string {
  return createHash('sha256')
    .update(spec.ref === undefined ? spec.bare : `${spec.bare}#${spec.ref}`)
    .digest('hex');
}

/** The spec as printed: URL without credentials, and the ref when one was asked for. */
export function describe(spec: BuildpackSpec): string {
  return spec.ref === undefined ? spec.display : `${spec.display}#${spec.ref}`;
}
