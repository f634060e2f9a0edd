/**
 * `slugbuilder --slug FILE`: a slug built earlier (a pipeline that stores
 * slugs) goes to the outputs without a source or a buildpack: it is unpacked
 * safely (shared/tar/extract.ts) into a workspace of its own and handed on as
 * a BuildResult, as a build would. The workspace goes whatever happens.
 *
 * With --image (and no --layer), a slug in slugkit's own order has its
 * dependency trees (node_modules, .heroku/node, ...) go straight into their
 * image layers as it is read, never onto disk (image/slug-layers.ts); any
 * other slug is unpacked whole, and gives the same layers.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { readApp } from '../shared/app/app.js';
import { writeLaunchPlan } from '../shared/app/launch-plan.js';
import { commandLines, resolveProcesses } from '../shared/app/processes.js';
import { UserError } from '../shared/errors.js';
import { makeDirInside, makeTempDir, removeInside, removeTemp } from '../shared/fs.js';
import { log } from '../shared/log.js';
import { extractArchive, openArchiveFile } from '../shared/tar/extract.js';
import { formatSize, plural } from '../shared/units.js';
import type { BuildResult, Deliver } from './build.js';
import { hashFile } from './image/blobs.js';
import { type SlugLayerOptions, type SlugLayers, unpackSlugLayers } from './image/slug-layers.js';

export interface FromSlugOptions {
  /** The slug file (tar.gz of an app dir, as slugbuilder writes it). */
  slug: string;
  sourceVersion?: string;
  stack: string;
  /** Limits on what the slug unpacks to. */
  maxBytes: number;
  maxFiles: number;
  /** --image without --layer: the dependency trees' layers are made from the slug's stream. */
  layers?: SlugLayerOptions;
}

export async function fromSlug(opts: FromSlugOptions, deliver: Deliver): Promise<BuildResult> {
  const file = path.resolve(opts.slug);
  const st = await stat(file).catch(() => undefined);
  if (!st) throw new UserError(`--slug ${opts.slug} does not exist: give the path of a slug (tar.gz) slugbuilder wrote`);
  if (!st.isFile()) throw new UserError(`--slug ${opts.slug} is not a file: give the path of a slug (tar.gz)`);
  const work = await makeTempDir('slugbuilder-');
  try {
    const appDir = path.join(work, 'app');
    await mkdir(appDir, { mode: 0o755 });
    log.step(`Reading slug ${opts.slug} (${formatSize(st.size)})`);
    const what = `slug ${opts.slug}`;
    const limits = { maxBytes: opts.maxBytes, maxFiles: opts.maxFiles };
    let slugLayers: SlugLayers | undefined;
    if (opts.layers) {
      slugLayers = await unpackSlugLayers(file, appDir, what, limits, opts.layers, path.join(work, 'layers'));
      if (!slugLayers) {
        // Not a slug it takes, or a broken one: unpacked whole, which says what is wrong with it.
        await removeInside(work, 'app');
        await makeDirInside(work, 'app');
      }
    }
    const unpacked = slugLayers?.unpacked ?? (await extractArchive(openArchiveFile(file), appDir, what, limits));
    log.info(`${plural(unpacked.files, 'entry', 'entries')}, ${formatSize(unpacked.bytes)}`);
    const { digest, size } = await hashFile(file);

    // A slug is hostile data: a .release or Procfile linking out of it is refused, never put in a label.
    const app = await readApp(appDir, { what: (file) => `the slug's ${file}`, where: 'the slug' });
    const { release } = app;
    const processes = resolveProcesses(app);
    const processTypes = commandLines(processes);
    log.info(`Process types -> ${Object.keys(processTypes).join(', ') || '(none)'}`);
    // The image's bash launcher starts only from a current plan: a slug from another tool or
    // another slugkit version has none, and one it ships is never trusted over its own files.
    await writeLaunchPlan(app, processes);

    const result: BuildResult = {
      slug: { path: file, size, sha256: digest.slice('sha256:'.length) },
      buildpacks: [],
      processTypes,
      defaultProcess: processes.defaultType,
      processes,
      release,
      appDir,
      sourceVersion: opts.sourceVersion,
      stack: opts.stack,
      slugLayers,
      // No buildpack runs here: only slugkit writes the layer cache in this run.
      layerCacheTrusted: true,
    };
    await deliver(result);
    return result;
  } finally {
    await removeTemp(work);
  }
}
