/**
 * Opening an image for reading, wherever it lives: an OCI layout, an
 * oci-archive or docker-archive tarball, or a registry. Whatever the source,
 * the result is the same: the resolved single-platform manifest, its config,
 * and a way to stream each blob.
 */
import type { Readable } from 'node:stream';
import { UserError } from '../../shared/errors.js';
import { log } from '../../shared/log.js';
import { openArchive } from './archive.js';
import { type Descriptor, type ImageConfig, type ImageManifest, type Platform, sha256 } from './blobs.js';
import { type Family, familyOfManifest, INDEX_TYPES, MEDIA } from './media-types.js';
import { OciLayout, REF_NAME } from './oci-layout.js';
import { checkConfigPlatform, DEFAULT_PLATFORM, selectManifest } from './platform.js';
import { type ImageReference, type RegistryReference, registryRef } from './reference.js';
import type { RegistryClient, RegistryPool } from './registry.js';
import { checkConfig, checkIndex, checkManifest, isObject } from './validate.js';

export interface SourceImage {
  /** The reference as the user wrote it. */
  text: string;
  /** Digest of the single-platform manifest. */
  digest: string;
  mediaType: string;
  family: Family;
  manifest: ImageManifest;
  config: ImageConfig;
  configBytes: Buffer;
  openBlob(desc: Descriptor): Promise<Readable>;
  /** Set for registry images: lets a push to the same registry mount blobs. */
  registry?: { host: string; repository: string };
  close(): Promise<void>;
}

export interface OpenOptions {
  /** From --platform; undefined means linux/amd64 for indexes and "any" for single images. */
  platform?: Platform;
  pool: RegistryPool;
  /** For messages: "run image", "image to rebase". */
  role: string;
}

/** `ref` is parsed once, by the caller (the CLI flags). */
export async function openImage(ref: ImageReference, opts: OpenOptions): Promise<SourceImage> {
  const what = `${opts.role} ${ref.text}`;
  switch (ref.kind) {
    case 'oci':
      return openLayoutImage(await OciLayout.open(ref.dir, what), ref.tag, ref.text, opts, async () => {});
    case 'oci-archive':
    case 'docker-archive': {
      const opened = await openArchive(ref.file, ref.ref, ref.kind, what);
      try {
        if (opened.kind === 'layout') return await openLayoutImage(opened.layout, opened.tag, ref.text, opts, opened.close);
        return await finishImage({ text: ref.text, what, ...opened.image, openBlob: opened.image.openBlob, close: opened.close }, opts);
      } catch (err) {
        await opened.close();
        throw err;
      }
    }
    case 'registry': {
      const sources = opts.pool.pullSources(ref.host, ref.repository);
      for (const [i, source] of sources.entries()) {
        try {
          const image = await openRegistryImage(ref, source.client, source.repository, what, opts);
          if (source.mirror) log.info(`read from registry mirror ${source.client.host}`);
          return image;
        } catch (err) {
          // A mirror that lacks the image or fails is passed over, as kaniko does; the registry itself is not.
          if (!source.mirror || !(err instanceof UserError)) throw err;
          const next = sources[i + 1].mirror ? `registry mirror ${sources[i + 1].client.host}` : ref.host;
          log.warn(`registry mirror ${source.client.host}: ${err.message}; trying ${next}`);
        }
      }
      throw new Error('unreachable: the last pull source is the registry itself');
    }
  }
}

async function openRegistryImage(
  ref: RegistryReference,
  client: RegistryClient,
  repo: string,
  what: string,
  opts: OpenOptions,
): Promise<SourceImage> {
  const top = await client.manifestGet(repo, registryRef(ref));
  const resolved = await resolveManifest(top, (d) => client.manifestGet(repo, d.digest).then((m) => m.bytes), opts.platform, what);
  const manifest = resolved.manifest;
  const configBytes = await client.blobGetBytes(repo, manifest.config);
  return finishImage(
    {
      text: ref.text,
      what,
      digest: resolved.digest,
      mediaType: resolved.mediaType,
      manifest,
      configBytes,
      openBlob: (d) => client.blobGet(repo, d),
      registry: { host: client.host, repository: repo },
      close: async () => {},
    },
    opts,
  );
}

async function openLayoutImage(
  layout: OciLayout,
  tag: string | undefined,
  text: string,
  opts: OpenOptions,
  close: () => Promise<void>,
): Promise<SourceImage> {
  const what = `${opts.role} ${text}`;
  const index = await layout.readIndex();
  const tags = index.manifests.map((m) => m.annotations?.[REF_NAME]).filter((t): t is string => !!t);
  let top: { bytes: Buffer; mediaType: string };
  if (tag) {
    const hit = index.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
    if (!hit) throw new UserError(`${what}: no tag "${tag}" in ${layout.dir} (tags: ${tags.join(', ') || 'none'})`);
    top = { bytes: await layout.readDocument(hit), mediaType: hit.mediaType };
  } else if (index.manifests.length === 1) {
    const only = index.manifests[0];
    top = { bytes: await layout.readDocument(only), mediaType: only.mediaType };
  } else if (index.manifests.length > 1 && index.manifests.every((m) => m.platform)) {
    // index.json itself is a multi-platform index.
    top = { bytes: Buffer.from(JSON.stringify(index)), mediaType: MEDIA.oci.index };
  } else {
    throw new UserError(
      `${what}: ${layout.dir} holds ${index.manifests.length} images; name one with ${text}:TAG (tags: ${tags.join(', ') || 'none'})`,
    );
  }
  const resolved = await resolveManifest(top, (d) => layout.readDocument(d), opts.platform, what);
  const configBytes = await layout.readDocument(resolved.manifest.config);
  return finishImage(
    {
      text,
      what,
      digest: resolved.digest,
      mediaType: resolved.mediaType,
      manifest: resolved.manifest,
      configBytes,
      openBlob: (d) => layout.openBlob(d),
      close,
    },
    opts,
  );
}

interface Resolved {
  manifest: ImageManifest;
  mediaType: string;
  digest: string;
}

function parseJson(bytes: Buffer, what: string, name: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new UserError(`${what}: ${name} is not valid JSON`);
  }
}

/** Follow an index down to the manifest for the wanted platform; every document's shape is checked (validate.ts). */
export async function resolveManifest(
  top: { bytes: Buffer; mediaType?: string },
  fetchManifest: (desc: Descriptor) => Promise<Buffer>,
  platform: Platform | undefined,
  what: string,
): Promise<Resolved> {
  let current = top;
  let name = 'its manifest';
  for (let depth = 0; depth < 4; depth++) {
    const doc = parseJson(current.bytes, what, name);
    if (!isObject(doc)) checkManifest(doc, what, name);
    const fields = doc as { mediaType?: unknown; manifests?: unknown; config?: unknown };
    const mediaType =
      current.mediaType && current.mediaType !== 'application/json'
        ? current.mediaType
        : typeof fields.mediaType === 'string'
          ? fields.mediaType
          : fields.manifests !== undefined
            ? MEDIA.oci.index
            : MEDIA.oci.manifest;
    if (INDEX_TYPES.includes(mediaType) || (fields.manifests !== undefined && fields.config === undefined)) {
      const index = checkIndex(doc, what, name === 'its manifest' ? 'its index' : name);
      const chosen = selectManifest(index.manifests, platform ?? DEFAULT_PLATFORM, what);
      current = { bytes: await fetchManifest(chosen), mediaType: chosen.mediaType };
      name = `manifest ${chosen.digest}`;
      continue;
    }
    familyOfManifest(mediaType);
    return { manifest: checkManifest(doc, what, name), mediaType, digest: sha256(current.bytes) };
  }
  throw new UserError(`${what}: image indexes nest too deeply`);
}

async function finishImage(partial: Omit<SourceImage, 'config' | 'family'> & { what: string }, opts: OpenOptions): Promise<SourceImage> {
  const { what, ...rest } = partial;
  const config = checkConfig(parseJson(partial.configBytes, what, 'its config'), what);
  if (config.rootfs.diff_ids.length !== partial.manifest.layers.length) {
    throw new UserError(
      `${what}: its config lists ${config.rootfs.diff_ids.length} layers but its manifest ${partial.manifest.layers.length}: the image is damaged`,
    );
  }
  checkConfigPlatform(config, opts.platform, what);
  return { ...rest, config, family: familyOfManifest(partial.mediaType) };
}
