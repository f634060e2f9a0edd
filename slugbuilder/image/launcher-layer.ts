/**
 * slugkit's launcher as an image layer of its own, as the lifecycle adds
 * /cnb/lifecycle/launcher: bin/slugrunner and bin/dyno.bash at /slugkit/bin,
 * which start a process type, a one-off `run` and the launch layers' exec.d
 * from the app's launch plan with bash alone. Every app image gets it and
 * its entrypoint is /slugkit/bin/slugrunner, so a run image needs only bash.
 *
 * The layer depends on nothing but these two files: root-owned, one fixed
 * mtime, a deterministic tar, so a given slugkit version always gives the
 * same diff_id (and, with the same zlib, the same digest).
 */
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, removeTemp } from '../../shared/fs.js';
import { packageRoot } from '../../shared/package.js';
import { DEFAULT_MTIME } from '../../shared/tar/pack.js';
import { compressTree } from '../slug.js';
import type { LayerResult } from './layer.js';

/** Where the launcher lives in the image. */
export const LAUNCHER_DIR = '/slugkit';
export const LAUNCHER = `${LAUNCHER_DIR}/bin/slugrunner`;
export const LAUNCHER_CREATED_BY = 'slugbuilder: launcher (slugkit/bin/slugrunner, dyno.bash)';

/** Writes the launcher layer to `outFile`. */
export async function writeLauncherLayer(outFile: string): Promise<LayerResult> {
  const stage = await makeTempDir('slugkit-launcher-');
  try {
    const bin = path.join(stage, 'bin');
    await mkdir(bin);
    for (const [name, mode] of [
      ['slugrunner', 0o755],
      ['dyno.bash', 0o644],
    ] as const) {
      await copyFile(path.join(packageRoot(), 'bin', name), path.join(bin, name));
      await chmod(path.join(bin, name), mode);
    }
    const out = await compressTree(stage, outFile, {
      pack: { prefix: `${LAUNCHER_DIR.slice(1)}/`, uid: 0, gid: 0, mtime: DEFAULT_MTIME },
      what: 'the launcher layer',
      hashTar: true,
    });
    return { path: outFile, digest: `sha256:${out.sha256}`, diffId: `sha256:${out.tarSha256}`, size: out.size };
  } finally {
    await removeTemp(stage);
  }
}
