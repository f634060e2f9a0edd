/**
 * slugrunner launching Cloud Native Buildpack processes, through the real
 * bin/slugrunner. Each test lays out an app dir the way the builder leaves
 * one: launch layers under `.layers/<id>/` with the absolute paths real CNBs
 * write into them, `launch.toml`, and `.layers/config/metadata.toml` with
 * the group's buildpacks and the processes they won. One family per API
 * range where launching differs: 0.8 (string commands, shell processes,
 * profile.d), 0.10 (array commands, always direct), 0.12 (CNB_EXEC_ENV for
 * exec.d).
 */

import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { layersDirName } from '../shared/app/layout.js';
import { type FileSpec, RUNNER, removeTempDirs, runRunner, tempDir, waitForFile, writeTree } from './helpers/cli.js';
import { skipOrFail } from './helpers/tools.js';

const exe = (body: string): FileSpec => ({ content: `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`, mode: 0o755 });

interface BuildpackLayout {
  id: string;
  api: string;
  /** Files under the buildpack's layers dir, first path segment the layer: `runtime/bin/node`. */
  layers?: Record<string, FileSpec>;
}

interface AppLayout {
  buildpacks: BuildpackLayout[];
  /** `[[processes]]` tables of metadata.toml, as the builder writes them. */
  processes?: string;
  /** Other files of the app (Procfile, .profile.d/..., .release). */
  files?: Record<string, FileSpec>;
}

/** Writes a built CNB app into `appDir`; every launch layer gets its `<layer>.toml`. */
async function writeCnbApp(appDir: string, layout: AppLayout): Promise<string> {
  await mkdir(appDir, { recursive: true });
  const files: Record<string, FileSpec> = { '.release': '--- {}\n', ...layout.files };
  const metadata: string[] = [];
  for (const bp of layout.buildpacks) {
    const bpDir = `.layers/${layersDirName(bp.id)}`;
    const layerNames = new Set<string>();
    for (const [rel, spec] of Object.entries(bp.layers ?? {})) {
      files[`${bpDir}/${rel}`] = spec;
      layerNames.add(rel.split('/')[0]);
    }
    for (const name of layerNames) files[`${bpDir}/${name}.toml`] = '[types]\nlaunch = true\n\n[metadata]\nversion = "1"\n';
    metadata.push('[[buildpacks]]', `id = "${bp.id}"`, 'version = "1.0.0"', `api = "${bp.api}"`, '');
  }
  files['.layers/config/metadata.toml'] = `${metadata.join('\n')}\n${layout.processes ?? ''}\n`;
  return writeTree(appDir, files);
}

/** Runs the runner quietly in `appDir` with a small, known environment. */
async function run(appDir: string, args: string[], env: Record<string, string> = {}) {
  const r = await runRunner(['--app-dir', appDir, '-q', ...args], { env: { PATH: '/usr/local/bin:/usr/bin:/bin', ...env } });
  return { exitCode: r.exitCode, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
}

describe('slugrunner: Cloud Native Buildpack processes', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  describe('the launch environment', () => {
    let appDir: string;
    before(async () => {
      appDir = path.join(await tempDir(), 'app');
      const runtime = `${appDir}/.layers/example_runtime`;
      await writeCnbApp(appDir, {
        buildpacks: [
          {
            id: 'example/runtime',
            api: '0.10',
            layers: {
              // Env files apply after every path dir of the buildpack, so PATH.prepend goes before tools/bin.
              'a-env/env/PATH.prepend': '/opt/first',
              'a-env/env/PATH.delim': ':',
              'a-env/env/LIST.append': 'runtime',
              'a-env/env/LIST.delim': ',',
              'a-env/env/GREETING.default': 'hello from the layer',
              'a-env/env/HOME_OF_RUNTIME': `${runtime}/tools`,
              'a-env/env.launch/MODE': 'any process',
              'a-env/env.launch/web/MODE': 'web only',
              'a-env/env.launch/web/LIST.append': 'web',
              'a-env/env.launch/web/LIST.delim': ',',
              'tools/bin/show-env': exe(
                'for v in MODE GREETING LIST HOME_OF_RUNTIME OVERRIDDEN LD_LIBRARY_PATH DYNO; do echo "$v=${!v-<unset>}"; done; echo "PATH=$PATH"',
              ),
              'tools/lib/libexample.so': '',
            },
          },
          {
            id: 'example/app',
            api: '0.12',
            layers: {
              'config/env/LIST.append': 'app',
              'config/env/LIST.delim': ',',
              'config/env/OVERRIDDEN.override': 'by the later buildpack',
              'config/env.launch/GREETING.default': 'not used: already set',
            },
          },
        ],
        processes: [
          '[[processes]]',
          'type = "web"',
          'command = ["show-env"]',
          'direct = true',
          'buildpack-id = "example/runtime"',
          'buildpack-api = "0.10"',
          '',
          '[[processes]]',
          'type = "worker"',
          'command = ["show-env"]',
          'direct = true',
          'buildpack-id = "example/runtime"',
          'buildpack-api = "0.10"',
        ].join('\n'),
      });
    });

    it('gives a process the env of every launch layer: bin/, lib/, env/, env.launch/ and env.launch/<process>/ with their suffixes', async () => {
      const r = await run(appDir, ['start', 'web'], { OVERRIDDEN: 'from the platform', LIST: 'platform' });
      expect(r.stderr).to.equal('');
      expect(r.exitCode).to.equal(0);
      const runtime = `${appDir}/.layers/example_runtime`;
      expect(r.stdout).to.equal(
        [
          'MODE=web only',
          'GREETING=hello from the layer',
          'LIST=platform,runtime,web,app',
          `HOME_OF_RUNTIME=${runtime}/tools`,
          'OVERRIDDEN=by the later buildpack',
          `LD_LIBRARY_PATH=${runtime}/tools/lib`,
          'DYNO=web.1',
          `PATH=/opt/first:${runtime}/tools/bin:/usr/local/bin:/usr/bin:/bin`,
          '',
        ].join('\n'),
      );
    });

    it('applies env.launch/<process>/ only to that process', async () => {
      const r = await run(appDir, ['start', 'worker']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.include('MODE=any process\n');
      expect(r.stdout).to.include('LIST=runtime,app\n');
      expect(r.stdout).to.include('DYNO=worker.1\n');
    });

    it('gives a one-off `run` the launch env too (without any process-specific env)', async () => {
      const r = await run(appDir, ['run', 'show-env']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.include('MODE=any process\n');
      expect(r.stdout).to.include('GREETING=hello from the layer\n');
      expect(r.stdout).to.include('DYNO=run.1\n');
    });
  });

  describe('exec.d', () => {
    let appDir: string;
    before(async () => {
      appDir = path.join(await tempDir(), 'app');
      await writeCnbApp(appDir, {
        buildpacks: [
          {
            id: 'example/old',
            api: '0.10',
            layers: {
              'agent/env/FROM_ENV_FILE': 'env-file',
              'agent/exec.d/10-token': exe(
                `printf 'TOKEN = "t-%s"\\nSAW_ENV_FILE = "%s"\\nEXEC_ENV_OLD = "%s"\\n' "$(basename "$PWD")" "$FROM_ENV_FILE" "\${CNB_EXEC_ENV-unset}" >&3`,
              ),
              'agent/exec.d/web/20-web': exe(`printf 'ONLY_WEB = "web saw %s"\\n' "$TOKEN" >&3`),
            },
          },
          {
            id: 'example/new',
            api: '0.12',
            layers: { 'probe/exec.d/probe': exe(`echo "exec.d logs go to stdout"; printf 'EXEC_ENV_NEW = "%s"\\n' "$CNB_EXEC_ENV" >&3`) },
          },
        ],
        processes: [
          '[[processes]]',
          'type = "web"',
          'command = ["bash", "-c", "echo TOKEN=$TOKEN SAW_ENV_FILE=$SAW_ENV_FILE ONLY_WEB=${ONLY_WEB-unset} OLD=$EXEC_ENV_OLD NEW=$EXEC_ENV_NEW OWN=${CNB_EXEC_ENV-unset}"]',
          'buildpack-id = "example/old"',
          'buildpack-api = "0.10"',
          '',
          '[[processes]]',
          'type = "worker"',
          'command = ["bash", "-c", "echo ONLY_WEB=${ONLY_WEB-unset}"]',
          'buildpack-id = "example/old"',
          'buildpack-api = "0.10"',
        ].join('\n'),
      });
    });

    it('runs exec.d then exec.d/<process> in the app dir with the env so far, sets what they write to fd 3, and gives 0.12 layers CNB_EXEC_ENV', async () => {
      const r = await run(appDir, ['start', 'web']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.equal(
        'exec.d logs go to stdout\nTOKEN=t-app SAW_ENV_FILE=env-file ONLY_WEB=web saw t-app OLD=unset NEW=production OWN=unset\n',
      );
      const worker = await run(appDir, ['start', 'worker']);
      expect(worker.stdout).to.equal('exec.d logs go to stdout\nONLY_WEB=unset\n');
    });

    it('passes the platform CNB_EXEC_ENV on to 0.12 exec.d', async () => {
      const r = await run(appDir, ['start', 'web'], { CNB_EXEC_ENV: 'test' });
      expect(r.stdout).to.include('NEW=test');
    });

    it('an exec.d that fails stops the launch with one line and the process never starts', async () => {
      const broken = path.join(await tempDir(), 'app');
      await writeCnbApp(broken, {
        buildpacks: [{ id: 'example/bad', api: '0.10', layers: { 'agent/exec.d/boom': exe('exit 3') } }],
        processes: '[[processes]]\ntype = "web"\ncommand = ["touch", "started"]\nbuildpack-id = "example/bad"\nbuildpack-api = "0.10"\n',
      });
      const r = await run(broken, ['start', 'web']);
      expect(r.exitCode).to.equal(1);
      expect(r.stderr).to.equal(` !     exec.d ${broken}/.layers/example_bad/agent/exec.d/boom failed (exit 3)\n`);
      expect(existsSync(path.join(broken, 'started'))).to.equal(false);
    });
  });

  describe('API 0.8: shell processes and profile.d', () => {
    let appDir: string;
    before(async () => {
      appDir = path.join(await tempDir(), 'app');
      await writeCnbApp(appDir, {
        buildpacks: [
          {
            id: 'example/legacy',
            api: '0.8',
            layers: {
              'runtime/profile.d/10-set.sh': 'export FROM_LAYER_PROFILE="layer:$PWD"\nexport ORDER="${ORDER-}L"\n',
              'runtime/profile.d/web/20-web.sh': 'export ORDER="${ORDER}W"\n',
              'runtime/bin/echo-args': exe('for a in "$@"; do printf "[%s]" "$a"; done; echo'),
            },
          },
          {
            id: 'example/modern',
            api: '0.10',
            // 0.9 dropped profile.d: this one is never sourced.
            layers: { 'runtime/profile.d/never.sh': 'export NEVER=sourced\n' },
          },
        ],
        processes: [
          '[[processes]]',
          'type = "web"',
          'command = ["echo \\"$FROM_LAYER_PROFILE $FROM_CLASSIC order=$ORDER never=${NEVER-no}\\" | tr a-z A-Z"]',
          'direct = false',
          'buildpack-id = "example/legacy"',
          'buildpack-api = "0.8"',
          '',
          '[[processes]]',
          'type = "tokens"',
          'command = ["echo-args"]',
          'args = ["$PORT", "two words"]',
          'direct = false',
          'buildpack-id = "example/legacy"',
          'buildpack-api = "0.8"',
          '',
          '[[processes]]',
          'type = "direct"',
          'command = ["echo-args"]',
          'args = ["$PORT", "${FROM_CLASSIC-no profile}"]',
          'direct = true',
          'buildpack-id = "example/legacy"',
          'buildpack-api = "0.8"',
        ].join('\n'),
        files: {
          '.profile.d/app.sh': 'export FROM_CLASSIC=classic ORDER="${ORDER}C"\n',
          '.profile': 'export ORDER="${ORDER}P"\n',
        },
      });
    });

    it("a shell process sources the 0.8 layers' profile.d, then .profile.d and .profile, and runs its command through bash", async () => {
      const r = await run(appDir, ['start', 'web']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.equal(`LAYER:${appDir.toUpperCase()} CLASSIC ORDER=LWCP NEVER=NO\n`);
    });

    it('a shell process with args runs the command and each arg as one shell-expanded word; user args are appended (API < 0.9)', async () => {
      let r = await run(appDir, ['start', 'tokens']);
      expect(r.stdout).to.equal('[5000][two words]\n');
      r = await run(appDir, ['start', 'tokens', '--', 'extra', '$HOME']);
      expect(r.stdout).to.equal(`[5000][two words][extra][${appDir}]\n`);
    });

    it("a direct process is exec'd without a shell: no expansion and no profile scripts", async () => {
      const r = await run(appDir, ['start', 'direct']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.equal('[$PORT][${FROM_CLASSIC-no profile}]\n');
    });
  });

  describe('API 0.10: array commands, args, working-dir and the default process', () => {
    let appDir: string;
    before(async () => {
      appDir = path.join(await tempDir(), 'app');
      await writeCnbApp(appDir, {
        buildpacks: [
          {
            id: 'example/node',
            api: '0.10',
            layers: { 'runtime/bin/echo-args': exe('printf "%s " "$(basename "$PWD")"; for a in "$@"; do printf "[%s]" "$a"; done; echo') },
          },
        ],
        processes: [
          '[[processes]]',
          'type = "web"',
          'command = ["echo-args", "--always"]',
          'args = ["--port", "$PORT"]',
          'direct = true',
          'buildpack-id = "example/node"',
          'buildpack-api = "0.10"',
          '',
          '[[processes]]',
          'type = "one"',
          'command = ["echo-args"]',
          'args = ["default-arg"]',
          'direct = true',
          'buildpack-id = "example/node"',
          'buildpack-api = "0.10"',
          '',
          '[[processes]]',
          'type = "worker"',
          'command = ["echo-args", "working"]',
          'direct = true',
          'default = true',
          `working-dir = "${appDir}/jobs"`,
          'buildpack-id = "example/node"',
          'buildpack-api = "0.10"',
        ].join('\n'),
        files: { 'jobs/.keep': '' },
      });
    });

    it('execs command[0] with command[1:] and args; user args after -- replace args', async () => {
      let r = await run(appDir, ['start', 'web']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.equal('app [--always][--port][$PORT]\n');
      r = await run(appDir, ['start', 'web', '--', 'a', 'b c']);
      expect(r.stdout).to.equal('app [--always][a][b c]\n');
      r = await run(appDir, ['start', 'one', '--', 'mine']);
      expect(r.stdout).to.equal('app [mine]\n');
    });

    it('runs a process in its working-dir', async () => {
      const r = await run(appDir, ['start', 'worker']);
      expect(r.stdout).to.equal('jobs [working]\n');
    });

    it('`start` with no type runs the process marked default, and without one runs web', async () => {
      let r = await run(appDir, ['start']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.equal('jobs [working]\n');
      r = await run(appDir, ['start', '--', 'x']);
      expect(r.stdout).to.equal('jobs [working][x]\n');

      const noDefault = path.join(await tempDir(), 'app');
      await writeCnbApp(noDefault, {
        buildpacks: [{ id: 'example/node', api: '0.10' }],
        processes:
          '[[processes]]\ntype = "web"\ncommand = ["echo", "the web process"]\ndirect = true\nbuildpack-id = "example/node"\nbuildpack-api = "0.10"\n',
      });
      r = await run(noDefault, ['start']);
      expect(r.stdout).to.equal('the web process\n');
    });

    it('logs what it starts, and fails with one line for a missing working dir or command', async () => {
      const r = await runRunner(['--app-dir', appDir, 'start', 'web']);
      expect(r.stderr).to.equal("-----> Starting web.1: echo-args --always --port '$PORT'\n");

      const broken = path.join(await tempDir(), 'app');
      await writeCnbApp(broken, {
        buildpacks: [{ id: 'example/node', api: '0.10' }],
        processes: [
          '[[processes]]\ntype = "web"\ncommand = ["true"]\nworking-dir = "/nonexistent-slugkit-dir"\nbuildpack-id = "example/node"\nbuildpack-api = "0.10"\n',
          '[[processes]]\ntype = "gone"\ncommand = ["no-such-command-slugkit"]\nbuildpack-id = "example/node"\nbuildpack-api = "0.10"\n',
        ].join('\n'),
      });
      let bad = await run(broken, ['start', 'web']);
      expect(bad.exitCode).to.equal(1);
      expect(bad.stderr).to.equal(
        " !     process web: working dir /nonexistent-slugkit-dir does not exist; check the buildpack's launch.toml and that --app-dir is the dir the app was built in\n",
      );
      bad = await run(broken, ['start', 'gone']);
      expect(bad.exitCode).to.equal(127);
      expect(bad.stderr).to.equal(
        " !     cannot run no-such-command-slugkit: not found on PATH; check the buildpack's launch.toml and that --app-dir is the dir the app was built in\n",
      );
    });

    it('a metadata.toml that is not TOML fails with one line naming the file and the line', async () => {
      const broken = path.join(await tempDir(), 'app');
      await writeCnbApp(broken, { buildpacks: [{ id: 'example/node', api: '0.10' }], processes: '[[processes]]\ntype = \n' });
      const r = await run(broken, ['types']);
      expect(r.exitCode).to.equal(1);
      expect(r.stderr).to.match(new RegExp(`^ !     ${broken}/\\.layers/config/metadata\\.toml: invalid TOML at line 7: .*\\n$`));
    });
  });

  describe('CNB processes among classic ones', () => {
    let appDir: string;
    before(async () => {
      appDir = path.join(await tempDir(), 'app');
      await writeCnbApp(appDir, {
        buildpacks: [{ id: 'example/node', api: '0.10', layers: { 'runtime/env/FROM_LAYER': 'layer-value' } }],
        processes: [
          '[[processes]]\ntype = "web"\ncommand = ["node", "server.js"]\nargs = ["--port", "5000"]\ndirect = true\nbuildpack-id = "example/node"\nbuildpack-api = "0.10"\n',
          '[[processes]]\ntype = "worker"\ncommand = ["echo", "cnb worker"]\ndirect = true\nbuildpack-id = "example/node"\nbuildpack-api = "0.10"\n',
        ].join('\n'),
        files: {
          // The release holds every buildpack's types, CNB ones rendered as command lines.
          '.release':
            '---\ndefault_process_types:\n  web: node server.js --port 5000\n  worker: echo "cnb worker"\n  clock: echo classic clock\n',
          Procfile: 'worker: echo "procfile worker with $FROM_LAYER and $FROM_CLASSIC"\n',
          '.profile.d/classic.sh': 'export FROM_CLASSIC=classic-profile\n',
        },
      });
    });

    it('`types` lists every process: classic, CNB and Procfile, the Procfile winning', async () => {
      const r = await run(appDir, ['types']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.equal(
        'web: node server.js --port 5000\nworker: echo "procfile worker with $FROM_LAYER and $FROM_CLASSIC"\nclock: echo classic clock\n',
      );
      const json = await run(appDir, ['types', '--json']);
      expect(JSON.parse(json.stdout)).to.deep.equal({
        web: 'node server.js --port 5000',
        worker: 'echo "procfile worker with $FROM_LAYER and $FROM_CLASSIC"',
        clock: 'echo classic clock',
      });
    });

    it('a Procfile line wins over a CNB process and runs through bash with the launch env and .profile.d', async () => {
      const r = await run(appDir, ['start', 'worker']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.equal('procfile worker with layer-value and classic-profile\n');
    });

    it('a classic type from the release runs with the launch env; an unknown type lists them all', async () => {
      let r = await run(appDir, ['start', 'clock', '--', 'and', 'more words']);
      expect(r.stdout).to.equal('classic clock and more words\n');
      r = await run(appDir, ['start', 'nope']);
      expect(r.exitCode).to.equal(1);
      expect(r.stderr).to.equal(' !     unknown process type "nope": this app has clock, web, worker\n');
      r = await run(appDir, ['start', 'constructor']);
      expect(r.stderr).to.equal(' !     unknown process type "constructor": this app has clock, web, worker\n');
    });
  });

  describe('signals, exit codes and PID 1', () => {
    let appDir: string;
    let work: string;
    before(async () => {
      work = await tempDir();
      appDir = path.join(work, 'app');
      await writeCnbApp(appDir, {
        buildpacks: [
          {
            id: 'example/svc',
            api: '0.10',
            layers: {
              // Direct processes: the runner's child is the script itself, not a shell around it.
              'svc/bin/serve': exe('echo "$$" > "$READY"; exec sleep 600'),
              'svc/bin/stubborn': exe(`trap '' TERM; echo "$$" > "$READY"; while :; do sleep 0.05; done`),
              'svc/bin/orphans': exe(
                [
                  'for i in 1 2 3 4 5 6; do (sleep 0.2 & echo $! >> "$WORK/orphans"); done',
                  'for t in $(seq 100); do left=0; for p in $(cat "$WORK/orphans"); do [ -e /proc/$p ] && left=$((left + 1)); done; [ $left = 0 ] && break; sleep 0.1; done',
                  'echo "orphans-left=$left pid1=$(cat /proc/1/comm) parent=$(cat /proc/$PPID/comm)"',
                ].join('\n'),
              ),
            },
          },
        ],
        processes: ['serve', 'stubborn', 'orphans']
          .map((t) => `[[processes]]\ntype = "${t}"\ncommand = ["${t}"]\nbuildpack-id = "example/svc"\nbuildpack-api = "0.10"\n`)
          .join('\n'),
      });
    });

    it('SIGTERM to the runner stops a direct CNB process: exit 143', async () => {
      const ready = path.join(work, 'serve-ready');
      const child = execa(RUNNER, ['--app-dir', appDir, '-q', 'start', 'serve'], { env: { READY: ready }, reject: false, stdin: 'ignore' });
      await waitForFile(ready);
      // The process is exec'd directly: its parent is the runner (node), not bash.
      const pid = Number((await readFile(ready, 'utf8')).trim());
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      expect(ppid).to.equal(child.pid);
      child.kill('SIGTERM');
      const r = await child;
      expect(r.exitCode, String(r.stderr)).to.equal(143);
    });

    it('a process that ignores SIGTERM is SIGKILLed after --grace: exit 137', async () => {
      const ready = path.join(work, 'stubborn-ready');
      const child = execa(RUNNER, ['--app-dir', appDir, '-q', '--grace', '1s', 'start', 'stubborn'], {
        env: { READY: ready },
        reject: false,
        stdin: 'ignore',
      });
      await waitForFile(ready);
      child.kill('SIGTERM');
      const r = await child;
      expect(r.exitCode, String(r.stderr)).to.equal(137);
      const pid = Number((await readFile(ready, 'utf8')).trim());
      expect(existsSync(`/proc/${pid}`), 'the process is gone').to.equal(false);
    });

    it('as PID 1 of a PID namespace the runner reaps the orphans of a CNB process', async function () {
      const probe = await execa('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { reject: false });
      if (probe.exitCode !== 0) {
        skipOrFail(this, `needs unshare --pid --fork --mount-proc (root or CAP_SYS_ADMIN): ${probe.stderr.trim()}`);
      }
      await rm(path.join(work, 'orphans'), { force: true });
      const r = await execa(
        'unshare',
        ['--pid', '--fork', '--mount-proc', '--kill-child', RUNNER, '--app-dir', appDir, '-q', 'start', 'orphans'],
        {
          env: { WORK: work },
          reject: false,
          stdin: 'ignore',
        },
      );
      expect(r.exitCode, String(r.stderr)).to.equal(0);
      // The parent is the Node runner, or bin/slugrunner's bash itself on a fast start (a plan left by an earlier start).
      expect(String(r.stdout)).to.match(/^orphans-left=0 pid1=bash parent=(node|bash)$/);
    });
  });

  describe('path stability', () => {
    it('a process whose command is an absolute path into its layer runs after the slug is unpacked at the same --app-dir', async () => {
      const appDir = path.join(await tempDir(), 'app');
      const tools = `${appDir}/.layers/example_bp/tools`;
      await writeCnbApp(appDir, {
        buildpacks: [
          {
            id: 'example/bp',
            api: '0.10',
            layers: {
              'tools/libexec/serve-real': exe('echo "serving with $TOOLS_HOME from $(basename "$PWD")"'),
              'tools/env/TOOLS_HOME': tools,
            },
          },
        ],
        processes: `[[processes]]\ntype = "web"\ncommand = ["${tools}/bin/serve"]\nbuildpack-id = "example/bp"\nbuildpack-api = "0.10"\n`,
        files: { 'index.html': 'hi' },
      });
      // As a CNB writes it: an absolute symlink into its own layer.
      await mkdir(`${tools}/bin`);
      await symlink(`${tools}/libexec/serve-real`, `${tools}/bin/serve`);

      const slug = path.join(await tempDir(), 'slug.tgz');
      await execa('tar', ['-czf', slug, '-C', appDir, '.']);
      await rm(appDir, { recursive: true });

      const r = await run(appDir, ['--slug', slug, 'start', 'web']);
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.equal(`serving with ${tools} from app\n`);
      expect(await readFile(path.join(appDir, 'index.html'), 'utf8')).to.equal('hi');
    });
  });

  it('a classic app with no .layers is untouched: no launch metadata, the Procfile through bash as before', async () => {
    const appDir = await writeTree(path.join(await tempDir(), 'app'), {
      '.release': '--- {}\n',
      Procfile: 'web: echo "classic $DYNO ${NAME-}"\n',
      '.profile.d/a.sh': 'export NAME=profiled\n',
    });
    const r = await run(appDir, ['start']);
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('classic web.1 profiled\n');
  });
});
