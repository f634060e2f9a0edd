/**
 * Temp dirs to remove however the process ends: on success, on error, and on
 * SIGTERM/SIGINT (which would otherwise skip every `finally`).
 */
import { rmSync } from 'node:fs';

const paths = new Set<string>();

export function removeOnExit(p: string): void {
  paths.add(p);
}

export function forget(p: string): void {
  paths.delete(p);
}

export function removeAllNow(): void {
  for (const p of paths) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // best effort while exiting
    }
  }
  paths.clear();
}
