/**
 * Slug intake. A slug comes from `--slug FILE`, `--slug -` (stdin), SLUG_URL,
 * or, only when the app dir holds no app (empty, absent or half-unpacked),
 * from a piped stdin. An app dir that holds an app is used as it is, and stdin
 * then belongs to the process (`docker run -i IMAGE run CMD < data`).
 *
 * An empty app dir is unpacked into in place; an app dir that holds an app is
 * replaced by unpacking beside it and swapping the new tree in (app-dir.ts),
 * so a failed intake never removes an app and a running one keeps its files.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { RELEASE } from '../shared/app/layout.js';
import { UserError } from '../shared/errors.js';
import { forget, removeAllNow, removeOnExit, writeFileInside } from '../shared/fs.js';
import { log } from '../shared/log.js';
import type { ExtractLimits } from '../shared/tar/extract.js';
import {
  type AppDirListing,
  fsError,
  IN_DIR_LOCK,
  inspectAppDir,
  isMountPoint,
  lockAppDir,
  removeRetiredTrees,
  removeStaleStaging,
  stagingDir,
  swapIn,
  UNPACKING_MARKER,
} from './app-dir.js';

export interface IntakeOptions {
  appDir: string;
  /** A file, or `-` for stdin. */
  slugFile?: string;
  slugUrl?: string;
  stdin: Readable & { isTTY?: boolean };
  limits: ExtractLimits;
  lockTimeoutMs: number;
  quiet: boolean;
  /** --net-timeout and --net-deadline, as given (shared/http.ts reads them). */
  net?: { timeout?: string; deadline?: string };
}

export interface IntakeResult {
  /** Whether the slug came on stdin: the process must not read it then. */
  stdinTaken: boolean;
}

/** Reads one chunk of stdin; undefined when it is empty (e.g. /dev/null in a container). */
async function firstChunk(stdin: Readable): Promise<{ head?: Buffer; rest: AsyncIterator<unknown> }> {
  const rest = stdin[Symbol.asyncIterator]();
  const next = await rest.next();
  return { head: next.done ? undefined : Buffer.from(next.value as Buffer), rest };
}

function rejoin(head: Buffer, rest: AsyncIterator<unknown>): Readable {
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const n = await rest.next();
      if (n.done) return;
      yield n.value as Buffer;
    }
  }
  return Readable.from(all(), { objectMode: false });
}

interface Slug {
  what: string;
  open: () => Promise<Readable | undefined>;
  stdin: boolean;
}

/** The slug source the options name, checked as far as it can be without reading it. */
async function slugSource(opts: IntakeOptions): Promise<Slug | undefined> {
  const fromStdin = (): Slug => ({
    what: 'slug on stdin',
    stdin: true,
    open: async () => {
      const { head, rest } = await firstChunk(opts.stdin);
      return head ? rejoin(head, rest) : undefined;
    },
  });
  if (opts.slugFile === '-') {
    if (opts.stdin.isTTY)
      throw new UserError(
        '--slug - reads the slug from stdin, which is a terminal: pipe a slug in, e.g. slugrunner --slug - start web < slug.tgz',
      );
    return fromStdin();
  }
  if (opts.slugFile) {
    const file = opts.slugFile;
    const info = await stat(file).catch(() => {
      throw new UserError(`slug ${file} does not exist: pass the path of a slug (.tgz) to --slug`);
    });
    if (info.isDirectory())
      throw new UserError(`slug ${file} is a directory: pass a slug file (.tgz) to --slug, or run an unpacked app with --app-dir ${file}`);
    return {
      what: `slug ${file}`,
      stdin: false,
      open: async () => (await import('../shared/tar/extract.js')).openArchiveFile(file),
    };
  }
  if (opts.slugUrl) {
    const url = opts.slugUrl;
    // Loaded only when needed: a start from a populated app dir skips them (start-up time).
    const { archiveBytesCap, configureNetTimeouts, displayUrl, download } = await import('../shared/http.js');
    configureNetTimeouts(opts.net ?? {});
    const maxBytes = archiveBytesCap(opts.limits);
    return { what: `slug from ${displayUrl(url)}`, stdin: false, open: () => download(url, 'SLUG_URL', { maxBytes }) };
  }
  if (!opts.stdin.isTTY) return fromStdin();
  return undefined;
}

export async function intakeSlug(opts: IntakeOptions): Promise<IntakeResult> {
  const { appDir } = opts;
  const named = opts.slugFile !== undefined || Boolean(opts.slugUrl);
  // The common start: an app is there and no slug is named. No lock, no writes.
  const first = await inspectAppDir(appDir);
  if (!named && first.state === 'app') return { stdinTaken: false };

  const slug = await slugSource(opts);
  if (!slug && first.state !== 'half') throw noSlug(appDir);
  const release = await holdLock(opts);
  try {
    // Looked at again under the lock: another runner may just have unpacked it.
    const listing = await inspectAppDir(appDir);
    if (!named && listing.state === 'app') return { stdinTaken: false };
    await removeStaleStaging(appDir);
    await removeRetiredTrees(appDir);
    if (listing.state === 'app') await checkReplaceable(appDir, listing, release.beside);

    const input = slug ? await slug.open() : undefined;
    if (!slug || !input) {
      if (listing.state === 'half') {
        throw new UserError(
          `${appDir} holds a half-unpacked slug (an earlier start stopped while unpacking): start again with a slug (--slug FILE, SLUG_URL or stdin)`,
        );
      }
      if (opts.slugFile === '-')
        throw new UserError('--slug - found nothing on stdin: pipe a slug in, e.g. slugrunner --slug - start web < slug.tgz');
      throw noSlug(appDir);
    }
    if (!opts.quiet) log.step(`Unpacking ${slug.what}`);
    if (listing.state === 'app') await replaceApp(appDir, input, slug.what, opts.limits);
    else await unpackInPlace(appDir, listing, input, slug.what, opts.limits);
    return { stdinTaken: slug.stdin };
  } finally {
    await release.release();
  }
}

function noSlug(appDir: string): UserError {
  return new UserError(`no slug: pipe one on stdin, set SLUG_URL, or pass --slug FILE (app dir ${appDir} is empty)`);
}

/** The app dir lock, plus a clean exit on SIGTERM/SIGINT while it is held (the launcher handles signals later). */
async function holdLock(opts: IntakeOptions): Promise<{ beside: boolean; release: () => Promise<void> }> {
  const stop = (code: number) => () => {
    removeAllNow();
    process.exit(code);
  };
  const onTerm = stop(143);
  const onInt = stop(130);
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  const off = () => {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  };
  try {
    const lock = await lockAppDir(opts.appDir, opts.lockTimeoutMs);
    return {
      beside: lock.beside,
      release: async () => {
        await lock.release();
        off();
      },
    };
  } catch (err) {
    off();
    throw err;
  }
}

async function checkReplaceable(appDir: string, listing: AppDirListing, beside: boolean): Promise<void> {
  // Only replace what a slug put there: never a directory someone else filled.
  if (!listing.names.includes(RELEASE)) throw new UserError(`app dir ${appDir} is not empty and holds no slug: choose an empty --app-dir`);
  const why = !beside
    ? `its parent ${path.dirname(appDir)} is not writable`
    : (await isMountPoint(appDir))
      ? 'it is a mount point'
      : undefined;
  if (why) {
    throw new UserError(
      `cannot replace the app in ${appDir}: a new slug is unpacked beside it and swapped in, and ${why}; empty it first or choose another --app-dir`,
    );
  }
}

async function unpackInPlace(appDir: string, listing: AppDirListing, input: Readable, what: string, limits: ExtractLimits): Promise<void> {
  await mkdir(appDir, { recursive: true }).catch((err) => {
    throw fsError(err, appDir, 'write');
  });
  const marker = path.join(appDir, UNPACKING_MARKER);
  // Half an app from an interrupted unpack: everything in it came from that unpack.
  if (listing.state === 'half') await clear(appDir, listing.names);
  await writeFileInside(appDir, UNPACKING_MARKER, `${process.pid}\n`).catch((err) => {
    throw fsError(err, appDir, 'write');
  });
  const { extractArchive } = await import('../shared/tar/extract.js');
  try {
    await extractArchive(input, appDir, what, limits);
  } catch (err) {
    // The dir was empty: remove what this unpack put there, the marker last.
    await clear(
      appDir,
      ((await readdir(appDir).catch(() => [])) as string[]).filter((n) => n !== UNPACKING_MARKER && n !== IN_DIR_LOCK),
    );
    await rm(marker, { force: true });
    throw fsError(err, appDir, 'write');
  }
  await rm(marker, { force: true });
}

async function replaceApp(appDir: string, input: Readable, what: string, limits: ExtractLimits): Promise<void> {
  const staged = stagingDir(appDir);
  await mkdir(staged);
  removeOnExit(staged);
  const { extractArchive } = await import('../shared/tar/extract.js');
  try {
    await extractArchive(input, staged, what, limits);
    await swapIn(appDir, staged);
  } finally {
    await rm(staged, { recursive: true, force: true });
    forget(staged);
  }
}

async function clear(dir: string, names: string[]): Promise<void> {
  await Promise.all(names.map((n) => rm(path.join(dir, n), { recursive: true, force: true })));
}
