/**
 * The slug: a deterministic tar of the build dir (entries `./...`, `.git`
 * left out), gzipped as several gzip members back to back (RFC 1952 §2.2),
 * one or more per part of the app (libdeflate-gzip makes one per segment), so
 * a warm build reuses the compressed bytes of what did not change instead of
 * compressing them again.
 *
 * The parts follow the image's layer split (image/app-layers.ts): first the
 * rest of the app (every entry outside the split trees, the directories above
 * them included, so a parent always comes before its children), then each
 * dependency tree and launch layer tree (its own directory entry and all
 * below), then the archive's two zero blocks. Joined, the members' tar bytes
 * are one tar with no entry twice; every gzip reader (GNU gzip and tar,
 * Node's zlib, Python's gzip, Go's gzip) reads the members as one stream. An
 * app with no split tree is one member, the whole tar.
 *
 * A part of at least CACHED_PART_BYTES goes through the layer cache
 * (image/layer-cache.ts, shared with the image's app layers): keyed by the
 * sha256 of its tar and the compressor. A part whose first HEAD_BYTES no kept
 * tar starts with is compressed in one pass and kept. For any other, the
 * cache's marker names the last kept tar that started so, and that blob's
 * gzip bytes are copied in: the same bytes a fresh compression gives (same
 * tar, same compressor), so the slug does not depend on the cache. The cache
 * dir was written by earlier builds. When no code but slugkit's could have
 * written it (a cache that is not proving()), the part's tar is hashed and the
 * blob kept for that hash copied in, its bytes checked against the kept
 * digest. Otherwise a kept blob is used only when, while it is copied, its
 * bytes hash to the kept digest and inflate to exactly the tar the tree gives
 * now, compared as the tree is read. Either way a blob that fails is cut off
 * again and the part compressed (and kept, for the next build).
 */
import { createHash, type Hash, randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { type FileHandle, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { UserError } from '../shared/errors.js';
import { createTempFile, removeOnExit, removeTemp } from '../shared/fs.js';
import { log } from '../shared/log.js';
import { packTree } from '../shared/tar/pack.js';
import { formatSize, plural } from '../shared/units.js';
import { planAppLayers } from './image/app-layers.js';
import { HashingStream, sha256 } from './image/blobs.js';
import { type CachedLayer, HEAD_BYTES, type LayerCache } from './image/layer-cache.js';
import { gzipInto, notInApp, writeFailure } from './slug.js';
import { largestEntries, overLimitMessage } from './slug-size.js';

export interface SlugInfo {
  path: string;
  size: number;
  sha256: string;
}

export interface SlugOptions {
  mtime: Date;
  /** Hard limit on the compressed size. */
  maxBytes: number;
  /**
   * The layer cache (`<cache root>/layers`); none: every part is compressed.
   * A kept part is proved by the cache's record (the tree's tar hashes to the
   * kept diff_id, the blob to the kept digest), as the image's layers are,
   * unless it is a proving() cache: then it is compared with the tree.
   */
  layerCache?: LayerCache;
}

/**
 * Parts with less tar than this are compressed, never cached: at level 6 a
 * MiB deflates in tens of milliseconds, about what the cache's own file work
 * costs (the head marker, the entry, a link or copy, and on a put the scan of
 * every entry to prune). It is also the head marker's length, so every cached
 * part's marker covers the same bytes.
 */
export const CACHED_PART_BYTES = HEAD_BYTES;

/** The two zero blocks that end a tar. */
const END_OF_ARCHIVE = Buffer.alloc(1024);

/** Read size for a kept blob copied into the slug. */
const COPY_CHUNK = 1024 * 1024;

interface Part {
  /** The split tree, '' for the rest of the app, undefined for the end blocks. */
  tree?: string;
  /** `reuse`: see PackOptions.reuse. */
  tar: (reuse?: boolean) => AsyncGenerator<Buffer>;
}

/** The slug's parts, in order. */
async function slugParts(buildDir: string, mtime: Date): Promise<Part[]> {
  const planned = (await planAppLayers(buildDir)).map((p) => p.tree).filter(Boolean);
  // A tree inside another stays in the outer tree's part (the layer rule makes none today).
  const trees = planned.filter((t) => !planned.some((o) => o !== t && t.startsWith(o + '/')));
  const split = new Set(trees);
  const end = trees.length === 0;
  const parts: Part[] = [
    {
      tree: '',
      tar: (reuse) => packTree(buildDir, { prefix: './', mtime, exclude: (rel) => notInApp(rel) || split.has(rel), end, reuse }),
    },
  ];
  for (const tree of trees) {
    const exclude = (rel: string) => notInApp(`${tree}/${rel}`);
    parts.push({ tree, tar: (reuse) => packTree(path.join(buildDir, tree), { prefix: `./${tree}/`, mtime, exclude, end: false, reuse }) });
  }
  if (!end)
    parts.push({
      tar: async function* () {
        yield END_OF_ARCHIVE;
      },
    });
  return parts;
}

/** The slug's tar bytes, uncompressed: what its members inflate to, joined. */
export async function* slugTar(buildDir: string, mtime: Date): AsyncGenerator<Buffer> {
  for (const part of await slugParts(buildDir, mtime)) yield* part.tar();
}

/**
 * The slug file, written in order. Past `maxBytes` it writes nothing and only
 * counts, so the whole size can be told; a part can be taken back (a kept blob
 * that turned out wrong).
 */
class SlugFile {
  private hash: Hash = createHash('sha256');
  /** Compressed bytes so far, written or not. */
  bytes = 0;
  private written = 0;
  constructor(
    private readonly handle: FileHandle,
    private readonly maxBytes: number,
  ) {}

  get over(): boolean {
    return this.bytes > this.maxBytes;
  }

  async write(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    if (this.over) return;
    this.hash.update(chunk);
    await writeAt(this.handle, chunk, this.written);
    this.written += chunk.length;
  }

  mark(): { bytes: number; written: number; hash: Hash } {
    return { bytes: this.bytes, written: this.written, hash: this.hash.copy() };
  }

  async rollback(to: ReturnType<SlugFile['mark']>): Promise<void> {
    this.bytes = to.bytes;
    this.written = to.written;
    this.hash = to.hash;
    await this.handle.truncate(to.written);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** All of `chunk` at `position` (a write may take less than it is given). */
async function writeAt(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  for (let at = 0; at < chunk.length; ) at += (await handle.write(chunk, at, chunk.length - at, position + at)).bytesWritten;
}

/** Yields `first`, then the rest of `it`, each chunk shown to `seen` on the way. */
async function* tapped(first: Buffer[], it: AsyncIterator<Buffer>, seen?: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  for (const chunk of first) {
    seen?.(chunk);
    yield chunk;
  }
  for (let next = await it.next(); !next.done; next = await it.next()) {
    seen?.(next.value);
    yield next.value;
  }
}

/** Gzip `tar` into every sink; each chunk goes to all of them before the next. */
async function compress(tar: AsyncIterable<Buffer>, sinks: Array<(chunk: Buffer) => Promise<void> | void>): Promise<void> {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      Promise.all(sinks.map((s) => s(chunk))).then(() => done(), done);
    },
  });
  await gzipInto(tar, [sink]);
}

interface PartResult {
  /** Bytes of tar the part holds. */
  tarBytes: number;
  /** Went through the cache (at least CACHED_PART_BYTES of tar). */
  cacheable: boolean;
  reused: boolean;
}

class PartWriter {
  constructor(
    private readonly out: SlugFile,
    /** The slug file: temp files go beside it. */
    private readonly file: string,
    private readonly cache: LayerCache | undefined,
  ) {}

  async write(part: Part): Promise<PartResult> {
    const it = part.tar(true)[Symbol.asyncIterator]();
    const first: Buffer[] = [];
    let length = 0;
    while (length < CACHED_PART_BYTES) {
      const next = await it.next();
      if (next.done) break;
      // Copied: the tree is read into reused buffers, and these are held while more is read.
      first.push(Buffer.from(next.value));
      length += next.value.length;
    }
    if (!this.cache || length < CACHED_PART_BYTES) {
      let tarBytes = 0;
      await compress(
        tapped(first, it, (c) => (tarBytes += c.length)),
        [(c) => this.out.write(c)],
      );
      return { tarBytes, cacheable: false, reused: false };
    }
    const head = sha256(Buffer.concat(first).subarray(0, HEAD_BYTES));
    // A marker that names a kept tar (read as a plain file inside the cache) is what makes a pass over the tree worth it.
    const candidate = await this.cache.candidate(head);
    if (candidate && !this.cache.proves) {
      const tarBytes = await this.copyRecorded(head, first, it, this.cache);
      if (tarBytes !== undefined) return { tarBytes, cacheable: true, reused: true };
      // Read to hash it: packed again to compress it.
      return this.compressAndKeep(part.tar(true), head, this.cache);
    }
    if (candidate) {
      await it.return?.(undefined);
      const tarBytes = await this.copyKept(candidate, head, part, this.cache);
      if (tarBytes !== undefined) return { tarBytes, cacheable: true, reused: true };
      // Not kept, or not this tree: pack it again (the tar was not kept in memory) and compress it.
      return this.compressAndKeep(part.tar(true), head, this.cache);
    }
    return this.compressAndKeep(tapped(first, it), head, this.cache);
  }

  /** Compress the part into the slug and, beside it, a blob for the cache. */
  private async compressAndKeep(tar: AsyncIterator<Buffer>, head: string, cache: LayerCache): Promise<PartResult> {
    const sum = new HashingStream();
    const gz = new HashingStream();
    const blob = await createTempFile(this.file, 0o644);
    try {
      let at = 0;
      const toBlob = async (chunk: Buffer) => {
        await writeAt(blob.handle, chunk, at);
        at += chunk.length;
      };
      await compress(tapped([], tar, sum.see), [(c) => this.out.write(c), toBlob, gz.see]);
      await blob.handle.close();
      // The tar hashed in the same pass as it was compressed: the entry is right even if the tree changed since `head`.
      await cache.put(sum.digest(), head, blob.path, { digest: gz.digest(), size: gz.bytes });
      return { tarBytes: sum.bytes, cacheable: true, reused: false };
    } finally {
      await blob.handle.close().catch(() => undefined);
      await removeTemp(blob.path);
    }
  }

  /**
   * Copy the blob kept for `diffId` into the slug while checking it against
   * the part as the tree is read now: its bytes hash to the kept digest, and
   * gunzipped (every byte of it, nothing after the last member) they are
   * byte for byte the part's tar. The inflating runs on the thread pool while
   * this thread reads the tree, so a hit costs about one pass, not a hashing
   * pass and then an inflating one. Undefined (nothing left in the slug) when
   * the blob is absent, wrong or of another tree; the part's tar length when
   * copied.
   */
  private async copyKept(diffId: string, head: string, part: Part, cache: LayerCache): Promise<number | undefined> {
    const into = this.keptName();
    removeOnExit(into);
    try {
      const kept = await cache.take(diffId, head, into, true);
      if (!kept) return undefined;
      // The compared pass reads the tree again from its start, into reused buffers.
      const tar = part.tar(true)[Symbol.asyncIterator]();
      const mark = this.out.mark();
      try {
        const tarBytes = await this.copyIfSame(into, kept, tar);
        if (tarBytes === undefined) await this.out.rollback(mark);
        return tarBytes;
      } finally {
        await tar.return?.(undefined);
      }
    } finally {
      await removeTemp(into);
    }
  }

  /**
   * For a cache only slugkit writes (not proving()): hash the
   * part's tar (`first`, then the rest of `it`) and copy in the blob kept for
   * that diff_id, if any, checking its bytes against the recorded digest and
   * size as they are copied. Undefined (nothing left in the slug) when there
   * is none or it does not match; the tar was read either way.
   */
  private async copyRecorded(head: string, first: Buffer[], it: AsyncIterator<Buffer>, cache: LayerCache): Promise<number | undefined> {
    const tar = new HashingStream();
    for await (const chunk of tapped(first, it)) tar.see(chunk);
    const into = this.keptName();
    removeOnExit(into);
    try {
      const kept = await cache.take(tar.digest(), head, into, true);
      if (!kept) return undefined;
      const mark = this.out.mark();
      const gz = new HashingStream();
      const copied = await this.append(into, gz).then(
        () => gz.bytes === kept.size && gz.digest() === kept.digest,
        () => false,
      );
      if (copied) return tar.bytes;
      await this.out.rollback(mark);
      return undefined;
    } finally {
      await removeTemp(into);
    }
  }

  /**
   * Appends `file` to the slug through one buffer, each piece written before
   * the next is read: on some VMs every fresh MiB costs milliseconds of page
   * faults, more than the copy itself.
   */
  private async append(file: string, seen: HashingStream): Promise<void> {
    const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const buf = Buffer.allocUnsafe(COPY_CHUNK);
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, null);
        if (bytesRead === 0) return;
        seen.see(buf.subarray(0, bytesRead));
        await this.out.write(buf.subarray(0, bytesRead));
      }
    } finally {
      await handle.close();
    }
  }

  /** A kept blob's private link, beside the slug. */
  private keptName(): string {
    return path.join(path.dirname(this.file), `.${path.basename(this.file)}.${randomBytes(8).toString('hex')}.kept`);
  }

  private async copyIfSame(blob: string, kept: CachedLayer, tar: AsyncIterator<Buffer>): Promise<number | undefined> {
    const gz = new HashingStream();
    const out = this.out;
    const gunzip = createGunzip({ chunkSize: COPY_CHUNK });
    const live = new TarReader(tar);
    let tarBytes = 0;
    // The one write in flight: a failure must wait for it before the slug is cut back.
    let writing: Promise<void> = Promise.resolve();
    try {
      await pipeline(
        createReadStream(blob, { highWaterMark: COPY_CHUNK }),
        new Transform({
          transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
            gz.see(chunk);
            writing = out.write(chunk);
            writing.then(() => done(null, chunk), done);
          },
        }),
        gunzip,
        async (inflated: AsyncIterable<Buffer>) => {
          for await (const chunk of inflated) {
            if (!(await live.matches(chunk))) throw new Error('the kept blob is not this tree');
          }
          tarBytes = live.read;
          if (!(await live.ended())) throw new Error('the tree goes on past the kept blob');
        },
      );
    } catch {
      await writing.catch(() => undefined);
      // The tree could not be read (it changed as it was packed): that is the build's error, not the cache's.
      if (live.error) throw live.error;
      return undefined;
    }
    const same =
      gz.bytes === kept.size &&
      gz.digest() === kept.digest &&
      // gunzip stops at zero bytes after a member and leaves them unread; other readers would stop there too.
      gunzip.bytesWritten === gz.bytes;
    return same ? tarBytes : undefined;
  }
}

/** The part's tar as the tree is read, compared piece by piece with what it is shown. */
class TarReader {
  private chunk: Buffer = Buffer.alloc(0);
  private at = 0;
  /** Tar bytes matched so far. */
  read = 0;
  /** What reading the tree threw, if it did. */
  error: unknown;

  constructor(private readonly tar: AsyncIterator<Buffer>) {}

  /** The next unread bytes, empty at the end of the tar. */
  private async next(): Promise<Buffer> {
    while (this.at === this.chunk.length) {
      let step: IteratorResult<Buffer>;
      try {
        step = await this.tar.next();
      } catch (err) {
        this.error = err;
        throw err;
      }
      if (step.done) return Buffer.alloc(0);
      this.chunk = step.value;
      this.at = 0;
    }
    return this.chunk.subarray(this.at);
  }

  /** Whether the tar goes on with exactly `bytes`. */
  async matches(bytes: Buffer): Promise<boolean> {
    for (let off = 0; off < bytes.length; ) {
      const ahead = await this.next();
      if (ahead.length === 0) return false;
      const n = Math.min(ahead.length, bytes.length - off);
      if (!ahead.subarray(0, n).equals(bytes.subarray(off, off + n))) return false;
      off += n;
      this.at += n;
      this.read += n;
    }
    return true;
  }

  async ended(): Promise<boolean> {
    return (await this.next()).length === 0;
  }
}

/** Write the slug of `buildDir` to `file`; a failure removes `file`. */
export async function writeSlug(buildDir: string, file: string, opts: SlugOptions): Promise<SlugInfo> {
  const { out, parts, cache } = await writeParts(buildDir, file, opts);
  if (out.over) {
    await rm(file, { force: true });
    const largest = await largestEntries(buildDir, (rel) => !notInApp(rel));
    throw new UserError(`${overLimitMessage(out.bytes, opts.maxBytes, largest)}: remove files with .slugignore or raise --max-slug-size`);
  }
  if (cache && parts.some((p) => p.cacheable)) logReuse(parts);
  return { path: file, size: out.bytes, sha256: out.digest() };
}

async function writeParts(
  buildDir: string,
  file: string,
  opts: SlugOptions,
): Promise<{ out: SlugFile; parts: PartResult[]; cache: LayerCache | undefined }> {
  const cache = opts.layerCache;
  const parts: PartResult[] = [];
  let out: SlugFile;
  try {
    const planned = await slugParts(buildDir, opts.mtime);
    const handle = await open(file, 'w', 0o644);
    try {
      out = new SlugFile(handle, opts.maxBytes);
      const writer = new PartWriter(out, file, cache);
      for (const part of planned) {
        const result = await writer.write(part);
        if (part.tree !== undefined) parts.push(result);
      }
    } finally {
      await handle.close();
    }
  } catch (err) {
    await rm(file, { force: true });
    throw writeFailure(err, 'the slug', file);
  }
  return { out, parts, cache };
}

function logReuse(parts: PartResult[]): void {
  const reused = parts.filter((p) => p.reused);
  const saved = reused.reduce((sum, p) => sum + p.tarBytes, 0);
  log.info(
    `Slug: ${reused.length} of ${plural(parts.length, 'part')} reused from the layer cache` +
      (reused.length > 0 ? ` (${formatSize(saved)} of tar not compressed again)` : ''),
  );
}
