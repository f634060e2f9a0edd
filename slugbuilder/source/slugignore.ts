/**
 * `.slugignore`: gitignore-style patterns whose matches are deleted from the
 * build dir before any buildpack runs, as Heroku does (older tools applied it
 * at tar time, after compile, which users reported as a bug).
 */
import { readTextInside } from '../../shared/fs.js';
import { log } from '../../shared/log.js';
import { plural } from '../../shared/units.js';
import { removeByPatterns } from './path-filter.js';

export async function applySlugignore(buildDir: string): Promise<number> {
  const text = await readTextInside(buildDir, '.slugignore');
  if (text === undefined) return 0;
  const removed = await removeByPatterns(buildDir, text, 'exclude');
  if (removed > 0) log.step(`Removed ${plural(removed, 'path')} matching .slugignore`);
  return removed;
}
