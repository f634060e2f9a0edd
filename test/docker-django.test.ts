/**
 * The design brief's Django app as an OCI image, run by Docker: the project
 * made by `django-admin startproject` (test/fixtures/apps/python-django) is
 * built by the real slugbuilder CLI on this machine, from the wheelhouse of
 * Debian's packages, with `--run-image` a Python run image (Dockerfile.runner
 * on a Debian stack with python3 and libpq5, test/helpers/docker.ts) and
 * `--image` an archive that `docker load` reads. Then what a user types:
 * `docker run IMAGE start release` migrates a real PostgreSQL on 127.0.0.1
 * (the host network reaches it), and `docker run IMAGE` serves the admin
 * login page from gunicorn and its stylesheet from whitenoise.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { FIXTURES } from './helpers/buildpack-harness.js';
import { BUILDER, freePort } from './helpers/cli.js';
import { createTestDatabase, djangoWheelhouse, expectAdminServed, type TestDatabase } from './helpers/django.js';
import {
  buildPythonRunnerImage,
  containerName,
  docker,
  fetchWhenUp,
  imageExists,
  PYTHON_RUNNER_IMAGE,
  PYTHON_STACK_IMAGE,
  removeContainers,
  requireDocker,
} from './helpers/docker.js';
import { requirePythonVenv, requireTools } from './helpers/tools.js';

describe('Django as an OCI image on a Python run image, run by Docker against PostgreSQL', function () {
  this.timeout(1_800_000);
  const tag = `slugkit-test/django:${process.pid}`;
  const containers: string[] = [];
  let work: string | undefined;
  let db: TestDatabase | undefined;
  let build: { exitCode?: number; all?: string };

  before(async function () {
    await requireDocker(this);
    if (!(await imageExists(PYTHON_STACK_IMAGE))) requireTools(this, 'debootstrap');
    requirePythonVenv(this);
    db = await createTestDatabase(this, `slugkit_image_${process.pid}`);
    const wheels = await djangoWheelhouse(this);
    await buildPythonRunnerImage();
    work = await mkdtemp(join(tmpdir(), 'slugkit-docker-django-'));
    await docker(['save', '-o', join(work, 'runner.tar'), PYTHON_RUNNER_IMAGE]);
    // As a user builds it: config vars for the private index, the run image
    // and the image archive named on the command line.
    build = await execa(
      'node',
      [
        BUILDER,
        '--source',
        join(FIXTURES, 'python-django'),
        '--cache-dir',
        join(work, 'cache'),
        '-e',
        `PIP_FIND_LINKS=${wheels}`,
        '-e',
        'PIP_NO_INDEX=1',
        '--run-image',
        `docker-archive:${join(work, 'runner.tar')}`,
        '--image',
        `oci-archive:${join(work, 'app.tar')}:${tag}`,
      ],
      { reject: false, all: true, timeout: 900_000 },
    );
  });

  after(async () => {
    await removeContainers(containers);
    await docker(['rmi', '-f', tag], { reject: false });
    if (work) await rm(work, { recursive: true, force: true });
    await db?.drop();
  });

  it('slugbuilder --image writes an archive that docker load names', async () => {
    expect(build.exitCode, build.all).to.equal(0);
    expect(build.all).to.include('Default types for buildpack -> web, release');
    expect(build.all).to.include(`docker load will name it ${tag}`);
    const { stdout } = await docker(['load', '-i', join(work as string, 'app.tar')]);
    expect(String(stdout)).to.include(`Loaded image: ${tag}`);
  });

  it('docker run IMAGE start release migrates PostgreSQL', async () => {
    const env = ['-e', `DATABASE_URL=${db?.url}`, '-e', 'SECRET_KEY=image-test'];
    const release = await docker(['run', '--rm', '--network', 'host', ...env, tag, 'start', 'release'], { reject: false, all: true });
    expect(release.exitCode, String(release.all)).to.equal(0);
    expect(String(release.all)).to.include('Applying auth.0001_initial... OK');
    expect(String(release.all)).to.include('Applying sessions.0001_initial... OK');
    expect(await db?.query("SELECT to_regclass('public.auth_user') IS NOT NULL")).to.equal('t');
  });

  it('docker run IMAGE serves the admin login page from gunicorn and its stylesheet from whitenoise', async () => {
    const name = containerName('django');
    containers.push(name);
    // The host network reaches PostgreSQL on 127.0.0.1; gunicorn listens
    // there only (it would take 0.0.0.0:$PORT by default).
    const port = await freePort();
    const env = ['-e', `PORT=${port}`, '-e', `GUNICORN_CMD_ARGS=--bind=127.0.0.1:${port}`];
    env.push('-e', `DATABASE_URL=${db?.url}`, '-e', 'SECRET_KEY=image-test');
    await docker(['run', '-d', '--name', name, '--network', 'host', ...env, tag]);
    try {
      expect((await fetchWhenUp(`http://127.0.0.1:${port}/admin/login/`, 120_000)).status).to.equal(200);
      await expectAdminServed(`http://127.0.0.1:${port}`);
    } catch (err) {
      const logs = await docker(['logs', name], { reject: false, all: true });
      throw new Error(`${(err as Error).message}\ncontainer log:\n${String(logs.all).slice(-3000)}`);
    }
  });
});
