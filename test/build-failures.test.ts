/**
 * Builds that fail, through the real slugbuilder CLI: each must end with one
 * named error line and a non-zero exit, and leave no artifact anywhere (not
 * on stdout, not at `-o`, not at the PUT URL) and no temp dir behind.
 * Every build runs twice at once: once writing to stdout, once to
 * `-o FILE --put-url URL`, with TMPDIR pointing at a dir the test owns.
 */

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { BUILDER, type BuildpackScripts, waitForFile, writeBuildpack } from './helpers/cli.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { file, tar } from './helpers/tar-blocks.js';
import { skipOrFail } from './helpers/tools.js';

const ERROR_LINE = /^ ! {5}/;

const APP = tar(file('Procfile', 'web: echo hi\n'), file('README.md', '# app\n'));

interface Run {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => ERROR_LINE.test(l));
}

/** Alive and not a zombie (an orphan's exit status may wait a moment for its reaper). */
function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/** The pids still alive once the kernel has had a chance to deliver SIGKILL (bounded wait, not a timing assertion). */
async function survivors(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 100 && pids.some(isProcessAlive); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  return pids.filter(isProcessAlive);
}

describe('build failures: named error, non-zero exit, no artifact, no temp dirs', function () {
  this.timeout(90_000);
  let root: string;
  let server: TestHttpServer;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'slugkit-failures-'));
    // Drain whatever is sent so a buggy builder would not hang on the upload; the test checks nothing arrived.
    server = await startHttpServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(201);
        res.end();
      });
    });
  });

  after(async () => {
    await server?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  interface Case {
    name: string;
    buildpack?: BuildpackScripts;
    /** Extra flags. */
    flags?: string[];
    message: RegExp;
    source?: Buffer;
  }

  /** Runs one build in a fresh dir; `mode` picks stdout or -o + PUT. */
  async function build(dir: string, mode: 'stdout' | 'files', c: Case): Promise<Run & { outFile: string; tmp: string }> {
    const tmp = path.join(dir, `tmp-${mode}`);
    await mkdir(tmp, { recursive: true });
    const source = path.join(dir, 'source.tar');
    await writeFile(source, c.source ?? APP);
    const outFile = path.join(dir, `out-${mode}`, 'slug.tgz');
    await mkdir(path.dirname(outFile), { recursive: true });
    const args = [BUILDER, '--source', source, '--cache-dir', path.join(dir, `cache-${mode}`), ...(c.flags ?? [])];
    if (c.buildpack) args.push('--buildpack', await writeBuildpack(path.join(dir, `bp-${mode}`), c.buildpack));
    if (mode === 'files') args.push('-o', outFile, '--put-url', `${server.origin}/slugs/${path.basename(dir)}.tgz`);
    const result = await execa('node', args, {
      env: { TMPDIR: tmp, PUT_URL: '', TAR_URL: '', BUILDPACK_URL: '' },
      reject: false,
      encoding: 'buffer',
      stdin: 'ignore',
      timeout: 60_000,
    });
    return {
      exitCode: result.exitCode ?? -1,
      stdout: Buffer.from(result.stdout),
      stderr: Buffer.from(result.stderr).toString(),
      outFile,
      tmp,
    };
  }

  async function expectCleanFailure(run: Run & { outFile: string; tmp: string }, message: RegExp, exitCode = 1): Promise<void> {
    const context = `stderr:\n${run.stderr}`;
    expect(run.exitCode, context).to.equal(exitCode);
    const errors = errorLines(run.stderr);
    expect(errors, context).to.have.length(1);
    expect(errors[0], context).to.match(message);
    expect(run.stdout.length, 'bytes on stdout').to.equal(0);
    expect(existsSync(run.outFile), '-o file').to.equal(false);
    expect(await readdir(path.dirname(run.outFile)), 'files beside -o').to.deep.equal([]);
    expect(await readdir(run.tmp), 'temp dirs left in TMPDIR').to.deep.equal([]);
  }

  const cases: Case[] = [
    {
      name: 'no buildpack detects the app',
      source: tar(file('README.md', 'nothing to detect\n')),
      message:
        /no buildpack detected this app: add a package\.json \(Node\.js\), requirements\.txt or pyproject\.toml \(Python\), index\.html \(static site\) or a Procfile to it, or a \.buildpacks file .*--buildpack or BUILDPACK_URL/,
    },
    {
      name: 'compile exits non-zero',
      buildpack: { compile: 'echo compiling; exit 3' },
      message: /failed to compile \(exit 3\): its output above says why$/,
    },
    {
      name: 'compile fails with its own error line: that line is the only one',
      buildpack: { compile: 'echo compiling; echo " !     the widget is missing: add widget.txt to the app" >&2; exit 1' },
      message: /^ ! {5}the widget is missing: add widget\.txt to the app$/,
    },
    { name: 'compile is killed by a signal', buildpack: { compile: 'echo compiling; kill -KILL $$' }, message: /killed by SIGKILL/ },
    {
      name: 'release prints invalid YAML',
      buildpack: { compile: 'true', release: "echo 'default_process_types: [unclosed'" },
      message: /bin\/release of buildpack .* printed invalid YAML/,
    },
    {
      name: 'release prints YAML that is not a mapping',
      buildpack: { compile: 'true', release: 'echo "- a list"' },
      message: /printed YAML that is not a mapping/,
    },
    {
      name: 'a buildpack hangs past --timeout',
      buildpack: { compile: 'sleep 600' },
      flags: ['--timeout', '2s'],
      message: /timed out after 2 s \(raise it with --timeout\)/,
    },
    {
      name: 'the slug is over --max-slug-size',
      buildpack: { compile: 'head -c 300000 /dev/urandom > "$1/noise.bin"' },
      flags: ['--max-slug-size', '100K'],
      message:
        /slug is 29\d\.\dK, over the 100\.0K limit; largest before compression: noise\.bin 293\.0K, .*: remove files with \.slugignore or raise --max-slug-size$/,
    },
    {
      name: 'the source is over --max-source-size',
      buildpack: { compile: 'true' },
      source: tar(file('big.bin', Buffer.alloc(300_000, 1))),
      flags: ['--max-source-size', '100K'],
      message: /expands to more than 100\.0K/,
    },
    {
      name: 'the source has more entries than --max-files',
      buildpack: { compile: 'true' },
      source: tar(...Array.from({ length: 30 }, (_, i) => file(`f${i}`))),
      flags: ['--max-files', '20'],
      message: /more than 20 entries/,
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const dir = await mkdtemp(path.join(root, 'case-'));
      const putsBefore = server.requests.filter((r) => r.method === 'PUT').length;
      const [toStdout, toFiles] = await Promise.all([build(dir, 'stdout', c), build(dir, 'files', c)]);
      await expectCleanFailure(toStdout, c.message);
      await expectCleanFailure(toFiles, c.message);
      expect(server.requests.filter((r) => r.method === 'PUT').length, 'PUT requests').to.equal(putsBefore);
    });
  }

  it('a slug over --max-slug-size says its whole size and the largest entries, links not followed, .git left out', async () => {
    const dir = await mkdtemp(path.join(root, 'case-'));
    const outside = path.join(dir, 'outside.bin');
    await writeFile(outside, Buffer.alloc(2_000_000, 7));
    const c: Case = {
      name: 'largest',
      // Random bytes do not compress: the slug is about as large as the files.
      buildpack: {
        compile: [
          'cd "$1"',
          'mkdir -p node_modules/a node_modules/b vendor .git',
          'head -c 200000 /dev/urandom > node_modules/a/x.bin',
          'head -c 100000 /dev/urandom > node_modules/b/y.bin',
          'head -c 120000 /dev/urandom > vendor/z.bin',
          'ln vendor/z.bin vendor/z-again.bin',
          'head -c 150000 /dev/urandom > big.bin',
          'head -c 500000 /dev/urandom > .git/pack',
          `ln -s ${outside} huge-link`,
        ].join('\n'),
      },
      flags: ['--max-slug-size', '100K'],
      message: /./,
    };
    const run = await build(dir, 'files', c);
    await expectCleanFailure(run, /./);
    // The slug holds about 675K: node_modules 293.0K, vendor 234.4K (a hard link is stored in full), big.bin 146.5K.
    expect(errorLines(run.stderr)[0]).to.match(
      /^ ! {5}slug is 6[78]\d\.\dK, over the 100\.0K limit; largest before compression: node_modules 293\.0K, vendor 234\.4K, big\.bin 146\.5K, …: remove files with \.slugignore or raise --max-slug-size$/,
    );
  });

  it('--max-slug-size warns from 60% of the limit (300M of the default 500M) and still builds', async () => {
    const dir = await mkdtemp(path.join(root, 'case-'));
    const c: Case = {
      name: 'warn',
      buildpack: { compile: 'head -c 150000 /dev/urandom > "$1/noise.bin"' },
      flags: ['--max-slug-size', '200K'],
      message: /./,
    };
    const run = await build(dir, 'files', c);
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stderr).to.match(/^ ! {5}Warning: your slug size \(14\d\.\dK\) exceeds the soft limit \(120\.0K\)/m);
    expect(existsSync(run.outFile)).to.equal(true);
  });

  it('--help states the limits and their defaults', async () => {
    const r = await execa('node', [BUILDER, '--help'], { reject: false, stdin: 'ignore' });
    expect(r.exitCode).to.equal(0);
    expect(String(r.stdout)).to.match(/--max-source-size SIZE .*default 2G/);
    expect(String(r.stdout)).to.match(/--max-files N .*default 200000/);
    expect(String(r.stdout)).to.match(/--max-slug-size SIZE .*default 500M; warns from 300M/);
    expect(String(r.stdout)).to.match(/--timeout DURATION .*default 15m/);
  });

  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`${signal} mid-compile stops the buildpack's whole process group, removes temp dirs and exits ${code}`, async () => {
      const dir = await mkdtemp(path.join(root, 'case-'));
      const marks = path.join(dir, 'marks');
      await mkdir(marks);
      const tmp = path.join(dir, 'tmp');
      await mkdir(tmp);
      const outFile = path.join(dir, 'out', 'slug.tgz');
      await mkdir(path.dirname(outFile));
      // A background grandchild and a foreground child, both recorded, then a long wait.
      const bp = await writeBuildpack(path.join(dir, 'bp'), {
        compile: [`sleep 600 & echo $! > "${marks}/grandchild"`, `bash -c 'echo $$ > "${marks}/child"; exec sleep 600' &`, 'wait'].join(
          '\n',
        ),
      });
      const source = path.join(dir, 'source.tar');
      await writeFile(source, APP);
      const child = execa(
        'node',
        [
          BUILDER,
          '--source',
          source,
          '--buildpack',
          bp,
          '--cache-dir',
          path.join(dir, 'cache'),
          '-o',
          outFile,
          '--put-url',
          `${server.origin}/slugs/signal.tgz`,
        ],
        {
          // Unsandboxed: the buildpack writes its host pids outside its build (build-kill.test.ts signals a sandboxed one).
          env: { TMPDIR: tmp, PUT_URL: '', TAR_URL: '', BUILDPACK_URL: '', SLUGKIT_SANDBOX: 'off' },
          reject: false,
          stdin: 'ignore',
          timeout: 60_000,
        },
      );
      await waitForFile(path.join(marks, 'grandchild'), { child });
      await waitForFile(path.join(marks, 'child'), { child });
      const pids = [
        Number(await readFile(path.join(marks, 'grandchild'), 'utf8')),
        Number(await readFile(path.join(marks, 'child'), 'utf8')),
      ];
      expect(pids.every(isProcessAlive), 'buildpack processes running before the signal').to.equal(true);
      const putsBefore = server.requests.filter((r) => r.method === 'PUT').length;

      child.kill(signal);
      const result = await child;
      expect(result.exitCode, String(result.stderr)).to.equal(code);
      const errors = errorLines(String(result.stderr));
      expect(errors).to.deep.equal([` !     Build interrupted by ${signal}`]);
      expect(result.stdout).to.equal('');
      expect(await survivors(pids), 'buildpack processes still alive').to.deep.equal([]);
      expect(await readdir(tmp), 'temp dirs left in TMPDIR').to.deep.equal([]);
      expect(existsSync(outFile)).to.equal(false);
      expect(server.requests.filter((r) => r.method === 'PUT').length).to.equal(putsBefore);
    });
  }

  describe('the disk fills while the slug is written (ENOSPC on a small tmpfs)', () => {
    let mnt: string | undefined;
    let skipReason = '';

    before(async function () {
      const dir = await mkdtemp(path.join(root, 'tmpfs-'));
      const attempt = await execa('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { reject: false });
      if (attempt.exitCode === 0) mnt = dir;
      else
        skipReason = `cannot mount a tmpfs here (${String(attempt.stderr).trim() || `exit ${attempt.exitCode}`}): run as root with CAP_SYS_ADMIN`;
      if (!mnt) {
        skipOrFail(this, `(the ENOSPC tests) needs a tmpfs: ${skipReason}`);
      }
    });

    after(async () => {
      if (mnt) await execa('umount', [mnt], { reject: false });
    });

    /** A build with TMPDIR on the small tmpfs, its slug to `-o` in the case dir. */
    async function buildOnTmpfs(dir: string, tmpName: string, compile: string, sourceBytes: Buffer) {
      const tmp = path.join(mnt as string, tmpName);
      await mkdir(tmp);
      const outFile = path.join(dir, 'out', 'slug.tgz');
      await mkdir(path.dirname(outFile));
      const bp = await writeBuildpack(path.join(dir, 'bp'), { compile });
      const source = path.join(dir, 'source.tar');
      await writeFile(source, sourceBytes);
      const result = await execa(
        'node',
        [BUILDER, '--source', source, '--buildpack', bp, '--cache-dir', path.join(dir, 'cache'), '-o', outFile],
        {
          env: { TMPDIR: tmp, PUT_URL: '', TAR_URL: '', BUILDPACK_URL: '' },
          reject: false,
          stdin: 'ignore',
        },
      );
      return { result, outFile, tmp };
    }

    it('as TMPDIR: the slug write fails with a named error and no partial slug', async () => {
      const dir = await mkdtemp(path.join(root, 'case-'));
      // 2.5 MB of noise fits the 4 MB tmpfs; its slug (about as big again) does not.
      const { result, outFile, tmp } = await buildOnTmpfs(dir, 'tmp', 'head -c 2500000 /dev/urandom > "$1/noise.bin"', APP);
      await expectCleanFailure(
        { exitCode: result.exitCode ?? -1, stdout: Buffer.from(String(result.stdout)), stderr: String(result.stderr), outFile, tmp },
        /no space left on the device while writing the slug/,
      );
    });

    it('while the source is unpacked: a named error and nothing left in TMPDIR', async () => {
      const dir = await mkdtemp(path.join(root, 'case-'));
      const { result, outFile, tmp } = await buildOnTmpfs(
        dir,
        'tmp-unpack',
        'true',
        tar(file('Procfile', 'web: x\n'), file('big.bin', Buffer.alloc(6 * 1024 * 1024, 7))),
      );
      await expectCleanFailure(
        { exitCode: result.exitCode ?? -1, stdout: Buffer.from(String(result.stdout)), stderr: String(result.stderr), outFile, tmp },
        /no space left on the device while unpacking source/,
      );
    });

    it('as the -o target: the copy into place fails with a named error and no partial file', async () => {
      const dir = await mkdtemp(path.join(root, 'case-'));
      const tmp = path.join(dir, 'tmp');
      await mkdir(tmp);
      const outDir = path.join(mnt as string, 'out');
      await mkdir(outDir);
      const outFile = path.join(outDir, 'slug.tgz');
      const bp = await writeBuildpack(path.join(dir, 'bp'), { compile: 'head -c 5000000 /dev/urandom > "$1/noise.bin"' });
      const source = path.join(dir, 'source.tar');
      await writeFile(source, APP);
      const result = await execa(
        'node',
        [BUILDER, '--source', source, '--buildpack', bp, '--cache-dir', path.join(dir, 'cache'), '-o', outFile],
        {
          env: { TMPDIR: tmp, PUT_URL: '', TAR_URL: '', BUILDPACK_URL: '' },
          reject: false,
          stdin: 'ignore',
        },
      );
      await expectCleanFailure(
        { exitCode: result.exitCode ?? -1, stdout: Buffer.from(String(result.stdout)), stderr: String(result.stderr), outFile, tmp },
        /no space left|ENOSPC/,
      );
    });
  });
});
