/**
 * The git-push pipeline as an operator installs it, for tests: the hook
 * (examples/git-push/pre-receive) copied as both pre-receive and
 * post-receive into a bare repository, and `slugbuilder`, `slugrunner` and
 * `slugkit-app` on PATH as links to this checkout, as `npm install -g` makes
 * them (so the hook's sandbox finds the install they belong to).
 */
import { chmod, copyFile, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BUILDER, ROOT } from './cli.js';

export const HOOK = join(ROOT, 'examples/git-push/pre-receive');
export const SLUGKIT_APP = join(ROOT, 'examples/git-push/slugkit-app');

/** Install the hook into a bare repository. */
export async function installHook(bare: string): Promise<void> {
  for (const name of ['pre-receive', 'post-receive']) {
    await copyFile(HOOK, join(bare, 'hooks', name));
    await chmod(join(bare, 'hooks', name), 0o755);
  }
}

/** `bin` with slugbuilder, slugrunner and slugkit-app; returns its path. */
export async function installCommands(bin: string): Promise<string> {
  await mkdir(bin, { recursive: true });
  await symlink(BUILDER, join(bin, 'slugbuilder'));
  await symlink(join(ROOT, 'bin/slugrunner'), join(bin, 'slugrunner'));
  await symlink(SLUGKIT_APP, join(bin, 'slugkit-app'));
  return bin;
}
