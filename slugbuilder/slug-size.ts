/**
 * What takes the room in a slug over its limit: the app dir's largest
 * top-level entries, so the user knows what to put in .slugignore. Sizes are
 * the files' own (before compression), a hard link counted as often as the
 * slug holds it (in full each time), symlinks never followed.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { formatSize } from '../shared/units.js';

/** How many entries the message names. */
const SHOWN = 3;

export interface EntrySize {
  name: string;
  bytes: number;
}

/** Bytes under `p` (itself included), never through a link: a symlink is its own few bytes. */
async function sizeOf(p: string): Promise<number> {
  const st = await lstat(p);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of await readdir(p)) total += await sizeOf(path.join(p, name));
  return total;
}

/** The top-level entries of `dir` that `keep` admits, largest first. */
export async function largestEntries(dir: string, keep: (rel: string) => boolean): Promise<EntrySize[]> {
  const sizes: EntrySize[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (keep(name)) sizes.push({ name, bytes: await sizeOf(path.join(dir, name)) });
  }
  return sizes.sort((a, b) => b.bytes - a.bytes);
}

/** `slug is 612.4M, over the 500.0M limit; largest before compression: node_modules 480.2M, .cache 90.1M, …` */
export function overLimitMessage(size: number, limit: number, largest: EntrySize[]): string {
  const shown = largest.slice(0, SHOWN).map((e) => `${e.name} ${formatSize(e.bytes)}`);
  const more = largest.length > SHOWN ? ', …' : '';
  const where = shown.length > 0 ? `; largest before compression: ${shown.join(', ')}${more}` : '';
  return `slug is ${formatSize(size)}, over the ${formatSize(limit)} limit${where}`;
}
