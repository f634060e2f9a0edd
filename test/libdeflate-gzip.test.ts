/**
 * The libdeflate gzip (shared/libdeflate-gzip.ts): real libdeflate-gzip
 * processes, read back by Node, GNU gzip, python3 and slugrunner; a tool that
 * fails; slugbuilder's SLUGKIT_GZIP; and a build killed mid-compression.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { execa } from 'execa';
import {
  createLibdeflateGzip,
  findLibdeflateGzip,
  type LibdeflateGzipOptions,
  SMALL,
  stopLibdeflateHelper,
} from '../shared/libdeflate-gzip.js';
import { noise, text } from './helpers/bytes.js';
import { BUILDER, makeApp, removeTempDirs, runBuilder, runRunner, tempDir, writeBuildpack } from './helpers/cli.js';
import { requireTools } from './helpers/tools.js';

const SEGMENT = 256 * 1024;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The gzip members of `gz`: start offsets, each with a valid header and trailer. */
function members(gz: Buffer): number[] {
  const starts: number[] = [];
  for (let at = 0; at < gz.length; ) {
    expect(gz.subarray(at, at + 3).toString('hex'), `member at ${at}`).to.equal('1f8b08');
    // mtime 0: the same input gives the same bytes whenever it is compressed.
    expect(gz.readUInt32LE(at + 4), `mtime of the member at ${at}`).to.equal(0);
    const flags = gz[at + 3];
    let body = at + 10;
    if (flags & 4) body += 2 + gz.readUInt16LE(body);
    for (const bit of [8, 16]) if (flags & bit) body = gz.indexOf(0, body) + 1;
    if (flags & 2) body += 2;
    const { engine } = zlib.inflateRawSync(gz.subarray(body), { info: true }) as unknown as { engine: zlib.InflateRaw };
    starts.push(at);
    at = body + engine.bytesWritten + 8;
  }
  return starts;
}

async function gzipWith(input: Buffer, opts: Partial<LibdeflateGzipOptions> = {}, chunkSize = 100_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunkSize) chunks.push(input.subarray(i, i + chunkSize));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    createLibdeflateGzip({ tool: opts.tool ?? (findLibdeflateGzip() as string), level: 6, segmentSize: SEGMENT, ...opts }),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

describe('libdeflate gzip (shared/libdeflate-gzip)', function () {
  this.timeout(60_000);
  let work: string;
  let tmp: string;
  let savedTmp: string | undefined;

  before(async function () {
    requireTools(this, 'libdeflate-gzip');
    work = await tempDir('slugkit-libdeflate-');
    // The helper's segment dirs go to TMPDIR: a private one, to see that none is left.
    tmp = path.join(work, 'tmp');
    mkdirSync(tmp);
    savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
  });
  afterEach(async () => {
    await stopLibdeflateHelper();
    if (tmp) expect(readdirSync(tmp), 'left in TMPDIR').to.deep.equal([]);
  });
  after(async () => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    await removeTempDirs();
  });

  const cases: Array<[string, Buffer, number]> = [
    ['empty input', Buffer.alloc(0), 1],
    ['a small input (gzipped in the process)', text(5000), 1],
    ['exactly the small limit', text(SMALL), SMALL / SEGMENT],
    ['the small limit and one byte', text(SMALL + 1), SMALL / SEGMENT + 1],
    ['many segments with a ragged end', text(12 * SEGMENT + 777), 13],
    ['incompressible data', noise(5 * SEGMENT + 3), 6],
  ];
  for (const [name, input, count] of cases) {
    it(`${name} (${input.length} bytes): ${count} member(s) that Node gunzips to the input`, async () => {
      const gz = await gzipWith(input);
      expect(members(gz)).to.have.length(count);
      expect(sha(zlib.gunzipSync(gz))).to.equal(sha(input));
    });
  }

  it('gzips an input under the small limit exactly as zlib does, without a process', async () => {
    const input = text(SMALL - 1);
    expect((await gzipWith(input, { tool: '/nonexistent/libdeflate-gzip' })).equals(zlib.gzipSync(input, { level: 6 }))).to.equal(true);
  });

  it('gives the same bytes whatever the chunking and concurrency', async () => {
    const input = Buffer.concat([text(1_500_000), noise(400_000, 42), text(123_457)]);
    const first = await gzipWith(input, { concurrency: 4 }, 10_000);
    expect(sha(await gzipWith(input, { concurrency: 1 }, 65_537))).to.equal(sha(first));
    expect(sha(await gzipWith(input, { concurrency: 8 }, input.length))).to.equal(sha(first));
  });

  it('is read by `gzip -dc` and by python3 as one stream', async function () {
    requireTools(this, 'gzip', 'python3');
    const input = Buffer.concat([text(2_000_000), noise(300_000, 9)]);
    const file = path.join(work, 'members.gz');
    writeFileSync(file, await gzipWith(input));
    expect(sha(execFileSync('gzip', ['-dc', file], { maxBuffer: 64 * 1024 * 1024 }))).to.equal(sha(input));
    const script = 'import gzip,hashlib,sys; print(hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())';
    expect(execFileSync('python3', ['-c', script, file]).toString().trim()).to.equal(sha(input));
  });

  /** A libdeflate-gzip that runs `body` instead. */
  async function fakeTool(name: string, body: string): Promise<string> {
    const bin = path.join(work, name);
    mkdirSync(bin, { recursive: true });
    const tool = path.join(bin, 'libdeflate-gzip');
    await writeFile(tool, `#!/bin/sh\n${body}\n`);
    await chmod(tool, 0o755);
    return tool;
  }

  it('fails with the tool’s exit status and first stderr line, and leaves no segment behind', async () => {
    const tool = await fakeTool('failing', 'echo "disk on fire" >&2\necho "second line" >&2\nexit 3');
    let err: Error | undefined;
    await gzipWith(text(3 * SMALL), { tool }).catch((e: Error) => (err = e));
    expect(err?.message).to.equal('libdeflate-gzip exited with 3: disk on fire');
  });

  it('fails when the tool is killed', async () => {
    const tool = await fakeTool('killed', 'kill -KILL $$');
    let err: Error | undefined;
    await gzipWith(text(2 * SMALL), { tool }).catch((e: Error) => (err = e));
    expect(err?.message).to.equal('libdeflate-gzip exited with 137');
  });
});

describe('slugbuilder SLUGKIT_GZIP', function () {
  this.timeout(120_000);
  let app: string;
  let buildpack: string;
  let work: string;
  const EPOCH = '1700000000';

  before(async () => {
    app = await makeApp({ Procfile: 'web: node server.js\n', 'server.js': 'console.log(1)\n' });
    // Over one segment of incompressible bytes in node_modules (a part of its own), and text besides.
    mkdirSync(path.join(app, 'node_modules', 'big'), { recursive: true });
    await writeFile(path.join(app, 'node_modules', 'big', 'blob.bin'), noise(9 * 1024 * 1024, 5));
    await writeFile(path.join(app, 'node_modules', 'big', 'index.js'), text(3 * 1024 * 1024));
    buildpack = await writeBuildpack(path.join(await tempDir('slugkit-bp-'), 'plain'), {});
    work = await tempDir('slugkit-gzip-cli-');
  });
  after(removeTempDirs);

  const build = (name: string, env: NodeJS.ProcessEnv, root = path.join(work, `root-${name}`)) =>
    runBuilder(
      ['--source', app, '--buildpack', buildpack, '--cache-dir', path.join(work, `cache-${name}`), '-o', path.join(work, `${name}.tgz`)],
      {
        env: { ...process.env, SLUGBUILDER_CACHE_DIR: root, SOURCE_DATE_EPOCH: EPOCH, ...env },
      },
    );

  it('refuses an unknown value in one line before reading the source', async () => {
    const res = await build('bogus', { SLUGKIT_GZIP: 'pigz' });
    expect(res.exitCode).to.equal(2);
    expect(res.stderr.trimEnd().split('\n')).to.deep.equal([' !     SLUGKIT_GZIP "pigz": use auto, zlib or libdeflate']);
    expect(existsSync(path.join(work, 'bogus.tgz'))).to.equal(false);
  });

  it('libdeflate without libdeflate-gzip on PATH is one error line', async () => {
    const res = await build('missing', { SLUGKIT_GZIP: 'libdeflate', PATH: path.join(work, 'empty-path') });
    expect(res.exitCode).to.equal(1);
    expect(res.stderr.trimEnd().split('\n')).to.deep.equal([
      ' !     SLUGKIT_GZIP=libdeflate: libdeflate-gzip is not on PATH (apt-get install libdeflate-tools), or use auto or zlib',
    ]);
  });

  it('libdeflate and zlib slugs hold the same tar; slugrunner unpacks either; each compressor keeps its own parts', async function () {
    requireTools(this, 'libdeflate-gzip', 'gzip');
    const root = path.join(work, 'root-shared');
    const fast = await build('libdeflate', { SLUGKIT_GZIP: 'libdeflate' }, root);
    expect(fast.exitCode, fast.stderr).to.equal(0);
    const slow = await build('zlib', { SLUGKIT_GZIP: 'zlib' }, root);
    expect(slow.exitCode, slow.stderr).to.equal(0);
    // The zlib build shares the cache root but not the libdeflate build's kept parts: other bytes.
    expect(slow.stderr).to.include('Slug: 0 of 2 parts reused from the layer cache');
    const [a, b] = [await readFile(path.join(work, 'libdeflate.tgz')), await readFile(path.join(work, 'zlib.tgz'))];
    expect(sha(a)).to.not.equal(sha(b));
    // node_modules is 12 MiB of tar: two 8 MiB segments, so two members where zlib makes one.
    expect(members(a)).to.have.length(members(b).length + 1);
    const tarOf = (f: string) => execFileSync('gzip', ['-dc', f], { maxBuffer: 64 * 1024 * 1024 });
    expect(sha(tarOf(path.join(work, 'libdeflate.tgz')))).to.equal(sha(tarOf(path.join(work, 'zlib.tgz'))));
    const again = await build('libdeflate-again', { SLUGKIT_GZIP: 'libdeflate' }, root);
    // The rest of the app is under a MiB of tar: compressed each time, never kept.
    expect(again.stderr).to.include('Slug: 1 of 2 parts reused from the layer cache');
    expect(sha(await readFile(path.join(work, 'libdeflate-again.tgz')))).to.equal(sha(a));
    const run = await runRunner([
      '--slug',
      path.join(work, 'libdeflate.tgz'),
      '--app-dir',
      path.join(work, 'run'),
      'run',
      'sha256sum',
      'node_modules/big/blob.bin',
    ]);
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout.toString()).to.include(sha(noise(9 * 1024 * 1024, 5)));
  });

  it('a build that ends before its helper has made its dir waits for the helper, then exits 0 with nothing left behind', async function () {
    requireTools(this, 'libdeflate-gzip');
    // The helper is started with the first compressor; a slow mktemp keeps its dir line back until the build is done.
    const slow = path.join(work, 'slow-mktemp');
    mkdirSync(slow, { recursive: true });
    const real = execFileSync('sh', ['-c', 'command -v mktemp'], { encoding: 'utf8' }).trim();
    await writeFile(path.join(slow, 'mktemp'), `#!/bin/sh\nsleep 2\nexec ${real} "$@"\n`);
    await chmod(path.join(slow, 'mktemp'), 0o755);
    const tiny = await makeApp({ Procfile: 'web: node server.js\n', 'server.js': 'console.log(1)\n' });
    const tmp = path.join(work, 'slow-tmp');
    mkdirSync(tmp);
    const res = await runBuilder(['--source', tiny, '--buildpack', buildpack, '-o', path.join(work, 'tiny.tgz')], {
      env: {
        ...process.env,
        PATH: `${slow}:${process.env.PATH}`,
        TMPDIR: tmp,
        SLUGKIT_GZIP: 'libdeflate',
        SLUGBUILDER_CACHE_DIR: path.join(work, 'root-tiny'),
      },
    });
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(existsSync(path.join(work, 'tiny.tgz'))).to.equal(true);
    expect(readdirSync(tmp).filter((n) => n.startsWith('slugkit-gzip-'))).to.deep.equal([]);
  });

  it('a build killed while compressing leaves no segment dir and no helper behind', async function () {
    requireTools(this, 'libdeflate-gzip');
    const tmp = path.join(work, 'kill-tmp');
    mkdirSync(tmp);
    const child = execa(
      process.execPath,
      [
        '--',
        BUILDER,
        '--source',
        app,
        '--buildpack',
        buildpack,
        '--cache-dir',
        path.join(work, 'cache-kill'),
        '-o',
        path.join(work, 'kill.tgz'),
      ],
      {
        env: { ...process.env, TMPDIR: tmp, SLUGKIT_GZIP: 'libdeflate', SLUGBUILDER_CACHE_DIR: path.join(work, 'root-kill') },
        reject: false,
      },
    );
    const segmentDir = () => readdirSync(tmp).find((n) => n.startsWith('slugkit-gzip-'));
    const deadline = Date.now() + 60_000;
    while (!segmentDir() && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    const dir = segmentDir();
    expect(dir, 'the helper made its dir').to.be.a('string');
    child.kill('SIGKILL');
    await child;
    const gone = Date.now() + 15_000;
    while (existsSync(path.join(tmp, dir as string)) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(path.join(tmp, dir as string)), 'the segment dir is removed').to.equal(false);
    const helpers = await execa('pgrep', ['-f', path.join(tmp, dir as string)], { reject: false });
    expect(helpers.stdout.trim(), 'no helper is left').to.equal('');
  });
});
