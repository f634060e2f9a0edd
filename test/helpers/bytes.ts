/** Deterministic test inputs for the compressors: bytes that do not compress, and text that does. */

/** Bytes that do not compress (xorshift32). */
export function noise(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const WORDS = [
  'const',
  'function',
  'return',
  'module.exports',
  'require',
  '(',
  ')',
  '{',
  '}',
  ';',
  '\n',
  'value',
  'index',
  'this',
  'if',
  'else',
  '=>',
  'await',
];

/** Text that compresses like source code does. */
export function text(length: number): Buffer {
  const parts: string[] = [];
  let size = 0;
  let x = 7;
  while (size < length) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const word = WORDS[x % WORDS.length] + (x % 3 === 0 ? ' ' : '');
    parts.push(word);
    size += word.length;
  }
  return Buffer.from(parts.join('')).subarray(0, length);
}
