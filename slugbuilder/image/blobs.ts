/**
 * Content-addressed pieces of an image: descriptors, manifests and configs,
 * plus helpers to hash bytes and streams. JSON documents are serialised once
 * and their digest is taken over exactly those bytes.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../../shared/errors.js';
import { writeAtomically } from '../../shared/fs.js';
import { byteLimit } from '../../shared/http.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform & Record<string, unknown>;
  urls?: string[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  author?: string;
  empty_layer?: boolean;
}

export interface ContainerConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  ExposedPorts?: Record<string, object>;
  [key: string]: unknown;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
  [key: string]: unknown;
}

/** A JSON document with the exact bytes that were (or will be) stored. */
export interface Serialized<T> {
  value: T;
  bytes: Buffer;
  digest: string;
}

export function sha256(bytes: Buffer): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

export function serialize<T>(value: T): Serialized<T> {
  const bytes = Buffer.from(JSON.stringify(value));
  return { value, bytes, digest: sha256(bytes) };
}

/** Hex part of a sha256 digest, checked, so it is safe as a file name. */
export function digestHex(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new UserError(`unsupported digest ${digest}: only sha256 is supported`);
  return m[1];
}

/** Passes bytes through while hashing and counting them; `see` takes bytes that are not streamed through it. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  readonly see = (chunk: Buffer): void => {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  };
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.see(chunk);
    done(null, chunk);
  }
  digest(): string {
    return 'sha256:' + this.hash.digest('hex');
  }
}

/**
 * Copy a blob stream into `file` (through a temp name), refusing it unless
 * its bytes match the descriptor: a run image is input we verify, not trust.
 */
export async function saveVerifiedBlob(source: Readable, file: string, expected: Descriptor, what: string): Promise<void> {
  const hasher = new HashingStream();
  await writeAtomically(file, what, async (tmp) => {
    await pipeline(source, hasher, createWriteStream(tmp));
    const got = hasher.digest();
    if (got !== expected.digest || hasher.bytes !== expected.size) {
      throw new UserError(
        `${what}: blob ${expected.digest} arrived with digest ${got} and ${hasher.bytes} bytes (expected ${expected.size}): the image is damaged`,
      );
    }
  });
}

/** A pass-through of `source` that fails as soon as it yields more bytes than `desc` declares. */
export function sizeLimit(source: Readable, desc: Descriptor, what: string): Transform {
  return byteLimit(source, desc.size, () => `${what}: more than the ${desc.size} bytes its descriptor declares; the image is damaged`);
}

export async function hashFile(file: string): Promise<{ digest: string; size: number }> {
  const hasher = new HashingStream();
  await pipeline(createReadStream(file), hasher, async (source: AsyncIterable<Buffer>) => {
    for await (const _ of source) {
      // drain: only the hash matters
    }
  });
  return { digest: hasher.digest(), size: hasher.bytes };
}

export function shortDigest(digest: string): string {
  return digest.slice(0, 'sha256:'.length + 12);
}

/** One layer of an image being written, and how to get its bytes. */
export interface LayerBlob {
  descriptor: Descriptor;
  open(): Promise<Readable>;
  /** Where the blob already lives in a registry (for HEAD-skip and cross-repo mount). */
  origin?: { host: string; repository: string };
  /** For progress lines: "app layer", "run image layer 2/5". */
  label: string;
}

/** A finished image, ready to be written anywhere: documents serialised once. */
export interface BuiltImage {
  mediaType: string;
  manifest: Serialized<ImageManifest>;
  config: Serialized<ImageConfig>;
  layers: LayerBlob[];
}
