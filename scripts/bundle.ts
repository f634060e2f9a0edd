/**
 * `npm run build`, second step: bundles each CLI with its dependencies into
 * one file, written over the `dist/<cli>/cli.js` that tsc just made, so what
 * the tests, the bench, the Dockerfiles and `bin/slugrunner` run is exactly
 * what users run.
 *
 * Why: Node 20 loads ES modules one file at a time, and start-up is on every
 * build's and every dyno's critical path; one file per CLI loads much faster
 * (figures in docs/BENCHMARKS.md).
 *
 * Paths the code finds relative to its own file (bundled buildpacks,
 * package.json) still resolve: the bundle sits where cli.js did. Modules the
 * code imports dynamically (yaml, node-tar in the runner) are in the bundle
 * but run only when first needed.
 */
import { chmodSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

for (const cli of ['slugbuilder', 'slugrunner']) {
  const file = path.join(dist, cli, 'cli.js');
  await build({
    entryPoints: [file],
    outfile: file,
    allowOverwrite: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // CommonJS dependencies bundled into an ES module still call require() for Node built-ins.
    banner: { js: "import { createRequire as __slugkitRequire } from 'node:module'; const require = __slugkitRequire(import.meta.url);" },
    // undici (the HTTP client behind every download, shared/proxy.ts) is loaded
    // from node_modules on the first request: a megabyte that a build or a dyno
    // start that never goes online need not parse.
    external: ['undici'],
    logLevel: 'warning',
  });
  // tsc's source map describes the file the bundle replaced.
  rmSync(`${file}.map`, { force: true });
  // Runnable as it is, through its #! line, the way npm's bin link runs it.
  chmodSync(file, 0o755);
}
