/**
 * shared/app/processes.ts: which command each process type runs. The unit
 * cases pin the rule; the end-to-end case checks that a build's `.release`,
 * `--summary` and `slugrunner types` show a CNB process the same way.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { x as untar } from 'tar';
import { parse as parseYaml } from 'yaml';
import type { BuiltApp } from '../shared/app/app.js';
import { cnbApp, type LaunchProcess } from '../shared/app/launch-metadata.js';
import { cnbCommandLine, commandLines, resolveProcesses, startWithArgs } from '../shared/app/processes.js';
import { emptyRelease } from '../shared/release.js';
import { makeApp, removeTempDirs, runBuilder, runRunner, tarOf, tempDir } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';

const proc = (p: Partial<LaunchProcess> & { type: string; command: string[] }): LaunchProcess => ({
  args: [],
  direct: true,
  default: false,
  buildpackApi: '0.10',
  ...p,
});

function app(parts: { defaults?: Record<string, string>; procfile?: Record<string, string>; cnb?: LaunchProcess[] }): BuiltApp {
  const release = { ...emptyRelease(), default_process_types: parts.defaults ?? {} };
  const cnb = parts.cnb && cnbApp('/app', { buildpacks: [{ id: 'test/bp', api: '0.10' }], processes: parts.cnb, labels: [] });
  return { appDir: '/app', release, procfile: parts.procfile ?? {}, cnb, files: {} };
}

describe('the built app: process types (shared/app/processes.ts)', () => {
  after(removeTempDirs);

  it('the Procfile wins over a CNB process, which wins over the release default; a type keeps its first place', () => {
    const p = resolveProcesses(
      app({
        defaults: { web: 'release-web', worker: 'release-worker', clock: 'release-clock' },
        cnb: [proc({ type: 'worker', command: ['cnb-worker'] }), proc({ type: 'web', command: ['cnb-web'] })],
        procfile: { web: 'procfile-web', release: 'procfile-release' },
      }),
    );
    expect(commandLines(p)).to.deep.equal({
      web: 'procfile-web',
      worker: 'cnb-worker',
      clock: 'release-clock',
      release: 'procfile-release',
    });
    expect(Object.values(p.byType).map((x) => [x.type, x.kind])).to.deep.equal([
      ['web', 'procfile'],
      ['worker', 'cnb'],
      ['clock', 'release'],
      ['release', 'procfile'],
    ]);
    expect(p.byType.worker.start).to.deep.equal({ argv: ['cnb-worker'] });
    expect(p.byType.clock.start).to.deep.equal({ shell: 'release-clock' });
    expect(p.byType.clock.cwd).to.equal('/app');
  });

  it('the default type is the CNB process marked default, else web, else the only type', () => {
    expect(resolveProcesses(app({ defaults: { worker: 'w' } })).defaultType).to.equal('worker');
    expect(resolveProcesses(app({ defaults: { worker: 'w', web: 'x' } })).defaultType).to.equal('web');
    expect(resolveProcesses(app({ defaults: { worker: 'w', clock: 'x' } })).defaultType).to.equal('web');
    const marked = app({ cnb: [proc({ type: 'api', command: ['srv'], default: true }), proc({ type: 'web', command: ['w'] })] });
    expect(resolveProcesses(marked).defaultType).to.equal('api');
  });

  it("user arguments: appended quoted to a command line, replacing a CNB process's args, after them before API 0.9", () => {
    const p = resolveProcesses(
      app({
        procfile: { web: 'node server.js' },
        cnb: [
          proc({ type: 'api', command: ['srv'], args: ['--port', '5000'], workingDir: 'api' }),
          proc({ type: 'old', command: ['run-old'], args: ['a'], direct: false, buildpackApi: '0.8' }),
        ],
      }),
    );
    expect(startWithArgs('/app', p.byType.web, ['a b'])).to.deep.equal({
      start: { shell: "node server.js 'a b'" },
      display: "node server.js 'a b'",
      cwd: '/app',
    });
    expect(startWithArgs('/app', p.byType.api, ['--port', '8080'])).to.deep.equal({
      start: { argv: ['srv', '--port', '8080'] },
      display: 'srv --port 8080',
      cwd: '/app/api',
    });
    expect(startWithArgs('/app', p.byType.old, ['b']).display).to.equal('run-old a b');
  });

  it("a shell CNB process with args is one line the launcher's way: each word shell-expanded, not split", () => {
    const shell = proc({ type: 'web', command: ['echo $GREETING'], args: ['a b'], direct: false, buildpackApi: '0.8' });
    expect(cnbCommandLine(shell)).to.equal('"echo $GREETING" "a b"');
    expect(cnbCommandLine({ ...shell, args: [] })).to.equal('echo $GREETING');
    expect(cnbCommandLine(proc({ type: 'web', command: ['/bin/echo', 'x'], args: ["it's"] }))).to.equal("/bin/echo x 'it'\\''s'");
  });

  it('a build shows a CNB shell process with args the same way in .release, --summary and slugrunner types', async function () {
    this.timeout(60_000);
    const bp = await writeCnb(path.join(await tempDir('slugkit-cnb-'), 'test_old'), {
      id: 'test/old',
      api: '0.8',
      build: [
        'mkdir -p "$1/web"; printf "[types]\\nlaunch = true\\n" > "$1/web.toml"',
        `cat > "$1/launch.toml" <<'TOML'`,
        '[[processes]]',
        'type = "web"',
        'command = "echo $GREETING"',
        'args = ["a b"]',
        'TOML',
      ].join('\n'),
    });
    const out = path.join(await tempDir(), 'slug.tgz');
    const summary = path.join(await tempDir(), 'summary.json');
    const res = await runBuilder(['--buildpack', bp, '-o', out, '--summary', summary], {
      input: await tarOf(await makeApp({ 'index.txt': 'x' })),
    });
    expect(res.exitCode, res.stderr).to.equal(0);
    const appDir = path.join(await tempDir(), 'app');
    await mkdir(appDir);
    await untar({ file: out, cwd: appDir });
    const line = '"echo $GREETING" "a b"';
    const released = parseYaml(await readFile(path.join(appDir, '.release'), 'utf8')) as { default_process_types: Record<string, string> };
    expect(released.default_process_types).to.deep.equal({ web: line });
    expect(JSON.parse(await readFile(summary, 'utf8')).process_types).to.deep.equal({ web: line });
    const types = await runRunner(['--app-dir', appDir, 'types', '--json']);
    expect(types.exitCode, types.stderr).to.equal(0);
    expect(JSON.parse(types.stdout.toString('utf8'))).to.deep.equal({ web: line });
  });
});
