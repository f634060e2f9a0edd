/**
 * The one walk that removes paths of a source by gitignore-style patterns,
 * before any buildpack runs: `.slugignore` and project.toml's exclude remove
 * what matches, project.toml's include removes what does not. Links are never
 * entered (a Dirent of a link is no directory) and every removal goes through
 * removeInside, so a hostile source cannot point a removal out of the app.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import ignore from 'ignore';
import { removeInside } from '../../shared/fs.js';

/** Removes from `dir` what `patterns` exclude (or, with 'include', all they do not name); returns how many paths went. */
export async function removeByPatterns(dir: string, patterns: string | readonly string[], mode: 'exclude' | 'include'): Promise<number> {
  const matcher = ignore().add(patterns as string | string[]);
  const including = mode === 'include';
  let removed = 0;

  async function walk(rel: string): Promise<void> {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      const isDir = entry.isDirectory();
      const matched = matcher.ignores(isDir ? `${childRel}/` : childRel);
      if (including) {
        // A directory that is not included itself may still hold included files.
        if (matched) continue;
        if (isDir) {
          await walk(childRel);
          if ((await readdir(path.join(dir, childRel))).length === 0) {
            await removeInside(dir, childRel);
            removed += 1;
          }
          continue;
        }
      } else if (!matched) {
        if (isDir) await walk(childRel);
        continue;
      }
      await removeInside(dir, childRel);
      removed += 1;
    }
  }

  await lstat(dir);
  await walk('');
  return removed;
}
