/**
 * Where a finished slug goes: `-o FILE`, stdout, or a streamed PUT; and the
 * --summary file, which describes them all. Each is an Output (deliver.ts):
 * staged first, committed once every output staged.
 */
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { errnoCode, UserError } from '../../shared/errors.js';
import { stageCopy, stageFile } from '../../shared/fs.js';
import { displayUrl, upload } from '../../shared/http.js';
import { log } from '../../shared/log.js';
import type { SlugInfo } from '../slug.js';
import type { Output } from './deliver.js';

const slugEntry = (slug: SlugInfo, path: string | null) => ({ slug: { path, size: slug.size, sha256: slug.sha256 } });

/** `-o FILE`: the slug, put in place by rename (or written into a device or FIFO). */
export function fileOutput(named: string): Output {
  return async ({ slug }) => {
    const staged = await stageFile(named, 'the slug');
    try {
      await stageCopy(slug.path, staged);
    } catch (err) {
      await staged.discard();
      throw new UserError(`cannot write the slug to ${named}: ${errnoCode(err) ?? err}`);
    }
    return { summary: slugEntry(slug, staged.target), irreversible: staged.inPlace, commit: staged.commit, discard: staged.discard };
  };
}

export function stdoutOutput(): Output {
  return async ({ slug }) => ({
    summary: slugEntry(slug, null),
    irreversible: true,
    commit: () => pipeline(createReadStream(slug.path), process.stdout, { end: false }),
    discard: async () => undefined,
  });
}

export function putOutput(url: string): Output {
  return async ({ slug }) => ({
    summary: slugEntry(slug, null),
    irreversible: true,
    commit: async () => {
      log.step(`Uploading slug to ${displayUrl(url)}`);
      await upload(url, () => createReadStream(slug.path), slug.size, 'PUT_URL');
      log.info('Upload complete');
    },
    discard: async () => undefined,
  });
}

/** `--summary FILE`: listed last, so it sees every other output's entry. */
export function summaryOutput(named: string): Output {
  return async (result, entries) => {
    const { slug, ...rest } = entries;
    const doc = {
      slug: slug ?? slugEntry(result.slug, null).slug,
      buildpacks: result.buildpacks,
      process_types: result.processTypes,
      stack: result.stack,
      source_version: result.sourceVersion ?? null,
      ...rest,
    };
    const staged = await stageFile(named, '--summary');
    try {
      await writeFile(staged.path, JSON.stringify(doc, null, 2) + '\n');
    } catch (err) {
      await staged.discard();
      throw new UserError(`cannot write --summary ${named}: ${errnoCode(err) ?? err}`);
    }
    return { irreversible: staged.inPlace, commit: staged.commit, discard: staged.discard };
  };
}
