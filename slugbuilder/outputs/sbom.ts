/**
 * `--sbom-output-dir DIR` (pack's flag): every SBOM of the build in pack's
 * layout, `DIR/launch/`, `DIR/build/` and `DIR/cache/`, each
 * `<buildpack id with / as _>/[<layer>/]sbom.<ext>` (sbom/layout.ts). The
 * launch tree is the app's (the CNBs' launch SBOMs and slugkit's own
 * `slugkit/sbom.cdx.json`); build and cache come from the chain. Staged in a
 * temp dir beside DIR and renamed into place on commit, so a failed build
 * leaves no half-written DIR. DIR must be absent or an empty directory.
 */
import { chmod, mkdir, readdir, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SBOM } from '../../shared/app/layout.js';
import { UsageError } from '../../shared/errors.js';
import { makeTempDir, readFileInside, removeTemp, replaceWith } from '../../shared/fs.js';
import { log } from '../../shared/log.js';
import { plural } from '../../shared/units.js';
import type { BuildResult } from '../build.js';
import { sbomPath } from '../sbom/layout.js';
import type { Output, OutputKind } from './deliver.js';

export const SBOM_OPTIONS = {
  'sbom-output-dir': { type: 'string' },
} as const;

export const SBOM_USAGE = `  --sbom-output-dir DIR    write every SBOM of the build (launch/, build/, cache/) into DIR,
                           new or empty, in pack's layout
`;

export const sbomKind: OutputKind<{ 'sbom-output-dir'?: string }> = {
  parse(v) {
    const dir = v['sbom-output-dir'];
    if (dir === undefined) return undefined;
    return { flag: '--sbom-output-dir', check: () => checkSbomOutputDir(dir), outputs: () => [sbomOutput(dir)] };
  },
};

/** Refused before the build: a DIR that holds files (they would be mixed with this build's). */
export async function checkSbomOutputDir(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) throw new UsageError(`--sbom-output-dir ${dir} is not a directory: name a new or empty directory`);
  if ((await readdir(dir)).length > 0) throw new UsageError(`--sbom-output-dir ${dir} is not empty: name a new or empty directory`);
}

/** The regular files of the app's `.layers/sbom/launch/`, by path below `sbom/`; links are left out. */
async function appLaunchSboms(appDir: string): Promise<Array<{ rel: string; bytes: Buffer }>> {
  const out: Array<{ rel: string; bytes: Buffer }> = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(appDir, SBOM, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const child = path.posix.join(rel, e.name);
      if (e.isDirectory()) await walk(child);
      else if (e.isFile()) {
        const bytes = await readFileInside(appDir, path.join(SBOM, child));
        if (bytes) out.push({ rel: child, bytes });
      }
    }
  };
  await walk('launch');
  return out;
}

export function sbomOutput(dir: string): Output {
  return async (result: BuildResult) => {
    const target = path.resolve(dir);
    await checkSbomOutputDir(target);
    await mkdir(path.dirname(target), { recursive: true });
    const staged = await makeTempDir(`.${path.basename(target)}-`, path.dirname(target));
    try {
      const files = [
        ...(await appLaunchSboms(result.appDir)),
        ...(result.sboms ?? []).filter((f) => f.kind !== 'launch').map((f) => ({ rel: sbomPath(f), bytes: f.bytes })),
      ];
      for (const sub of ['launch', 'build', 'cache']) await mkdir(path.join(staged, sub));
      for (const f of files) {
        await mkdir(path.join(staged, path.dirname(f.rel)), { recursive: true });
        await writeFile(path.join(staged, f.rel), f.bytes, { mode: 0o644, flag: 'wx' });
      }
      log.info(`${plural(files.length, 'SBOM file')} for ${dir}`);
    } catch (err) {
      await removeTemp(staged);
      throw err;
    }
    return {
      summary: { sbomOutputDir: target },
      commit: async () => {
        // An empty DIR is replaced; checked again, as it may have filled since.
        await checkSbomOutputDir(target);
        await rmdir(target).catch(() => undefined);
        await chmod(staged, 0o755);
        await replaceWith(staged, target);
      },
      discard: () => removeTemp(staged),
    };
  };
}
