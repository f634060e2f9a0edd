/**
 * What the benchmarks run on, besides the generated trees: a no-op classic
 * buildpack, the source tarball of the app tree, and the minimal app's slug.
 * All live under `.bench-data/` and are rebuilt only when missing.
 */
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';

/** A classic buildpack that detects anything and changes nothing. */
export function ensureNoopBuildpack(dir: string): string {
  const scripts: Record<string, string> = {
    detect: '#!/usr/bin/env bash\necho noop\n',
    compile: '#!/usr/bin/env bash\nexit 0\n',
    release: '#!/usr/bin/env bash\nprintf -- "---\\ndefault_process_types:\\n  web: node server.js\\n"\n',
  };
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  for (const [name, body] of Object.entries(scripts)) {
    const file = path.join(dir, 'bin', name);
    writeFileSync(file, body);
    chmodSync(file, 0o755);
  }
  return dir;
}

/** An uncompressed tarball of `tree`, as `git archive` would pipe into slugbuilder. */
export async function ensureSourceTar(tree: string, file: string): Promise<string> {
  if (existsSync(file)) return file;
  await execa('tar', ['-cf', `${file}.tmp`, '-C', tree, '.']);
  renameSync(`${file}.tmp`, file);
  return file;
}

/** The slug of the minimal app (examples/hello), made by the real slugbuilder. */
export async function ensureMinimalSlug(opts: {
  builderCli: string;
  appDir: string;
  buildpack: string;
  cacheDir: string;
  file: string;
}): Promise<string> {
  if (existsSync(opts.file)) return opts.file;
  await execa(
    'node',
    [opts.builderCli, '--source', opts.appDir, '--buildpack', opts.buildpack, '--cache-dir', opts.cacheDir, '-o', opts.file],
    { stdin: 'ignore' },
  );
  return opts.file;
}
