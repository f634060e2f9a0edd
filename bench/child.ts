/**
 * The slugkit side of the benchmarks that have no CLI of their own, run as a
 * fresh process so it pays Node's start-up like the baseline pays tar's:
 *
 *   node dist/bench/child.js write-slug TREE OUT   slugbuilder's slug writer (writeSlug)
 *   node dist/bench/child.js write-tar TREE        the uncompressed slug tar, on stdout
 *   node dist/bench/child.js extract SLUG DIR      shared/tar/extract.ts's extractArchive
 *   node dist/bench/child.js gunzip SLUG           Node's gunzip alone, output dropped
 *   node dist/bench/child.js list SLUG             gunzip + tar parse, nothing written
 *   node dist/bench/child.js extract-floor SLUG DIR
 *       gunzip + node-tar parse + the fewest syscalls per entry (one mkdir per
 *       directory, open/write/close per file). No safety checks at all: only
 *       for our own generated slug, to show what unpacking could cost.
 */
import { closeSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser } from 'tar';
import { stopLibdeflateHelper } from '../shared/libdeflate-gzip.js';
import { ARCHIVE_CHUNK, extractArchive, openArchiveFile } from '../shared/tar/extract.js';
import { DEFAULT_MTIME } from '../shared/tar/pack.js';
import { slugTar, writeSlug } from '../slugbuilder/slug-parts.js';

const [job, a, b] = process.argv.slice(2);

// The same read and gunzip sizes as slugrunner's --slug FILE.
const slugFile = openArchiveFile;
const gunzip = () => createGunzip({ chunkSize: ARCHIVE_CHUNK });

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
    // Waited for, so its libdeflate-gzip processes' CPU counts in this one's.
    await stopLibdeflateHelper();
    break;
  case 'write-tar':
    await pipeline(Readable.from(slugTar(a, DEFAULT_MTIME)), process.stdout);
    break;
  case 'extract':
    await extractArchive(slugFile(a), b, 'slug');
    break;
  case 'gunzip':
    await pipeline(slugFile(a), gunzip(), sink());
    break;
  case 'list': {
    const parser = new Parser({ onReadEntry: (entry) => entry.resume() });
    await pipeline(slugFile(a), gunzip(), parser);
    break;
  }
  case 'extract-floor': {
    const parser = new Parser({
      onReadEntry: (entry) => {
        const target = path.join(b, entry.path);
        if (entry.type === 'Directory') {
          mkdirSync(target, { recursive: true, mode: 0o755 });
          entry.resume();
        } else if (entry.type === 'SymbolicLink') {
          symlinkSync(String(entry.linkpath), target);
          entry.resume();
        } else {
          const fd = openSync(target, 'w', (entry.mode ?? 0o644) & 0o777);
          entry.on('data', (chunk: Buffer) => writeSync(fd, chunk));
          entry.on('end', () => closeSync(fd));
        }
      },
    });
    await pipeline(slugFile(a), gunzip(), parser as unknown as NodeJS.WritableStream);
    break;
  }
  default:
    process.stderr.write(`unknown bench job "${job}"\n`);
    process.exit(2);
}
