/**
 * The git-push pipeline (examples/git-push/pre-receive) with a real bare
 * repository and a real `git push` from a clone. The hook runs the host CLI
 * (dist/slugbuilder/cli.js) through a `slugbuilder` wrapper put on PATH, and
 * in the last test the builder image through SLUGBUILDER="docker run ...".
 */

import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa, type Options } from 'execa';
import { ROOT, slugPaths } from './helpers/cli.js';
import { BUILDER_IMAGE, buildSlugkitImages, dockerBinary, requireDocker } from './helpers/docker.js';
import { HOOK, installCommands, installHook } from './helpers/git-push.js';
import { requireTools, skipOrFail } from './helpers/tools.js';

const HELLO = join(ROOT, 'examples/hello');
const GIT_IDENTITY = ['-c', 'user.name=slugkit test', '-c', 'user.email=test@slugkit.invalid'];

describe('git-push pipeline: examples/git-push/pre-receive', function () {
  this.timeout(180_000);
  before(function () {
    requireTools(this, 'git');
  });
  let work: string;
  let bare: string;
  let clone: string;
  let store: string;
  let binDir: string;
  /** Environment of the pushing user; the hook (run by git-receive-pack) inherits it. */
  let pushEnv: NodeJS.ProcessEnv;

  const git = (cwd: string, args: string[], options: Options = {}) =>
    execa('git', [...GIT_IDENTITY, ...args], { cwd, env: pushEnv, ...options });
  const push = (args: string[] = ['origin', 'main'], env: NodeJS.ProcessEnv = {}) =>
    execa('git', ['push', ...args], { cwd: clone, env: { ...pushEnv, ...env }, reject: false, all: true });
  const bareRef = async (branch: string) =>
    (await execa('git', ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`], { cwd: bare, reject: false })).stdout.trim();
  const head = async () => String((await git(clone, ['rev-parse', 'HEAD'])).stdout).trim();

  /** Replace the clone's tree with `files` and commit it. */
  async function commitTree(files: Record<string, string>, message: string): Promise<string> {
    await git(clone, ['rm', '-rq', '--ignore-unmatch', '.']);
    for (const [name, content] of Object.entries(files)) await writeFile(join(clone, name), content);
    await git(clone, ['add', '-A']);
    await git(clone, ['commit', '-qm', message]);
    return head();
  }

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'slugkit-git-push-'));
    bare = join(work, 'hello.git');
    clone = join(work, 'clone');
    store = join(work, 'slugs');
    binDir = join(work, 'bin');
    // slugbuilder, slugrunner and slugkit-app on PATH, as `npm i -g slugkit` would provide them.
    await installCommands(binDir);
    pushEnv = {
      ...process.env,
      PATH: `${binDir}:${process.env.PATH}`,
      SLUG_STORE: store,
      // The build cache of this test run, not the user's.
      SLUGBUILDER_CACHE_DIR: join(work, 'cache'),
    };

    await execa('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    await installHook(bare);

    await mkdir(clone);
    await git(clone, ['init', '-q', '-b', 'main']);
    await git(clone, ['remote', 'add', 'origin', bare]);
    for (const name of await readdir(HELLO)) await copyFile(join(HELLO, name), join(clone, name));
    await git(clone, ['add', '-A']);
    await git(clone, ['commit', '-qm', 'hello']);
  });

  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('a good push shows the build log, stores release v1 with its summary, points current at it and moves the ref', async () => {
    const sha = await head();
    const result = await push();
    expect(result.exitCode, result.all).to.equal(0);
    expect(result.all).to.include(`remote: -----> Building hello from main at ${sha.slice(0, 12)}`);
    expect(result.all).to.match(/^remote: -----> Node\.js app detected/m);
    expect(result.all).to.match(/^remote: -----> Compiled slug size is/m);
    expect(result.all).to.include(`remote:        release v1: ${join(store, 'hello', 'releases/v1/slug.tgz')}`);

    const slug = join(store, 'hello', 'releases/v1/slug.tgz');
    expect(await slugPaths(slug)).to.include.members(['Procfile', 'server.js', '.release']);
    expect(await readlink(join(store, 'hello', 'current'))).to.equal('releases/v1/slug.tgz');
    expect(await readdir(join(store, 'hello'))).to.have.members(['releases', 'current', 'repo', '.lock']);
    expect(await readdir(join(store, 'hello', 'releases', 'v1'))).to.have.members(['slug.tgz', 'summary.json', 'info']);
    const summary = JSON.parse(await readFile(join(store, 'hello', 'releases/v1/summary.json'), 'utf8'));
    expect(summary.source_version).to.equal(sha);
    expect(summary.process_types).to.deep.equal({ web: 'node server.js' });
    expect(await readFile(join(store, 'hello', 'releases/v1/info'), 'utf8')).to.match(
      new RegExp(`^sha=${sha}\nbranch=main\ncreated=\\d{4}-`),
    );
    expect(await bareRef('main')).to.equal(sha);
    // The hook names the app, so it gets a build cache of its own.
    expect(await readdir(join(work, 'cache', 'apps'))).to.deep.equal(['hello']);
    // Readable as any file the hook's user creates (umask), not mktemp's 0600.
    const umask = parseInt(String((await execa('sh', ['-c', 'umask'])).stdout), 8);
    expect((await stat(slug)).mode & 0o777).to.equal(0o666 & ~umask);
  });

  it('a push no buildpack can build is rejected: the ref, current and the store stay as they were', async () => {
    const good = await head();
    expect((await push()).exitCode).to.equal(0);

    const broken = await commitTree({ 'notes.txt': 'no Procfile, no package.json\n' }, 'break the app');
    const result = await push();
    expect(result.exitCode).to.not.equal(0);
    expect(result.all).to.include(`remote: -----> Building hello from main at ${broken.slice(0, 12)}`);
    expect(result.all).to.match(/^remote:  ! +no buildpack detected this app/m);
    expect(result.all).to.match(/^remote:  ! +build of main failed: push rejected/m);
    expect(result.all).to.include('[remote rejected] main -> main (pre-receive hook declined)');

    expect(await bareRef('main')).to.equal(good);
    expect(await readlink(join(store, 'hello', 'current'))).to.equal('releases/v1/slug.tgz');
    // No slug for the broken commit, and no temp file left behind.
    expect(await readdir(join(store, 'hello'))).to.have.members(['releases', 'current', 'repo', '.lock']);
    expect(await readdir(join(store, 'hello', 'releases'))).to.deep.equal(['v1']);
  });

  it('streams the build log to the client while the build runs', async () => {
    // A builder that logs a line, then waits for the test to see that line on
    // the pushing client before it builds: if the hook's output were held
    // back until the end, the go file would never appear and the build fails.
    // The build runs in the hook's sandbox: the gate's dir is shown to it read-only.
    await mkdir(join(work, 'gate'));
    const go = join(work, 'gate', 'go');
    await writeFile(
      join(binDir, 'gated-builder'),
      `#!/bin/sh\necho '-----> gate: waiting for the client' >&2\n` +
        `i=0; while [ ! -e '${go}' ]; do i=$((i+1)); [ $i -gt 600 ] && { echo ' !     gate never opened' >&2; exit 1; }; sleep 0.1; done\n` +
        `exec slugbuilder "$@"\n`,
    );
    await chmod(join(binDir, 'gated-builder'), 0o755);
    const pushing = execa('git', ['push', '--progress', 'origin', 'main'], {
      cwd: clone,
      env: { ...pushEnv, SLUGBUILDER: 'gated-builder', SLUGKIT_SANDBOX_PATHS: join(work, 'gate') },
      reject: false,
      all: true,
    });
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      pushing.stderr?.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes('remote: -----> gate: waiting for the client')) resolve();
      });
      pushing.then(() => reject(new Error(`push ended before the gate line reached the client:\n${seen}`)), reject);
    });
    await writeFile(go, '');
    const result = await pushing;
    expect(result.exitCode, result.all).to.equal(0);
    expect(await bareRef('main')).to.equal(await head());
  });

  it('builds other branches without moving current, and runs SLUGKIT_RESTART for the deploy branch', async () => {
    const restartLog = join(work, 'restarts.log');
    const restart = `echo "restart $SLUGKIT_APP $SLUGKIT_SHA $SLUG" >> '${restartLog}'; echo 'app restarted' >&2`;
    const main = await head();
    const first = await push(['origin', 'main'], { SLUGKIT_RESTART: restart });
    expect(first.exitCode, first.all).to.equal(0);
    expect(first.all).to.include('remote: -----> Restarting hello');
    expect(first.all).to.include('remote: app restarted');

    await git(clone, ['checkout', '-qb', 'feature']);
    await writeFile(join(clone, 'README'), 'a feature\n');
    await git(clone, ['add', '-A']);
    await git(clone, ['commit', '-qm', 'feature']);
    const feature = await head();
    const second = await push(['origin', 'feature'], { SLUGKIT_RESTART: restart });
    expect(second.exitCode, second.all).to.equal(0);

    expect(await readdir(join(store, 'hello'))).to.have.members([
      'releases',
      `${feature}.tgz`,
      `${feature}.json`,
      'current',
      'repo',
      '.lock',
      'restart.log',
    ]);
    expect(await readlink(join(store, 'hello', 'current'))).to.equal('releases/v1/slug.tgz');
    expect(await readFile(restartLog, 'utf8')).to.equal(`restart hello ${main} ${join(store, 'hello', 'releases/v1/slug.tgz')}\n`);
    expect(await bareRef('feature')).to.equal(feature);
  });

  it('deploys main to a fresh repository whose HEAD still names master', async () => {
    await execa('git', ['symbolic-ref', 'HEAD', 'refs/heads/master'], { cwd: bare });
    const sha = await head();
    const result = await push();
    expect(result.exitCode, result.all).to.equal(0);
    expect(await readlink(join(store, 'hello', 'current'))).to.equal('releases/v1/slug.tgz');
    expect(await readFile(join(store, 'hello', 'releases/v1/info'), 'utf8')).to.include(`sha=${sha}\n`);
  });

  it('takes its settings from git config in the bare repository', async () => {
    const otherStore = join(work, 'configured-store');
    await execa('git', ['config', 'slugkit.store', otherStore], { cwd: bare });
    await execa('git', ['config', 'slugkit.app', 'web-app'], { cwd: bare });
    const sha = await head();
    const env = { ...pushEnv };
    delete env.SLUG_STORE;
    const result = await execa('git', ['push', 'origin', 'main'], { cwd: clone, env, reject: false, all: true });
    expect(result.exitCode, result.all).to.equal(0);
    expect(await readFile(join(otherStore, 'web-app', 'releases/v1/info'), 'utf8')).to.include(`sha=${sha}\n`);
    expect(existsSync(store)).to.equal(false);
  });

  it('rejects the push with one clear line when the build command is missing', async () => {
    const result = await push(['origin', 'main'], { SLUGBUILDER: 'no-such-slugbuilder' });
    expect(result.exitCode).to.not.equal(0);
    expect(result.all).to.match(/^remote:  ! +build command "no-such-slugbuilder" not found/m);
    expect(await bareRef('main')).to.equal('');
  });

  it('pre-receive and slugkit-app are shellcheck-clean', async function () {
    const shellcheck = await execa('shellcheck', ['--version'], { reject: false });
    if (shellcheck.failed) {
      skipOrFail(this, 'needs shellcheck (apt-get install shellcheck)');
    }
    const result = await execa('shellcheck', [HOOK, join(ROOT, 'examples/git-push/slugkit-app')], { reject: false, all: true });
    expect(result.exitCode, result.all).to.equal(0);
  });

  describe('with the builder image (SLUGBUILDER="docker run -i --rm ...")', () => {
    before(async function () {
      this.timeout(1_500_000);
      await requireDocker(this);
      await buildSlugkitImages();
    });

    it('builds through the container and stores the slug', async () => {
      const sha = await head();
      // Only this app's scratch dir (where --summary goes) and config are mounted, at their own paths; never the store.
      const user = `${process.getuid?.()}:${process.getgid?.()}`;
      // The host network and NODEJS_ORG_MIRROR: the run's Node mirror is on the host's 127.0.0.1 (test/helpers/isolate.ts).
      const mirror = process.env.NODEJS_ORG_MIRROR ? '--network host -e NODEJS_ORG_MIRROR' : '';
      const result = await push(['origin', 'main'], {
        SLUGKIT_SANDBOX: 'off',
        SLUGBUILDER: `${dockerBinary()} run -i --rm ${mirror} -e SOURCE_VERSION -e ENV_DIR -v {scratch}:{scratch} -v {config}:{config}:ro --user ${user} ${BUILDER_IMAGE}`,
      });
      expect(result.exitCode, result.all).to.equal(0);
      expect(result.all).to.match(/^remote: -----> Node\.js app detected/m);
      expect(await slugPaths(join(store, 'hello', 'releases/v1/slug.tgz'))).to.include.members(['Procfile', 'server.js']);
      expect(JSON.parse(await readFile(join(store, 'hello', 'releases/v1/summary.json'), 'utf8')).source_version).to.equal(sha);
      expect(await readlink(join(store, 'hello', 'current'))).to.equal('releases/v1/slug.tgz');
    });
  });
});
