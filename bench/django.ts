/**
 * P6-DJANGO: P6's figure for a Django app. Builds
 * test/fixtures/apps/python-django (Django 3.2 and friends from the Debian
 * wheelhouse of test/helpers/django.ts, served on 127.0.0.1) with the python
 * buildpack, cold (empty cache dir) then warm (same cache dir: the
 * virtualenv restored, no pip run), alternating, and reports the medians.
 */
import path from 'node:path';
import { startDjangoWheelhouse, wheelhouseConfig } from '../test/helpers/django.js';
import { cli, cpuNote, type Row, ratioText, type Setup, warmVsCold } from './cases.js';
import { seconds, timed } from './measure.js';

export async function p6Django(s: Setup): Promise<Row> {
  const row = { id: 'P6-DJANGO', what: 'warm rebuild of test/fixtures/apps/python-django (python buildpack)', goal: '≤ 0.2× (P6’s)' };
  const wheels = await startDjangoWheelhouse();
  if (!wheels) {
    const reason = 'needs Debian python3-django gunicorn python3-whitenoise python3-dj-database-url python3-psycopg2';
    return { ...row, slugkit: '—', baseline: '—', ratio: '—', met: 'skipped', notes: [`skipped: ${reason}`] };
  }
  const cache = path.join(s.work, 'p6-django-cache');
  const config = Object.entries(wheelhouseConfig(wheels)).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const app = path.join(s.repo, 'test/fixtures/apps/python-django');
  const buildpack = path.join(s.repo, 'buildpacks/python');
  const slug = path.join(s.work, 'p6-django-slug.tgz');
  const build = (env: NodeJS.ProcessEnv) =>
    timed('node', [cli(s, 'slugbuilder'), '--source', app, '--buildpack', buildpack, '--cache-dir', cache, '-o', slug, ...config], { env });
  const { cold, warm, c, w, ratio } = await warmVsCold(s, cache, build);
  return {
    ...row,
    slugkit: `warm ${seconds(w.wallMs)}`,
    baseline: `cold ${seconds(c.wallMs)}`,
    ratio: ratioText(ratio),
    met: ratio <= 0.2 ? 'yes' : 'no',
    notes: [
      cpuNote('cold (empty cache dir; pip installs 8 wheels from the wheelhouse, collectstatic)', cold),
      cpuNote('warm (same cache dir: the virtualenv restored, no pip; collectstatic runs again)', warm),
    ],
  };
}
