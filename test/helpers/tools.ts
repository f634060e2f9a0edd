/**
 * Optional tools. A test that needs one skips with a printed reason where it
 * is missing, and fails instead when CI is set (.ci/setup.d installs them all),
 * so `npm test` passes on a machine with Node and Debian's base tools alone.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The Debian package that provides each tool, for the printed reason. */
const PACKAGES: Record<string, string> = {
  busybox: 'busybox-static',
  docker: 'docker.io',
  'docker-registry': 'docker-registry',
  git: 'git',
  gzip: 'gzip',
  htpasswd: 'apache2-utils',
  kubectl: 'kubernetes-client',
  'libdeflate-gzip': 'libdeflate-tools',
  python3: 'python3',
  shellcheck: 'shellcheck',
  skopeo: 'skopeo',
  tar: 'tar',
  umoci: 'umoci',
  unshare: 'util-linux',
  setpriv: 'util-linux',
  bwrap: 'bubblewrap',
};

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore' }).status === 0;
}

/** Skip the test (or the suite, from a `before` hook) saying why; under CI, fail. */
export function skipOrFail(ctx: Mocha.Context, reason: string): never {
  if (process.env.CI) throw new Error(`CI is set but this test ${reason}`);
  console.log(`      skipped: ${reason}`);
  ctx.skip();
}

export function requireTools(ctx: Mocha.Context, ...tools: string[]): void {
  const missing = tools.filter((t) => !hasCommand(t));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => PACKAGES[t] ?? t))];
  skipOrFail(ctx, `needs ${missing.join(', ')} (apt-get install ${packages.join(' ')})`);
}

let venvWorks: boolean | undefined;

/** python3 that can make a virtualenv with pip, as the python buildpack does (Debian ships venv apart). */
export function requirePythonVenv(ctx: Mocha.Context): void {
  venvWorks ??= canMakeVenv();
  if (!venvWorks) skipOrFail(ctx, 'needs python3 with venv and pip (apt-get install python3 python3-venv)');
}

function canMakeVenv(): boolean {
  if (!hasCommand('python3')) return false;
  const dir = mkdtempSync(path.join(tmpdir(), 'slugkit-venv-check-'));
  try {
    return spawnSync('python3', ['-m', 'venv', path.join(dir, 'venv')], { stdio: 'ignore', timeout: 120_000 }).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let bwrapChecked: boolean | undefined;

/** Whether bwrap is here and can make the build sandbox's namespaces (an unprivileged container usually cannot). */
export function bwrapWorks(): boolean {
  bwrapChecked ??=
    hasCommand('bwrap') &&
    spawnSync('bwrap', ['--unshare-all', '--unshare-user', '--share-net', '--ro-bind', '/', '/', 'true'], { stdio: 'ignore' }).status === 0;
  return bwrapChecked;
}

export function requireBwrap(ctx: Mocha.Context): void {
  requireTools(ctx, 'bwrap');
  if (!bwrapWorks()) skipOrFail(ctx, 'needs bwrap that can create user, mount and PID namespaces here (an unprivileged container cannot)');
}
