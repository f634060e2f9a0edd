/**
 * What a PaaS user does after the first push, through real `git push`es to
 * a real bare repository (examples/git-push/pre-receive), the real CLIs and
 * examples/git-push/slugkit-app: the release phase, config vars, releases
 * and rollback. The restart command runs the real slugrunner on the new
 * slug (`slugrunner run`), which records the release and a config var.
 */

import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { ROOT } from './helpers/cli.js';
import { installCommands, installHook, SLUGKIT_APP } from './helpers/git-push.js';
import { requireTools } from './helpers/tools.js';

const HELLO = join(ROOT, 'examples/hello');
const GIT_IDENTITY = ['-c', 'user.name=slugkit test', '-c', 'user.email=test@slugkit.invalid'];
const SECRET = 'sk-live-0123456789abcdef';

describe('git-push pipeline: release phase, config vars, releases and rollback', function () {
  this.timeout(180_000);
  let work: string;
  let clone: string;
  let store: string;
  let restarts: string;
  let env: NodeJS.ProcessEnv;

  const git = (args: string[]) => execa('git', [...GIT_IDENTITY, ...args], { cwd: clone, env });
  const push = () => execa('git', ['push', 'origin', 'main'], { cwd: clone, env, reject: false, all: true });
  const slugkitApp = (args: string[]) => execa(SLUGKIT_APP, args, { env, reject: false, all: true });
  const appStore = (...parts: string[]) => join(store, 'hello', ...parts);
  const restartLog = async () => (await readFile(restarts, 'utf8').catch(() => '')).split('\n').filter(Boolean);

  /** Commit a Procfile (and other files) over examples/hello. */
  async function commit(files: Record<string, string>, message: string): Promise<string> {
    for (const [name, content] of Object.entries(files)) await writeFile(join(clone, name), content);
    await git(['add', '-A']);
    await git(['commit', '-qm', message]);
    return String((await git(['rev-parse', 'HEAD'])).stdout).trim();
  }

  before(function () {
    requireTools(this, 'git');
  });

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'slugkit-pipeline-'));
    const bare = join(work, 'hello.git');
    clone = join(work, 'clone');
    store = join(work, 'slugs');
    restarts = join(work, 'restarts.log');
    const bin = join(work, 'bin');
    await installCommands(bin);
    env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      SLUG_STORE: store,
      SLUGBUILDER_CACHE_DIR: join(work, 'cache'),
    };
    await execa('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    await installHook(bare);
    // The restart a user would configure, with a real slugrunner on the new slug.
    const restart =
      `slugrunner -q --slug "$SLUG" --app-dir '${join(work, 'app')}' run ` +
      `'printf "%s %s %s\\n" "$SLUGKIT_RELEASE" "\${GREETING:-unset}" "$SLUGKIT_FORMATION" >> ${restarts}'`;
    await execa('git', ['config', 'slugkit.restart', restart], { cwd: bare });

    await mkdir(clone);
    await execa('git', ['init', '-q', '-b', 'main'], { cwd: clone });
    await execa('git', ['remote', 'add', 'origin', bare], { cwd: clone });
    for (const name of await readdir(HELLO)) await copyFile(join(HELLO, name), join(clone, name));
  });

  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it("runs the release process before going live, with the config vars, its output on the pusher's terminal", async () => {
    // The release command shows what it sees and leaves a mark the test can find.
    await commit(
      { Procfile: `web: node server.js\nrelease: echo "migrating with GREETING=$GREETING"; touch '${join(work, 'migrated')}'\n` },
      'with a release phase',
    );
    const set = await slugkitApp(['config:set', 'hello', 'GREETING=bonjour']);
    expect(set.exitCode, set.all).to.equal(0);

    const result = await push();
    expect(result.exitCode, result.all).to.equal(0);
    expect(result.all).to.include('remote: -----> Running the release phase of hello (release process type)');
    expect(result.all).to.include('remote: migrating with GREETING=bonjour');
    // The release phase comes before the new release goes live.
    expect(result.all.indexOf('migrating with')).to.be.below(result.all.indexOf('release v1:'));
    expect(await readlink(appStore('current'))).to.equal('releases/v1/slug.tgz');
    expect(await restartLog()).to.deep.equal(['v1 bonjour web=1']);
  });

  it('a failing release process rejects the push: current, the ref and the running release stay as they were', async () => {
    await commit(
      { Procfile: 'web: node server.js\nrelease: test ! -e broken-migration || { echo "migration failed" >&2; exit 4; }\n' },
      'v1',
    );
    expect((await push()).exitCode).to.equal(0);
    const good = String((await execa('git', ['rev-parse', 'main'], { cwd: join(work, 'hello.git') })).stdout).trim();

    await commit({ 'broken-migration': 'yes\n' }, 'break the migration');
    const result = await push();
    expect(result.exitCode).to.not.equal(0);
    expect(result.all).to.include('remote: migration failed');
    expect(result.all).to.match(/^remote:  ! +release command failed \(exit 4\): push rejected, v1 stays live\s*$/m);
    expect(result.all).to.include('[remote rejected] main -> main (pre-receive hook declined)');
    expect(String((await execa('git', ['rev-parse', 'main'], { cwd: join(work, 'hello.git') })).stdout).trim()).to.equal(good);
    expect(await readlink(appStore('current'))).to.equal('releases/v1/slug.tgz');
    expect(await readdir(appStore('releases'))).to.deep.equal(['v1']);
    // No restart for the rejected push, and no temp file left in the store.
    expect(await restartLog()).to.deep.equal(['v1 unset web=1']);
    expect((await readdir(appStore())).filter((n) => n.endsWith('.tmp') || n.endsWith('.json'))).to.deep.equal([]);
  });

  it('config:set restarts on the current slug without a rebuild; values stay hidden unless asked', async () => {
    await commit({}, 'hello');
    expect((await push()).exitCode).to.equal(0);
    const slugMtime = (await stat(appStore('releases/v1/slug.tgz'))).mtimeMs;

    const set = await slugkitApp(['config:set', 'hello', 'GREETING=howdy', `API_TOKEN=${SECRET}`]);
    expect(set.exitCode, set.all).to.equal(0);
    expect(set.all).to.include('-----> Set GREETING API_TOKEN for hello');
    expect(set.all).to.include('-----> Restarting hello on v1');
    expect(set.all).to.not.include('howdy');
    expect(set.all).to.not.include(SECRET);
    expect(await restartLog()).to.deep.equal(['v1 unset web=1', 'v1 howdy web=1']);
    // No new release, the same slug file.
    expect(await readdir(appStore('releases'))).to.deep.equal(['v1']);
    expect((await stat(appStore('releases/v1/slug.tgz'))).mtimeMs).to.equal(slugMtime);

    // The store: one file per var, readable by its owner only.
    expect((await stat(appStore('config'))).mode & 0o777).to.equal(0o700);
    expect((await stat(appStore('config', 'API_TOKEN'))).mode & 0o777).to.equal(0o600);
    expect(await readFile(appStore('config', 'API_TOKEN'), 'utf8')).to.equal(SECRET);

    const listed = await slugkitApp(['config', 'hello']);
    expect(listed.exitCode).to.equal(0);
    expect(listed.stdout).to.equal('=== hello config vars\nAPI_TOKEN\nGREETING');
    expect((await slugkitApp(['config', 'hello', '--reveal'])).stdout).to.include(`API_TOKEN=${SECRET}\nGREETING=howdy`);
    expect((await slugkitApp(['config:get', 'hello', 'GREETING'])).stdout).to.equal('howdy');

    const unset = await slugkitApp(['config:unset', 'hello', 'GREETING']);
    expect(unset.exitCode, unset.all).to.equal(0);
    expect((await restartLog()).at(-1)).to.equal('v1 unset web=1');

    const bad = await slugkitApp(['config:set', 'hello', '1BAD=x']);
    expect(bad.exitCode).to.equal(2);
    expect(bad.all).to.match(/^ ! +config:set: "1BAD" is not a variable name/);
  });

  it('the config reaches the build as ENV_DIR, without its values in the build log', async () => {
    await commit({}, 'hello');
    expect((await slugkitApp(['config:set', 'hello', `NPM_TOKEN=${SECRET}`])).exitCode).to.equal(0);
    // A buildpack that prints the var it got from ENV_DIR: the log must show it redacted.
    const buildpack = join(work, 'printing-buildpack');
    await mkdir(join(buildpack, 'bin'), { recursive: true });
    await writeFile(join(buildpack, 'bin/detect'), '#!/bin/sh\necho printing\n');
    await writeFile(join(buildpack, 'bin/compile'), '#!/bin/sh\necho "-----> token is $(cat "$3/NPM_TOKEN")"\n');
    await writeFile(join(buildpack, 'bin/release'), '#!/bin/sh\necho "--- {}"\n');
    for (const s of ['detect', 'compile', 'release']) await chmod(join(buildpack, 'bin', s), 0o755);
    env.BUILDPACK_URL = buildpack;
    const result = await push();
    expect(result.exitCode, result.all).to.equal(0);
    expect(result.all).to.include('remote: -----> token is [REDACTED]');
    expect(result.all).to.not.include(SECRET);
  });

  it('numbers releases, keeps the last SLUGKIT_KEEP, lists them, and rolls back without a rebuild', async () => {
    await execa('git', ['config', 'slugkit.keep', '2'], { cwd: join(work, 'hello.git') });
    const shas: string[] = [];
    for (const n of [1, 2, 3]) {
      shas.push(await commit({ VERSION: `${n}\n` }, `version ${n}`));
      const result = await push();
      expect(result.exitCode, result.all).to.equal(0);
      if (n === 3) expect(result.all).to.include('remote:        removed old release v1');
    }
    expect((await readdir(appStore('releases'))).sort()).to.deep.equal(['v2', 'v3']);
    expect(await readlink(appStore('current'))).to.equal('releases/v3/slug.tgz');

    const releases = await slugkitApp(['releases', 'hello']);
    expect(releases.exitCode, releases.all).to.equal(0);
    const lines = releases.stdout.split('\n');
    expect(lines[0]).to.equal('=== hello releases');
    expect(lines[1]).to.match(new RegExp(`^v3 +${shas[2].slice(0, 12)}  main  \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z  \\d+ bytes  \\(current\\)$`));
    expect(lines[2]).to.match(new RegExp(`^v2 +${shas[1].slice(0, 12)}  main  `));
    expect(lines).to.have.length(3);

    const rollback = await slugkitApp(['rollback', 'hello', 'v2']);
    expect(rollback.exitCode, rollback.all).to.equal(0);
    expect(rollback.all).to.include(`-----> Rolled hello back to v2 (${shas[1].slice(0, 12)})`);
    expect(await readlink(appStore('current'))).to.equal('releases/v2/slug.tgz');
    expect((await restartLog()).at(-1)).to.equal('v2 unset web=1');
    // The rolled-back app really runs v2's slug.
    expect(await readFile(join(work, 'app', 'VERSION'), 'utf8')).to.equal('2\n');

    const gone = await slugkitApp(['rollback', 'hello', 'v1']);
    expect(gone.exitCode).to.equal(1);
    expect(gone.all).to.match(/^ ! +hello has no release v1 in the store: slugkit-app releases hello lists them$/);
    expect(await readlink(appStore('current'))).to.equal('releases/v2/slug.tgz');

    // The next deploy is v4, and the rolled-back v2 is the one beyond SLUGKIT_KEEP now.
    await commit({ VERSION: '4\n' }, 'version 4');
    expect((await push()).exitCode).to.equal(0);
    expect((await readdir(appStore('releases'))).sort()).to.deep.equal(['v3', 'v4']);
  });

  it("hands a push's restart the new release's app, unpacked, to start as it is; a later restart unpacks the slug", async () => {
    // The restart a user would write to start without unpacking: take the tree when there is one.
    const restart = [
      `dir='${join(work, 'app')}-'"$SLUGKIT_RELEASE"`,
      `if [ -n "\${SLUGKIT_APP_TREE:-}" ] && mv -T "$SLUGKIT_APP_TREE" "$dir"; then export FROM=tree; set --; else export FROM=slug; set -- --slug "$SLUG"; rm -rf "$dir"; fi`,
      `slugrunner -q "$@" --app-dir "$dir" run 'printf "%s %s %s\\n" "$SLUGKIT_RELEASE" "$FROM" "$(cat VERSION)"' >> ${restarts}`,
    ].join('\n');
    await execa('git', ['config', 'slugkit.restart', restart], { cwd: join(work, 'hello.git') });
    await commit({ VERSION: '1\n' }, 'version 1');
    const first = await push();
    expect(first.exitCode, first.all).to.equal(0);
    await commit({ VERSION: '2\n' }, 'version 2');
    expect((await push()).exitCode).to.equal(0);
    expect(await restartLog()).to.deep.equal(['v1 tree 1', 'v2 tree 2']);
    // The tree is the release's slug, unpacked: the same files.
    const unpacked = join(work, 'unpacked');
    await mkdir(unpacked);
    await execa('tar', ['-xzf', appStore('releases/v2/slug.tgz'), '-C', unpacked]);
    expect((await readdir(join(work, 'app-v2'))).sort()).to.deep.equal((await readdir(unpacked)).sort());
    // Nothing of it is left in the store.
    expect((await readdir(appStore())).sort()).to.deep.equal(['.lock', 'current', 'releases', 'repo', 'restart.log']);

    const again = await slugkitApp(['restart', 'hello']);
    expect(again.exitCode, again.all).to.equal(0);
    expect((await restartLog()).at(-1)).to.equal('v2 slug 2');
  });

  it('removes the unpacked app a restart command did not take, and makes none for a command that does not name it', async () => {
    await commit({ VERSION: '1\n' }, 'version 1');
    const plain = await push();
    expect(plain.exitCode, plain.all).to.equal(0);
    expect(await restartLog()).to.deep.equal(['v1 unset web=1']);
    expect(plain.all).to.not.include('The app is also in');

    const looks = `if [ -f "$SLUGKIT_APP_TREE/VERSION" ]; then echo "tree $SLUGKIT_RELEASE" >> ${restarts}; fi`;
    await execa('git', ['config', 'slugkit.restart', looks], { cwd: join(work, 'hello.git') });
    await commit({ VERSION: '2\n' }, 'version 2');
    const named = await push();
    expect(named.exitCode, named.all).to.equal(0);
    expect(named.all).to.include('The app is also in');
    expect((await restartLog()).at(-1)).to.equal('tree v2');
    expect((await readdir(appStore())).sort()).to.deep.equal(['.lock', 'current', 'releases', 'repo', 'restart.log']);
  });
});
