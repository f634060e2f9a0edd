/**
 * slugrunner's command line through bin/slugrunner: the habits a user
 * expects (--version, --help, help, types --json) and one ` !     ` line,
 * exit 1 (2 for usage), for each mistake an operator makes.
 */

import { constants } from 'node:fs';
import { access, chmod, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { ROOT, RUNNER, removeTempDirs, runRunner, tarOf, tempDir, writeTree } from './helpers/cli.js';

const PREFIX = ' !     ';

/** stderr must be exactly one error line. */
function onlyLine(stderr: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines, stderr).to.have.length(1);
  expect(lines[0].startsWith(PREFIX), stderr).to.equal(true);
  return lines[0].slice(PREFIX.length);
}

describe('slugrunner command line', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  let slug: string;
  let appDir: string;
  before(async () => {
    const src = await writeTree(await tempDir('slugkit-slugsrc-'), {
      Procfile: 'web: node server.js\nworker: bin/work --fast\n',
      '.release': '--- {}\n',
    });
    slug = path.join(await tempDir(), 'app.tgz');
    await writeFile(slug, await tarOf(src, true));
    appDir = path.join(await tempDir(), 'app');
    expect((await runRunner(['--app-dir', appDir, '--slug', slug, 'types'])).exitCode).to.equal(0);
  });

  it("--version prints slugrunner's version, then Node's and the default stack, on stdout", async () => {
    const res = await runRunner(['--version']);
    const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(res.exitCode).to.equal(0);
    expect(res.stdout.toString()).to.equal(`slugrunner ${version} (slugkit)\nnode ${process.version}\ndefault stack heroku-24\n`);
    expect(res.stderr).to.equal('');
  });

  it('--help, -h and help print the usage on stdout and exit 0', async () => {
    const outputs = new Set<string>();
    for (const args of [['--help'], ['-h'], ['help']]) {
      const res = await runRunner(args);
      expect(res.exitCode, args.join(' ')).to.equal(0);
      expect(res.stderr).to.equal('');
      outputs.add(res.stdout.toString());
    }
    expect(outputs.size).to.equal(1);
    expect([...outputs][0])
      .to.match(/^Usage: slugrunner /)
      .and.include('--app-dir DIR')
      .and.include('types [--json]');
  });

  it('types --json prints one JSON object, type -> command', async () => {
    const res = await runRunner(['--app-dir', appDir, 'types', '--json']);
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stdout.toString()).to.equal('{"web":"node server.js","worker":"bin/work --fast"}\n');
  });

  const usageCases: Array<[string, string[], string]> = [
    ['no command', [], 'no command: use start, run or types (see slugrunner --help)'],
    ['an unknown option', ['--frobnicate', 'types'], 'unknown option --frobnicate (see slugrunner --help)'],
    ['an unknown short option', ['-x', 'types'], 'unknown option -x (see slugrunner --help)'],
    ['a negative --grace', ['--grace', '-5s', 'start'], '--grace expects a duration like 900, 90s or 15m, got "-5s"'],
    ['an option without its value', ['types', '--app-dir'], '--app-dir needs a value (see slugrunner --help)'],
    ['an empty value', ['--slug=', 'types'], '--slug needs a value (see slugrunner --help)'],
    ['an option followed by another', ['--slug', '--app-dir', 'x', 'types'], '--slug needs a value (see slugrunner --help)'],
    [
      '--slug twice',
      ['--slug', 'a.tgz', '--slug', 'b.tgz', 'types'],
      '--slug was given more than once: give it once (see slugrunner --help)',
    ],
    [
      '--app-dir twice',
      ['--app-dir', 'a', 'types', '--app-dir=b'],
      '--app-dir was given more than once: give it once (see slugrunner --help)',
    ],
    ['words after types', ['types', 'web'], 'types takes no arguments, got "web"'],
    ['--json without types', ['--json', 'start', 'web'], '--json goes with types: slugrunner types --json'],
    ['a value for a flag', ['--quiet=yes', 'types'], '--quiet takes no value (see slugrunner --help)'],
  ];
  for (const [what, args, message] of usageCases) {
    it(`${what} is one usage line, exit 2`, async () => {
      const res = await runRunner(args);
      expect(res.exitCode, res.stderr).to.equal(2);
      expect(onlyLine(res.stderr)).to.equal(message);
      expect(res.stdout.toString()).to.equal('');
    });
  }

  it('options after `run` belong to the command', async () => {
    const res = await runRunner(['--app-dir', appDir, 'run', 'echo', '--slug', '--frobnicate']);
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stdout.toString()).to.equal('--slug --frobnicate\n');
  });

  it('--slug DIR says to pass a slug file or use --app-dir', async () => {
    const dir = await tempDir();
    const res = await runRunner(['--app-dir', path.join(await tempDir(), 'app'), '--slug', dir, 'types']);
    expect(res.exitCode).to.equal(1);
    expect(onlyLine(res.stderr)).to.equal(
      `slug ${dir} is a directory: pass a slug file (.tgz) to --slug, or run an unpacked app with --app-dir ${dir}`,
    );
  });

  it('a HOME that does not exist changes nothing: the process gets the app dir as HOME', async () => {
    const missing = path.join(await tempDir(), 'no-such-home');
    const fresh = path.join(await tempDir(), 'app');
    const res = await runRunner(['--app-dir', fresh, '--slug', slug, 'run', 'echo "$HOME"'], { env: { ...process.env, HOME: missing } });
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stdout.toString()).to.equal(`${fresh}\n`);
  });

  it('the default /app, not writable, says to pass --app-dir', async function () {
    // Run as nobody when we are root; as ourselves otherwise. Either way /app must be out of our reach.
    const asRoot = process.getuid?.() === 0;
    const cmd = asRoot ? 'setpriv' : RUNNER;
    const prefix = asRoot ? ['--reuid', '65534', '--regid', '65534', '--clear-groups', RUNNER] : [];
    if (asRoot && (await execa('setpriv', ['--version'], { reject: false })).exitCode !== 0) {
      console.log('      skipped: running as root without setpriv, so the test cannot run as another user');
      this.skip();
    }
    const appInfo = await stat('/app').catch(() => undefined);
    const reachable = asRoot
      ? appInfo !== undefined && (appInfo.mode & 0o002) !== 0
      : await access(appInfo ? '/app' : '/', constants.W_OK).then(
          () => true,
          () => false,
        );
    if (reachable) {
      console.log('      skipped: /app (or /) is writable by the test user, and a test never writes there');
      this.skip();
    }
    // The slug must be readable by that user.
    const dir = await tempDir();
    await chmod(dir, 0o755);
    const readable = path.join(dir, 'app.tgz');
    await writeFile(readable, await readFile(slug));
    await chmod(readable, 0o644);
    const res = await execa(cmd, [...prefix, '--slug', readable, 'types'], { reject: false, stdin: 'ignore', cwd: dir });
    if (asRoot && res.exitCode !== 1 && /setpriv:|Permission denied/.test(res.stderr)) {
      console.log(`      skipped: uid 65534 cannot run slugrunner from this checkout: ${res.stderr.split('\n')[0]}`);
      this.skip();
    }
    expect(res.exitCode, res.stderr).to.equal(1);
    expect(onlyLine(res.stderr)).to.equal('cannot write /app (permission denied): pass --app-dir DIR, a directory you can write');
  });
});
