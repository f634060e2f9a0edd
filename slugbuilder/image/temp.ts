/**
 * Temp dirs and files of the image code, registered with shared/cleanup so a
 * SIGTERM/SIGINT (which skips every `finally`) still removes them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { forget, removeOnExit } from '../../shared/cleanup.js';

/** A new temp dir under `parent` (default: the system temp dir). */
export async function makeTempDir(prefix: string, parent = os.tmpdir()): Promise<string> {
  const dir = await mkdtemp(path.join(parent, prefix));
  removeOnExit(dir);
  return dir;
}

/** Remember a temp file that is about to be written. */
export function tempFile(target: string): string {
  const tmp = `${target}.${process.pid}.tmp`;
  removeOnExit(tmp);
  return tmp;
}

/** Remove a temp dir or file now (done with it, or it failed). */
export async function removeTemp(p: string): Promise<void> {
  await rm(p, { recursive: true, force: true });
  forget(p);
}

/** A temp file that was renamed into place: nothing left to remove. */
export function keptTemp(p: string): void {
  forget(p);
}
