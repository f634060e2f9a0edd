/**
 * Slug intake: `--slug FILE`, then SLUG_URL, then stdin. An app dir that is
 * already populated (a mounted app, or an image with the app layer) is used
 * as it is when no slug arrives.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { UserError } from '../shared/errors.js';
import { log } from '../shared/log.js';
import type { ExtractLimits } from '../shared/tar/extract.js';

export interface IntakeOptions {
  appDir: string;
  slugFile?: string;
  slugUrl?: string;
  stdin: Readable & { isTTY?: boolean };
  limits: ExtractLimits;
  quiet: boolean;
}

async function entries(dir: string): Promise<string[] | undefined> {
  return readdir(dir).catch(() => undefined);
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

/** Returns how the app got there, for the log. */
export async function intakeSlug(opts: IntakeOptions): Promise<string> {
  const { appDir } = opts;
  let input: Readable | undefined;
  let what = '';
  if (opts.slugFile) {
    await stat(opts.slugFile).catch(() => {
      throw new UserError(`slug ${opts.slugFile} does not exist`);
    });
    const { openArchiveFile } = await import('../shared/tar/extract.js');
    input = openArchiveFile(opts.slugFile);
    what = `slug ${opts.slugFile}`;
  } else if (opts.slugUrl) {
    // Loaded only when needed: a start from a populated app dir skips them (start-up time).
    const { displayUrl, download } = await import('../shared/http.js');
    input = await download(opts.slugUrl, 'SLUG_URL');
    what = `slug from ${displayUrl(opts.slugUrl)}`;
  } else if (!opts.stdin.isTTY) {
    const { head, rest } = await firstChunk(opts.stdin);
    if (head) {
      input = rejoin(head, rest);
      what = 'slug on stdin';
    }
  }

  const existing = await entries(appDir);
  if (!input) {
    if (existing && existing.length > 0) return `app in ${appDir}`;
    throw new UserError(`no slug: pipe one on stdin, set SLUG_URL, or pass --slug FILE (app dir ${appDir} is empty)`);
  }
  if (existing && existing.length > 0) {
    // Only replace what an earlier unpack put there: never wipe a directory we did not fill.
    if (!existing.includes('.release')) throw new UserError(`app dir ${appDir} is not empty and holds no slug: choose an empty --app-dir`);
    await clear(appDir, existing);
  }
  await mkdir(appDir, { recursive: true });
  if (!opts.quiet) log.step(`Unpacking ${what}`);
  const { extractArchive } = await import('../shared/tar/extract.js');
  try {
    await extractArchive(input, appDir, what, opts.limits);
  } catch (err) {
    // No half-unpacked app left behind.
    await clear(appDir, (await entries(appDir)) ?? []);
    throw err;
  }
  return what;
}

async function clear(dir: string, names: string[]): Promise<void> {
  await Promise.all(names.map((n) => rm(path.join(dir, n), { recursive: true, force: true })));
}
