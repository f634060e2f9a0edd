/**
 * `--summary FILE|URL`: a JSON description of the build and of every other
 * output (its entries), staged last so that it sees them all. A URL is PUT as
 * `--put-url` sends the slug, so a build Job hands back what it built
 * (`slugbuilder manifests --summary URL` reads it).
 */
import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { checkHttpUrl } from '../../shared/command.js';
import { errnoCode, UserError } from '../../shared/errors.js';
import { checkWritableTarget, stageFile } from '../../shared/fs.js';
import { displayUrl, isHttpUrl, upload } from '../../shared/http.js';
import { log } from '../../shared/log.js';
import type { BuildResult } from '../build.js';
import type { Output, OutputKind } from './deliver.js';
import { slugEntry } from './slug.js';

export const SUMMARY_OPTIONS = {
  summary: { type: 'string' },
} as const;

export const SUMMARY_USAGE = `  --summary FILE|URL       write a JSON summary of the build (to an http(s) URL: an HTTP PUT, as --put-url)
`;

export const summaryKind: OutputKind<{ summary?: string }> = {
  parse(v) {
    const named = v.summary;
    if (named === undefined) return undefined;
    if (isHttpUrl(named)) {
      checkHttpUrl(named, '--summary');
      return { flag: '--summary', check: async () => undefined, outputs: () => [summaryUrlOutput(named)] };
    }
    return {
      flag: '--summary',
      check: async () => void (await checkWritableTarget(named, '--summary')),
      outputs: () => [summaryOutput(named)],
    };
  },
};

/** The summary document: the build's facts, then each output's entries (`slug`, `layer`, `image`). */
export function summaryDocument(result: BuildResult, entries: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { slug, ...rest } = entries;
  return {
    slug: slug ?? slugEntry(result.slug, null).slug,
    buildpacks: result.buildpacks,
    process_types: result.processTypes,
    stack: result.stack,
    source_version: result.sourceVersion ?? null,
    ...rest,
  };
}

/** The summary written to a file (renamed into place, or written into a device or FIFO). */
export function summaryOutput(named: string): Output {
  return async (result, entries) => {
    const doc = summaryDocument(result, entries);
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

/** The summary PUT to a URL: only the URL's display form is printed; a redirect is refused. */
function summaryUrlOutput(url: string): Output {
  return async (result, entries) => {
    const bytes = Buffer.from(JSON.stringify(summaryDocument(result, entries), null, 2) + '\n');
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
