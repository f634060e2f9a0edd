/**
 * The parallel gzip writer: real round trips through Node, the system gzip,
 * GNU tar and python3, on inputs that hit every block edge.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { createParallelGzip, gzipHeader, type ParallelGzipOptions } from '../shared/pgzip.js';
import { packTree } from '../shared/tar/pack.js';
import { noise, text } from './helpers/bytes.js';
import { ROOT } from './helpers/cli.js';
import { requireTools } from './helpers/tools.js';

const SMALL_BLOCK = 32 * 1024;

/** Feed `input` in chunks of `chunkSize` and collect the gzip bytes. */
async function gzipWith(input: Buffer, opts: ParallelGzipOptions = {}, chunkSize = 10_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunkSize) chunks.push(input.subarray(i, i + chunkSize));
  return collect(Readable.from(chunks), opts);
}

async function collect(source: Readable | AsyncIterable<Buffer>, opts: ParallelGzipOptions = {}): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    source,
    createParallelGzip(opts),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

async function collectAll(source: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of source) out.push(chunk);
  return out;
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** A command the test needs; skipping is allowed locally but not in CI. */
describe('parallel gzip (shared/pgzip)', () => {
  let work: string;
  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'pgzip-test-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  describe('round trips through Node zlib', () => {
    const cases: Array<[string, Buffer]> = [
      ['empty input', Buffer.alloc(0)],
      ['one byte', Buffer.from('x')],
      ['exactly one block', text(SMALL_BLOCK)],
      ['one block and one byte', text(SMALL_BLOCK + 1)],
      ['exactly three blocks', text(3 * SMALL_BLOCK)],
      ['many blocks with a ragged end', text(40 * SMALL_BLOCK + 777)],
      ['random incompressible data over many blocks', noise(9 * SMALL_BLOCK + 5)],
    ];
    for (const [name, input] of cases) {
      it(`${name} (${input.length} bytes) decompresses to the same bytes`, async () => {
        const gz = await gzipWith(input, { blockSize: SMALL_BLOCK, concurrency: 3 });
        expect(gz.subarray(0, 2).toString('hex')).to.equal('1f8b');
        expect(zlib.gunzipSync(gz).equals(input)).to.equal(true);
        // Exactly one gzip member: the trailer's length field matches the input.
        expect(gz.readUInt32LE(gz.length - 4)).to.equal(input.length);
        expect(gz.readUInt32LE(gz.length - 8)).to.equal(zlib.crc32(input));
      });
    }

    it('writes the same bytes as zlib.gzipSync when the input fits in one block', async () => {
      const input = text(100_000);
      for (const level of [1, 6, 9]) {
        const gz = await gzipWith(input, { level, blockSize: 128 * 1024 });
        expect(gz.equals(zlib.gzipSync(input, { level })), `level ${level}`).to.equal(true);
      }
    });

    it('pins the header: mtime 0, OS byte 3, XFL from the level', async () => {
      expect(gzipHeader(6).toString('hex')).to.equal('1f8b0800000000000003');
      expect(gzipHeader(9)[8]).to.equal(2);
      expect(gzipHeader(1)[8]).to.equal(4);
      const gz = await gzipWith(text(5 * SMALL_BLOCK), { level: 9, blockSize: SMALL_BLOCK });
      expect(gz.subarray(0, 10).equals(gzipHeader(9))).to.equal(true);
    });

    it('compresses at level 0 and level 9 too', async () => {
      const input = text(4 * SMALL_BLOCK + 3);
      for (const level of [0, 9]) {
        const gz = await gzipWith(input, { level, blockSize: SMALL_BLOCK });
        expect(zlib.gunzipSync(gz).equals(input)).to.equal(true);
      }
    });

    it('refuses options it cannot honour with a message naming the option', () => {
      expect(() => createParallelGzip({ level: 10 })).to.throw(RangeError, /level must be an integer from 0 to 9/);
      expect(() => createParallelGzip({ blockSize: 1000 })).to.throw(RangeError, /block size must be an integer of at least 32768/);
      expect(() => createParallelGzip({ concurrency: 0 })).to.throw(RangeError, /concurrency must be a positive integer/);
    });
  });

  describe('determinism', () => {
    it('gives the same bytes on every run, whatever the chunking and concurrency', async () => {
      const input = Buffer.concat([text(700_000), noise(300_000, 42), text(123_457)]);
      const first = await gzipWith(input, { blockSize: 64 * 1024, concurrency: 4 }, 10_000);
      const second = await gzipWith(input, { blockSize: 64 * 1024, concurrency: 4 }, 10_000);
      const otherChunks = await gzipWith(input, { blockSize: 64 * 1024, concurrency: 1 }, 65_537);
      const oneChunk = await gzipWith(input, { blockSize: 64 * 1024, concurrency: 8 }, input.length);
      expect(sha256(second)).to.equal(sha256(first));
      expect(sha256(otherChunks)).to.equal(sha256(first));
      expect(sha256(oneChunk)).to.equal(sha256(first));
    });
  });

  describe('other readers', () => {
    const input = Buffer.concat([text(1_500_000), noise(200_000, 9)]);
    let gzFile: string;
    before(async () => {
      gzFile = path.join(work, 'blocks.gz');
      writeFileSync(gzFile, await gzipWith(input, { blockSize: 64 * 1024 }));
    });

    it('passes `gzip -t` and `gzip -dc` gives back the input', function () {
      requireTools(this, 'gzip');
      execFileSync('gzip', ['-t', gzFile]);
      const out = execFileSync('gzip', ['-dc', gzFile], { maxBuffer: 64 * 1024 * 1024 });
      expect(sha256(out)).to.equal(sha256(input));
    });

    it("is read by python3's gzip module", function () {
      requireTools(this, 'python3');
      const script = 'import gzip,hashlib,sys; print(hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())';
      const out = execFileSync('python3', ['-c', script, gzFile]).toString().trim();
      expect(out).to.equal(sha256(input));
    });
  });

  describe('with packTree (the slug writer)', () => {
    let tree: string;
    before(() => {
      tree = path.join(work, 'tree');
      mkdirSync(path.join(tree, 'lib', 'deep'), { recursive: true });
      writeFileSync(path.join(tree, 'Procfile'), 'web: node server.js\n');
      writeFileSync(path.join(tree, 'lib', 'big.js'), text(600_000));
      writeFileSync(path.join(tree, 'lib', 'deep', 'blob.bin'), noise(150_000, 3));
      writeFileSync(path.join(tree, 'lib', 'empty'), '');
      symlinkSync('lib/big.js', path.join(tree, 'main.js'));
    });

    it('decompresses to exactly the tar a single-threaded writer makes', async () => {
      const plainTar = Buffer.concat(await collectAll(packTree(tree)));
      const parallel = await collect(Readable.from(packTree(tree)), { blockSize: 64 * 1024, concurrency: 4 });
      const single = await new Promise<Buffer>((resolve, reject) => {
        const out: Buffer[] = [];
        Readable.from(packTree(tree))
          .pipe(zlib.createGzip({ level: 6 }))
          .on('data', (c: Buffer) => out.push(c))
          .on('end', () => resolve(Buffer.concat(out)))
          .on('error', reject);
      });
      expect(sha256(zlib.gunzipSync(parallel))).to.equal(sha256(plainTar));
      expect(sha256(zlib.gunzipSync(single))).to.equal(sha256(plainTar));
    });

    it('is listed and extracted by GNU tar', async function () {
      requireTools(this, 'tar');
      const slug = path.join(work, 'slug.tgz');
      writeFileSync(slug, await collect(Readable.from(packTree(tree)), { blockSize: 64 * 1024 }));
      const listing = execFileSync('tar', ['-tzf', slug]).toString().trim().split('\n');
      expect(listing).to.deep.equal([
        './',
        './Procfile',
        './lib/',
        './lib/big.js',
        './lib/deep/',
        './lib/deep/blob.bin',
        './lib/empty',
        './main.js',
      ]);
      const out = path.join(work, 'unpacked');
      mkdirSync(out);
      execFileSync('tar', ['-xzf', slug, '-C', out]);
      expect(execFileSync('cat', [path.join(out, 'main.js')]).equals(text(600_000))).to.equal(true);
    });

    it('stays within 1% of `gzip -6` on a real source tree', async function () {
      requireTools(this, 'gzip');
      // Everything in node_modules but TypeScript and the native binaries (esbuild, Biome):
      // thousands of real JS, JSON and .d.ts files.
      const modules = path.join(ROOT, 'node_modules');
      const exclude = (rel: string) => ['typescript', '.cache', '@biomejs', '@esbuild'].includes(rel);
      const tarFile = path.join(work, 'modules.tar');
      writeFileSync(tarFile, Buffer.concat(await collectAll(packTree(modules, { exclude }))));
      const gnu = execFileSync('gzip', ['-6', '-c', tarFile], { maxBuffer: 256 * 1024 * 1024 });
      const ours = await collect(Readable.from(packTree(modules, { exclude })));
      const ratio = ours.length / gnu.length;
      console.log(
        `      corpus ${execFileSync('stat', ['-c', '%s', tarFile]).toString().trim()} bytes: gzip -6 ${gnu.length}, parallel ${ours.length} (${ratio.toFixed(4)}x)`,
      );
      expect(ratio).to.be.within(0.99, 1.01);
    });
  });

  describe('memory', () => {
    it('stops reading input while its output is not consumed', async () => {
      const blockSize = 64 * 1024;
      const concurrency = 2;
      let produced = 0;
      const source = new Readable({
        read() {
          produced += 16 * 1024;
          this.push(noise(16 * 1024, produced));
        },
      });
      const gz = createParallelGzip({ blockSize, concurrency });
      source.pipe(gz);
      // Let the pipe run until it stalls: reading stops once the output side is full.
      let last = -1;
      while (produced !== last) {
        last = produced;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      source.unpipe(gz);
      source.destroy();
      gz.destroy();
      // Blocks in flight, plus the stream buffers on either side, plus the output held back.
      const bound = (concurrency + 1) * blockSize + 2 * 64 * 1024 + 4 * blockSize;
      expect(produced).to.be.below(bound);
    });
  });
});
