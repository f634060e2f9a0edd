/**
 * The build summary `slugbuilder manifests --summary` renders from: a file,
 * or the http(s) URL a build Job PUT it to (`manifests build --summary-url`).
 * The URL is usually presigned: only its display form is printed, and the
 * body is read bounded.
 */
import { readFile } from 'node:fs/promises';
import { errnoCode, UserError } from '../../shared/errors.js';
import { displayUrl, isHttpUrl, readBody, requestOk } from '../../shared/http.js';
import type { BuildSummary } from './app.js';

/** A summary is a few KiB; a body past this is not one. */
export const MAX_SUMMARY_BYTES = 1024 * 1024;

async function summaryText(source: string): Promise<string> {
  if (isHttpUrl(source)) {
    const res = await requestOk(source, '--summary', {});
    return (await readBody(res, MAX_SUMMARY_BYTES, '--summary')).toString('utf8');
  }
  try {
    return await readFile(source, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read --summary ${source}: ${errnoCode(err) ?? err}; pass the file slugbuilder --summary wrote`);
  }
}

export async function readSummary(source: string): Promise<BuildSummary> {
  const text = await summaryText(source);
  const shown = isHttpUrl(source) ? displayUrl(source) : source;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = undefined;
  }
  const d = doc as Partial<BuildSummary> | undefined;
  const types = d?.process_types;
  if (
    !d ||
    typeof d.slug?.sha256 !== 'string' ||
    !types ||
    typeof types !== 'object' ||
    Object.values(types).some((c) => typeof c !== 'string')
  ) {
    throw new UserError(
      `--summary ${shown} is not a slugbuilder build summary (JSON with slug and process_types): pass what slugbuilder --summary wrote`,
    );
  }
  if (Object.keys(types).length === 0) throw new UserError(`the build in ${shown} has no process types: add a Procfile to the app`);
  return d as BuildSummary;
}
