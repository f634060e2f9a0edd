/**
 * The one command helper (shared/command.ts) as users meet it, through the
 * real CLIs: every command of both programs prints its usage on stdout for
 * --help, answers a mistyped flag with the closest real one in one line, and
 * both programs print --version in one format.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { makeApp, ROOT, removeTempDirs, runBuilder, runRunner, tempDir } from './helpers/cli.js';

function oneErrorLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).to.have.length(1);
  expect(lines[0]).to.match(/^ ! {5}/);
  return lines[0].slice(7);
}

describe('commands of both CLIs', function () {
  this.timeout(30_000);
  after(removeTempDirs);

  const commands: Array<[string, (args: string[]) => ReturnType<typeof runBuilder>, string[]]> = [
    ['slugbuilder', runBuilder, []],
    ['slugbuilder rebase', runBuilder, ['rebase']],
    ['slugbuilder cache', runBuilder, ['cache']],
    ['slugbuilder manifests', runBuilder, ['manifests']],
    ['slugrunner', runRunner, []],
  ];

  for (const [name, run, prefix] of commands) {
    it(`${name} --help and -h print the usage on stdout and exit 0`, async () => {
      for (const flag of ['--help', '-h']) {
        const r = await run([...prefix, flag]);
        expect(r.exitCode, `${name} ${flag}`).to.equal(0);
        expect(r.stderr).to.equal('');
        expect(r.stdout.toString()).to.match(new RegExp(`^Usage: ${name}`));
      }
    });
  }

  const typos: Array<[string, (args: string[]) => ReturnType<typeof runBuilder>, string[], string]> = [
    ['slugbuilder', runBuilder, ['--buildpak', 'x'], 'unknown option --buildpak: did you mean --buildpack? (see slugbuilder --help)'],
    [
      'slugbuilder',
      runBuilder,
      ['--max-slugsize', '1G'],
      'unknown option --max-slugsize: did you mean --max-slug-size? (see slugbuilder --help)',
    ],
    [
      'slugbuilder rebase',
      runBuilder,
      ['rebase', 'oci:x', '--run-imag', 'oci:y'],
      'unknown option --run-imag: did you mean --run-image? (see slugbuilder rebase --help)',
    ],
    [
      'slugbuilder cache',
      runBuilder,
      ['cache', 'clear', '--al'],
      'unknown option --al: did you mean --all? (see slugbuilder cache --help)',
    ],
    [
      'slugbuilder manifests',
      runBuilder,
      ['manifests', '--namespce', 'x'],
      'unknown option --namespce: did you mean --namespace? (see slugbuilder manifests --help)',
    ],
    ['slugrunner', runRunner, ['--app-di', 'x', 'types'], 'unknown option --app-di: did you mean --app-dir? (see slugrunner --help)'],
    ['slugrunner', runRunner, ['strat', 'web'], 'unknown command "strat": did you mean start? (see slugrunner --help)'],
    [
      'slugbuilder',
      runBuilder,
      ['rebse'],
      'slugbuilder takes no argument "rebse": did you mean slugbuilder rebase? (see slugbuilder --help)',
    ],
    [
      'slugbuilder manifests',
      runBuilder,
      ['manifests', 'biuld'],
      'slugbuilder manifests: unknown command "biuld": did you mean build? (see slugbuilder manifests --help)',
    ],
  ];
  for (const [name, run, args, message] of typos) {
    it(`${name}: ${args.join(' ')} is one line naming the closest real one, exit 2`, async () => {
      const r = await run(args);
      expect(r.exitCode, r.stderr).to.equal(2);
      expect(oneErrorLine(r.stderr)).to.equal(message);
      expect(r.stdout.length).to.equal(0);
    });
  }

  it('an option far from every real one is named without a guess', async () => {
    const r = await runBuilder(['--frobnicate']);
    expect(r.exitCode).to.equal(2);
    expect(oneErrorLine(r.stderr)).to.equal('unknown option --frobnicate (see slugbuilder --help)');
  });

  it('a stray directory argument says to use --source, before reading stdin', async () => {
    const app = await makeApp({ Procfile: 'web: true\n' });
    for (const word of ['.', app]) {
      const r = await runBuilder([word], { cwd: app });
      expect(r.exitCode).to.equal(2);
      expect(oneErrorLine(r.stderr)).to.equal(
        `slugbuilder takes no argument "${word}": to build ${word}, use --source ${word} (see slugbuilder --help)`,
      );
    }
  });

  it('--version has one format on both: NAME VERSION (slugkit), then Node and the default stack', async () => {
    const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const [name, run] of [
      ['slugbuilder', runBuilder],
      ['slugrunner', runRunner],
    ] as const) {
      const r = await run(['--version']);
      expect(r.exitCode).to.equal(0);
      expect(r.stderr).to.equal('');
      expect(r.stdout.toString()).to.equal(`${name} ${version} (slugkit)\nnode ${process.version}\ndefault stack heroku-24\n`);
    }
  });

  it('slugbuilder --help lists -h and --version under Help, not under Limits', async () => {
    const text = (await runBuilder(['--help'])).stdout.toString();
    const limits = /^Limits:\n((?: {2}.*\n)+)/m.exec(text)?.[1] ?? '';
    expect(limits).to.include('--max-slug-size');
    expect(limits).to.not.include('--help');
    expect(limits).to.not.include('--version');
    expect(text).to.match(/^Help:\n {2}-h, --help {15}show this help\n {2}--version/m);
  });

  it('a mistake beside --help still prints the usage', async () => {
    const r = await runBuilder(['rebase', '--imgae', 'x', '--help']);
    expect(r.exitCode).to.equal(0);
    expect(r.stdout.toString()).to.match(/^Usage: slugbuilder rebase IMAGE/);
  });

  it('-o with no value and a value given twice are one line each', async () => {
    const cwd = await tempDir();
    const missing = await runBuilder(['-o'], { cwd });
    expect(oneErrorLine(missing.stderr)).to.equal('-o (--output) needs a value (see slugbuilder --help)');
    const twice = await runBuilder(['cache', 'clear', '--app', 'a', '--app', 'b'], { cwd });
    expect(oneErrorLine(twice.stderr)).to.equal('--app was given more than once: give it once (see slugbuilder cache --help)');
  });
});
