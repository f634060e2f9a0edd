/**
 * Parallel gzip through libdeflate's `libdeflate-gzip` (Debian
 * libdeflate-tools), one child process per segment of the input.
 *
 * libdeflate deflates at level 6 in about half zlib's CPU, to within half a
 * percent of `gzip -6`'s size (docs/BENCHMARKS.md). It compresses a whole
 * buffer at once, not a stream, so the input is cut into fixed-size segments
 * and each becomes a gzip member of its own, made by its own process, up to
 * one per core at once; the members, back to back, are one gzip file to
 * every reader (RFC 1952 §2.2). Segments are cut by byte count only and
 * libdeflate writes mtime 0, so the same input, level and tool version give
 * the same bytes on every run.
 *
 * An input shorter than SMALL is gzipped by Node's zlib in the process
 * instead: a process start costs more than deflating it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { type FileHandle, open, readFile, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { onCliExit } from './cli-run.js';
import { removeOnExit } from './fs.js';

/** Uncompressed bytes per member: larger ones cost memory in the child, smaller ones a process start each. */
export const SEGMENT_SIZE = 8 * 1024 * 1024;
/** Inputs shorter than this are gzipped in the process. */
export const SMALL = 1024 * 1024;

const TOOL = 'libdeflate-gzip';
const gzip = promisify(zlib.gzip);

/** `libdeflate-gzip` on PATH, as an absolute path; undefined when there is none. */
export function findLibdeflateGzip(pathVar = process.env.PATH): string | undefined {
  for (const dir of (pathVar ?? '').split(':')) {
    if (!path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, TOOL);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

export interface LibdeflateGzipOptions {
  /** Absolute path of libdeflate-gzip. */
  tool: string;
  /** gzip level 1-12 (libdeflate's scale; 6 is about gzip -6). */
  level: number;
  segmentSize?: number;
  /** Segments compressing at once (default: the CPU count). */
  concurrency?: number;
}

/**
 * Starts the compressions: one bash per process, which runs each
 * libdeflate-gzip in the background and reports its exit status. Forking a
 * small bash is cheap; forking this process (a hundred MB and more, mid-build)
 * once per segment cost more CPU in page-table copies and write faults than
 * libdeflate saved. Segments are files by name in a private dir that bash
 * makes, tells, and removes when it ends; it ends when this process does (its
 * stdin closes), however this process ended. Each line it reads names the
 * level, the segment and the tool, last so that it may hold spaces.
 */
const HELPER = `trap 'rm -rf -- "$dir"' EXIT
dir=$(mktemp -d -p "$1" slugkit-gzip-XXXXXXXX) && cd -- "$dir" || exit 1
echo "$dir"
while read -r level name tool; do
  { "$tool" "-$level" -c < "$name" > "$name.gz" 2> "$name.err"; echo "$name $?"; } &
done
wait`;

class Helper {
  private readonly child: ChildProcess;
  /** Exit statuses waited for, by segment name. */
  private readonly waiting = new Map<string, { resolve: (status: number) => void; reject: (err: Error) => void }>();
  private ended?: Error;
  private stopping = false;
  private count = 0;
  /** The private dir, from the helper's first line. */
  dir = '';
  /** Settled by the first line, or by the helper's end before it. */
  readonly ready: Promise<void>;

  constructor() {
    this.child = spawn('bash', ['-c', HELPER, 'libdeflate-helper', tmpdir()], { stdio: ['pipe', 'pipe', 'ignore'] });
    let told: () => void = () => undefined;
    let failed: (err: Error) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      told = resolve;
      failed = reject;
    });
    const end = (why: string) => {
      this.ended ??= new Error(`the libdeflate-gzip helper ${why}`);
      failed(this.ended);
      for (const w of this.waiting.values()) w.reject(this.ended);
      this.waiting.clear();
      if (helper === this) helper = undefined;
    };
    this.child.on('error', (err) => end(`could not start: ${err.message}`));
    this.child.on('close', (code, signal) => end(`ended (${signal ?? `exit ${code}`})`));
    this.child.stdin?.on('error', () => undefined);
    createInterface({ input: this.child.stdout as Readable }).on('line', (line) => {
      if (!this.dir) {
        this.dir = line;
        removeOnExit(line);
        told();
      } else {
        const [name, status] = line.split(' ');
        this.waiting.get(name)?.resolve(Number(status));
        this.waiting.delete(name);
      }
      this.hold();
    });
    this.hold();
  }

  /** A fresh segment file name in the dir. */
  name(): string {
    this.count += 1;
    return `seg-${this.count}`;
  }

  /** Compress `name` (written in the dir) with `tool`; its exit status. */
  run(tool: string, level: number, name: string): Promise<number> {
    if (this.ended) return Promise.reject(this.ended);
    const done = new Promise<number>((resolve, reject) => this.waiting.set(name, { resolve, reject }));
    this.hold();
    this.child.stdin?.write(`${level} ${name} ${tool}\n`);
    return done;
  }

  /** End the helper (its running compressions finish first) and wait for it, so its CPU time is counted as this process's children's. */
  async stop(): Promise<void> {
    if (helper === this) helper = undefined;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const closed = new Promise<void>((resolve) => this.child.once('close', () => resolve()));
    // Held until it has closed, even if its dir line (a pre-started helper's) arrives after this.
    this.stopping = true;
    this.hold();
    this.child.stdin?.end();
    await closed;
  }

  /** The helper keeps this process running only while its dir or a compression is waited for. */
  private hold(): void {
    const stdout = this.child.stdout as Socket | null;
    if (this.stopping || !this.dir || this.waiting.size > 0) {
      this.child.ref();
      stdout?.ref();
    } else {
      this.child.unref();
      stdout?.unref();
      (this.child.stdin as Socket | null)?.unref();
    }
  }
}

let helper: Helper | undefined;
let exitHooked = false;

/** This process's helper, started on first use. */
async function theHelper(): Promise<Helper> {
  if (!helper) {
    if (!exitHooked) {
      exitHooked = true;
      // Waited for, so its processes' CPU time counts as the CLI's children's and its dir is gone first.
      onCliExit(stopLibdeflateHelper);
    }
    helper = new Helper();
  }
  const h = helper;
  await h.ready;
  return h;
}

/** Stop the helper, if one was started: before the process exits. */
export async function stopLibdeflateHelper(): Promise<void> {
  await helper?.stop();
}

/** One segment: its input in a file of the helper's dir, compressed once full. */
class Segment {
  bytes = 0;
  private constructor(
    private readonly helper: Helper,
    private readonly name: string,
    private readonly file: FileHandle,
  ) {}

  static async open(): Promise<Segment> {
    const h = await theHelper();
    const name = h.name();
    return new Segment(h, name, await open(path.join(h.dir, name), 'wx', 0o600));
  }

  async append(chunk: Buffer): Promise<void> {
    for (let at = 0; at < chunk.length; ) {
      at += (await this.file.write(chunk, at, chunk.length - at, this.bytes + at)).bytesWritten;
    }
    this.bytes += chunk.length;
  }

  /** The gzip member of what was appended. */
  async compress(level: number, tool: string): Promise<Buffer> {
    await this.file.close();
    const file = path.join(this.helper.dir, this.name);
    try {
      const status = await this.helper.run(tool, level, this.name);
      if (status !== 0) {
        const why = (await readFile(`${file}.err`, 'utf8').catch(() => '')).trim().split('\n')[0];
        throw new Error(`${path.basename(tool)} exited with ${status}${why ? `: ${why}` : ''}`);
      }
      return await readFile(`${file}.gz`);
    } finally {
      await Promise.all([file, `${file}.gz`, `${file}.err`].map((f) => rm(f, { force: true })));
    }
  }

  async discard(): Promise<void> {
    await this.file.close().catch(() => undefined);
    await rm(path.join(this.helper.dir, this.name), { force: true });
  }
}

class LibdeflateGzip extends Transform {
  private readonly segmentSize: number;
  private readonly concurrency: number;
  /** Input held back until it is known not to be SMALL. */
  private head: Buffer[] | undefined = [];
  private headBytes = 0;
  /** Members being made or made and not yet pushed, in order. */
  private readonly line: Promise<Buffer>[] = [];
  private filling?: Segment;

  constructor(private readonly opts: LibdeflateGzipOptions) {
    super();
    this.segmentSize = opts.segmentSize ?? SEGMENT_SIZE;
    this.concurrency = Math.max(1, opts.concurrency ?? availableParallelism());
    // Started now, it is ready by the time a segment is full (a failure is seen by Segment.open).
    theHelper().catch(() => undefined);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.accept(chunk).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    this.finish().then(() => done(), done);
  }

  override _destroy(err: Error | null, done: (error: Error | null) => void): void {
    void this.filling?.discard();
    for (const out of this.line) out.catch(() => undefined);
    done(err);
  }

  /** Done with `chunk` when it settles: the head keeps a copy, a segment has it written. */
  private async accept(chunk: Buffer): Promise<void> {
    if (this.head) {
      this.head.push(Buffer.from(chunk));
      this.headBytes += chunk.length;
      if (this.headBytes < SMALL) return;
      chunk = Buffer.concat(this.head);
      this.head = undefined;
    }
    while (chunk.length > 0) {
      if (!this.filling) {
        const opened = await Segment.open();
        if (this.destroyed) return opened.discard();
        this.filling = opened;
      }
      const seg = this.filling;
      const n = Math.min(chunk.length, this.segmentSize - seg.bytes);
      await seg.append(chunk.subarray(0, n));
      chunk = chunk.subarray(n);
      if (seg.bytes === this.segmentSize) await this.launch();
    }
  }

  /** Compress the segment being filled, once fewer than `concurrency` members are in the making. */
  private async launch(): Promise<void> {
    const seg = this.filling;
    if (!seg) return;
    this.filling = undefined;
    try {
      while (this.line.length >= this.concurrency) await this.pushFirst();
    } catch (err) {
      await seg.discard();
      throw err;
    }
    const out = seg.compress(this.opts.level, this.opts.tool);
    // Awaited in order below; a failure is seen there.
    out.catch(() => undefined);
    this.line.push(out);
  }

  private async pushFirst(): Promise<void> {
    const out = await this.line[0];
    this.line.shift();
    this.push(out);
  }

  private async finish(): Promise<void> {
    if (this.head) {
      this.push(await gzip(Buffer.concat(this.head), { level: Math.min(this.opts.level, 9) }));
      return;
    }
    await this.launch();
    while (this.line.length > 0) await this.pushFirst();
  }
}

/**
 * A gzip Transform: segments deflated by libdeflate-gzip processes in
 * parallel, joined as gzip members. A written chunk is no longer needed once
 * its write's callback runs, so a writer may fill the same buffer again.
 */
export function createLibdeflateGzip(opts: LibdeflateGzipOptions): Transform {
  return new LibdeflateGzip(opts);
}
