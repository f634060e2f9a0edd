/**
 * Heroku-style build and run output, always on stderr: stdout is reserved for
 * the artifact. Secret values registered with `redact` never leave this module.
 */
import { Transform, type TransformCallback, Writable } from 'node:stream';

export const STEP = '-----> ';
export const INDENT = '       ';
export const ERROR_PREFIX = ' !     ';

const secrets = new Set<string>();
/** Longest first, so a secret that contains another is replaced whole, not in pieces. */
let ordered: string[] = [];

/** Lines of a multi-line secret shorter than this are left alone (a lone "}" or "---" is no secret). */
const MIN_LINE_SECRET = 6;

/** Register values (config vars, URL credentials) that must never be printed. */
export function redact(...values: Array<string | undefined>): void {
  for (const v of values) {
    if (!v || v.length < 3) continue;
    secrets.add(v);
    // Output is scrubbed line by line, so a multi-line value (a key file) is also registered per line.
    if (/[\r\n]/.test(v)) {
      for (const line of v.split(/\r?\n/)) if (line.trim().length >= MIN_LINE_SECRET) secrets.add(line);
    }
  }
  ordered = [...secrets].sort((a, b) => b.length - a.length);
}

export function scrub(text: string): string {
  let out = text;
  for (const s of ordered) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  return out;
}

/**
 * Set once stderr's reader went away (`slugbuilder 2>&1 | head`): from then
 * on output is dropped, so the work finishes and cleans up as if nobody
 * had stopped reading, instead of dying on EPIPE with temp dirs and locks left.
 */
let stderrGone = false;
process.stderr.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') stderrGone = true;
  else throw err;
});

function toStderr(text: string): void {
  if (!stderrGone && !process.stderr.destroyed) process.stderr.write(text);
}

let sink: (text: string) => void = toStderr;

/** Tests and embedders can capture output; the CLIs never change it. */
export function setLogSink(fn: (text: string) => void): void {
  sink = fn;
}

function emit(line: string): void {
  sink(scrub(line) + '\n');
}

export const log = {
  step: (msg: string) => emit(STEP + msg),
  info: (msg: string) => emit(INDENT + msg),
  warn: (msg: string) => emit(ERROR_PREFIX + msg),
  error: (msg: string) => emit(ERROR_PREFIX + msg),
  raw: (line: string) => emit(line),
};

/** A stream into the log sink (for child output): it never fails, so a closed stderr never stalls the child. */
export function logWritable(): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      sink(chunk.toString('utf8'));
      done();
    },
  });
}

/** Buildpack output convention: headings and errors pass through, the rest is indented. */
export function formatBuildpackLine(line: string): string {
  if (line.startsWith(STEP) || line.startsWith(ERROR_PREFIX) || line.startsWith(INDENT)) return line;
  if (line === '') return '';
  return INDENT + line;
}

/**
 * A stream that re-indents a child's output line by line as it arrives, so
 * build logs are live. Partial lines are held until their newline comes.
 */
export class BuildpackOutput extends Transform {
  private pending = '';
  /** `onLine` sees each line as the child printed it (run-script notes whether the last one was an error). */
  constructor(private readonly onLine?: (line: string) => void) {
    super();
  }
  private line(line: string): void {
    this.onLine?.(line);
    this.push(scrub(formatBuildpackLine(line)) + '\n');
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const text = this.pending + chunk.toString('utf8');
    const lines = text.split(/\r?\n/);
    this.pending = lines.pop() ?? '';
    for (const line of lines) this.line(line);
    done();
  }
  override _flush(done: TransformCallback): void {
    if (this.pending) this.line(this.pending);
    done();
  }
}
