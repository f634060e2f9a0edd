/**
 * Writing a built image to its destination: an OCI layout, an archive that
 * is both an OCI layout and a docker-load tar, or a registry. Blobs go
 * first, the config next, and the manifest (or the tag in index.json) last,
 * so nothing ever points at a blob that is not there.
 */
import { readdir, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { errnoCode, UsageError, UserError } from '../../shared/errors.js';
import { checkWritableTarget, makeTempDir, removeTemp, replaceWith, stageFile } from '../../shared/fs.js';
import { log } from '../../shared/log.js';
import { formatSize } from '../../shared/units.js';
import { dockerLoadManifest, packArchive, repoTagFor } from './archive.js';
import { type BuiltImage, type Descriptor, HashingStream, type LayerBlob, shortDigest } from './blobs.js';
import type { Family } from './media-types.js';
import { OciLayout, prepareLayout, putBlob, putDocument, tagManifest } from './oci-layout.js';
import type { ImageReference, RegistryReference } from './reference.js';
import type { RegistryPool } from './registry.js';

export interface WriteResult {
  digest: string;
  reference: string;
}

/**
 * An image written everywhere it can be without being seen: `commit` makes
 * it visible (renames the layout or archive into place, tags it, or pushes),
 * `discard` drops what was staged.
 */
export interface StagedImage {
  digest: string;
  reference: string;
  /** A push: cannot be taken back once committed. */
  remote: boolean;
  commit(): Promise<WriteResult>;
  discard(): Promise<void>;
}

/**
 * The media-type family to write at `target`. Registries get the run image's
 * family. Layouts and archives always get OCI types: tools reading OCI
 * layouts (skopeo, umoci, containers/image) look only for OCI manifests there.
 */
export function familyFor(target: ImageReference, runFamily: Family): Family {
  return target.kind === 'registry' ? runFamily : 'oci';
}

/**
 * What can be checked about an image target before any work: a push names a
 * tag, a layout dir is a layout or absent (or empty), an archive is a
 * writable file path.
 */
export async function checkImageTarget(target: ImageReference, flag: string): Promise<void> {
  switch (target.kind) {
    case 'registry':
      if (target.digest) throw new UsageError(`${flag} ${target.text}: push to a tag, not a digest`);
      return;
    case 'oci-archive':
    case 'docker-archive':
      await checkWritableTarget(target.file, flag);
      return;
    case 'oci': {
      const dir = path.resolve(target.dir);
      if (!(await isEmptyOrMissing(dir))) {
        await OciLayout.open(dir, `${flag} ${target.text}`);
        return;
      }
      const parent = await stat(path.dirname(dir)).catch(() => undefined);
      if (!parent?.isDirectory())
        throw new UserError(`cannot write ${flag} ${target.text}: the directory ${path.dirname(dir)} does not exist`);
    }
  }
}

export async function writeImage(target: ImageReference, image: BuiltImage, pool: RegistryPool): Promise<WriteResult> {
  return (await stageImage(target, image, pool)).commit();
}

/** `tags`: more registry names the pushed manifest gets (--tag), pushed after `target`. */
export async function stageImage(
  target: ImageReference,
  image: BuiltImage,
  pool: RegistryPool,
  tags: RegistryReference[] = [],
): Promise<StagedImage> {
  const done = { digest: image.manifest.digest, reference: target.text };
  switch (target.kind) {
    case 'oci':
      return stageLayoutImage(target.dir, target.tag ?? 'latest', image, target.text);
    case 'oci-archive':
    case 'docker-archive':
      return stageArchiveImage(target.file, target.ref, image, target.text);
    case 'registry':
      return {
        ...done,
        remote: true,
        commit: async () => {
          const pushed = await pushImage(target, image, pool);
          // The blobs are in target's repository now: a tag elsewhere on that registry mounts them from there.
          for (const tag of tags) await pushImage(tag, image, pool, { host: target.host, repository: target.repository });
          return pushed;
        },
        discard: async () => undefined,
      };
  }
}

function manifestDescriptor(image: BuiltImage): Descriptor {
  return { mediaType: image.mediaType, digest: image.manifest.digest, size: image.manifest.bytes.length };
}

async function copyBlobsInto(layout: OciLayout, image: BuiltImage, what: string): Promise<void> {
  for (const layer of image.layers) {
    const d = layer.descriptor;
    const written = await putBlob(layout, d, () => layer.open(), what);
    log.info(`${layer.label} ${shortDigest(d.digest)} ${formatSize(d.size)} ${written ? 'written' : 'already present'}`);
  }
  await putDocument(layout, image.config.bytes);
  await putDocument(layout, image.manifest.bytes);
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return true;
    if (errnoCode(err) === 'ENOTDIR') throw new UserError(`${dir} is a file, not an OCI layout directory`);
    throw err;
  }
}

/**
 * An existing layout gains blobs now (unreferenced until tagged) and its tag
 * at commit. A new one is built in a sibling temp dir and renamed into place
 * at commit, so a failure leaves nothing.
 */
async function stageLayoutImage(dir: string, tag: string, image: BuiltImage, text: string): Promise<StagedImage> {
  const target = path.resolve(dir);
  const done = { digest: image.manifest.digest, reference: text };
  if (!(await isEmptyOrMissing(target))) {
    const layout = await prepareLayout(target, `image ${text}`);
    await copyBlobsInto(layout, image, `image ${text}`);
    return {
      ...done,
      remote: false,
      commit: async () => {
        await tagManifest(layout, manifestDescriptor(image), tag);
        return done;
      },
      discard: async () => undefined,
    };
  }
  let stage: string;
  try {
    stage = await makeTempDir(`.${path.basename(target)}.tmp-`, path.dirname(target));
  } catch (err) {
    throw new UserError(`cannot write ${dir}: ${errnoCode(err) === 'ENOENT' ? 'its parent directory does not exist' : errnoCode(err)}`);
  }
  try {
    const layout = await prepareLayout(stage, `image ${text}`);
    await copyBlobsInto(layout, image, `image ${text}`);
    await tagManifest(layout, manifestDescriptor(image), tag);
  } catch (err) {
    await removeTemp(stage);
    throw err;
  }
  return {
    ...done,
    remote: false,
    commit: async () => {
      try {
        await rmdir(target).catch(() => undefined);
        await replaceWith(stage, target);
      } catch (err) {
        await removeTemp(stage);
        throw new UserError(`cannot write ${dir}: ${errnoCode(err) ?? err}`);
      }
      return done;
    },
    discard: () => removeTemp(stage),
  };
}

async function stageArchiveImage(file: string, ref: string | undefined, image: BuiltImage, text: string): Promise<StagedImage> {
  const staged = await stageFile(file, `image ${text}`);
  const stage = await makeTempDir('slugkit-archive-');
  try {
    const layout = await prepareLayout(stage, `image ${text}`);
    await copyBlobsInto(layout, image, `image ${text}`);
    await tagManifest(layout, manifestDescriptor(image), ref ?? 'latest');
    const repoTag = repoTagFor(file, ref);
    await writeFile(
      path.join(stage, 'manifest.json'),
      dockerLoadManifest(image.manifest.value.config, image.manifest.value.layers, repoTag),
    );
    await packArchive(stage, staged.path, file);
    log.info(`docker load will name it ${repoTag}`);
  } catch (err) {
    await staged.discard();
    throw err;
  } finally {
    await removeTemp(stage);
  }
  const done = { digest: image.manifest.digest, reference: text };
  return {
    ...done,
    remote: false,
    commit: async () => {
      await staged.commit();
      return done;
    },
    discard: () => staged.discard(),
  };
}

/**
 * Push: per layer, HEAD (skip when present), else a cross-repo mount when the
 * blob already lives in another repository of the same registry (the run
 * image's, or `pushed`: where an earlier push of this image put it), else a
 * streamed upload. Then the config, then the manifest under the tag.
 */
async function pushImage(
  target: RegistryReference,
  image: BuiltImage,
  pool: RegistryPool,
  pushed?: { host: string; repository: string },
): Promise<WriteResult> {
  // checkImageTarget refused digests; parseReference gives every other reference a tag.
  const tag = target.tag ?? 'latest';
  const client = pool.get(target.host);
  const repo = target.repository;
  /** A cross-repository mount from the first origin on this registry that has the blob: its repository. */
  const mountFromAny = async (digest: string, origins: Array<{ host: string; repository: string } | undefined>) => {
    for (const origin of origins) {
      if (!origin || origin.host !== target.host || origin.repository === repo) continue;
      if (await client.blobMount(repo, digest, origin.repository)) return origin.repository;
    }
    return undefined;
  };
  const pushLayer = async (layer: LayerBlob) => {
    const d = layer.descriptor;
    const name = `${layer.label} ${shortDigest(d.digest)} ${formatSize(d.size)}`;
    if (await client.blobExists(repo, d.digest)) {
      log.info(`${name} skipped (already in ${repo})`);
      return;
    }
    const mountedFrom = await mountFromAny(d.digest, [layer.origin, pushed]);
    if (mountedFrom) {
      log.info(`${name} mounted from ${mountedFrom}`);
      return;
    }
    let sent = 0;
    await client.blobUpload(repo, d, async () => {
      const counter = new HashingStream();
      counter.on('end', () => (sent = counter.bytes));
      pipeline(await layer.open(), counter).catch((err: Error) => counter.destroy(err));
      return counter;
    });
    log.info(`${name} uploaded (${sent} bytes)`);
  };
  // A few at a time, as docker push does: a small app layer need not wait behind node_modules.
  await eachLimited(image.layers, PUSH_CONCURRENCY, pushLayer);
  const cfg = image.manifest.value.config;
  if (await client.blobExists(repo, cfg.digest)) {
    log.info(`config ${shortDigest(cfg.digest)} skipped (already in ${repo})`);
  } else if (await mountFromAny(cfg.digest, [pushed])) {
    log.info(`config ${shortDigest(cfg.digest)} mounted from ${pushed?.repository}`);
  } else {
    await client.blobUpload(repo, cfg, () => image.config.bytes);
    log.info(`config ${shortDigest(cfg.digest)} uploaded (${image.config.bytes.length} bytes)`);
  }
  const digest = await client.manifestPut(repo, tag, image.manifest.bytes, image.mediaType);
  log.info(`manifest ${shortDigest(digest)} pushed as ${target.host}/${repo}:${tag}`);
  return { digest, reference: target.text };
}

/** Layers uploaded at once. */
const PUSH_CONCURRENCY = 3;

/** Run `work` on every item, at most `limit` at a time; the first failure fails the whole (after the running ones settle). */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  const lane = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failed) throw failed.err;
}
