/**
 * `.slugignore`: gitignore-style patterns whose matches are deleted from the
 * build dir before any buildpack runs, as Heroku does (older tools applied it
 * at tar time, after compile, which users reported as a bug).
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import ignore from 'ignore';
import { readTextInside } from '../../shared/fs.js';
import { log } from '../../shared/log.js';

export async function applySlugignore(buildDir: string): Promise<number> {
  const text = await readTextInside(buildDir, '.slugignore');
  if (text === undefined) return 0;
  const matcher = ignore().add(text);
  let removed = 0;

  async function walk(rel: string): Promise<void> {
    const entries = await readdir(path.join(buildDir, rel), { withFileTypes: true });
    for (const entry of entries) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      const isDir = entry.isDirectory();
      if (matcher.ignores(isDir ? `${childRel}/` : childRel)) {
        await rm(path.join(buildDir, childRel), { recursive: true, force: true });
        removed += 1;
      } else if (isDir) {
        await walk(childRel);
      }
    }
  }

  await lstat(buildDir);
  await walk('');
  if (removed > 0) log.step(`Removed ${removed} path${removed === 1 ? '' : 's'} matching .slugignore`);
  return removed;
}
