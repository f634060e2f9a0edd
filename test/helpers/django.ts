/**
 * Real Django for the python buildpack's tests. PyPI is unreachable, so
 * Debian's packages (python3-django 3.2, gunicorn, whitenoise,
 * dj-database-url, psycopg2) are wrapped as wheels into a local wheelhouse
 * (test/fixtures/django/debian-wheels.py), built once per test run and
 * served from 127.0.0.1 (a sandboxed build sees no host /tmp), and the
 * builds get it as users hand a private index: PIP_FIND_LINKS and
 * PIP_NO_INDEX=1 config vars. The app is test/fixtures/apps/python-django,
 * made by `django-admin startproject mysite` with whitenoise and DATABASE_URL.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { FIXTURES } from './buildpack-harness.js';
import { skipOrFail } from './tools.js';

/** What the fixture's requirements.txt pins; Debian's metadata lists no dependencies, so all of them. */
export const DJANGO_DISTRIBUTIONS = ['Django', 'asgiref', 'sqlparse', 'pytz', 'gunicorn', 'whitenoise', 'dj-database-url', 'psycopg2'];
const MODULES = 'django, asgiref, sqlparse, pytz, gunicorn, whitenoise, dj_database_url, psycopg2';
const APT = 'apt-get install python3-django gunicorn python3-whitenoise python3-dj-database-url python3-psycopg2';

let wheelhouse: Promise<string | null> | undefined;

async function makeWheelhouse(): Promise<string | null> {
  // The stack's python3: the wheels must match the interpreter the buildpack uses.
  const probe = await execa('/usr/bin/python3', ['-c', `import ${MODULES}`], { reject: false });
  if (probe.exitCode !== 0) return null;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'slugkit-wheelhouse-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  await execa('/usr/bin/python3', [path.join(FIXTURES, '../django/debian-wheels.py'), dir, ...DJANGO_DISTRIBUTIONS]);
  const names = readdirSync(dir);
  const page = names.map((n) => `<a href="${n}">${n}</a>`).join('\n');
  const server = http.createServer((req, res) => {
    const name = (req.url ?? '/').split('?')[0].slice(1);
    if (name === '') return void res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    if (!names.includes(name)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(path.join(dir, name)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** The wheelhouse's URL, made and served once per process; null without Debian's Django packages. */
export function startDjangoWheelhouse(): Promise<string | null> {
  wheelhouse ??= makeWheelhouse();
  return wheelhouse;
}

/** The wheelhouse's URL (skipOrFail without Debian's Django packages). */
export async function djangoWheelhouse(ctx: Mocha.Context): Promise<string> {
  const dir = await startDjangoWheelhouse();
  if (dir === null) skipOrFail(ctx, `needs Debian's Django packages for the stack's python3 (${APT})`);
  return dir;
}

/** Config vars that make pip install from the wheelhouse only. */
export const wheelhouseConfig = (url: string): Record<string, string> => ({ PIP_FIND_LINKS: url, PIP_NO_INDEX: '1' });

export interface TestDatabase {
  /** postgres://…/NAME of a database made for this test. */
  url: string;
  /** psql on it: `-tAc SQL` answers. */
  query(sql: string): Promise<string>;
  drop(): Promise<void>;
}

/**
 * A fresh database on the PostgreSQL that SLUGKIT_TEST_DATABASE_URL names
 * (.ci/setup.d/50-postgres.sh starts one on 127.0.0.1); skipOrFail without it.
 */
export async function createTestDatabase(ctx: Mocha.Context, name: string): Promise<TestDatabase> {
  const base = process.env.SLUGKIT_TEST_DATABASE_URL;
  if (!base) skipOrFail(ctx, 'needs PostgreSQL: set SLUGKIT_TEST_DATABASE_URL (.ci/setup.d/50-postgres.sh starts one)');
  const url = new URL(base);
  const env = { ...process.env, PGPASSWORD: decodeURIComponent(url.password) };
  const args = ['-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username)];
  const created = await execa('createdb', [...args, name], { env, reject: false });
  if (created.exitCode !== 0) skipOrFail(ctx, `cannot create a database at ${url.host}: ${created.stderr}`);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    query: async (sql) => (await execa('psql', [...args, '-d', name, '-tAc', sql], { env })).stdout.trim(),
    drop: async () => void (await execa('dropdb', [...args, '--if-exists', name], { env, reject: false })),
  };
}

/**
 * What a user of the released app sees: `GET /admin/login/` from gunicorn,
 * and admin's base.css from whitenoise, by the name the manifest storage
 * hashed into the page and by its plain name.
 */
export async function expectAdminServed(origin: string): Promise<void> {
  const login = await fetch(`${origin}/admin/login/`);
  expect(login.status).to.equal(200);
  expect(login.headers.get('server')).to.match(/^gunicorn/);
  const page = await login.text();
  expect(page).to.contain('<title>Log in | Django site admin</title>');
  const href = /href="(\/static\/admin\/css\/base\.[0-9a-f]{12}\.css)"/.exec(page)?.[1];
  expect(href, 'hashed base.css in the login page').to.be.a('string');
  for (const path of [href as string, '/static/admin/css/base.css']) {
    const css = await fetch(`${origin}${path}`);
    expect(css.status, path).to.equal(200);
    expect(css.headers.get('content-type')).to.match(/^text\/css/);
    expect(await css.text()).to.contain('DJANGO Admin styles');
  }
}
