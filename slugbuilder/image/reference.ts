/**
 * Image references as users write them, with skopeo's transport prefixes:
 *   oci:DIR[:TAG]                 an OCI image layout directory
 *   oci-archive:FILE[:REF]        a tar holding an OCI layout (ours is also a docker-load archive)
 *   docker-archive:FILE[:REF]     a `docker save` tar
 *   docker://HOST[:PORT]/NAME[:TAG|@DIGEST]   a registry
 *   NAME[:TAG|@DIGEST]            a Docker name, read as docker and pack read it
 * As in skopeo, the path ends at the first colon after the transport. A name
 * whose first component is no host (no dot, no port, not localhost) is on
 * Docker Hub: `heroku/heroku:24` is docker.io/heroku/heroku:24 and
 * `debian:bookworm` is docker.io/library/debian:bookworm.
 */
import { UsageError } from '../../shared/errors.js';

export type ImageReference =
  | { kind: 'oci'; dir: string; tag?: string; text: string }
  | { kind: 'oci-archive'; file: string; ref?: string; text: string }
  | { kind: 'docker-archive'; file: string; ref?: string; text: string }
  | { kind: 'registry'; host: string; repository: string; tag?: string; digest?: string; text: string };

export type RegistryReference = Extract<ImageReference, { kind: 'registry' }>;

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** What an OCI layout's ref.name annotation may hold (OCI image-layout spec). */
const REF_NAME = /^[A-Za-z0-9_.:/@+-]+$/;

const FORMS = 'oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, docker://HOST/NAME:TAG or a Docker name (e.g. heroku/heroku:24)';

/** Docker Hub as references name it, and the host its API answers on. */
export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API = 'registry-1.docker.io';
/** Other names docker accepts for Docker Hub. */
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

export function parseReference(text: string): ImageReference {
  if (text.startsWith('docker://')) return parseRegistry(text, text.slice('docker://'.length));
  const colon = text.indexOf(':');
  const transport = colon < 0 ? '' : text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (transport === 'oci' || transport === 'oci-archive' || transport === 'docker-archive') {
    const sep = rest.indexOf(':');
    const location = sep < 0 ? rest : rest.slice(0, sep);
    const name = sep < 0 ? undefined : rest.slice(sep + 1);
    if (!location) throw new UsageError(`image reference ${text} has no path: use ${FORMS}`);
    if (name !== undefined && !REF_NAME.test(name)) throw new UsageError(`image reference ${text}: "${name}" is not a valid tag`);
    if (transport === 'oci') return { kind: 'oci', dir: location, tag: name || undefined, text };
    return { kind: transport, file: location, ref: name || undefined, text };
  }
  // No transport: a Docker name (`debian:bookworm`, `ghcr.io/o/app:1`), when it is one.
  if (/^[a-z0-9]/.test(text) && !text.includes('//')) {
    try {
      return parseRegistry(text, text);
    } catch {
      // not a Docker name either: say which forms there are
    }
  }
  throw new UsageError(`unknown image reference "${text}": use ${FORMS}`);
}

function parseRegistry(text: string, name: string): RegistryReference {
  let rest = name;
  let digest: string | undefined;
  let tag: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new UsageError(`image reference ${text}: "${digest}" is not a sha256 digest`);
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  // Docker's rule: the first component is a registry host only when it looks like one.
  const named = first.includes('.') || first.includes(':') || first === 'localhost';
  let host = named ? first : DOCKER_HUB;
  let path = named ? rest.slice(slash + 1) : rest;
  if (HUB_ALIASES.has(host.toLowerCase())) host = DOCKER_HUB;
  const lastColon = path.lastIndexOf(':');
  if (lastColon >= 0 && !path.slice(lastColon).includes('/')) {
    tag = path.slice(lastColon + 1);
    path = path.slice(0, lastColon);
    if (!TAG.test(tag)) throw new UsageError(`image reference ${text}: "${tag}" is not a valid tag`);
  }
  if (path === '' || !path.split('/').every((c) => COMPONENT.test(c))) {
    throw new UsageError(`image reference ${text}: "${path}" is not a valid repository name (lowercase letters, digits, and . _ - /)`);
  }
  // Docker Hub's official images live under library/.
  if (host === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (!tag && !digest) tag = 'latest';
  return { kind: 'registry', host, repository: path, tag, digest, text };
}

/** The full name, as docker prints it: docker.io/library/debian:bookworm. */
export function fullName(ref: RegistryReference): string {
  return `${ref.host}/${ref.repository}${ref.digest ? '@' + ref.digest : ':' + (ref.tag ?? 'latest')}`;
}

/** The reference as written, followed by its full name when that says more (`debian:bookworm (docker.io/library/debian:bookworm)`). */
export function describeReference(ref: ImageReference): string {
  if (ref.kind !== 'registry') return ref.text;
  const full = fullName(ref);
  const written = ref.text.replace(/^docker:\/\//, '');
  return written === full ? ref.text : `${ref.text} (${full})`;
}

/** The tag or digest to ask a registry for. */
export function registryRef(ref: RegistryReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}
