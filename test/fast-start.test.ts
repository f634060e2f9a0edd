/**
 * The fast start: `bin/slugrunner start TYPE` on a populated app dir whose
 * launch plan (.slugkit-launch) is current starts the process with bash
 * alone. Through the real CLIs: slugbuilder writes the plan into the slug,
 * bin/slugrunner takes the fast path (SLUGKIT_DEBUG_START=1 says which path
 * on stderr), a stale plan falls back to Node which refreshes it, hostile
 * values stay data, and signals, grace, exit codes and PID 1 reaping hold.
 */

import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { BUILDER, makeApp, makeBuildpack, RUNNER, removeTempDirs, tarOf, tempDir, waitForFile, writeTree } from './helpers/cli.js';
import { buildSlugkitImages, containerName, docker, RUNNER_IMAGE, removeContainers, requireDocker } from './helpers/docker.js';
import { skipOrFail } from './helpers/tools.js';

const FAST = 'slugrunner: fast start';
const NODE = 'slugrunner: node start';
const BASE_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', SLUGKIT_DEBUG_START: '1' };

/** The hostile config vars: quotes, command substitution, backticks, newlines. */
const HOSTILE: Record<string, string> = {
  Q: `it's "quoted" \\ back\\slash`,
  SUBST: '$(touch PWNED) ${HOME} `touch PWNED2`',
  NL: 'line one\nline two\n',
  GLOB: '* ? [a-z]',
};

function releaseYaml(vars: Record<string, string>): string {
  return `---\nconfig_vars:\n${Object.entries(vars)
    .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)
    .join('\n')}\n`;
}

/** slugbuilder with a buildpack that releases `vars`, then the slug unpacked into a fresh app dir. */
async function buildApp(procfile: string, vars: Record<string, string> = {}): Promise<string> {
  const source = await makeApp({ Procfile: procfile, '.profile.d/a.sh': 'export FROM_PROFILE=profile-ok\n' });
  const buildpack = await makeBuildpack({
    detect: 'echo test',
    compile: 'true',
    release: `cat <<'EOF'\n${releaseYaml(vars)}EOF`,
  });
  const out = await tempDir();
  const slug = path.join(out, 'slug.tgz');
  const r = await execa(process.execPath, ['--', BUILDER, '--buildpack', buildpack, '-o', slug], {
    input: await tarOf(source),
    reject: false,
  });
  expect(r.exitCode, r.stderr).to.equal(0);
  const appDir = path.join(out, 'app');
  await mkdir(appDir);
  await execa('tar', ['-xzf', slug, '-C', appDir]);
  return appDir;
}

function start(appDir: string, args: string[], env: Record<string, string> = {}) {
  return execa(RUNNER, ['--app-dir', appDir, ...args], { env: { ...BASE_ENV, ...env }, extendEnv: false, reject: false, stdin: 'ignore' });
}

describe('slugrunner: the fast start', function () {
  this.timeout(120_000);
  after(removeTempDirs);

  describe('a slug built by slugbuilder', () => {
    let appDir: string;
    before(async () => {
      appDir = await buildApp(
        'web: printf "%s|%s|%s|%s|%s|" "$GREETING" "$PORT" "$DYNO" "$HOME" "$FROM_PROFILE"; pwd; exit 3\nworker: echo worker\n',
        { GREETING: 'hello', PORT: '1234' },
      );
    });

    it('carries a launch plan, and bin/slugrunner starts from it without Node', async () => {
      expect(existsSync(path.join(appDir, '.slugkit-launch'))).to.equal(true);
      const r = await start(appDir, ['start', 'web']);
      expect(r.stderr).to.include(FAST);
      expect(r.stderr).to.include('-----> Starting web.1: printf');
      // Config vars fill in, PORT is the platform's (default 5000), profiles are sourced, the app dir is the working dir.
      expect(r.stdout).to.equal(`hello|5000|web.1|${appDir}|profile-ok|${appDir}`);
      expect(r.exitCode).to.equal(3);
    });

    it('gives the same result as the Node runner, which runs the same launch script', async () => {
      const fast = await start(appDir, ['start', 'web'], { PORT: '8000', DYNO: 'web.7', GREETING: 'mine' });
      // An option the fast start does not take sends it to Node.
      const node = await start(appDir, ['--max-files', '100', 'start', 'web'], { PORT: '8000', DYNO: 'web.7', GREETING: 'mine' });
      expect(fast.stderr).to.include(FAST);
      expect(node.stderr).to.include(NODE);
      expect(fast.stdout).to.equal(`mine|8000|web.7|${appDir}|profile-ok|${appDir}`);
      expect(node.stdout).to.equal(fast.stdout);
      expect(node.exitCode).to.equal(fast.exitCode);
    });

    it('types, SLUG_URL and an unknown type go to Node; run starts fast', async () => {
      const run = await start(appDir, ['-q', 'run', 'echo', '$DYNO']);
      expect(run.stderr).to.include(FAST);
      expect(run.stdout).to.equal('run.1');
      for (const args of [['types'], ['start', 'nosuch']]) {
        const r = await start(appDir, args);
        expect(r.stderr, args.join(' ')).to.include(NODE);
      }
      const unknown = await start(appDir, ['-q', 'start', 'nosuch']);
      expect(unknown.exitCode).to.equal(1);
      expect(unknown.stderr).to.include(' !     unknown process type "nosuch": this app has web, worker');
      const viaUrl = await start(appDir, ['start', 'worker'], { SLUG_URL: 'http://127.0.0.1:9/slug.tgz' });
      expect(viaUrl.stderr).to.include(NODE);
    });

    it("the Node runner's own malloc gets huge pages (GLIBC_TUNABLES); the process gets the environment it was given", async () => {
      // The process's view, then the GLIBC_TUNABLES the nearest node above it (the Node runner) was started with.
      const probe = [
        'echo "app: ${GLIBC_TUNABLES-unset} ${SLUGKIT_RUNNER_TUNABLES-unset}";',
        'p=$$; while [ "$p" -gt 1 ] && [ "$(cat /proc/$p/comm)" != node ]; do p=$(cut -d" " -f4 /proc/$p/stat); done;',
        'echo "runner: $(tr "\\0" "\\n" < /proc/$p/environ | grep ^GLIBC_TUNABLES= || echo none)"',
      ].join(' ');
      // --max-files sends it to the Node runner.
      const plain = await start(appDir, ['--max-files', '100', '-q', 'run', probe]);
      expect(plain.stderr).to.include(NODE);
      expect(plain.stdout).to.equal('app: unset unset\nrunner: GLIBC_TUNABLES=glibc.malloc.hugetlb=1');
      const own = await start(appDir, ['--max-files', '100', '-q', 'run', probe], { GLIBC_TUNABLES: 'glibc.malloc.check=0' });
      expect(own.stdout).to.equal('app: glibc.malloc.check=0 unset\nrunner: GLIBC_TUNABLES=glibc.malloc.check=0');
      // Set and empty is set: left alone.
      const empty = await start(appDir, ['--max-files', '100', '-q', 'run', probe], { GLIBC_TUNABLES: '' });
      expect(empty.stdout).to.equal('app:  unset\nrunner: GLIBC_TUNABLES=');
    });

    it('a changed Procfile falls back to Node, which refreshes the plan for the next start', async () => {
      const copy = await buildApp('web: echo one\n');
      await writeFile(path.join(copy, 'Procfile'), 'web: echo two\n');
      const first = await start(copy, ['-q', 'start', 'web']);
      expect(first.stderr).to.include(NODE);
      expect(first.stdout).to.equal('two');
      const second = await start(copy, ['-q', 'start', 'web']);
      expect(second.stderr).to.include(FAST);
      expect(second.stdout).to.equal('two');
      // A changed .release too.
      await writeFile(path.join(copy, '.release'), releaseYaml({ EXTRA: 'x' }));
      await writeFile(path.join(copy, 'Procfile'), 'web: echo "$EXTRA"\n');
      const third = await start(copy, ['-q', 'start', 'web']);
      expect(third.stderr).to.include(NODE);
      expect(third.stdout).to.equal('x');
      expect((await start(copy, ['-q', 'start', 'web'])).stderr).to.include(FAST);
    });

    it('a missing plan falls back to Node, which writes it', async () => {
      const copy = await buildApp('web: echo plain\n');
      await rm(path.join(copy, '.slugkit-launch'));
      expect((await start(copy, ['-q', 'start', 'web'])).stderr).to.include(NODE);
      expect(existsSync(path.join(copy, '.slugkit-launch'))).to.equal(true);
      const r = await start(copy, ['-q', 'start', 'web']);
      expect(r.stderr).to.include(FAST);
      expect(r.stdout).to.equal('plain');
    });
  });

  describe('hostile values', () => {
    it('config vars with quotes, $(...), backticks and newlines reach the process byte for byte, and nothing runs', async () => {
      const appDir = await buildApp(
        `web: ${Object.keys(HOSTILE)
          .map((k) => `printf '%s\\0' "$${k}"`)
          .join('; ')}\n`,
        HOSTILE,
      );
      for (const args of [
        ['-q', 'start', 'web'],
        ['-q', '--max-files', '100', 'start', 'web'],
      ]) {
        const r = await execa(RUNNER, ['--app-dir', appDir, ...args], {
          env: BASE_ENV,
          extendEnv: false,
          reject: false,
          stdin: 'ignore',
          cwd: appDir,
          encoding: 'buffer',
        });
        expect(r.exitCode).to.equal(0);
        expect(Buffer.from(r.stdout).toString().split('\0').slice(0, -1)).to.deep.equal(Object.values(HOSTILE));
        expect(Buffer.from(r.stderr).toString()).to.include(args.length === 3 ? FAST : NODE);
      }
      expect(existsSync(path.join(appDir, 'PWNED'))).to.equal(false);
      expect(existsSync(path.join(appDir, 'PWNED2'))).to.equal(false);
    });

    it('a crafted plan (names with subscripts, a count with $(...)) is data: nothing runs', async () => {
      const appDir = await buildApp('web: echo web\n');
      const release = await readFile(path.join(appDir, '.release'));
      const procfile = await readFile(path.join(appDir, 'Procfile'));
      const pwned = path.join(appDir, 'PWNED');
      const fields: (string | Buffer)[] = [
        'slugkit-launch 2',
        'fast',
        'stamp',
        '.release',
        '1',
        release,
        'stamp',
        'Procfile',
        '1',
        procfile,
        'stamp',
        '.layers/config/metadata.toml',
        '0',
      ];
      fields.push('var', `a[$(touch ${pwned})]`, 'x', 'var', 'PATH[$(touch ${pwned})]', 'y');
      fields.push('env', '', 'override', `b[$(touch ${pwned})]`, 'v', '');
      fields.push('proc', 'ok', 'echo ok', 'shell', '', 'echo ok');
      const write = (more: string[]) =>
        writeFile(
          path.join(appDir, '.slugkit-launch'),
          Buffer.concat([...fields, ...more].flatMap((f) => [Buffer.from(f), Buffer.alloc(1)])),
        );
      await write([]);
      // A well-formed process of the plan starts fast: the bad names are skipped, never expanded.
      const ok = await start(appDir, ['-q', 'start', 'ok']);
      expect(ok.stderr).to.include(FAST);
      expect(ok.stdout).to.equal('ok');
      expect(existsSync(pwned)).to.equal(false);
      // A record whose count is not a number makes the whole plan unreadable.
      await write(['proc', 'web', 'echo web', 'direct', '', `$(touch ${pwned})`, 'echo', 'web']);
      const web = await start(appDir, ['-q', 'start', 'web']);
      // The malformed plan is not started from: Node starts web from the Procfile (and rewrites the plan).
      expect(web.stderr).to.include(NODE);
      expect(web.stdout).to.equal('web');
      expect(existsSync(pwned)).to.equal(false);
    });
  });

  describe('signals, grace and exit codes through the fast path', () => {
    let appDir: string;
    let work: string;
    before(async () => {
      work = await tempDir();
      appDir = await buildApp(
        [
          'wait: echo $$ > "$READY"; exec sleep 60',
          `stubborn: trap '' TERM; echo $$ > "$READY"; while :; do sleep 0.1; done`,
          'fail: exit 3',
          'orphans: for i in 1 2 3 4 5 6 7 8; do (sleep 0.2 & echo $! >> "$WORK/orphans"); done; for t in $(seq 100); do left=0; for p in $(cat "$WORK/orphans"); do [ -e /proc/$p ] && left=$((left + 1)); done; [ $left = 0 ] && break; sleep 0.1; done; echo "orphans-left=$left pid1=$(cat /proc/1/comm)"',
          '',
        ].join('\n'),
      );
    });

    it('SIGTERM stops the process: exit 143, and the process is in its own group', async () => {
      const ready = path.join(work, 'term');
      const child = start(appDir, ['-q', 'start', 'wait'], { READY: ready });
      await waitForFile(ready);
      const pid = Number((await readFile(ready, 'utf8')).trim());
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const [, ppid, pgid] = stat
        .slice(stat.lastIndexOf(')') + 2)
        .split(' ')
        .map(Number);
      expect(ppid, 'bash is the parent').to.equal(child.pid);
      expect(pgid, 'its own group').to.equal(pid);
      child.kill('SIGTERM');
      const r = await child;
      expect(r.stderr).to.include(FAST);
      expect(r.exitCode).to.equal(143);
    });

    it('a process that ignores SIGTERM is SIGKILLed after --grace: exit 137', async () => {
      const ready = path.join(work, 'stubborn');
      const child = start(appDir, ['-q', '--grace', '1s', 'start', 'stubborn'], { READY: ready });
      await waitForFile(ready);
      child.kill('SIGTERM');
      const r = await child;
      expect(r.stderr).to.include(FAST);
      expect(r.exitCode).to.equal(137);
      const pid = Number((await readFile(ready, 'utf8')).trim());
      expect(existsSync(`/proc/${pid}`), 'the process is gone').to.equal(false);
    });

    it("the process's exit code is the runner's: exit 3", async () => {
      const r = await start(appDir, ['-q', 'start', 'fail']);
      expect(r.stderr).to.include(FAST);
      expect(r.exitCode).to.equal(3);
    });

    it('as PID 1 of a PID namespace it reaps the orphans the process leaves', async function () {
      const probe = await execa('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { reject: false });
      if (probe.exitCode !== 0) {
        skipOrFail(this, `needs unshare --pid --fork --mount-proc (root or CAP_SYS_ADMIN): ${probe.stderr.trim()}`);
      }
      const r = await execa(
        'unshare',
        ['--pid', '--fork', '--mount-proc', '--kill-child', RUNNER, '--app-dir', appDir, '-q', 'start', 'orphans'],
        {
          env: { ...BASE_ENV, WORK: work },
          extendEnv: false,
          reject: false,
          stdin: 'ignore',
        },
      );
      expect(r.stderr).to.include(FAST);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.equal('orphans-left=0 pid1=bash');
    });
  });

  describe('under Docker as PID 1', () => {
    const containers: string[] = [];
    const images: string[] = [];
    after(async () => {
      await removeContainers(containers);
      for (const image of images) await docker(['rmi', '-f', image], { reject: false });
    });

    it('an app image made with slugbuilder --image starts with the fast path and stops on docker stop with 143', async function () {
      this.timeout(1_200_000);
      await requireDocker(this);
      await buildSlugkitImages();
      const root = await tempDir();
      await writeTree(path.join(root, 'src'), { Procfile: 'web: trap "exit 143" TERM; echo "up as $DYNO"; while :; do sleep 0.1; done\n' });
      const buildpack = await makeBuildpack({ detect: 'echo test', compile: 'true' });
      await docker(['save', '-o', path.join(root, 'runner.tar'), RUNNER_IMAGE]);
      const tag = `slugkit-test/fast-start:${process.pid}`;
      images.push(tag);
      const b = await execa(
        process.execPath,
        [
          '--',
          BUILDER,
          '--source',
          path.join(root, 'src'),
          '--buildpack',
          buildpack,
          '--run-image',
          `docker-archive:${path.join(root, 'runner.tar')}`,
          '--image',
          `oci-archive:${path.join(root, 'app.tar')}:${tag}`,
        ],
        { reject: false },
      );
      expect(b.exitCode, b.stderr).to.equal(0);
      await docker(['load', '-i', path.join(root, 'app.tar')]);
      const name = containerName('fast-start');
      containers.push(name);
      await docker(['run', '-d', '--name', name, '-e', 'SLUGKIT_DEBUG_START=1', tag, 'start', 'web']);
      let logs = '';
      for (let i = 0; i < 300 && !logs.includes('up as web.1'); i++) {
        logs = String((await docker(['logs', name], { all: true })).all);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(logs).to.include(FAST);
      expect(logs).to.include('up as web.1');
      const top = String((await docker(['exec', name, 'cat', '/proc/1/comm'])).stdout).trim();
      expect(top).to.equal('bash');
      await docker(['stop', '-t', '10', name]);
      const code = String((await docker(['inspect', '-f', '{{.State.ExitCode}}', name])).stdout).trim();
      expect(code).to.equal('143');
    });
  });
});
