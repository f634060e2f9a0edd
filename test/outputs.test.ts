/**
 * Where the builder writes, through the real CLI: devices, FIFOs and
 * symlinks as targets, targets and the run image checked before any
 * buildpack runs, all outputs or none, and a closed stderr pipe.
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { execa } from 'execa';
import { BUILDER, makeApp, makeBuildpack, removeTempDirs, runBuilder, tarOf, tempDir } from './helpers/cli.js';
import { startHttpServer } from './helpers/http-server.js';
import { skipOrFail } from './helpers/tools.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const isRoot = process.getuid?.() === 0;

describe('builder outputs', () => {
  let source: Buffer;
  let marker: string;
  let buildpack: string;
  let work: string;

  before(async () => {
    source = await tarOf(await makeApp({ Procfile: 'web: echo hi\n', 'index.html': '<h1>hi</h1>\n' }));
    work = await tempDir('slugkit-outputs-');
    marker = path.join(work, 'compiled');
    // The marker proves whether a buildpack ran.
    buildpack = await makeBuildpack({ detect: 'echo test', compile: `echo compiled > ${marker}\necho "-----> compiling"` });
  });
  after(removeTempDirs);

  const build = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runBuilder(['--buildpack', buildpack, '--cache-dir', path.join(work, 'cache'), ...args], {
      input: source,
      // Unsandboxed: the marker is written outside the build.
      env: { ...process.env, SLUGKIT_SANDBOX: 'off', ...env },
    });

  async function markerWritten(): Promise<boolean> {
    return stat(marker).then(
      () => true,
      () => false,
    );
  }

  function oneErrorLine(stderr: string): string {
    const lines = stderr.split('\n').filter((l) => l.startsWith(' !     '));
    expect(lines, stderr).to.have.length(1);
    return lines[0].slice(7);
  }

  describe('device, FIFO and symlink targets', () => {
    it('writes into a character device in place, leaving it a device (as root)', async function () {
      if (!isRoot) {
        skipOrFail(this, 'needs root (mknod)');
      }
      const dir = await tempDir();
      const dev = path.join(dir, 'null');
      // A null device of our own (1:3) inside the temp dir: never the system's /dev/null.
      await execa('mknod', ['-m', '666', dev, 'c', '1', '3']);
      const res = await build(['-o', dev, '--summary', path.join(dir, 's.json')]);
      expect(res.exitCode, res.stderr).to.equal(0);
      expect((await lstat(dev)).isCharacterDevice()).to.equal(true);
      expect(await readdir(dir)).to.have.members(['null', 's.json']);
      expect(JSON.parse(await readFile(path.join(dir, 's.json'), 'utf8')).slug.path).to.equal(dev);
    });

    it('writes the slug into a FIFO its reader receives whole', async () => {
      const dir = await tempDir();
      const fifo = path.join(dir, 'slug.fifo');
      await execa('mkfifo', [fifo]);
      const received: Buffer[] = [];
      const reader = new Promise<void>((resolve, reject) => {
        createReadStream(fifo)
          .on('data', (c) => received.push(c as Buffer))
          .on('end', resolve)
          .on('error', reject);
      });
      const res = await build(['-o', fifo, '--summary', path.join(dir, 's.json')]);
      await reader;
      expect(res.exitCode, res.stderr).to.equal(0);
      const bytes = Buffer.concat(received);
      expect(bytes.subarray(0, 2)).to.deep.equal(Buffer.from([0x1f, 0x8b]));
      const summary = JSON.parse(await readFile(path.join(dir, 's.json'), 'utf8'));
      expect(sha(bytes)).to.equal(summary.slug.sha256);
      expect(gunzipSync(bytes).includes(Buffer.from('<h1>hi</h1>'))).to.equal(true);
      expect((await lstat(fifo)).isFIFO()).to.equal(true);
    });

    it("writes the slug to a stdout redirected into a file at the shell's offset (> and >>)", async () => {
      const dir = await tempDir();
      const env = { ...process.env, SLUGKIT_SANDBOX: 'off' };
      const run = (redirect: string, file: string) =>
        execa(
          'bash',
          ['-c', `node '${BUILDER}' --buildpack '${buildpack}' --cache-dir '${path.join(work, 'cache')}' ${redirect} '${file}'`],
          {
            input: source,
            env,
            reject: false,
          },
        );
      const fresh = path.join(dir, 'slug.tgz');
      const r1 = await run('>', fresh);
      expect(r1.exitCode, r1.stderr).to.equal(0);
      const slug = await readFile(fresh);
      expect(gunzipSync(slug).includes(Buffer.from('<h1>hi</h1>'))).to.equal(true);
      const appended = path.join(dir, 'appended');
      await writeFile(appended, 'before\n');
      const r2 = await run('>>', appended);
      expect(r2.exitCode, r2.stderr).to.equal(0);
      expect(await readFile(appended)).to.deep.equal(Buffer.concat([Buffer.from('before\n'), slug]));
    });

    it('follows a symlink: the file it names is replaced, the link stays', async () => {
      const dir = await tempDir();
      await mkdir(path.join(dir, 'real'));
      await writeFile(path.join(dir, 'real', 'slug.tgz'), 'old');
      await symlink('real/slug.tgz', path.join(dir, 'link.tgz'));
      await symlink('real/new.tgz', path.join(dir, 'dangling.tgz'));
      const res = await build(['-o', path.join(dir, 'link.tgz')]);
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(await readlink(path.join(dir, 'link.tgz'))).to.equal('real/slug.tgz');
      const bytes = await readFile(path.join(dir, 'real', 'slug.tgz'));
      expect(bytes.subarray(0, 2)).to.deep.equal(Buffer.from([0x1f, 0x8b]));

      // A dangling link creates the file it names, as a shell's `>` does.
      const again = await build(['-o', path.join(dir, 'dangling.tgz')]);
      expect(again.exitCode, again.stderr).to.equal(0);
      expect(await readlink(path.join(dir, 'dangling.tgz'))).to.equal('real/new.tgz');
      expect(await readFile(path.join(dir, 'real', 'new.tgz'))).to.deep.equal(bytes);
      expect((await readdir(path.join(dir, 'real'))).sort()).to.deep.equal(['new.tgz', 'slug.tgz']);
    });

    it('writes --summary /dev/stdout into the pipe behind it (a /proc magic link, no path)', async () => {
      const dir = await tempDir();
      const res = await build(['-o', path.join(dir, 'slug.tgz'), '--summary', '/dev/stdout']);
      expect(res.exitCode, res.stderr).to.equal(0);
      const summary = JSON.parse(String(res.stdout));
      expect(summary.slug.sha256).to.equal(sha(await readFile(path.join(dir, 'slug.tgz'))));
      expect(await readdir(dir)).to.deep.equal(['slug.tgz']);
    });
  });

  describe('checked before any buildpack runs', () => {
    beforeEach(async () => {
      await import('node:fs/promises').then((fs) => fs.rm(marker, { force: true }));
    });

    const cases: Array<[string, () => Promise<string[]>, number, RegExp]> = [
      ['-o naming a directory', async () => ['-o', await tempDir()], 2, /^-o .* is a directory: name a file to write$/],
      [
        '-o in a missing directory',
        async () => ['-o', '/nonexistent-slugkit/out.tgz'],
        1,
        /^cannot write -o \/nonexistent-slugkit\/out\.tgz: the directory \/nonexistent-slugkit does not exist$/,
      ],
      [
        '--summary in a missing directory',
        async () => ['-o', path.join(await tempDir(), 'out.tgz'), '--summary', '/nonexistent-slugkit/s.json'],
        1,
        /^cannot write --summary /,
      ],
      [
        '--layer naming a directory',
        async () => ['-o', path.join(await tempDir(), 'out.tgz'), '--layer', await tempDir()],
        2,
        /^--layer .* is a directory/,
      ],
      [
        'an oci-archive that is a directory',
        async () => ['--run-image', 'oci:/nonexistent-slugkit', '--image', `oci-archive:${await tempDir()}`],
        2,
        /^--image .* is a directory/,
      ],
      [
        'an oci layout dir that is not a layout',
        async () => {
          const d = await tempDir();
          await writeFile(path.join(d, 'junk'), 'x');
          return ['--run-image', 'oci:/nonexistent-slugkit', '--image', `oci:${d}`];
        },
        1,
        /is not an OCI image layout \(no oci-layout file\)$/,
      ],
      [
        'a run image that is not there',
        async () => ['--run-image', 'oci:/nonexistent-slugkit', '--image', `oci:${path.join(await tempDir(), 'out')}`],
        1,
        /^run image oci:\/nonexistent-slugkit: .* is not an OCI image layout/,
      ],
      [
        'a PUT URL that is not http(s)',
        async () => ['--put-url', 'ftp://user:secret@example.com/slug'],
        2,
        /^--put-url \(or PUT_URL\) is not an http\(s\) URL$/,
      ],
      [
        '--max-slug-size 0',
        async () => ['-o', path.join(await tempDir(), 'out.tgz'), '--max-slug-size', '0'],
        2,
        /^--max-slug-size must be greater than zero$/,
      ],
    ];
    for (const [name, args, code, message] of cases) {
      it(`refuses ${name} in one line, exit ${code}`, async () => {
        const res = await build(await args());
        expect(res.exitCode, res.stderr).to.equal(code);
        expect(oneErrorLine(res.stderr)).to.match(message);
        expect(res.stderr).to.not.include('secret');
        expect(res.stdout.length).to.equal(0);
        expect(await markerWritten(), 'a buildpack ran').to.equal(false);
      });
    }
  });

  it('delivers nothing when an output fails after the slug is built: no -o file, no --summary, no --layer, no --app-out', async () => {
    const server = await startHttpServer((_req, res) => {
      res.statusCode = 403;
      res.end('denied');
    });
    try {
      const dir = await tempDir();
      const res = await build([
        '-o',
        path.join(dir, 'out.tgz'),
        '--summary',
        path.join(dir, 's.json'),
        '--layer',
        path.join(dir, 'layer.tgz'),
        '--app-out',
        path.join(dir, 'app'),
        '--put-url',
        `${server.origin}/slug`,
      ]);
      expect(res.exitCode, res.stderr).to.equal(1);
      oneErrorLine(res.stderr);
      expect(await markerWritten()).to.equal(true);
      expect(await readdir(dir)).to.deep.equal([]);
    } finally {
      await server.close();
    }
  });

  it('finishes the build silently and cleans up when stderr is closed early (| head)', async () => {
    const tmp = await tempDir('slugkit-tmpdir-');
    const out = await tempDir();
    const cacheParent = await tempDir();
    const child = execa(
      process.execPath,
      [
        BUILDER,
        '--buildpack',
        buildpack,
        '--cache-dir',
        path.join(cacheParent, 'cache'),
        '-o',
        path.join(out, 'slug.tgz'),
        '--summary',
        path.join(out, 's.json'),
      ],
      {
        input: source,
        // Unsandboxed: the buildpack's marker is written outside the build.
        env: { ...process.env, TMPDIR: tmp, SLUGKIT_SANDBOX: 'off' },
        stdout: 'ignore',
        stderr: 'pipe',
        reject: false,
      },
    );
    // Like `head -1`: read the first bytes, then close the pipe.
    child.stderr!.once('data', () => child.stderr!.destroy());
    const result = await child;
    expect(result.exitCode).to.equal(0);
    expect(await readdir(tmp)).to.deep.equal([]);
    expect(await readdir(cacheParent)).to.deep.equal(['cache']);
    const slug = await readFile(path.join(out, 'slug.tgz'));
    const summary = JSON.parse(await readFile(path.join(out, 's.json'), 'utf8'));
    expect(sha(slug)).to.equal(summary.slug.sha256);
    expect(gunzipSync(slug).includes(Buffer.from('<h1>hi</h1>'))).to.equal(true);
  });
});
