/**
 * OCI image layouts on disk: `oci-layout`, `index.json` (tags live in the
 * `org.opencontainers.image.ref.name` annotation) and `blobs/sha256/<hex>`.
 * Reading verifies every document against its digest; writing adds blobs
 * first and replaces index.json last, atomically, so a failed write never
 * leaves a tag pointing at missing blobs.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { errnoCode, errorMessage, UserError } from '../../shared/errors.js';
import { writeAtomically } from '../../shared/fs.js';
import { log } from '../../shared/log.js';
import { type Descriptor, digestHex, type ImageIndex, saveVerifiedBlob, serialize, sha256 } from './blobs.js';
import { reachable, removeUnreached } from './layout-gc.js';
import { MEDIA } from './media-types.js';
import { checkIndex } from './validate.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
const LAYOUT_FILE = 'oci-layout';
const LAYOUT_VERSION = '{"imageLayoutVersion":"1.0.0"}';

export class OciLayout {
  constructor(
    readonly dir: string,
    private readonly what: string,
  ) {}

  /** Open an existing layout, or fail with one line saying what is wrong. */
  static async open(dir: string, what: string): Promise<OciLayout> {
    let marker: string;
    try {
      marker = await readFile(path.join(dir, LAYOUT_FILE), 'utf8');
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new UserError(`${what}: ${dir} is not an OCI image layout (no oci-layout file)`);
      throw err;
    }
    let version: unknown;
    try {
      version = (JSON.parse(marker) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (version !== '1.0.0') throw new UserError(`${what}: ${dir}/oci-layout is not {"imageLayoutVersion":"1.0.0"}`);
    return new OciLayout(dir, what);
  }

  blobPath(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', digestHex(digest));
  }

  async readIndex(): Promise<ImageIndex> {
    let text: string;
    try {
      text = await readFile(path.join(this.dir, 'index.json'), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new UserError(`${this.what}: ${this.dir} has no index.json`);
      throw err;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new UserError(`${this.what}: ${this.dir}/index.json is not valid JSON`);
    }
    return checkIndex(doc, this.what, `${this.dir}/index.json`);
  }

  /** A small document blob (manifest, index, config), checked against its digest. */
  async readDocument(desc: Descriptor): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(desc.digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new UserError(`${this.what}: blob ${desc.digest} is missing from ${this.dir}`);
      throw err;
    }
    if (sha256(bytes) !== desc.digest)
      throw new UserError(`${this.what}: blob ${desc.digest} in ${this.dir} does not match its digest: the layout is damaged`);
    return bytes;
  }

  async openBlob(desc: Descriptor): Promise<Readable> {
    const file = this.blobPath(desc.digest);
    try {
      await stat(file);
    } catch {
      throw new UserError(`${this.what}: blob ${desc.digest} is missing from ${this.dir}`);
    }
    return createReadStream(file);
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    try {
      return (await stat(this.blobPath(desc.digest))).size === desc.size;
    } catch {
      return false;
    }
  }
}

/** Create the directory skeleton of a new layout (or check an existing one). */
export async function prepareLayout(dir: string, what: string): Promise<OciLayout> {
  let entries: string[] = [];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOTDIR') throw new UserError(`${what}: ${dir} is a file, not a directory`);
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  if (entries.length > 0) return OciLayout.open(dir, what);
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path.join(dir, LAYOUT_FILE), LAYOUT_VERSION);
  await writeFile(path.join(dir, 'index.json'), serialize(emptyIndex()).bytes);
  return new OciLayout(dir, what);
}

function emptyIndex(): ImageIndex {
  return { schemaVersion: 2, mediaType: MEDIA.oci.index, manifests: [] };
}

/** Add a blob from a stream unless the layout already has it. Returns false when skipped. */
export async function putBlob(
  layout: OciLayout,
  desc: Descriptor,
  open: () => Promise<Readable> | Readable,
  what: string,
): Promise<boolean> {
  if (await layout.hasBlob(desc)) return false;
  await mkdir(path.dirname(layout.blobPath(desc.digest)), { recursive: true });
  await saveVerifiedBlob(await open(), layout.blobPath(desc.digest), desc, what);
  return true;
}

export async function putDocument(layout: OciLayout, bytes: Buffer): Promise<void> {
  const file = layout.blobPath(sha256(bytes));
  await mkdir(path.dirname(file), { recursive: true });
  await writeAtomically(file, 'an image blob', (tmp) => writeFile(tmp, bytes));
}

/**
 * Point `tag` at `manifest` in index.json: entries with the same tag are
 * replaced, every other entry is kept. Written to a temp file and renamed;
 * then the blobs only the replaced entry reached are removed.
 */
export async function tagManifest(layout: OciLayout, manifest: Descriptor, tag: string): Promise<void> {
  const index = await layout.readIndex().catch(() => emptyIndex());
  const kept = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
  const replaced = index.manifests.filter((m) => !kept.includes(m));
  // Only what the replaced entries reached can become unreferenced: a new tag costs no walk.
  const before = replaced.length ? await reachable(layout, { ...index, manifests: replaced }, false) : undefined;
  const entry: Descriptor = { ...manifest, annotations: { ...(manifest.annotations ?? {}), [REF_NAME]: tag } };
  const next: ImageIndex = { ...index, schemaVersion: 2, mediaType: index.mediaType ?? MEDIA.oci.index, manifests: [...kept, entry] };
  await writeAtomically(path.join(layout.dir, 'index.json'), 'the layout index', (tmp) => writeFile(tmp, serialize(next).bytes));
  if (!before) return;
  try {
    await removeUnreached(layout, before, next);
  } catch (err) {
    // The tag is written: a blob left behind is only space, so the write still succeeds.
    log.warn(`Warning: unreferenced blobs may be left in ${layout.dir}: ${errorMessage(err)}`);
  }
}
