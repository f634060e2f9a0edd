/**
 * Where a finished slug goes: `-o FILE`, stdout, or a streamed PUT; and the
 * --summary file (or URL), which describes them all. Each is an Output (deliver.ts):
 * staged first, committed once every output staged.
 */
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode, UsageError, UserError } from '../../shared/errors.js';
import { checkWritableTarget, stageCopy, stageFile } from '../../shared/fs.js';
import { displayUrl, isHttpUrl, upload } from '../../shared/http.js';
import { log } from '../../shared/log.js';
import type { BuildResult } from '../build.js';
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

/** The --summary JSON: the build, and every other output's entry. */
export function summaryDocument(result: BuildResult, entries: Readonly<Record<string, unknown>>): string {
  const { slug, ...rest } = entries;
  const doc = {
    slug: slug ?? slugEntry(result.slug, null).slug,
    buildpacks: result.buildpacks,
    process_types: result.processTypes,
    stack: result.stack,
    source_version: result.sourceVersion ?? null,
    ...rest,
  };
  return JSON.stringify(doc, null, 2) + '\n';
}

/** `--summary FILE` (or URL): listed last, so it sees every other output's entry. */
export function summaryOutput(named: string): Output {
  if (isHttpUrl(named)) return summaryUrlOutput(named);
  return async (result, entries) => {
    const doc = summaryDocument(result, entries);
    const staged = await stageFile(named, '--summary');
    try {
      await writeFile(staged.path, doc);
    } catch (err) {
      await staged.discard();
      throw new UserError(`cannot write --summary ${named}: ${errnoCode(err) ?? err}`);
    }
    return { irreversible: staged.inPlace, commit: staged.commit, discard: staged.discard };
  };
}

/** Before the build: a URL (http:// or https://) that parses, or a file target that can be written. */
export async function checkSummaryTarget(value: string): Promise<void> {
  if (!isHttpUrl(value)) {
    await checkWritableTarget(value, '--summary');
    return;
  }
  // The URL itself is not repeated: it usually carries a signature.
  if (!URL.canParse(value)) throw new UsageError('--summary is not a valid http(s) URL');
}

/**
 * `--summary URL`: PUT as `--put-url` sends the slug, so a build Job hands
 * back what it built (`slugbuilder manifests --summary URL` reads it). Only
 * the URL's display form is printed; a redirect is refused.
 */
function summaryUrlOutput(url: string): Output {
  return async (result, entries) => {
    const bytes = Buffer.from(summaryDocument(result, entries));
    return {
      irreversible: true,
      commit: async () => {
        log.step(`Uploading summary to ${displayUrl(url)}`);
        await upload(url, () => Readable.from([bytes]), bytes.length, '--summary');
      },
      discard: async () => undefined,
    };
  };
}
