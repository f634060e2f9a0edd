/**
 * `npm run fuzz`: the seeded mutational fuzzer over shared/tar/extract.ts.
 *   npm run fuzz                         100,000 inputs, seed 1
 *   npm run fuzz -- --seed 7 --count 5000
 * Prints progress every 10,000 inputs; on any crash, hang, escape or unsafe
 * result it saves the inputs to a temp dir, names them, and exits 1.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type FuzzSummary, runFuzz } from './harness.js';

const { values } = parseArgs({ options: { seed: { type: 'string' }, count: { type: 'string' } } });
const seed = Number(values.seed ?? 1);
const count = Number(values.count ?? 100_000);
if (!Number.isInteger(seed) || !Number.isInteger(count) || count <= 0) {
  process.stderr.write('usage: fuzz [--seed N] [--count N]\n');
  process.exit(2);
}

const started = Date.now();
const line = (s: FuzzSummary) =>
  `${s.runs} inputs (seed ${s.seed}): ${s.extracted} extracted safely, ${s.rejected} rejected cleanly, ${s.failures.length} failures, ${Math.round((Date.now() - started) / 1000)} s`;

const summary = await runFuzz(seed, count, (s) => process.stderr.write(`-----> ${line(s)}\n`));
process.stderr.write(`-----> Done: ${line(summary)}\n`);
if (summary.failures.length > 0) {
  const dir = mkdtempSync(path.join(tmpdir(), 'slugkit-fuzz-failures-'));
  for (const f of summary.failures.slice(0, 50)) {
    const file = path.join(dir, `input-${f.index}-${f.kind}.bin`);
    writeFileSync(file, f.input);
    process.stderr.write(` !     input ${f.index}: ${f.kind}: ${f.detail.split('\n')[0]} (saved as ${file})\n`);
  }
  process.exit(1);
}
