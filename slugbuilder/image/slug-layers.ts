/**
 * `slugbuilder --slug FILE --image REF`: the slug's dependency trees
 * (app-layers.ts DEPENDENCY_TREES: node_modules, .heroku/node, ...) go from
 * the slug's stream straight into their image layers, never onto disk; the
 * rest of the app is unpacked as before. One pass over the slug: each tree's
 * layer is compressed while the entries after it are still being read, and
 * the thousands of small files of a node_modules are neither written, read
 * back nor removed.
 *
 * The layers are the bytes writeLayer gives for the same tree unpacked
 * (same diff_ids, digests and layer-cache entries), because this only runs
 * on a slug in packTree's own order, the order slugkit writes:
 *  - every entry's parent came before it as a directory, and siblings come
 *    in byte order, each once (so the unpacked tree holds exactly these
 *    entries and packTree would walk them in this order), within each part
 *    of a slug written in parts (slug-parts.ts: the rest of the app, then
 *    each split tree whole, starting at its own directory);
 *  - no hard links, no name a disk would refuse, no link outside the trees
 *    that points into one (a reader of the unpacked app could follow it).
 * Each entry is first checked and counted by the extractor itself
 * (shared/tar/extract.ts: names, types, limits) before it is taken here.
 * A slug that is anything else (another tool's order, a hard link, a broken
 * or hostile archive) makes unpackSlugLayers give up; the caller then
 * unpacks the slug whole as before, which reports whatever is wrong with it.
 *
 * Headers are packTree's (pack.ts entryFields, header-encoder.ts): `app/` and the
 * directories above the tree repeated with the layer's owner, mode and mtime;
 * a file's mode is executable when it would be on disk (its mode less the
 * umask), as packTree reads it back.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, lstatSync, readlinkSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { ReadEntry } from 'tar';
import { makeDirInside } from '../../shared/fs.js';
import { DEFAULT_BLOCK_SIZE } from '../../shared/pgzip.js';
import type { PlannedEntry } from '../../shared/tar/disk-writer.js';
import { type ExtractLimits, type ExtractResult, extractArchive, openArchiveFile } from '../../shared/tar/extract.js';
import { type EntryData, HeaderEncoder } from '../../shared/tar/header-encoder.js';
import { ChunkFiller, entryFields } from '../../shared/tar/pack.js';
import { createSlugCompressor } from '../slug.js';
import { DEPENDENCY_TREES } from './app-layers.js';
import { HashingStream } from './blobs.js';
import type { LayerResult } from './layer.js';
import { HEAD_BYTES, type LayerCache } from './layer-cache.js';

export interface SlugLayerOptions {
  uid: number;
  gid: number;
  mtime: Date;
  /** Where compressed layers are kept between builds (layer-cache.ts). */
  cache?: LayerCache;
}

export type StreamedLayer = LayerResult & { cached: boolean };

/** What unpackSlugLayers made: the trees' layers, and the app's files as if the trees were unpacked too. */
export interface SlugLayers {
  unpacked: ExtractResult;
  /** The dependency layers, by tree (relative to the app dir). */
  layers: Map<string, StreamedLayer>;
  /** existsSync of an absolute path, answered as if the trees were in the app dir. */
  exists(file: string): boolean;
}

const BLOCK = 512;
const ZERO = Buffer.alloc(BLOCK * 2);
/** The most a name part or a whole path may be before the disk could refuse it (then the old path decides). */
const NAME_MAX = 255;
const PATH_MAX = 4000;
const CHUNK = 1024 * 1024;
/** What the layer's tar is written in: one parallel-gzip block, so it is deflated without another copy. */
const FILL = DEFAULT_BLOCK_SIZE;

/** The slug is not one this module takes; the caller unpacks it whole. */
class GiveUp extends Error {}

type Node = 'dir' | 'file' | { link: string };

/** Byte order of the UTF-8 names (packTree's); plain string order agrees below the surrogates. */
function byteCompare(a: string, b: string): number {
  if (/[\ud800-\uffff]/.test(a) || /[\ud800-\uffff]/.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Where slug-parts.ts may start a part: a dependency tree, or a CNB layer `.layers/<buildpack>/<layer>`. */
function isPartRoot(name: string): boolean {
  return (DEPENDENCY_TREES as readonly string[]).includes(name) || /^\.layers\/[^/]+\/[^/]+$/.test(name);
}

function treeOf(name: string): string | undefined {
  return DEPENDENCY_TREES.find((t) => name === t || name.startsWith(`${t}/`));
}

/** Gzip `input` (the layer's tar, hashed by the caller) into `file`: digest and size. */
async function compressInto(input: NodeJS.ReadableStream, file: string): Promise<{ digest: string; size: number }> {
  const gz = new HashingStream();
  await pipeline(input, createSlugCompressor(), gz, createWriteStream(file, { mode: 0o644 }));
  return { digest: gz.digest(), size: gz.bytes };
}

/**
 * One tree's layer tar, written to as the slug is read. Like writeLayerCached:
 * without a cache, or when no kept layer's tar starts with the same
 * HEAD_BYTES, it is compressed as it comes; when one may match, the tar is
 * only hashed and spooled, and compressed afterwards unless the cache has it.
 */
class LayerSink extends Writable {
  private readonly tarHash = createHash('sha256');
  private readonly headHash: Hash = createHash('sha256');
  private headSeen = 0;
  private held: Buffer[] = [];
  private target: PassThrough | undefined;
  private mode: 'compress' | 'spool' = 'compress';
  private head = '';
  private flowing: Promise<{ digest: string; size: number } | undefined> | undefined;
  result: StreamedLayer | undefined;

  constructor(
    private readonly outFile: string,
    private readonly spoolFile: string,
    private readonly cache: LayerCache | undefined,
  ) {
    super({ highWaterMark: CHUNK });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.tarHash.update(chunk);
    if (this.target) {
      this.forward(chunk, done);
      return;
    }
    const part = chunk.subarray(0, HEAD_BYTES - this.headSeen);
    this.headHash.update(part);
    this.headSeen += part.length;
    this.held.push(chunk);
    if (this.headSeen < HEAD_BYTES) {
      done();
      return;
    }
    this.choose().then(() => this.forward(this.takeHeld(), done), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.finish().then(() => done(), done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.target?.destroy(err ?? undefined);
    done(err);
  }

  private takeHeld(): Buffer {
    const all = Buffer.concat(this.held);
    this.held = [];
    return all;
  }

  private forward(chunk: Buffer, done: (err?: Error | null) => void): void {
    if (this.target!.write(chunk)) done();
    else this.target!.once('drain', () => done());
  }

  private async choose(): Promise<void> {
    this.head = `sha256:${this.headHash.digest('hex')}`;
    if (this.cache && (await this.cache.mayHave(this.head))) this.mode = 'spool';
    const target = new PassThrough({ highWaterMark: CHUNK });
    this.target = target;
    this.flowing =
      this.mode === 'compress'
        ? compressInto(target, this.outFile)
        : pipeline(target, createWriteStream(this.spoolFile, { mode: 0o600 })).then(() => undefined);
    // A failed write downstream stops this sink (and, through its error, the slug's extraction).
    this.flowing.catch((err: Error) => this.destroy(err));
  }

  private async finish(): Promise<void> {
    if (!this.target) {
      await this.choose();
      this.target!.write(this.takeHeld());
    }
    this.target!.end();
    let gz = await this.flowing;
    const diffId = `sha256:${this.tarHash.digest('hex')}`;
    if (this.mode === 'spool') {
      const hit = await this.cache!.take(diffId, this.head, this.outFile);
      if (hit) {
        await rm(this.spoolFile, { force: true });
        this.result = { path: this.outFile, digest: hit.digest, diffId, size: hit.size, cached: true };
        return;
      }
      gz = await compressInto(createReadStream(this.spoolFile, { highWaterMark: CHUNK }), this.outFile);
      await rm(this.spoolFile, { force: true });
    }
    this.result = { path: this.outFile, digest: gz!.digest, diffId, size: gz!.size, cached: false };
    await this.cache?.put(diffId, this.head, this.outFile, this.result);
  }
}

/** One dependency tree's layer as its entries come. */
class TreeLayer {
  readonly sink: LayerSink;
  readonly done: Promise<void>;
  private readonly fields: ReturnType<typeof entryFields>;
  private readonly encoder: HeaderEncoder;

  constructor(
    readonly tree: string,
    opts: SlugLayerOptions,
    outDir: string,
    index: number,
    private readonly umask: number,
  ) {
    this.fields = entryFields(opts);
    this.encoder = new HeaderEncoder(this.fields.base);
    this.sink = new LayerSink(path.join(outDir, `slug-layer-${index}.tar.gz`), path.join(outDir, `slug-layer-${index}.tar`), opts.cache);
    this.done = finished(this.sink);
    // What packTree writes before the tree: the layer's root and the directories above the tree.
    this.header({ path: 'app/', type: 'Directory', mode: this.fields.dirMode, size: 0 });
    const parts = tree.split('/');
    for (let i = 1; i <= parts.length; i++)
      this.header({ path: `app/${parts.slice(0, i).join('/')}/`, type: 'Directory', mode: this.fields.dirMode, size: 0 });
  }

  /**
   * Headers, pads and bodies are copied into chunks of one gzip block and
   * written a block at a time: thousands of small writes down the streams
   * cost more main-thread time (and garbage) than the copy.
   */
  private readonly filler = new ChunkFiller(false, FILL);
  /** The sink's last write asked to wait for 'drain'. */
  private full = false;

  private append(bytes: Buffer): void {
    this.filler.append(bytes);
    this.writeReady();
  }

  private flush(): void {
    this.filler.flush();
    this.writeReady();
  }

  private writeReady(): void {
    for (const out of this.filler.ready.splice(0)) if (!this.sink.write(out)) this.full = true;
  }

  /** Runs `go` now, or once the sink has drained: the extractor waits for the entry meanwhile. */
  private whenRoom(go: () => void): void {
    if (!this.full) {
      go();
      return;
    }
    this.sink.once('drain', () => {
      this.full = false;
      go();
    });
  }

  private header(data: EntryData): void {
    for (const block of this.encoder.blocks(data)) this.append(block);
  }

  /** Takes one entry inside the tree (never the tree's own directory, written above). */
  add(entry: ReadEntry, name: string): Node {
    const entryPath = `app/${name}`;
    if (entry.type === 'Directory') {
      this.header({ path: `${entryPath}/`, type: 'Directory', mode: this.fields.dirMode, size: 0 });
      this.whenRoom(() => entry.resume());
      return 'dir';
    }
    if (entry.type === 'SymbolicLink') {
      const target = String(entry.linkpath ?? '');
      this.header({ path: entryPath, type: 'SymbolicLink', mode: 0o777, size: 0, linkpath: target });
      this.whenRoom(() => entry.resume());
      return { link: target };
    }
    // A file lands with its mode less the umask; packTree makes it executable when any x bit is left.
    const mode = (entry.mode === undefined ? 0o666 : entry.mode & 0o777) & ~this.umask;
    const size = entry.size ?? 0;
    this.header({ path: entryPath, type: 'File', mode: mode & 0o111 ? this.fields.execMode : this.fields.fileMode, size });
    entry.on('data', (chunk: Buffer) => {
      this.append(chunk);
      if (this.full) {
        entry.pause();
        this.whenRoom(() => entry.resume());
      }
    });
    entry.on('end', () => {
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (pad) this.append(ZERO.subarray(0, pad));
    });
    return 'file';
  }

  end(): void {
    this.append(ZERO);
    this.flush();
    this.sink.end();
  }
}

/**
 * Decides, entry by entry, what goes into a tree's layer (true) and what the
 * extractor writes (false); throws GiveUp at the first thing outside the
 * rules above.
 */
class Splitter {
  /** The last entry's name parts, and whether it was a directory (the root is, before any entry). */
  private last: string[] = [];
  private lastIsDir = true;
  /** The directories so far ('' the root). */
  private readonly dirs = new Set<string>(['']);
  private seen = false;
  /** A tree whose directory came, while no entry inside it has yet. */
  private pending: string | undefined;
  private open: TreeLayer | undefined;
  readonly layers: TreeLayer[] = [];
  readonly emptyTrees: string[] = [];
  /** Inside the streamed trees: what each entry is (for exists). */
  readonly nodes = new Map<string, Node>();
  fail: ((message: string) => void) | undefined;

  constructor(
    private readonly appDir: string,
    private readonly opts: SlugLayerOptions,
    private readonly outDir: string,
    private readonly umask: number,
  ) {}

  readonly divert = (entry: ReadEntry, planned: PlannedEntry, fail: (message: string) => void): boolean => {
    this.fail ??= fail;
    try {
      return this.take(entry, planned.name);
    } catch (err) {
      for (const layer of this.layers) layer.sink.destroy();
      throw err;
    }
  };

  private take(entry: ReadEntry, name: string): boolean {
    if (entry.type === 'Link') throw new GiveUp('a hard link');
    // The unpacker refuses these when it makes the link: let it.
    if (entry.type === 'SymbolicLink' && (!entry.linkpath || entry.linkpath.includes('\0'))) throw new GiveUp('a link to nothing');
    if (name === '') {
      // The slug's own root ("./"): only first, only a directory; its times are the extractor's.
      if (this.seen || entry.type !== 'Directory') throw new GiveUp('the root again');
      this.seen = true;
      return false;
    }
    this.seen = true;
    this.checkName(name);
    const parts = name.split('/');
    const isDir = entry.type === 'Directory';
    this.checkOrder(parts, isDir);

    if (this.pending !== undefined) {
      if (name.startsWith(`${this.pending}/`)) this.startLayer(this.pending);
      else this.emptyTrees.push(this.pending);
      this.pending = undefined;
    }
    if (this.open && !name.startsWith(`${this.open.tree}/`)) {
      this.open.end();
      this.open = undefined;
    }
    if (this.open) {
      this.nodes.set(name, this.open.add(entry, name));
      return true;
    }
    const tree = treeOf(name);
    if (tree === name && isDir) {
      this.pending = tree;
      entry.resume();
      return true;
    }
    // Below a tree that is not a directory: the order check stopped it already.
    if (tree !== undefined && tree !== name) throw new GiveUp('an entry below a tree that is no directory');
    if (entry.type === 'SymbolicLink') {
      const target = String(entry.linkpath ?? '');
      // Given up as soon as it comes (most such links sort before the trees): nothing streamed in vain.
      const to = insideApp(name, target);
      // A chain of links into a tree ends in one whose own target is there: given up too.
      if (to !== undefined && DEPENDENCY_TREES.some((t) => to === '' || to === t || to.startsWith(`${t}/`) || t.startsWith(`${to}/`)))
        throw new GiveUp('a link into a tree');
    }
    return false;
  }

  private checkName(name: string): void {
    if (name.includes('\0') || Buffer.byteLength(this.appDir) + 1 + Buffer.byteLength(name) >= PATH_MAX)
      throw new GiveUp('a name the disk may refuse');
    for (const part of name.split('/')) if (Buffer.byteLength(part) > NAME_MAX) throw new GiveUp('a name the disk may refuse');
  }

  /**
   * packTree's order, within each part: the parent is the last entry or a
   * directory above it; a sibling sorts after the last one. A part of the
   * slug (slug-parts.ts: the rest of the app, then each split tree whole)
   * starts at a split tree's own directory, whose parent came before and
   * which itself did not, so no entry can come twice.
   */
  private checkOrder(parts: string[], isDir: boolean): void {
    const name = parts.join('/');
    // After a new part began, order alone no longer rules out a tree coming again.
    if (isDir && this.dirs.has(name)) throw new GiveUp('a directory twice');
    const why = this.outOfOrder(parts);
    if (why && (!isDir || !isPartRoot(name) || !this.dirs.has(parts.slice(0, -1).join('/')))) throw new GiveUp(why);
    if (isDir) this.dirs.add(name);
    this.last = parts;
    this.lastIsDir = isDir;
  }

  private outOfOrder(parts: string[]): string | undefined {
    const depth = parts.length - 1;
    const last = this.last;
    if (depth > last.length) return 'an entry before its directory';
    for (let i = 0; i < depth; i++) if (parts[i] !== last[i]) return 'an entry out of order';
    if (depth === last.length) return this.lastIsDir ? undefined : 'an entry below a non-directory';
    return byteCompare(parts[depth], last[depth]) <= 0 ? 'an entry out of order' : undefined;
  }

  private startLayer(tree: string): void {
    const layer = new TreeLayer(tree, this.opts, this.outDir, this.layers.length, this.umask);
    // A failing layer stops the extraction (a paused entry would otherwise wait for it forever).
    layer.done.catch((err: Error) => this.fail?.(`writing the layer of ${tree} failed: ${err.message}`));
    this.layers.push(layer);
    this.open = layer;
    this.nodes.set(tree, 'dir');
  }

  /** After the last entry: the open tree ends, a tree still waiting was empty. */
  end(): void {
    if (this.pending !== undefined) this.emptyTrees.push(this.pending);
    this.pending = undefined;
    this.open?.end();
    this.open = undefined;
  }
}

/**
 * Where a link at `name` points inside the app ('' for its root), or
 * undefined for an absolute target (a path on the host, unpacked or not).
 * Its directories are real ones (the order rule), so leading `..` resolve as
 * written; a `..` after a name may follow another link anywhere, and one
 * that leaves the app can come back into it by the app dir's own name: both
 * taken as the root.
 */
function insideApp(name: string, target: string): string | undefined {
  if (path.posix.isAbsolute(target)) return undefined;
  const parts = target.split('/');
  const lead = parts.findIndex((p) => p !== '..' && p !== '.' && p !== '');
  if (lead >= 0 && parts.slice(lead).includes('..')) return '';
  const to = path.posix.normalize(path.posix.join(path.posix.dirname(name), target));
  return to === '.' || to === '..' || to.startsWith('../') ? '' : to;
}

/**
 * Unpacks `slug` into `appDir` but for its dependency trees, which become
 * layers in `outDir`. Undefined when the slug is not one it takes (see the
 * header) or anything failed: `appDir` and `outDir` are then in no known
 * state, and the caller empties them and unpacks the slug the usual way.
 */
export async function unpackSlugLayers(
  slug: string,
  appDir: string,
  what: string,
  limits: ExtractLimits,
  opts: SlugLayerOptions,
  outDir: string,
): Promise<SlugLayers | undefined> {
  const splitter = new Splitter(appDir, opts, outDir, process.umask());
  try {
    await mkdir(outDir, { recursive: true });
    const unpacked = await extractArchive(openArchiveFile(slug), appDir, what, limits, splitter.divert);
    splitter.end();
    await Promise.all(splitter.layers.map((l) => l.done));
    // An empty tree is part of the app, as an empty directory.
    for (const tree of splitter.emptyTrees) await makeDirInside(appDir, tree);
    const layers = new Map(splitter.layers.map((l) => [l.tree, l.sink.result!]));
    return { unpacked, layers, exists: existsAsUnpacked(appDir, splitter.nodes, [...layers.keys()]) };
  } catch {
    for (const layer of splitter.layers) layer.sink.destroy();
    await Promise.allSettled(splitter.layers.map((l) => l.done));
    return undefined;
  }
}

/** existsSync(file) as it would answer with the streamed trees unpacked in `appDir` too. */
function existsAsUnpacked(appDir: string, nodes: Map<string, Node>, trees: string[]): (file: string) => boolean {
  const nodeAt = (rel: string): Node | undefined => {
    if (trees.some((t) => rel === t || rel.startsWith(`${t}/`))) return nodes.get(rel);
    const full = path.join(appDir, rel);
    const st = lstatSync(full, { throwIfNoEntry: false });
    if (!st) return undefined;
    if (st.isSymbolicLink()) return { link: readlinkSync(full) };
    return st.isDirectory() ? 'dir' : 'file';
  };
  // Walked a name at a time, as the kernel does: a ".." after a link goes up from where the link led.
  return (file) => {
    const abs = path.resolve(file);
    if (!abs.startsWith(`${appDir}/`)) return existsSync(abs);
    const at: string[] = [];
    let todo = abs.slice(appDir.length + 1).split('/');
    for (let hops = 0; todo.length > 0; ) {
      const part = todo.shift()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (at.length > 0) {
          at.pop();
          continue;
        }
        // Out of the app: back in by its dir's own name, else the host's files, for the kernel to resolve.
        while (todo[0] === '' || todo[0] === '.') todo.shift();
        if (todo[0] === path.basename(appDir)) {
          todo.shift();
          continue;
        }
        return existsSync([appDir, '..', ...todo].join('/'));
      }
      const node = nodeAt([...at, part].join('/'));
      if (node === undefined) return false;
      if (typeof node === 'object') {
        if (++hops > 40) return false;
        if (node.link.startsWith('/')) return existsSync([node.link, ...todo].join('/'));
        todo = [...node.link.split('/'), ...todo];
        continue;
      }
      if (node === 'file' && todo.length > 0) return false;
      at.push(part);
    }
    return true;
  };
}
