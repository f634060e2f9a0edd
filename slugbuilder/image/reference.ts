/**
 * Image references as users write them, with skopeo's transport prefixes:
 *   oci:DIR[:TAG]                 an OCI image layout directory
 *   oci-archive:FILE[:REF]        a tar holding an OCI layout (ours is also a docker-load archive)
 *   docker-archive:FILE[:REF]     a `docker save` tar
 *   docker://HOST[:PORT]/NAME[:TAG|@DIGEST]   a registry
 * As in skopeo, the path ends at the first colon after the transport.
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

const FORMS = 'oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE or docker://HOST/NAME:TAG';

export function parseReference(text: string): ImageReference {
  if (text.startsWith('docker://')) return parseRegistry(text);
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
  throw new UsageError(`unknown image reference "${text}": use ${FORMS}`);
}

function parseRegistry(text: string): RegistryReference {
  let rest = text.slice('docker://'.length);
  let digest: string | undefined;
  let tag: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new UsageError(`image reference ${text}: "${digest}" is not a sha256 digest`);
  }
  const slash = rest.indexOf('/');
  const host = slash < 0 ? '' : rest.slice(0, slash);
  // Docker's rule: the first component is a registry host only when it looks like one.
  if (!host || !(host.includes('.') || host.includes(':') || host === 'localhost')) {
    throw new UsageError(
      `image reference ${text} names no registry host: write docker://HOST[:PORT]/NAME:TAG (e.g. docker://127.0.0.1:5000/myapp:v1)`,
    );
  }
  let path = rest.slice(slash + 1);
  const lastColon = path.lastIndexOf(':');
  if (lastColon >= 0 && !path.slice(lastColon).includes('/')) {
    tag = path.slice(lastColon + 1);
    path = path.slice(0, lastColon);
    if (!TAG.test(tag)) throw new UsageError(`image reference ${text}: "${tag}" is not a valid tag`);
  }
  if (path === '' || !path.split('/').every((c) => COMPONENT.test(c))) {
    throw new UsageError(`image reference ${text}: "${path}" is not a valid repository name (lowercase letters, digits, and . _ - /)`);
  }
  if (!tag && !digest) tag = 'latest';
  return { kind: 'registry', host, repository: path, tag, digest, text };
}

/** The tag or digest to ask a registry for. */
export function registryRef(ref: RegistryReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}
