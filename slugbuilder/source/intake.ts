/**
 * Source intake: put the app's source into the build dir, from stdin (tar or
 * tar.gz, told apart by its bytes), a local directory or tarball, or a URL.
 */
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BUILDER_OWNED } from '../../shared/app/layout.js';
import { copyTree } from '../../shared/copy-tree.js';
import { UserError } from '../../shared/errors.js';
import { removeInside } from '../../shared/fs.js';
import { archiveBytesCap, displayUrl, download, isHttpUrl } from '../../shared/http.js';
import { log } from '../../shared/log.js';
import { type ExtractLimits, type ExtractResult, extractArchive, openArchiveFile } from '../../shared/tar/extract.js';
import { formatSize, plural } from '../../shared/units.js';

export interface SourceSpec {
  /** `--source` value or TAR_URL; undefined means stdin. */
  source?: string;
  stdin: Readable & { isTTY?: boolean };
  limits: ExtractLimits;
}

/** What the source itself says: the commit of a `git archive` tarball. */
export interface SourceInfo {
  commit?: string;
}

/**
 * Names the builder writes in the app dir (the merged release, the launch
 * plan, the CNB layers and launch metadata). A source's copy is hostile data
 * (a link there would make the builder write through it, or read the
 * runner's metadata from it), so it is removed right after intake, before
 * .slugignore and any buildpack, as Heroku would overwrite it: a committed
 * `.release` does not break a push.
 */
export const BUILDER_OWNED_NAMES = BUILDER_OWNED;

export async function intakeSource(spec: SourceSpec, buildDir: string): Promise<SourceInfo> {
  const info = await intake(spec, buildDir);
  for (const name of BUILDER_OWNED_NAMES) {
    if (!(await lstat(path.join(buildDir, name)).catch(() => undefined))) continue;
    await removeInside(buildDir, name);
    log.info(`removed ${name} from the source: the builder writes it`);
  }
  return info;
}

async function intake(spec: SourceSpec, buildDir: string): Promise<SourceInfo> {
  const { source } = spec;
  if (source === undefined) {
    if (spec.stdin.isTTY)
      throw new UserError('no source: pipe a tarball on stdin (git archive HEAD | slugbuilder) or use --source PATH|URL');
    log.step('Receiving source from stdin');
    return report(await extractArchive(spec.stdin, buildDir, 'source on stdin', spec.limits));
  }
  if (isHttpUrl(source)) {
    log.step(`Fetching source from ${displayUrl(source)}`);
    const body = await download(source, 'source URL', { maxBytes: archiveBytesCap(spec.limits) });
    return report(await extractArchive(body, buildDir, 'source archive', spec.limits));
  }
  const info = await stat(source).catch(() => {
    throw new UserError(`source ${source} does not exist: give a directory, a tarball or an http(s) URL`);
  });
  if (info.isDirectory()) {
    log.step(`Copying source from ${source}`);
    await checkDirectoryLimits(source, spec.limits);
    // Links stay links: a link must not pull in files from outside the app.
    await copyTree(source, buildDir, { skip: (rel) => rel === '.git' });
    return {};
  }
  log.step(`Reading source from ${source}`);
  return report(await extractArchive(openArchiveFile(source), buildDir, `source ${source}`, spec.limits));
}

/**
 * The same limits a tarball source gets, checked before anything is copied:
 * entries (files, directories, links; `.git` is not copied, so not counted)
 * and the bytes of regular files.
 */
async function checkDirectoryLimits(dir: string, limits: ExtractLimits): Promise<void> {
  let entries = 0;
  let bytes = 0;
  async function walk(rel: string): Promise<void> {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (childRel === '.git') continue;
      entries += 1;
      if (limits.maxFiles !== undefined && entries > limits.maxFiles) {
        throw new UserError(`source ${dir} has more than ${limits.maxFiles} entries: remove files or raise --max-files`);
      }
      if (entry.isFile()) {
        bytes += (await lstat(path.join(dir, childRel))).size;
        if (limits.maxBytes !== undefined && bytes > limits.maxBytes) {
          throw new UserError(`source ${dir} holds more than ${formatSize(limits.maxBytes)}: make it smaller or raise --max-source-size`);
        }
      } else if (entry.isDirectory()) {
        await walk(childRel);
      }
    }
  }
  await walk('');
}

function report(result: ExtractResult): SourceInfo {
  log.info(
    `${plural(result.files, 'entry', 'entries')}, ${formatSize(result.bytes)}${result.commit ? `, git commit ${result.commit}` : ''}`,
  );
  return { commit: result.commit };
}
