/**
 * Fetching a buildpack tarball (.tgz, .tar.gz, .tar) over http(s) with Node's
 * fetch: streamed straight into the safe extractor, with download progress on
 * stderr, and the single top-level directory that GitHub-style archives wrap
 * everything in stripped off.
 */
import { lstat, readdir, rename, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { UserError, errorMessage } from '../../../shared/errors.js';
import { log } from '../../../shared/log.js';
import { extractArchive, formatSize } from '../../../shared/tar/extract.js';
import { describe, type BuildpackSpec } from './spec.js';

/** Buildpacks are scripts: anything near these sizes is not one. */
const LIMITS = { maxBytes: 1024 * 1024 * 1024, maxFiles: 200_000 };

/**
 * Progress lines at each quarter of a known size (or every 10 MB when the
 * server sends no length): a handful of lines in a build log, driven by
 * bytes, never by a clock.
 */
class DownloadProgress extends Transform {
  private received = 0;
  private nextMark: number;
  constructor(private readonly total: number | undefined) {
    super();
    this.nextMark = total ? total / 4 : 10 * 1024 * 1024;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    while (this.received >= this.nextMark && (!this.total || this.received < this.total)) {
      if (this.total) {
        log.info(`Downloaded ${formatSize(this.received)} of ${formatSize(this.total)} (${Math.floor((100 * this.received) / this.total)}%)`);
        this.nextMark += this.total / 4;
      } else {
        log.info(`Downloaded ${formatSize(this.received)}`);
        this.nextMark += 10 * 1024 * 1024;
      }
    }
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    log.info(`Downloaded ${formatSize(this.received)}`);
    done();
  }
}

/** Download `spec` and extract it into the empty directory `target`. */
export async function downloadTarball(spec: BuildpackSpec, target: string): Promise<void> {
  const where = `Buildpack ${describe(spec)}`;
  let response: Response;
  try {
    response = await fetch(spec.fetchUrl, {
      headers: spec.authorization ? { authorization: spec.authorization } : {},
      redirect: 'follow',
    });
  } catch (err) {
    throw new UserError(`${where}: cannot reach the host (${networkCause(err)}); check the URL and that the server is up`);
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    const hint =
      response.status === 401 || response.status === 403
        ? 'put credentials in the URL (https://USER:TOKEN@host/...)'
        : response.status === 404
          ? 'check the URL'
          : 'check the URL and try again';
    throw new UserError(`${where}: download failed with HTTP ${response.status} ${response.statusText}; ${hint}`.replace(/ ;/, ';'));
  }
  if (!response.body) throw new UserError(`${where}: the server sent an empty response`);

  const length = Number(response.headers.get('content-length'));
  const total = Number.isFinite(length) && length > 0 ? length : undefined;
  log.info(total ? `Downloading ${formatSize(total)}` : 'Downloading');
  const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  const progress = new DownloadProgress(total);
  body.on('error', (err) => progress.destroy(new UserError(`${where}: download interrupted (${networkCause(err)}); try again`)));
  body.pipe(progress);
  try {
    await extractArchive(progress, target, where, LIMITS);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${where}: ${errorMessage(err)}`);
  }
  await stripSingleTopDirectory(target);
}

/** `fetch failed` hides the useful part in `cause`: ECONNREFUSED, ENOTFOUND... */
function networkCause(err: unknown): string {
  const cause = err && typeof err === 'object' && 'cause' in err ? (err as { cause?: unknown }).cause : undefined;
  const code = cause && typeof cause === 'object' && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'name not found';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code) return code;
  return errorMessage(cause ?? err).replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1');
}

/**
 * GitHub and most release tarballs hold `name-version/bin/...`. When the
 * archive's root is exactly one directory and has no `bin/` of its own, that
 * directory's contents become the buildpack.
 */
async function stripSingleTopDirectory(target: string): Promise<void> {
  const entries = await readdir(target);
  if (entries.length !== 1 || entries[0] === 'bin') return;
  const only = path.join(target, entries[0]);
  if (!(await lstat(only)).isDirectory()) return;
  // Move the wrapper aside first: it could contain an entry with its own name.
  const aside = `${target}.strip`;
  await rename(only, aside);
  for (const name of await readdir(aside)) await rename(path.join(aside, name), path.join(target, name));
  await rmdir(aside);
}
