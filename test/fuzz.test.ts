/**
 * A short run of the seeded extractor fuzzer (test/fuzz/) as part of
 * `npm test`; `npm run fuzz` runs 100,000 inputs. Every input must end in a
 * safe extraction or a clean one-line UserError: no crash, no hang, nothing
 * written outside the target.
 */
import { expect } from 'chai';
import { fuzzInput } from './fuzz/generate.js';
import { FuzzBench, runFuzz } from './fuzz/harness.js';

/** (seed, index) of inputs a long run once failed on, kept as regressions. */
const REGRESSIONS: Array<[number, number, string]> = [
  // A path with a NUL byte: node's error quoted it over several lines; the error must stay one line.
  [1, 15822, 'NUL byte in a path'],
];

describe('extractor fuzzing (short run)', function () {
  this.timeout(120_000);

  for (const [seed, index, what] of REGRESSIONS) {
    it(`regression: seed ${seed} input ${index} (${what})`, async () => {
      const bench = new FuzzBench();
      try {
        const outcome = await bench.run(index, fuzzInput(seed, index, { outside: bench.sentinel }));
        expect(typeof outcome === 'string' ? outcome : `${outcome.kind}: ${outcome.detail}`).to.be.oneOf(['extracted', 'rejected']);
      } finally {
        bench.dispose();
      }
    });
  }

  for (const seed of [1, 20261128]) {
    it(`600 generated and mutated archives (seed ${seed}): only safe results and clean errors`, async () => {
      const summary = await runFuzz(seed, 600);
      const described = summary.failures.map((f) => `#${f.index} ${f.kind}: ${f.detail.split('\n')[0]}`);
      expect(described).to.deep.equal([]);
      expect(summary.runs).to.equal(600);
      // Both outcomes occur, so the generator reaches the extractor's happy and unhappy paths.
      expect(summary.extracted, 'inputs extracted').to.be.greaterThan(20);
      expect(summary.rejected, 'inputs rejected').to.be.greaterThan(20);
    });
  }
});
