/**
 * Compressed app layers kept between builds, under `<cache root>/layers/`,
 * keyed by the layer's diff_id (sha256 of its tar) and the compressor that
 * made it. Hashing a tar is cheap; gzipping it is not: an unchanged
 * node_modules is hashed, found here, and neither compressed nor (when the
 * registry has it) sent again. The bytes are the ones a fresh compression
 * gives, because the same tar and the same compressor give the same gzip.
 *
 *   <diff_id hex>.<compressor>.json   { digest, size }, written after its blob
 *   <digest hex>.tar.gz               the blob
 *   head-<hex>.<compressor>           a marker: some kept layer's tar starts
 *                                     with the HEAD_BYTES these hash to; it
 *                                     holds the diff_id of the last one kept
 *
 * The marker spares a layer nobody has seen the hashing pass: when no kept
 * tar starts like it, its diff_id cannot be here either, and it is
 * compressed (and hashed) in one pass straight away. The diff_id in it lets a
 * slug part be checked against the kept blob while the tree is read, with no
 * hashing pass first (slug-parts.ts).
 *
 * Its records are trusted only where no code of the build could have
 * written the dir (build.ts, BuildResult's layerCacheTrusted); otherwise the
 * build is handed proving(), which inflates a kept blob and checks its tar's
 * hash before it is used.
 *
 * Safe under concurrent builds: every file is written to a temp name and
 * renamed, and a build takes its own link (or copy) of a blob before using
 * it, so pruning by another build cannot pull it away. Bounded: past
 * MAX_BYTES the least recently used entries go.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { copyFile, link, lstat, mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { errnoCode } from '../../shared/errors.js';
import { readTextInside, replaceWith, writeFileInside } from '../../shared/fs.js';
import { compressorId } from '../slug.js';
import { digestHex, HashingStream, hashFile } from './blobs.js';

/** Beyond this the oldest entries are removed. */
export const MAX_BYTES = 2 * 1024 ** 3;

/** How much of a layer's tar the marker covers. */
export const HEAD_BYTES = 1024 * 1024;

export interface CachedLayer {
  digest: string;
  size: number;
}

/** What decides the gzip bytes besides the tar (slug.ts compressorId), as a name part. */
function compressorTag(): string {
  return createHash('sha256').update(compressorId()).digest('hex').slice(0, 12);
}

export class LayerCache {
  private readonly tag = compressorTag();

  constructor(
    readonly dir: string,
    /**
     * Its records are not proof (the build's own code could have written the
     * dir): take() also inflates a kept blob and checks that its tar hashes
     * to the diff_id asked for, and the slug's parts are compared with the tree.
     */
    readonly proves = false,
  ) {}

  /**
   * The same cache for a build whose own code could have written it: its
   * records are not enough, so a kept blob is taken only when it inflates
   * (every byte of it) to a tar with the diff_id it is kept for.
   */
  proving(): LayerCache {
    return new LayerCache(this.dir, true);
  }

  private metaFile(diffId: string): string {
    return path.join(this.dir, `${digestHex(diffId)}.${this.tag}.json`);
  }

  private blobFile(digest: string): string {
    return path.join(this.dir, `${digestHex(digest)}.tar.gz`);
  }

  private headFile(head: string): string {
    return path.join(this.dir, `head-${digestHex(head)}.${this.tag}`);
  }

  /** Whether some kept layer's tar began with the bytes `head` (sha256 of its first HEAD_BYTES) hashes. */
  async mayHave(head: string): Promise<boolean> {
    return stat(this.headFile(head)).then(
      () => true,
      () => false,
    );
  }

  /** The diff_id of the last kept layer whose tar began with the bytes `head` hashes, when the marker names one. */
  async candidate(head: string): Promise<string | undefined> {
    const text = await readTextInside(this.dir, path.basename(this.headFile(head))).catch(() => undefined);
    const diffId = text?.trim();
    return diffId && /^sha256:[0-9a-f]{64}$/.test(diffId) ? diffId : undefined;
  }

  /**
   * The cached layer for `diffId` (whose tar's head hashes to `head`), linked
   * (or copied) to `into`; undefined when absent or unusable. Its bytes are
   * hashed against the kept digest (an OCI layout is written with no registry
   * to check them) unless `checkedByCaller`: the slug's copy checks them as it
   * reads them anyway. A proving() cache checks them in the same read that
   * inflates them.
   */
  async take(diffId: string, head: string, into: string, checkedByCaller = false): Promise<CachedLayer | undefined> {
    let meta: CachedLayer;
    try {
      // readTextInside: the cache dir was written by earlier builds, and a FIFO there must not hang this one.
      meta = JSON.parse((await readTextInside(this.dir, path.basename(this.metaFile(diffId)))) ?? '') as CachedLayer;
      digestHex(meta.digest);
    } catch {
      return undefined;
    }
    const blob = this.blobFile(meta.digest);
    try {
      const st = await lstat(blob);
      if (!st.isFile() || st.size !== meta.size) return undefined;
      await linkOrCopy(blob, into);
      const sound = checkedByCaller || (this.proves ? await holds(into, meta, diffId) : (await hashFile(into)).digest === meta.digest);
      if (!sound) {
        await rm(into, { force: true });
        return undefined;
      }
      const now = new Date();
      // Recently used: pruned last.
      await utimes(this.metaFile(diffId), now, now).catch(() => undefined);
      await utimes(this.headFile(head), now, now).catch(() => undefined);
      return meta;
    } catch {
      await rm(into, { force: true });
      return undefined;
    }
  }

  /** Keep `file` (a finished layer blob) for `diffId`. A cache that cannot be written only costs speed. */
  async put(diffId: string, head: string, file: string, layer: CachedLayer): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      const tag = `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      const blob = this.blobFile(layer.digest);
      await linkOrCopy(file, blob + tag);
      await replaceWith(blob + tag, blob);
      const meta = this.metaFile(diffId);
      await writeFileInside(this.dir, path.basename(meta), JSON.stringify({ digest: layer.digest, size: layer.size }) + '\n');
      await writeFileInside(this.dir, path.basename(this.headFile(head)), `${diffId}\n`);
      await this.prune();
    } catch {
      // Leave no temp files behind; the entry is simply not cached.
      await this.removeTemps().catch(() => undefined);
    }
  }

  /** Remove the least recently used entries until the cache is within MAX_BYTES. */
  private async prune(): Promise<void> {
    const names = await readdir(this.dir);
    const entries: Array<{ meta: string; blob: string; size: number; used: number }> = [];
    let total = 0;
    for (const name of names) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const meta = path.join(this.dir, name);
      try {
        const { digest } = JSON.parse((await readTextInside(this.dir, name)) ?? '') as CachedLayer;
        const blob = this.blobFile(digest);
        const [m, b] = await Promise.all([stat(meta), stat(blob)]);
        entries.push({ meta, blob, size: b.size, used: m.mtimeMs });
        total += b.size;
      } catch {
        // Another build is writing or removing it.
      }
    }
    entries.sort((a, b) => a.used - b.used);
    let removed = 0;
    for (; removed < entries.length && total > MAX_BYTES; removed++) {
      await rm(entries[removed].meta, { force: true });
      await rm(entries[removed].blob, { force: true });
      total -= entries[removed].size;
    }
    // A stale marker only costs a hashing pass; drop the ones older than every kept entry.
    const oldest = entries[removed]?.used;
    if (removed === 0 || oldest === undefined) return;
    for (const name of names) {
      if (!name.startsWith('head-')) continue;
      const file = path.join(this.dir, name);
      const st = await stat(file).catch(() => undefined);
      if (st && st.mtimeMs < oldest) await rm(file, { force: true });
    }
  }

  private async removeTemps(): Promise<void> {
    for (const name of await readdir(this.dir))
      if (name.includes(`.tmp-${process.pid}-`)) await rm(path.join(this.dir, name), { force: true });
  }
}

/**
 * In one read of the gzip `file`: its bytes hash to the kept digest, and they
 * inflate, every one of them used, to a tar whose sha256 is `diffId`.
 */
async function holds(file: string, kept: CachedLayer, diffId: string): Promise<boolean> {
  const gz = new HashingStream();
  const gunzip = createGunzip({ chunkSize: 1024 * 1024 });
  const tar = new HashingStream();
  try {
    await pipeline(
      createReadStream(file, { highWaterMark: 1024 * 1024 }),
      gz,
      gunzip,
      new Writable({
        write(chunk: Buffer, _e, done) {
          tar.see(chunk);
          done();
        },
      }),
    );
  } catch {
    return false;
  }
  // gunzip stops at zero bytes after a member and leaves them unread: other readers would too.
  return gz.digest() === kept.digest && tar.digest() === diffId && gunzip.bytesWritten === kept.size;
}

/** A hard link when both are on one filesystem, else a copy. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    if (!['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP'].includes(errnoCode(err) ?? '')) throw err;
    // COPYFILE_EXCL: created new (O_EXCL), never written through a link already there.
    await copyFile(from, to, constants.COPYFILE_EXCL);
  }
}
