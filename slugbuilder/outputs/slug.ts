/**
 * Where a finished slug goes: `-o FILE` (renamed into place), stdout, or a
 * streamed PUT. Only called after the whole build succeeded.
 */
import { createReadStream } from 'node:fs';
import { copyFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UserError, errnoCode } from '../../shared/errors.js';
import { displayUrl, upload } from '../../shared/http.js';
import { log } from '../../shared/log.js';
import type { SlugInfo } from '../slug.js';

/** Move the temp slug to FILE atomically; across filesystems, copy then rename. */
export async function publishFile(slug: SlugInfo, target: string): Promise<void> {
  try {
    await rename(slug.path, target);
    slug.path = target;
    return;
  } catch (err) {
    if (errnoCode(err) !== 'EXDEV') throw new UserError(`cannot write ${target}: ${errnoCode(err) ?? err}`);
  }
  const staging = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  try {
    await copyFile(slug.path, staging);
    await rename(staging, target);
  } catch (err) {
    await rm(staging, { force: true });
    throw new UserError(`cannot write ${target}: ${errnoCode(err) ?? err}`);
  }
  slug.path = target;
}

export async function streamToStdout(slug: SlugInfo): Promise<void> {
  await pipeline(createReadStream(slug.path), process.stdout, { end: false });
}

export async function putSlug(slug: SlugInfo, url: string): Promise<void> {
  log.step(`Uploading slug to ${displayUrl(url)}`);
  await upload(url, () => createReadStream(slug.path), slug.size, 'PUT_URL');
  log.info('Upload complete');
}

export async function writeSummary(file: string, summary: object): Promise<void> {
  const staging = `${file}.${process.pid}.tmp`;
  await writeFile(staging, JSON.stringify(summary, null, 2) + '\n');
  await rename(staging, file);
}
