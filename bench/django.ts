/**
 * P6-style figure for a Django app: `npm run build --silent && node dist/bench/django.js [ROUNDS]`.
 * Builds test/fixtures/apps/python-django (Django 3.2 and friends from the
 * Debian wheelhouse of test/helpers/django.ts, served on 127.0.0.1) with the
 * python buildpack, cold (empty cache dir) then warm (same cache dir, the
 * virtualenv reused), ROUNDS times (default 3), and prints the medians.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDjangoWheelhouse, wheelhouseConfig } from '../test/helpers/django.js';
import { medianRun, type Run, seconds, timed } from './measure.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3);
  const wheels = await startDjangoWheelhouse();
  if (!wheels) throw new Error('needs Debian python3-django gunicorn python3-whitenoise python3-dj-database-url python3-psycopg2');
  const work = mkdtempSync(path.join(tmpdir(), 'slugkit-bench-django-'));
  try {
    const config = Object.entries(wheelhouseConfig(wheels)).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const cache = path.join(work, 'cache');
    const build = () =>
      timed(process.execPath, [
        path.join(repo, 'dist/slugbuilder/cli.js'),
        '--source',
        path.join(repo, 'test/fixtures/apps/python-django'),
        '--buildpack',
        path.join(repo, 'buildpacks/python'),
        '--cache-dir',
        cache,
        '-o',
        path.join(work, 'slug.tgz'),
        ...config,
      ]);
    const cold: Run[] = [];
    const warm: Run[] = [];
    for (let i = 0; i < rounds; i++) {
      rmSync(cache, { recursive: true, force: true });
      cold.push(await build());
      warm.push(await build());
    }
    const c = medianRun(cold);
    const w = medianRun(warm);
    console.log(
      `Django rebuild (python buildpack), median of ${rounds}: cold ${seconds(c.wallMs)}, warm ${seconds(w.wallMs)}, ratio ${(w.wallMs / c.wallMs).toFixed(2)}×`,
    );
    console.log(`cold runs: ${cold.map((r) => seconds(r.wallMs)).join(', ')}; warm runs: ${warm.map((r) => seconds(r.wallMs)).join(', ')}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`bench failed: ${err.message}`);
    process.exit(1);
  },
);
