/**
 * Fetching a buildpack tarball (.tgz, .tar.gz, .tar) over http(s) through the
 * shared transport, or from a local file: streamed straight into the safe
 * extractor, with download progress on stderr and the sha256 of the bytes,
 * and the single top-level directory that GitHub-style archives wrap
 * everything in stripped off.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { fileURLToPath } from 'node:url';
import { errnoCode, errorMessage, UserError } from '../../../shared/errors.js';
import { replaceWith } from '../../../shared/fs.js';
import { describeNetworkError, NetworkError, networkFailure, request, statusHint } from '../../../shared/http.js';
import { log } from '../../../shared/log.js';
import { extractArchive } from '../../../shared/tar/extract.js';
import { formatSize } from '../../../shared/units.js';
import { type BuildpackSpec, describe } from './spec.js';

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
  constructor(
    private readonly total: number | undefined,
    private readonly hash: Hash,
  ) {
    super();
    this.nextMark = total ? total / 4 : 10 * 1024 * 1024;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    this.hash.update(chunk);
    while (this.received >= this.nextMark && (!this.total || this.received < this.total)) {
      if (this.total) {
        log.info(
          `Downloaded ${formatSize(this.received)} of ${formatSize(this.total)} (${Math.floor((100 * this.received) / this.total)}%)`,
        );
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

/**
 * Download (or, for file: URLs, read) `spec` and extract it into the empty
 * directory `target`. Returns the sha256 of the archive's bytes, so a build
 * can say exactly which tarball it ran.
 */
export async function downloadTarball(spec: BuildpackSpec, target: string): Promise<string> {
  const where = `Buildpack ${describe(spec)}`;
  const { body, total } = spec.fetchUrl.startsWith('file:') ? await openLocal(spec.fetchUrl, where) : await openRemote(spec, where);
  log.info(total ? `Downloading ${formatSize(total)}` : 'Downloading');
  const hash = createHash('sha256');
  const progress = new DownloadProgress(total, hash);
  // A stall, a cut-off or a timeout already says what happened (shared/http.ts).
  body.on('error', (err) =>
    progress.destroy(
      err instanceof UserError ? err : new UserError(`${where}: download interrupted (${describeNetworkError(err)}); try again`),
    ),
  );
  body.pipe(progress);
  try {
    await extractArchive(progress, target, where, LIMITS);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${where}: ${errorMessage(err)}`);
  }
  await stripSingleTopDirectory(target);
  return hash.digest('hex');
}

async function openRemote(spec: BuildpackSpec, where: string): Promise<{ body: Readable; total?: number }> {
  let response: Response;
  try {
    response = await request(spec.fetchUrl, { headers: spec.authorization ? { authorization: spec.authorization } : {}, what: where });
  } catch (err) {
    if (!(err instanceof NetworkError)) throw err;
    if (err.reached) throw new UserError(`${where}: ${networkFailure(err, where)}`);
    throw new UserError(`${where}: cannot reach the host (${err.description}); check the URL and that the server is up`);
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    const hint = statusHint(response.status, {
      credentials: 'put credentials in the URL (https://USER:TOKEN@host/...)',
      other: 'check the URL and try again',
    });
    throw new UserError(`${where}: download failed with HTTP ${response.status} ${response.statusText}; ${hint}`.replace(/ ;/, ';'));
  }
  if (!response.body) throw new UserError(`${where}: the server sent an empty response`);
  const length = Number(response.headers.get('content-length'));
  return {
    body: Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
    total: Number.isFinite(length) && length > 0 ? length : undefined,
  };
}

async function openLocal(url: string, where: string): Promise<{ body: Readable; total?: number }> {
  const file = fileURLToPath(url);
  const info = await stat(file).catch((err: unknown) => {
    throw new UserError(`${where}: cannot read ${file} (${errnoCode(err) ?? errorMessage(err)}); check the path`);
  });
  if (!info.isFile()) throw new UserError(`${where}: ${file} is not a file; point at a .tgz, .tar.gz or .tar archive`);
  return { body: createReadStream(file), total: info.size || undefined };
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
  await replaceWith(only, aside);
  for (const name of await readdir(aside)) await replaceWith(path.join(aside, name), path.join(target, name));
  await rmdir(aside);
}
