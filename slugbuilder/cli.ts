#!/usr/bin/env -S node --
/**
 * slugbuilder: a source tarball in, a slug out.
 *   git archive HEAD | slugbuilder > slug.tgz
 * Logs go to stderr; stdout carries only the slug.
 *
 * The dispatcher only: each command is a module in cli/ (build.ts for the
 * build itself), parsed by shared/command.ts.
 *
 * The "--" in the #! line stops Node 20 from taking our --env-file for its own
 * (it reads the flag even after the script name, and exits 9 on a missing file).
 */
import { runCli } from '../shared/cli-run.js';
import { defaultCacheRoot } from './cli/app.js';
import { buildCommand } from './cli/build.js';
import { cacheCommand } from './cli/cache.js';
import { manifestsCommand } from './cli/manifests.js';
import { rebaseCommand } from './cli/rebase.js';

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'rebase') return rebaseCommand(rest);
  if (command === 'manifests') return manifestsCommand(rest);
  if (command === 'cache') return cacheCommand(rest, defaultCacheRoot(process.env), process.env);
  return buildCommand(argv);
}

await runCli(() => main(process.argv.slice(2)));
