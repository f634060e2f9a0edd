/**
 * slugbuilder's command line: --version, --help, usage errors of one line
 * with exit 2, and the env-file check, through the real CLI. One test runs
 * the file through its own #! line, as an installed `slugbuilder` runs.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { BUILDER, makeApp, ROOT, removeTempDirs, runBuilder, tempDir } from './helpers/cli.js';

function oneErrorLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).to.have.length(1);
  expect(lines[0]).to.match(/^ ! {5}/);
  return lines[0];
}

describe('slugbuilder command line', function () {
  this.timeout(30_000);
  after(removeTempDirs);

  it("--version prints slugbuilder's version, then Node's and the default stack, on stdout", async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runBuilder(['--version']);
    expect(r.exitCode).to.equal(0);
    expect(r.stdout.toString()).to.equal(`slugbuilder ${pkg.version} (slugkit)\nnode ${process.version}\ndefault stack heroku-24\n`);
    expect(r.stderr).to.equal('');
  });

  it('--help goes to stdout with exit 0 and names the build and cache options', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await runBuilder([flag]);
      expect(r.exitCode).to.equal(0);
      expect(r.stderr).to.equal('');
      const text = r.stdout.toString();
      expect(text).to.match(/^Usage: slugbuilder/);
      expect(text).to.match(/--pass-env NAME/);
      expect(text).to.match(/--app NAME/);
      expect(text).to.match(/slugbuilder cache clear \[--app NAME \| --all\]/);
    }
  });

  for (const args of [
    ['-o', 'a.tgz', '-o', 'b.tgz'],
    ['--source', 'a', '--source', 'b'],
    ['--stack', 'heroku-22', '--stack=heroku-24'],
    ['--output', 'a', '-o', 'b'],
  ]) {
    it(`a single-value option given twice is a usage error: ${args.join(' ')}`, async () => {
      const cwd = await tempDir();
      const r = await runBuilder(args, { cwd });
      expect(r.exitCode).to.equal(2);
      expect(oneErrorLine(r.stderr)).to.match(/was given more than once: give it once/);
      expect(r.stdout.length).to.equal(0);
    });
  }

  for (const [arg, message] of [
    ['=x', /-e needs KEY=VALUE, got no variable name before "=": write it as NAME=VALUE$/],
    ['1A=secret-value', /-e 1A=\.\.\.: "1A" is not a variable name/],
    [
      'SLUGKIT_TEST_UNSET_NAME',
      /-e SLUGKIT_TEST_UNSET_NAME: SLUGKIT_TEST_UNSET_NAME is not set in slugbuilder's environment; export it or write it as SLUGKIT_TEST_UNSET_NAME=VALUE$/,
    ],
  ] as const) {
    it(`-e ${arg} is a usage error that does not echo the value`, async () => {
      const r = await runBuilder(['-e', arg, '-o', path.join(await tempDir(), 's.tgz')]);
      expect(r.exitCode).to.equal(2);
      const line = oneErrorLine(r.stderr);
      expect(line).to.match(message);
      expect(line).to.not.include('secret-value');
    });
  }

  it('--env-file naming a missing file fails before anything runs, through the installed #! line too', async () => {
    const dir = await tempDir();
    const missing = path.join(dir, 'nope.env');
    const out = path.join(dir, 'slug.tgz');
    const viaNode = await runBuilder(['--source', await makeApp({ Procfile: 'web: true\n' }), '--env-file', missing, '-o', out]);
    // As npm's bin link runs it: the file itself, through its #! line.
    const direct = await execa(BUILDER, ['--env-file', missing, '-o', out], { reject: false, stdin: 'ignore' });
    for (const r of [viaNode, { exitCode: direct.exitCode, stderr: String(direct.stderr) }]) {
      expect(r.exitCode, r.stderr).to.equal(1);
      expect(oneErrorLine(r.stderr)).to.equal(` !     cannot read env file ${missing}: check the path`);
    }
  });
});
