/**
 * Inputs for the extractor fuzzer: tarballs generated from a hostile
 * vocabulary (traversal, absolute paths, links out, special types, odd
 * modes and sizes), then mutated at the byte level (bit flips, truncation,
 * block shuffles) and at the header level (a field set to a hostile value
 * with the checksum fixed, so the mutation gets past the parser), sometimes
 * gzipped before or after. Everything comes from a seeded PRNG, so a seed
 * and an index reproduce an input exactly.
 */
import { gzipSync } from 'node:zlib';
import { BLOCK, body, end, gnuLong, header, pax, type RawHeader, TYPE } from '../helpers/tar-blocks.js';

/** mulberry32: small, fast, and good enough to drive a fuzzer. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

export interface FuzzTargets {
  /** Absolute path of the sentinel dir beside the target. */
  outside: string;
}

function pathVocabulary(t: FuzzTargets): string[] {
  return [
    'a',
    'a/b',
    'a/b/c',
    'dir/',
    '.',
    './',
    '..',
    '../',
    './a',
    'a/../b',
    'a/../../x',
    '../pwned',
    '../sentinel/pwned',
    '../../pwned',
    `${t.outside}/pwned`,
    '/tmp/slugkit-fuzz-pwned',
    '/',
    'link',
    'link/pwned',
    'link/../pwned',
    'chain',
    'chain/pwned',
    'h',
    'Procfile',
    '.profile.d/x.sh',
    'x'.repeat(100),
    `${'y'.repeat(120)}/z`,
    `${'d/'.repeat(60)}f`,
    'n'.repeat(300),
    'sp ace',
    'uni\u00e9',
    'ctl\u0001\u007f',
  ];
}

function linkVocabulary(t: FuzzTargets): string[] {
  return [
    'a',
    'a/b',
    '.',
    '..',
    '../',
    '../sentinel',
    '../sentinel/keep.txt',
    t.outside,
    `${t.outside}/keep.txt`,
    '/',
    '/etc/passwd',
    'link',
    'chain',
    'h',
    'missing',
    'a/../..',
    '',
  ];
}

const TYPES = [
  TYPE.file,
  TYPE.file,
  TYPE.file,
  TYPE.directory,
  TYPE.symlink,
  TYPE.symlink,
  TYPE.hardlink,
  TYPE.hardlink,
  TYPE.charDevice,
  TYPE.blockDevice,
  TYPE.fifo,
  TYPE.contiguous,
  TYPE.gnuSparse,
  'V',
  'Z',
  '\0',
];
const MODES = [0o644, 0o755, 0o4755, 0o2755, 0o1777, 0o7777, 0o000, 0o777];

/** One generated entry (header, optional PAX or GNU long-name prefix, body). */
function entry(rng: Rng, t: FuzzTargets): Buffer {
  const type = rng.pick(TYPES);
  const name = rng.pick(pathVocabulary(t));
  const linkname = type === TYPE.symlink || type === TYPE.hardlink ? rng.pick(linkVocabulary(t)) : '';
  const dataLength = type === TYPE.file || type === TYPE.contiguous ? rng.pick([0, 1, 5, 511, 512, 513, 3000]) : 0;
  const parts: Buffer[] = [];
  if (rng.chance(0.15)) {
    const records: Record<string, string> = { path: rng.pick(pathVocabulary(t)) };
    if (rng.chance(0.3)) records.linkpath = rng.pick(linkVocabulary(t));
    if (rng.chance(0.2)) records.size = rng.pick(['0', '1', '-1', '99999999999', 'abc', '1e3']);
    if (rng.chance(0.2)) records.mode = rng.pick(['4755', '7777', '-1']);
    parts.push(pax(records, rng.chance(0.1)));
  }
  if (rng.chance(0.05)) parts.push(gnuLong(rng.chance(0.5) ? 'name' : 'link', rng.pick(pathVocabulary(t))));
  const h: RawHeader = { name, type, linkname, mode: rng.pick(MODES), size: dataLength, uid: rng.pick([0, 0, 1000, 65534]) };
  if (type === TYPE.charDevice || type === TYPE.blockDevice) {
    h.devmajor = rng.pick([1, 8]);
    h.devminor = rng.pick([0, 3]);
  }
  if (rng.chance(0.05)) h.prefix = rng.pick(['..', '../sentinel', t.outside, 'p']);
  parts.push(header(h));
  if (dataLength > 0) parts.push(body(rng.bytes(dataLength)));
  return Buffer.concat(parts);
}

export function generateTar(rng: Rng, t: FuzzTargets): Buffer {
  const count = 1 + rng.int(8);
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) parts.push(entry(rng, t));
  if (!rng.chance(0.05)) parts.push(end());
  return Buffer.concat(parts);
}

/** Header field offsets and widths (ustar). */
const FIELDS: Array<[number, number]> = [
  [0, 100],
  [100, 8],
  [124, 12],
  [156, 1],
  [157, 100],
  [257, 6],
  [329, 8],
  [345, 155],
];

function fixChecksum(buf: Buffer, at: number): void {
  buf.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + BLOCK; i++) sum += buf[i];
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', at + 148, 'latin1');
}

const INTERESTING = [0x00, 0xff, 0x2f, 0x2e, 0x80, 0x30, 0x37, 0x20, 0x0a];

/** One mutation, in place where possible; returns the (maybe new) buffer. */
export function mutate(rng: Rng, input: Buffer, t: FuzzTargets): Buffer {
  if (input.length === 0) return rng.bytes(rng.int(64));
  const buf = Buffer.from(input);
  switch (rng.int(8)) {
    case 0: {
      const flips = 1 + rng.int(8);
      for (let i = 0; i < flips; i++) buf[rng.int(buf.length)] ^= 1 << rng.int(8);
      return buf;
    }
    case 1: {
      buf[rng.int(buf.length)] = rng.pick(INTERESTING);
      return buf;
    }
    case 2:
      return buf.subarray(0, rng.int(buf.length));
    case 3: {
      // Duplicate, drop or swap whole blocks: entries out of order, bodies read as headers.
      const blocks = Math.floor(buf.length / BLOCK);
      if (blocks < 2) return buf;
      const a = rng.int(blocks) * BLOCK;
      const b = rng.int(blocks) * BLOCK;
      const op = rng.int(3);
      if (op === 0) return Buffer.concat([buf.subarray(0, a), buf.subarray(a, a + BLOCK), buf.subarray(a)]);
      if (op === 1) return Buffer.concat([buf.subarray(0, a), buf.subarray(a + BLOCK)]);
      const blockA = Buffer.from(buf.subarray(a, a + BLOCK));
      buf.copy(buf, a, b, b + BLOCK);
      blockA.copy(buf, b);
      return buf;
    }
    case 4:
    case 5: {
      // A header field set to something hostile, checksum fixed so the parser believes it.
      const blocks = Math.floor(buf.length / BLOCK);
      if (blocks < 1) return buf;
      const at = rng.int(blocks) * BLOCK;
      const [offset, width] = rng.pick(FIELDS);
      const field = Buffer.alloc(width);
      const choice = rng.int(4);
      if (choice === 0) Buffer.from(rng.pick(pathVocabulary(t))).copy(field);
      else if (choice === 1) Buffer.from(rng.pick(linkVocabulary(t))).copy(field);
      else if (choice === 2) field.fill(rng.pick(INTERESTING));
      else rng.bytes(width).copy(field);
      field.copy(buf, at + offset);
      if (offset === 124 && rng.chance(0.3)) buf[at + 124] = 0x80; // base-256 size
      fixChecksum(buf, at);
      return buf;
    }
    case 6:
      return Buffer.concat([buf, rng.chance(0.5) ? rng.bytes(rng.int(2048)) : Buffer.alloc(rng.int(4) * BLOCK)]);
    default: {
      // Splice a freshly generated entry in at a block boundary.
      const blocks = Math.floor(buf.length / BLOCK);
      const at = rng.int(blocks + 1) * BLOCK;
      return Buffer.concat([buf.subarray(0, at), entry(rng, t), buf.subarray(at)]);
    }
  }
}

/** Input number `index` of the run with `seed`. */
export function fuzzInput(seed: number, index: number, t: FuzzTargets): Buffer {
  const rng = new Rng((seed * 0x9e3779b1 + index * 0x85ebca6b) >>> 0);
  let data = generateTar(rng, t);
  const gzipFirst = rng.chance(0.3);
  if (gzipFirst) data = gzipSync(data, { level: 1 });
  const mutations = rng.int(4);
  for (let i = 0; i < mutations; i++) data = mutate(rng, data, t);
  if (!gzipFirst && rng.chance(0.2)) data = gzipSync(data, { level: 1 });
  return data;
}
