/**
 * Where slugkit's own files are: the package root (the directory with slugkit's
 * package.json) found by walking up from this module, so it holds for the
 * bundled CLIs in dist/<cli>/, for tsc's unbundled dist/ tree and in images.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface PackageInfo {
  root: string;
  version: string;
}

let found: PackageInfo | undefined;

function locate(): PackageInfo {
  if (found) return found;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'slugkit') {
        found = { root: dir, version: pkg.version ?? 'unknown' };
        return found;
      }
    } catch {
      // not here: go up
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      found = { root: path.resolve(fileURLToPath(import.meta.url), '../../..'), version: 'unknown' };
      return found;
    }
    dir = parent;
  }
}

/** The package root: `buildpacks/` and `package.json` live here. */
export function packageRoot(): string {
  return locate().root;
}

/** slugkit's version, from its package.json. */
export function slugkitVersion(): string {
  return locate().version;
}
