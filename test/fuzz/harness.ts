/**
 * The fuzzer's checks. Each input is extracted by shared/tar/extract.ts into
 * `base/root/target`, beside `base/root/sentinel`. Allowed outcomes:
 *  - a safe result: extracted, nothing dangerous inside the target;
 *  - a clean error: a UserError with a one-line message.
 * Not allowed: any other exception (a crash), no answer within the time
 * limit (a hang), or any change outside the target (an escape).
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { UserError } from '../../shared/errors.js';
import { extractArchive } from '../../shared/tar/extract.js';
import { fuzzInput } from './generate.js';

export const FUZZ_LIMITS = { maxBytes: 1024 * 1024, maxFiles: 200 };
const HANG_MS = 10_000;
const TMP_PWNED = '/tmp/slugkit-fuzz-pwned';

export interface FuzzFailure {
  index: number;
  kind: 'crash' | 'hang' | 'escape' | 'unsafe' | 'bad-error';
  detail: string;
  input: Buffer;
}

export interface FuzzSummary {
  seed: number;
  runs: number;
  extracted: number;
  rejected: number;
  failures: FuzzFailure[];
}

function sentinelFingerprint(dir: string): string {
  const hash = createHash('sha256');
  const walk = (rel: string) => {
    const full = path.join(dir, rel);
    const st = lstatSync(full);
    hash.update(`${rel}|${st.mode}|${st.size}|${st.nlink}|`);
    if (st.isDirectory()) for (const name of readdirSync(full).sort()) walk(rel ? `${rel}/${name}` : name);
    else if (st.isFile()) hash.update(readFileSync(full));
  };
  walk('');
  return hash.digest('hex');
}

/** Devices, fifos, sockets and setuid/setgid/sticky bits inside the target. */
function dangerousInside(target: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      const st = lstatSync(full);
      if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) found.push(`${full}: special file`);
      if (!st.isSymbolicLink() && (st.mode & 0o7000) !== 0) found.push(`${full}: mode ${(st.mode & 0o7777).toString(8)}`);
      if (st.isDirectory()) walk(full);
    }
  };
  walk(target);
  return found;
}

export class FuzzBench {
  readonly base: string;
  readonly root: string;
  readonly sentinel: string;
  readonly target: string;
  private readonly fingerprint: string;

  constructor() {
    this.base = mkdtempSync(path.join(tmpdir(), 'slugkit-fuzz-'));
    this.root = path.join(this.base, 'root');
    this.sentinel = path.join(this.root, 'sentinel');
    this.target = path.join(this.root, 'target');
    mkdirSync(path.join(this.sentinel, 'sub'), { recursive: true });
    writeFileSync(path.join(this.sentinel, 'keep.txt'), 'keep\n');
    writeFileSync(path.join(this.sentinel, 'sub', 'config'), 'secret=1\n');
    mkdirSync(this.target);
    this.fingerprint = sentinelFingerprint(this.sentinel);
  }

  dispose(): void {
    rmSync(this.base, { recursive: true, force: true });
  }

  /** Runs one input; returns the outcome or a failure. */
  async run(index: number, input: Buffer): Promise<'extracted' | 'rejected' | FuzzFailure> {
    rmSync(this.target, { recursive: true, force: true });
    mkdirSync(this.target);
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<'hang'>((resolve) => {
      timer = setTimeout(() => resolve('hang'), HANG_MS);
    });
    let outcome: 'extracted' | 'rejected' | FuzzFailure;
    try {
      const result = await Promise.race([extractArchive(Readable.from([input]), this.target, 'fuzz input', FUZZ_LIMITS), hang]);
      outcome = result === 'hang' ? { index, kind: 'hang', detail: `no answer within ${HANG_MS} ms`, input } : 'extracted';
    } catch (err) {
      if (!(err instanceof UserError)) {
        outcome = { index, kind: 'crash', detail: err instanceof Error ? (err.stack ?? err.message) : String(err), input };
      } else if (/[\r\n]/.test(err.message) || err.message.length > 400) {
        outcome = { index, kind: 'bad-error', detail: `error is not one short line: ${JSON.stringify(err.message)}`, input };
      } else outcome = 'rejected';
    } finally {
      clearTimeout(timer);
    }

    const escapes: string[] = [];
    const baseNames = readdirSync(this.base);
    if (baseNames.join(',') !== 'root') escapes.push(`next to root: ${baseNames.join(', ')}`);
    const rootNames = readdirSync(this.root).sort();
    if (rootNames.join(',') !== 'sentinel,target') escapes.push(`next to the target: ${rootNames.join(', ')}`);
    if (sentinelFingerprint(this.sentinel) !== this.fingerprint) escapes.push('the sentinel dir changed');
    if (existsSync(TMP_PWNED)) {
      escapes.push(`${TMP_PWNED} exists`);
      rmSync(TMP_PWNED, { recursive: true, force: true });
    }
    if (escapes.length > 0) return { index, kind: 'escape', detail: escapes.join('; '), input };
    if (typeof outcome !== 'string') return outcome;
    if (existsSync(this.target)) {
      const dangerous = dangerousInside(this.target);
      if (dangerous.length > 0) return { index, kind: 'unsafe', detail: dangerous.join('; '), input };
    }
    return outcome;
  }
}

/** `count` inputs of the run `seed`; `onProgress` is called every `every` inputs. */
export async function runFuzz(seed: number, count: number, onProgress?: (s: FuzzSummary) => void, every = 10_000): Promise<FuzzSummary> {
  const bench = new FuzzBench();
  const summary: FuzzSummary = { seed, runs: 0, extracted: 0, rejected: 0, failures: [] };
  try {
    for (let index = 0; index < count; index++) {
      const input = fuzzInput(seed, index, { outside: bench.sentinel });
      const outcome = await bench.run(index, input);
      summary.runs += 1;
      if (outcome === 'extracted') summary.extracted += 1;
      else if (outcome === 'rejected') summary.rejected += 1;
      else summary.failures.push(outcome);
      if (onProgress && summary.runs % every === 0) onProgress(summary);
    }
  } finally {
    bench.dispose();
  }
  return summary;
}
