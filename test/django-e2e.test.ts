/**
 * The design brief's worked example, end to end with real parts: a Django
 * project made by `django-admin startproject` (test/fixtures/apps/python-django,
 * with whitenoise and DATABASE_URL), pushed with `git push` to a bare
 * repository whose pre-receive hook (examples/git-push) builds it with the
 * bundled python buildpack from a wheelhouse of Debian's packages (config
 * vars PIP_FIND_LINKS and PIP_NO_INDEX=1, as a private index), runs the
 * release phase (`python manage.py migrate --noinput`, declared by the
 * buildpack) against a real PostgreSQL on 127.0.0.1 (started by
 * .ci/setup.d/50-postgres.sh, found through SLUGKIT_TEST_DATABASE_URL), and
 * then serves the release with gunicorn: the admin login page from Django,
 * its stylesheet from whitenoise.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { FIXTURES, startWeb } from './helpers/buildpack-harness.js';
import { createTestDatabase, djangoWheelhouse, expectAdminServed, type TestDatabase, wheelhouseConfig } from './helpers/django.js';
import { installCommands, installHook } from './helpers/git-push.js';
import { requirePythonVenv, requireTools } from './helpers/tools.js';

const GIT_IDENTITY = ['-c', 'user.name=slugkit test', '-c', 'user.email=test@slugkit.invalid'];

describe('Django end to end: git push, release phase migrating PostgreSQL, gunicorn and whitenoise', function () {
  this.timeout(600_000);
  let work: string;
  let pushEnv: NodeJS.ProcessEnv;
  let db: TestDatabase | undefined;

  before(async function () {
    requireTools(this, 'git');
    requirePythonVenv(this);
    db = await createTestDatabase(this, `slugkit_e2e_${process.pid}`);
    const databaseUrl = db.url;
    const wheels = await djangoWheelhouse(this);

    work = await mkdtemp(join(tmpdir(), 'slugkit-django-e2e-'));
    const binDir = await installCommands(join(work, 'bin'));
    pushEnv = {
      ...process.env,
      PATH: `${binDir}:${process.env.PATH}`,
      SLUG_STORE: join(work, 'slugs'),
      SLUGBUILDER_CACHE_DIR: join(work, 'cache'),
    };

    const bare = join(work, 'mysite.git');
    await execa('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    await installHook(bare);
    const config = { ...wheelhouseConfig(wheels), DATABASE_URL: databaseUrl, SECRET_KEY: 'e2e-secret-key-of-this-test-run' };
    const set = await execa('slugkit-app', ['config:set', 'mysite', ...Object.entries(config).map(([k, v]) => `${k}=${v}`)], {
      env: pushEnv,
      reject: false,
    });
    expect(set.exitCode, set.stderr).to.equal(0);

    const clone = join(work, 'clone');
    await cp(join(FIXTURES, 'python-django'), clone, { recursive: true });
    await execa('git', ['init', '-q', '-b', 'main'], { cwd: clone });
    await execa('git', ['remote', 'add', 'origin', bare], { cwd: clone });
    await execa('git', [...GIT_IDENTITY, 'add', '-A'], { cwd: clone });
    await execa('git', [...GIT_IDENTITY, 'commit', '-qm', 'startproject mysite'], { cwd: clone });
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
    await db?.drop();
  });

  it('the push builds, the release phase creates the tables, and the release answers from gunicorn and whitenoise', async () => {
    const push = await execa('git', ['push', 'origin', 'main'], { cwd: join(work, 'clone'), env: pushEnv, reject: false, all: true });
    expect(push.exitCode, push.all).to.equal(0);
    expect(push.all).to.match(/^remote: -----> Python app detected/m);
    expect(push.all).to.include('remote:        Default types for buildpack -> web, release');
    expect(push.all).to.include('Running the release phase of mysite');
    expect(push.all).to.include('Applying auth.0001_initial... OK');
    expect(push.all).to.include('Applying sessions.0001_initial... OK');

    expect(await db!.query("SELECT to_regclass('public.auth_user') IS NOT NULL")).to.equal('t');

    const app = await startWeb({ slug: join(work, 'slugs/mysite/current'), env: { DATABASE_URL: db!.url, SECRET_KEY: 'e2e' } });
    try {
      await expectAdminServed(app.origin);
    } finally {
      await app.stop();
    }
  });
});
