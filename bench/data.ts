/**
 * Deterministic benchmark data: a node_modules-like app tree generated from a
 * seed, so every run (and every machine) measures the same bytes. Trees are
 * generated once under `.bench-data/` and reused while their spec matches.
 *
 * The shape follows a real node_modules: hundreds of packages (some scoped,
 * some nested), each with package.json, README, LICENSE and a spread of JS,
 * .d.ts and source-map files whose sizes are log-normal (many small files, a
 * few large bundles), plus a few percent of incompressible binaries (.node,
 * .wasm, .png). Text is cut from a pool of generated JS-like lines, which
 * gzips to roughly the ratio real JavaScript does.
 */
import { createCipheriv } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface TreeSpec {
  /** Files to generate (approximately: whole packages are kept together). */
  files: number;
  /** Total bytes of file content to aim for. */
  bytes: number;
  /** Extra large files (bytes each), to show that nothing is held in memory. */
  bigFiles?: number[];
  seed: number;
}

export interface TreeStats {
  files: number;
  bytes: number;
}

/** Bump when the generator changes, so stale trees are rebuilt. */
const GENERATOR_VERSION = 3;

/** mulberry32: small, fast, seedable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic incompressible bytes: AES-CTR of zeros under a seed-derived key. */
function binary(length: number, seed: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed >>> 0, 0);
  key.writeUInt32LE(0x5eed, 4);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

const KEYWORDS = [
  'const',
  'let',
  'var',
  'function',
  'return',
  'if',
  'else',
  'for',
  'while',
  'new',
  'this',
  'typeof',
  'await',
  'async',
  'export',
  'import',
  'from',
  'null',
  'undefined',
  'true',
  'false',
  'throw',
  'catch',
  'try',
];

/**
 * A pool of JS-like text: identifiers drawn with a skewed (Zipf-like)
 * frequency, so the text repeats the way real code does, but no two lines
 * are copies of each other.
 */
function textPool(bytes: number, seed: number): Buffer {
  const rand = rng(seed);
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$';
  const idents: string[] = [];
  for (let i = 0; i < 300; i++) {
    const len = 3 + Math.floor(rand() * 12);
    let s = '';
    for (let j = 0; j < len; j++) s += letters[Math.floor(rand() * letters.length)];
    idents.push(s);
  }
  const ident = () => idents[Math.floor(idents.length * rand() ** 3.5)];
  const word = () => (rand() < 0.3 ? KEYWORDS[Math.floor(rand() * KEYWORDS.length)] : ident());
  const lines: string[] = [];
  let size = 0;
  while (size < bytes) {
    const indent = '  '.repeat(Math.floor(rand() * 4));
    const r = rand();
    let line: string;
    if (r < 0.25) line = `${indent}const ${ident()} = ${ident()}.${ident()}(${ident()}, ${Math.floor(rand() * 1000)});`;
    else if (r < 0.4) line = `${indent}if (${ident()} ${rand() < 0.5 ? '===' : '!=='} ${word()}) return ${ident()};`;
    else if (r < 0.5) line = `${indent}function ${ident()}(${ident()}, ${ident()}) {`;
    else if (r < 0.58) line = `${indent}}`;
    else if (r < 0.66) line = `${indent}// ${word()} ${word()} ${word()} ${word()} ${word()}`;
    else if (r < 0.74) line = `${indent}module.exports.${ident()} = require('./${ident()}');`;
    else if (r < 0.82)
      line = `${indent}"${ident()}": "${ident()}-${Math.floor(rand() * 100)}.${Math.floor(rand() * 20)}.${Math.floor(rand() * 10)}",`;
    else {
      const n = 2 + Math.floor(rand() * 8);
      const ws: string[] = [];
      for (let i = 0; i < n; i++) ws.push(word());
      line = `${indent}${ws.join(rand() < 0.5 ? ' ' : '.')}(${word()});`;
    }
    lines.push(line);
    size += line.length + 1;
  }
  return Buffer.from(lines.join('\n') + '\n');
}

/** `length` bytes of text: random whole-line runs cut from the pool. */
function text(pool: Buffer, length: number, rand: () => number): Buffer {
  const parts: Buffer[] = [];
  let have = 0;
  while (have < length) {
    let start = Math.floor(rand() * (pool.length - 8192));
    const nl = pool.indexOf(10, start);
    start = nl >= 0 ? nl + 1 : 0;
    const run = Math.min(length - have, 256 + Math.floor(rand() * 4096));
    parts.push(pool.subarray(start, start + run));
    have += run;
  }
  return Buffer.concat(parts, length);
}

const LICENSE = `MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files (the "Software"), to deal in the Software without restriction, including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software.\n\nTHE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.\n`;

/** Log-normal size with the given mean, heavy-tailed like real package files. */
function logNormal(rand: () => number, mean: number, sigma: number, max: number): number {
  const u = Math.max(rand(), 1e-12);
  const v = rand();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  const mu = Math.log(mean) - (sigma * sigma) / 2;
  return Math.max(1, Math.min(max, Math.round(Math.exp(mu + sigma * z))));
}

/** Generate `spec` into `dir` (replacing it), returning what was written. */
function generate(dir: string, spec: TreeSpec): TreeStats {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const rand = rng(spec.seed);
  const pool = textPool(8 * 1024 * 1024, spec.seed + 1);
  const stats: TreeStats = { files: 0, bytes: 0 };
  const write = (rel: string, content: Buffer | string) => {
    const full = path.join(dir, rel);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, content);
    stats.files += 1;
    stats.bytes += Buffer.byteLength(content);
  };

  // The app itself: what a buildpack and the runner look at.
  write(
    'package.json',
    JSON.stringify({ name: 'bench-app', version: '1.0.0', main: 'server.js', scripts: { start: 'node server.js' } }, null, 2) + '\n',
  );
  write('Procfile', 'web: node server.js\n');
  write('server.js', "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT || 5000);\n");

  const bigFiles = spec.bigFiles ?? [];
  const budget = spec.bytes - bigFiles.reduce((a, b) => a + b, 0);
  let pkg = 0;
  while (stats.files < spec.files) {
    pkg += 1;
    const scoped = rand() < 0.15;
    const name = scoped ? `@scope${pkg % 17}/pkg${pkg}` : `pkg${pkg}`;
    // One package in ten carries a nested node_modules, as version conflicts do.
    const base =
      rand() < 0.1 && pkg > 20 ? `node_modules/pkg${Math.floor(rand() * (pkg - 1)) + 1}/node_modules/${name}` : `node_modules/${name}`;
    write(
      `${base}/package.json`,
      JSON.stringify({ name, version: `${pkg % 9}.${pkg % 13}.${pkg % 7}`, main: 'index.js', license: 'MIT' }, null, 2) + '\n',
    );
    write(`${base}/LICENSE`, LICENSE);
    write(`${base}/README.md`, text(pool, logNormal(rand, 4000, 1, 60_000), rand));
    const count = 2 + Math.floor(rand() * 25);
    for (let i = 0; i < count && stats.files < spec.files; i++) {
      // The mean follows what is left, so the tree lands on its byte target.
      const meanFile = Math.max(512, (budget - stats.bytes) / Math.max(1, spec.files - stats.files));
      const size = logNormal(rand, meanFile, 1.6, 8 * 1024 * 1024);
      const kind = rand();
      if (kind < 0.03) {
        const ext = ['node', 'wasm', 'png'][Math.floor(rand() * 3)];
        write(`${base}/build/file${i}.${ext}`, binary(size, spec.seed * 100_003 + stats.files));
      } else if (kind < 0.12) {
        write(`${base}/dist/file${i}.js.map`, text(pool, size, rand));
      } else if (kind < 0.25) {
        write(`${base}/types/file${i}.d.ts`, text(pool, size, rand));
      } else {
        write(`${base}/lib/file${i}.js`, text(pool, size, rand));
      }
    }
  }
  bigFiles.forEach((size, i) => {
    // Written in slices so generating a large file does not need it in memory.
    const rel = `vendor/big${i}.js`;
    const full = path.join(dir, rel);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, '');
    const slice = 16 * 1024 * 1024;
    for (let done = 0; done < size; done += slice) {
      writeFileSync(full, text(pool, Math.min(slice, size - done), rand), { flag: 'a' });
    }
    stats.files += 1;
    stats.bytes += size;
  });
  return stats;
}

/** The tree at `dir`, generated if it is missing or was made from another spec. */
export function ensureTree(dir: string, spec: TreeSpec, log: (line: string) => void): TreeStats {
  // Beside the tree, not in it, so it never ends up in an archive.
  const stampFile = `${dir}.json`;
  const want = { version: GENERATOR_VERSION, spec };
  if (existsSync(stampFile)) {
    const stamp = JSON.parse(readFileSync(stampFile, 'utf8')) as { version: number; spec: TreeSpec; stats: TreeStats };
    if (JSON.stringify({ version: stamp.version, spec: stamp.spec }) === JSON.stringify(want)) return stamp.stats;
  }
  log(`generating ${dir} (${spec.files} files, ${(spec.bytes / 1024 ** 2).toFixed(0)} MB)`);
  rmSync(stampFile, { force: true });
  const stats = generate(dir, spec);
  // The stamp is written last, so an interrupted generation is redone next time.
  writeFileSync(stampFile, JSON.stringify({ ...want, stats }) + '\n');
  return stats;
}
