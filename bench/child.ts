/**
 * The slugkit side of the benchmarks that have no CLI of their own, run as a
 * fresh process so it pays Node's start-up like the baseline pays tar's:
 *
 *   node dist/bench/child.js write-slug TREE OUT   slugbuilder's slug writer (writeSlug)
 *   node dist/bench/child.js write-tar TREE        the uncompressed slug tar, on stdout
 *   node dist/bench/child.js extract SLUG DIR      shared/tar-extract's extractArchive
 *   node dist/bench/child.js gunzip SLUG           Node's gunzip alone, output dropped
 *   node dist/bench/child.js list SLUG             gunzip + tar parse, nothing written
 */
import { createReadStream } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser } from 'tar';
import { writeSlug } from '../slugbuilder/slug.js';
import { extractArchive } from '../shared/tar-extract.js';
import { DEFAULT_MTIME, packTree } from '../shared/tar-write.js';

const [job, a, b] = process.argv.slice(2);

function sink(): Writable {
  return new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}

switch (job) {
  case 'write-slug':
    await writeSlug(a, b, { mtime: DEFAULT_MTIME, maxBytes: Number.MAX_SAFE_INTEGER });
    break;
  case 'write-tar':
    await pipeline(Readable.from(packTree(a, { prefix: './', mtime: DEFAULT_MTIME, exclude: (rel) => rel === '.git' })), process.stdout);
    break;
  case 'extract':
    await extractArchive(createReadStream(a), b, 'slug');
    break;
  case 'gunzip':
    await pipeline(createReadStream(a), createGunzip(), sink());
    break;
  case 'list': {
    const parser = new Parser({ onReadEntry: (entry) => entry.resume() });
    await pipeline(createReadStream(a), createGunzip(), parser);
    break;
  }
  default:
    process.stderr.write(`unknown bench job "${job}"\n`);
    process.exit(2);
}
