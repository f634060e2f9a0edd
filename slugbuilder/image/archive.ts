/**
 * Image tarballs. Reading: an `oci-archive:` (a tarred OCI layout) or a
 * `docker-archive:` (`docker save` output: manifest.json, a config and
 * layer tars) is unpacked safely into a temp dir and read from there.
 * Writing: one tar that is an OCI layout AND a `docker load` archive,
 * because it also carries manifest.json with RepoTags pointing at the same
 * blobs (docker load accepts gzipped layers).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { errnoCode, errorMessage, UserError } from '../../shared/errors.js';
import { exists, makeTempDir, removeTemp } from '../../shared/fs.js';
import { extractArchive } from '../../shared/tar/extract.js';
import { packTree } from '../../shared/tar/pack.js';
import { GZIP_LEVEL } from '../slug.js';
import { type Descriptor, HashingStream, hashFile, type ImageManifest, serialize, sha256 } from './blobs.js';
import { MEDIA } from './media-types.js';
import { OciLayout } from './oci-layout.js';
import { checkConfig, checkDockerSaveManifest } from './validate.js';

export type OpenedArchive =
  | { kind: 'layout'; layout: OciLayout; tag?: string; close: () => Promise<void> }
  | {
      kind: 'docker';
      image: {
        digest: string;
        mediaType: string;
        manifest: ImageManifest;
        configBytes: Buffer;
        openBlob: (d: Descriptor) => Promise<Readable>;
      };
      close: () => Promise<void>;
    };

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export async function openArchive(
  file: string,
  ref: string | undefined,
  kind: 'oci-archive' | 'docker-archive',
  what: string,
): Promise<OpenedArchive> {
  let input: Readable;
  try {
    await stat(file);
    input = createReadStream(file);
  } catch {
    throw new UserError(`${what}: ${file} does not exist`);
  }
  const dir = await makeTempDir('slugkit-image-');
  const close = () => removeTemp(dir);
  try {
    await extractArchive(input, dir, `${what} (${file})`);
    const hasLayout = await exists(path.join(dir, 'oci-layout'));
    const hasDockerManifest = await exists(path.join(dir, 'manifest.json'));
    if (hasLayout && (kind === 'oci-archive' || !hasDockerManifest)) {
      return { kind: 'layout', layout: await OciLayout.open(dir, what), tag: ref, close };
    }
    if (hasDockerManifest) return { kind: 'docker', image: await readDockerArchive(dir, ref, what), close };
    throw new UserError(`${what}: ${file} holds neither an OCI layout nor a docker save manifest.json`);
  } catch (err) {
    await close();
    throw err;
  }
}

/** A path named inside manifest.json, kept inside the unpacked archive. */
function inside(dir: string, rel: string, what: string): string {
  const full = path.resolve(dir, rel);
  if (!full.startsWith(dir + path.sep)) throw new UserError(`${what}: manifest.json names ${rel}, outside the archive`);
  return full;
}

/**
 * `docker save` carries no manifest of the registry kind: build a Docker
 * schema 2 one. Uncompressed layer tars are gzipped at the pinned level
 * (their diff_ids checked on the way), so the result is deterministic.
 */
async function readDockerArchive(dir: string, ref: string | undefined, what: string) {
  let saved: unknown;
  try {
    saved = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
    if (!Array.isArray(saved)) throw new Error('not a list');
  } catch {
    throw new UserError(`${what}: manifest.json is not a docker save manifest`);
  }
  const entries = checkDockerSaveManifest(saved, what) as DockerManifestEntry[];
  const allTags = entries.flatMap((e) => e.RepoTags ?? []);
  let entry: DockerManifestEntry | undefined;
  if (ref) {
    entry = entries.find((e) => (e.RepoTags ?? []).some((t) => t === ref || t === `${ref}:latest` || t.endsWith(`/${ref}`)));
    if (!entry) throw new UserError(`${what}: no image tagged ${ref} in the archive (tags: ${allTags.join(', ') || 'none'})`);
  } else if (entries.length === 1) {
    entry = entries[0];
  } else {
    throw new UserError(
      `${what}: the archive holds ${entries.length} images; name one with docker-archive:FILE:NAME:TAG (tags: ${allTags.join(', ')})`,
    );
  }
  const configBytes = await readFile(inside(dir, entry.Config, what));
  let configDoc: unknown;
  try {
    configDoc = JSON.parse(configBytes.toString('utf8'));
  } catch {
    throw new UserError(`${what}: its config ${entry.Config} is not valid JSON`);
  }
  const diffIds = checkConfig(configDoc, what).rootfs.diff_ids;
  if (diffIds.length !== entry.Layers.length)
    throw new UserError(`${what}: its config lists ${diffIds.length} layers but manifest.json ${entry.Layers.length}`);

  const files = new Map<string, string>();
  const layers: Descriptor[] = [];
  for (const [i, rel] of entry.Layers.entries()) {
    const layerFile = inside(dir, rel, what);
    let blobFile = layerFile;
    if (!(await isGzip(layerFile))) {
      blobFile = path.join(dir, `slugkit-layer-${i}.tar.gz`);
      const tarHash = new HashingStream();
      await pipeline(createReadStream(layerFile), tarHash, createGzip({ level: GZIP_LEVEL }), createWriteStream(blobFile));
      if (tarHash.digest() !== diffIds[i])
        throw new UserError(`${what}: layer ${rel} does not match diff_id ${diffIds[i]}: the archive is damaged`);
    }
    const { digest, size } = await hashFile(blobFile);
    files.set(digest, blobFile);
    layers.push({ mediaType: MEDIA.docker.layerGzip, digest, size });
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.docker.manifest,
    config: { mediaType: MEDIA.docker.config, digest: sha256(configBytes), size: configBytes.length },
    layers,
  };
  const doc = serialize(manifest);
  return {
    digest: doc.digest,
    mediaType: MEDIA.docker.manifest,
    manifest,
    configBytes,
    openBlob: async (d: Descriptor): Promise<Readable> => {
      const f = files.get(d.digest);
      if (!f) throw new UserError(`${what}: blob ${d.digest} is not in the archive`);
      return createReadStream(f);
    },
  };
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    await fh.read(head, 0, 2, 0);
    return head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/**
 * The name:tag `docker load` gives the image. A ref with its own name
 * (`myapp:v42`, `registry:5000/team/app:1`) is used as is; a bare tag, or
 * nothing, is joined to a name made from the file name.
 */
export function repoTagFor(file: string, ref: string | undefined): string {
  if (ref && /[:/]/.test(ref) && /:[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(ref)) return ref;
  const base = path
    .basename(file)
    .replace(/\.(tar|tgz|tar\.gz|oci)$/i, '')
    .toLowerCase();
  const name = base.replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'image';
  if (ref && /[:/]/.test(ref)) return `${ref}:latest`;
  return `${name}:${ref ?? 'latest'}`;
}

/** manifest.json for `docker load`, pointing at the layout's blobs. */
export function dockerLoadManifest(config: Descriptor, layers: Descriptor[], repoTag: string): Buffer {
  const hex = (d: Descriptor) => `blobs/sha256/${d.digest.slice('sha256:'.length)}`;
  return Buffer.from(JSON.stringify([{ Config: hex(config), RepoTags: [repoTag], Layers: layers.map(hex) }]));
}

/** Tar up a staged layout directory into `file` (a staged path: the caller puts it in place); `named` is for messages. */
export async function packArchive(stageDir: string, file: string, named: string): Promise<void> {
  try {
    await pipeline(Readable.from(packTree(stageDir, { prefix: './' })), createWriteStream(file));
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EACCES' || code === 'EROFS') throw new UserError(`cannot write ${named}: ${code}; choose a writable path`);
    if (code === 'ENOSPC') throw new UserError(`no space left writing ${named}`);
    throw new UserError(`writing ${named} failed: ${errorMessage(err)}`);
  }
}
