/**
 * The buildpack cache: one entry per URL and ref under
 * `<cacheDir>/buildpacks/<sha256(url#ref)>/`:
 *
 *   lock        held while one process fetches or copies out of the entry
 *   repo.git/   (git only) bare repository, so a branch refetch is incremental
 *   tree/       the published buildpack files
 *   meta.json   what `tree/` holds (URL, ref, commit); written last, so an
 *               entry without it is incomplete and gets fetched again
 *
 * Publishing is a rename of a fully written temp directory, and readers take
 * the same lock, so no build ever sees half a buildpack. Builds get their own
 * copy of `tree/` (see `copyOut`), because buildpacks may write into their
 * own directory (`export`) and must not change the cache.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { copyTree } from '../../../shared/copy-tree.js';
import { errnoCode, UserError } from '../../../shared/errors.js';
import { acquireLock } from '../../../shared/file-lock.js';
import { replaceWith, writeAtomically } from '../../../shared/fs.js';

export interface CacheMeta {
  url: string;
  ref?: string;
  source: 'git' | 'tarball';
  /** The commit `tree/` was checked out from (git only). */
  commit?: string;
  /** The sha256 of the archive `tree/` was extracted from (tarball only). */
  sha256?: string;
  /** True when the ref named a commit: such an entry never needs the network again. */
  pinned: boolean;
}

export class CacheEntry {
  readonly dir: string;
  constructor(cacheDir: string, key: string) {
    this.dir = path.join(cacheDir, 'buildpacks', key);
  }
  get repo(): string {
    return path.join(this.dir, 'repo.git');
  }
  get tree(): string {
    return path.join(this.dir, 'tree');
  }
  private get metaFile(): string {
    return path.join(this.dir, 'meta.json');
  }

  /** The entry's description, or undefined when it is missing or was never completed. */
  async readMeta(): Promise<CacheMeta | undefined> {
    try {
      const meta = JSON.parse(await readFile(this.metaFile, 'utf8')) as CacheMeta;
      await stat(path.join(this.tree, 'bin'));
      return meta;
    } catch {
      return undefined;
    }
  }

  /** A fresh directory inside the entry to build a new `tree/` in (same filesystem, so rename works). */
  async tempDir(): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    return mkdtemp(path.join(this.dir, 'tmp-'));
  }

  /** Swap `staged` in as `tree/` and record `meta`: meta.json goes last, so a crash leaves an incomplete entry, never a wrong one. */
  async publish(staged: string, meta: CacheMeta): Promise<void> {
    await rm(this.metaFile, { force: true });
    const old = path.join(this.dir, `old-${randomBytes(4).toString('hex')}`);
    try {
      await replaceWith(this.tree, old);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    await replaceWith(staged, this.tree);
    await rm(old, { recursive: true, force: true });
    await writeAtomically(this.metaFile, 'the buildpack cache entry', (file) => writeFile(file, JSON.stringify(meta, null, 2) + '\n'));
  }

  /** Copy `tree/` to `target` (a new directory, in the build's workspace). Only called while holding the lock. */
  async copyOut(target: string): Promise<void> {
    await copyTree(this.tree, target, { preserveTimestamps: true });
  }

  /** Leftovers of a fetch that was killed half way. Only called while holding the lock. */
  async removeLeftovers(): Promise<void> {
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    await Promise.all(
      names
        .filter((n) => n.startsWith('tmp-') || n.startsWith('old-'))
        .map((n) => rm(path.join(this.dir, n), { recursive: true, force: true })),
    );
  }

  /**
   * Hold the entry's lock while `fn` runs (shared/file-lock.ts: a stale lock
   * of a dead or frozen build is taken over, so a killed build never wedges the cache).
   */
  async withLock<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM' || code === 'ENOTDIR') {
        throw new UserError(
          `Cannot write the buildpack cache at ${path.dirname(this.dir)} (${code}); point SLUGBUILDER_CACHE_DIR at a writable directory`,
        );
      }
      throw err;
    }
    const release = await acquireLock(path.join(this.dir, 'lock'), {
      waiting: (who) => `Waiting for another build that is fetching ${what} (${who})`,
      takingOver: (who) => `Taking over the buildpack cache lock of ${who}, which is gone`,
    });
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}
