/**
 * The slug as several gzip members, one per part of the app (the rest, each
 * dependency tree, the end blocks), through the real CLIs: a warm build
 * reuses the unchanged parts from the layer cache and writes the same bytes
 * as a cold one; every tar reader reads the members as one tar; a tampered
 * cache entry never makes a wrong slug.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { execa } from 'execa';
import { Header } from 'tar';
import { makeApp, removeTempDirs, runBuilder, runRunner, tempDir, writeBuildpack } from './helpers/cli.js';
import { requireBwrap, requireTools } from './helpers/tools.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const EPOCH = '1700000000';

/** Deterministic JS-like text, so the parts compress as real ones do. */
function text(seed: number, bytes: number): string {
  const words = [
    'const',
    'function',
    'return',
    'module',
    'exports',
    'require',
    'value',
    'options',
    'callback',
    'this',
    '=>',
    '{',
    '}',
    ';',
  ];
  let x = seed + 1;
  let out = `// module ${seed}\n`;
  while (out.length < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out += words[x % words.length] + (x % 7 === 0 ? '\n' : ' ');
  }
  return out;
}

/** An app with a node_modules (about 3 MB of tar) and a runtime under .heroku/node (1.5 MB): both over the 1 MiB a cached part needs. */
async function bigApp(server = 'console.log("v1")\n'): Promise<string> {
  const files: Record<string, string> = { Procfile: 'web: node server.js\n', 'server.js': server, 'package.json': '{"name":"app"}\n' };
  for (let p = 0; p < 40; p++) for (let f = 0; f < 5; f++) files[`node_modules/pkg-${p}/lib/file-${f}.js`] = text(p * 10 + f, 16 * 1024);
  const app = await makeApp(files);
  await mkdir(path.join(app, '.heroku/node/bin'), { recursive: true });
  // Incompressible, as a binary is to gzip: from a fixed seed so every build sees the same bytes.
  const runtime = Buffer.concat(Array.from({ length: (1536 * 1024) / 32 }, (_, i) => createHash('sha256').update(`runtime ${i}`).digest()));
  await writeFile(path.join(app, '.heroku/node/bin/node'), runtime, { mode: 0o755 });
  return app;
}

/** The gzip members of `gz` (each with the fixed 10-byte header slugkit writes), as [offset, length]. */
function members(gz: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let at = 0; at < gz.length; ) {
    expect(gz.subarray(at, at + 4).toString('hex'), `member at ${at}`).to.equal('1f8b0800');
    const { engine } = zlib.inflateRawSync(gz.subarray(at + 10), { info: true }) as unknown as { engine: zlib.InflateRaw };
    const length = 10 + engine.bytesWritten + 8;
    out.push([at, length]);
    at += length;
  }
  return out;
}

/** Every file, dir and link under `root` with its content (or target). */
async function treeOf(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    const rel = path.relative(root, path.join(e.parentPath, e.name));
    out[rel] = e.isDirectory() ? 'dir' : e.isSymbolicLink() ? 'link' : sha(await readFile(path.join(root, rel)));
  }
  return out;
}

describe('the slug in parts (multi-member gzip)', function () {
  this.timeout(120_000);
  let app: string;
  let buildpack: string;
  let work: string;
  /** The cache root of the first (cold) build, as it left it. */
  let coldRoot: string;
  let cold: { slug: Buffer; stderr: string };
  let n = 0;

  async function build(
    cacheRoot: string,
    source = app,
    opts: { sandbox?: 'on' | 'off'; cacheDir?: string; buildpack?: string } = {},
  ): Promise<{ slug: Buffer; stderr: string; file: string }> {
    const file = path.join(work, `slug-${++n}.tgz`);
    const cacheDir = opts.cacheDir ?? path.join(work, `cache-${n}`);
    const res = await runBuilder(['--source', source, '--buildpack', opts.buildpack ?? buildpack, '--cache-dir', cacheDir, '-o', file], {
      env: {
        ...process.env,
        SLUGBUILDER_CACHE_DIR: cacheRoot,
        SOURCE_DATE_EPOCH: EPOCH,
        ...(opts.sandbox ? { SLUGKIT_SANDBOX: opts.sandbox } : {}),
      },
    });
    expect(res.exitCode, res.stderr).to.equal(0);
    return { slug: await readFile(file), stderr: res.stderr, file };
  }

  before(async () => {
    work = await tempDir('slugkit-parts-');
    app = await bigApp();
    buildpack = await writeBuildpack(path.join(await tempDir('slugkit-bp-'), 'parts'), {});
    coldRoot = path.join(work, 'root-cold');
    cold = await build(coldRoot);
  });
  after(removeTempDirs);

  it('writes the rest of the app, each dependency tree and the end blocks as gzip members', () => {
    expect(cold.stderr).to.include('Slug: 0 of 3 parts reused from the layer cache\n');
    const parts = members(cold.slug);
    expect(parts).to.have.length(4);
    const tars = parts.map(([at, length]) => zlib.gunzipSync(cold.slug.subarray(at, at + length)));
    const names = (tar: Buffer) => {
      const out: string[] = [];
      for (let at = 0; at + 512 <= tar.length; ) {
        const h = new Header(tar.subarray(at, at + 512));
        if (!h.path) break;
        out.push(h.path);
        at += 512 + Math.ceil((h.size ?? 0) / 512) * 512;
      }
      return out;
    };
    const [rest, runtime, deps, end] = tars.map(names);
    expect(rest).to.include.members(['./', './.heroku/', './Procfile', './server.js']);
    expect(rest.filter((p) => p.startsWith('./node_modules') || p.startsWith('./.heroku/node'))).to.deep.equal([]);
    expect(runtime).to.deep.equal(['./.heroku/node/', './.heroku/node/bin/', './.heroku/node/bin/node']);
    expect(deps[0]).to.equal('./node_modules/');
    expect(deps).to.have.length(1 + 40 * 2 + 200);
    expect(end).to.deep.equal([]);
    expect(tars[3].equals(Buffer.alloc(1024))).to.equal(true);
  });

  it('reuses the unchanged parts on a warm build: the same bytes as a cold build with an empty cache', async () => {
    const root = path.join(work, 'root-warm');
    await cp(coldRoot, root, { recursive: true });
    const warm = await build(root);
    expect(warm.stderr).to.match(/^ {7}Slug: 2 of 3 parts reused from the layer cache \(\d+\.\dM of tar not compressed again\)$/m);
    expect(sha(warm.slug)).to.equal(sha(cold.slug));
    const fresh = await build(path.join(work, 'root-empty'));
    expect(fresh.stderr).to.include('Slug: 0 of 3 parts reused');
    expect(sha(fresh.slug)).to.equal(sha(cold.slug));

    // --max-slug-size counts the reused parts as it counts compressed ones: the whole size, no slug written.
    const file = path.join(work, 'over.tgz');
    const over = await runBuilder(['--source', app, '--buildpack', buildpack, '--max-slug-size', '1M', '-o', file], {
      env: { ...process.env, SLUGBUILDER_CACHE_DIR: root, SOURCE_DATE_EPOCH: EPOCH },
    });
    expect(over.exitCode, over.stderr).to.equal(1);
    const size = `${(cold.slug.length / 1024 ** 2).toFixed(1)}M`;
    const errors = over.stderr.split('\n').filter((l) => l.startsWith(' !     '));
    expect(errors).to.have.length(1);
    expect(errors[0]).to.match(
      new RegExp(
        `^ ! {5}slug is ${size.replace('.', '\\.')}, over the 1\\.0M limit; largest before compression: node_modules 3\\.\\dM, \\.heroku 1\\.5M, `,
      ),
    );
    expect(existsSync(file)).to.equal(false);
  });

  it('reuses the dependency parts after a code-only change, and the slug unpacks to the changed app', async function () {
    requireTools(this, 'tar');
    const root = path.join(work, 'root-change');
    await cp(coldRoot, root, { recursive: true });
    const changedApp = await bigApp('console.log("v2")\n');
    const changed = await build(root, changedApp);
    expect(changed.stderr).to.include('Slug: 2 of 3 parts reused from the layer cache');
    // The same as a build of the changed app from nothing.
    expect(sha(changed.slug)).to.equal(sha((await build(path.join(work, 'root-change-empty'), changedApp)).slug));
    const dir = await tempDir('slugkit-parts-x-');
    await execa('tar', ['-xzf', changed.file, '-C', dir]);
    expect(await readFile(path.join(dir, 'server.js'), 'utf8')).to.equal('console.log("v2")\n');
    expect(await treeOf(dir)).to.deep.include(await treeOf(changedApp));
  });

  it('checks a kept part against the tree as it is read: a tree changed past its first MB is compressed again, then kept', async () => {
    const root = path.join(work, 'root-late-change');
    await cp(coldRoot, root, { recursive: true });
    const changedApp = await bigApp();
    // The last file of node_modules' tar (pkg-9 sorts last): its first MB, and so its marker, is the cold build's.
    await writeFile(path.join(changedApp, 'node_modules/pkg-9/lib/file-4.js'), text(999, 16 * 1024));
    const changed = await build(root, changedApp);
    expect(changed.stderr).to.include('Slug: 1 of 3 parts reused from the layer cache');
    const fresh = await build(path.join(work, 'root-late-change-empty'), changedApp);
    expect(sha(changed.slug)).to.equal(sha(fresh.slug));
    expect(sha(changed.slug)).to.not.equal(sha(cold.slug));
    // The marker now names the changed tree: the next build takes it.
    const again = await build(root, changedApp);
    expect(again.stderr).to.include('Slug: 2 of 3 parts reused from the layer cache');
    expect(sha(again.slug)).to.equal(sha(fresh.slug));
  });

  it('takes a cache whose markers are empty (an older slugkit), a FIFO or a link for what they are: no reuse, no hang, the right slug', async function () {
    requireTools(this, 'mkfifo');
    const markers = async (root: string) => (await readdir(path.join(root, 'layers'))).filter((f) => f.startsWith('head-'));
    const empty = path.join(work, 'root-empty-markers');
    await cp(coldRoot, empty, { recursive: true });
    expect(await markers(empty)).to.have.length(2);
    for (const m of await markers(empty)) await writeFile(path.join(empty, 'layers', m), '');
    const first = await build(empty);
    expect(first.stderr).to.include('Slug: 0 of 3 parts reused from the layer cache\n');
    expect(sha(first.slug)).to.equal(sha(cold.slug));
    expect((await build(empty)).stderr).to.include('Slug: 2 of 3 parts reused');

    const odd = path.join(work, 'root-odd-markers');
    await cp(coldRoot, odd, { recursive: true });
    const [fifo, link] = await markers(odd);
    const named = (await readFile(path.join(odd, 'layers', fifo), 'utf8')).trim();
    await rm(path.join(odd, 'layers', fifo));
    await execa('mkfifo', [path.join(odd, 'layers', fifo)]);
    // A link to a file outside the cache that names a kept entry: not read.
    const outside = path.join(work, 'marker-outside');
    await writeFile(outside, `${named}\n`);
    await rm(path.join(odd, 'layers', link));
    await symlink(outside, path.join(odd, 'layers', link));
    const res = await build(odd);
    expect(res.stderr).to.include('Slug: 0 of 3 parts reused from the layer cache\n');
    expect(sha(res.slug)).to.equal(sha(cold.slug));
  });

  it('is one tar to gzip -t, GNU tar, Python tarfile and slugrunner --slug, each entry once', async function () {
    requireTools(this, 'gzip', 'tar', 'python3');
    // Several members, read back to back.
    expect(members(cold.slug)).to.have.length(4);
    const file = path.join(work, 'cold.tgz');
    await writeFile(file, cold.slug);
    expect((await execa('gzip', ['-t', file], { reject: false })).exitCode).to.equal(0);

    const listed = (await execa('tar', ['-tzvf', file])).stdout.split('\n');
    const gnuNames = listed.map((l) => l.split(/\s+/).slice(5).join(' '));
    expect(new Set(gnuNames).size).to.equal(gnuNames.length);
    expect(gnuNames).to.include.members(['./', './server.js', './node_modules/', './.heroku/node/bin/node']);

    const py = await execa('python3', ['-c', 'import sys, tarfile\nfor n in tarfile.open(sys.argv[1]).getnames(): print(n)', file]);
    const pyNames = py.stdout.split('\n');
    expect(pyNames).to.have.length(gnuNames.length);
    expect(new Set(pyNames).size).to.equal(pyNames.length);

    const byTar = await tempDir('slugkit-parts-tar-');
    await execa('tar', ['-xzf', file, '-C', byTar]);
    const byRunner = path.join(await tempDir('slugkit-parts-run-'), 'app');
    const run = await runRunner(['--app-dir', byRunner, '--slug', file, '-q', 'run', 'true']);
    expect(run.exitCode, run.stderr).to.equal(0);
    const expected = await treeOf(byTar);
    // The app's own files, and what the build added (.release, the SBOM).
    expect(expected).to.deep.include(await treeOf(app));
    const unpacked = await treeOf(byRunner);
    // slugrunner adds its launch plan; everything else is what GNU tar unpacked.
    for (const name of Object.keys(unpacked)) if (!(name in expected)) delete unpacked[name];
    expect(unpacked).to.deep.equal(expected);
  });

  /** A copy of the cold build's cache root with every kept blob changed by `tamper`. */
  async function tamperedRoot(
    tamper: (blob: Buffer, kept: { digest: string; size: number }) => Buffer | { blob: Buffer; rewriteMeta: true },
  ): Promise<string> {
    const root = path.join(work, `root-tampered-${n + 1}`);
    await cp(coldRoot, root, { recursive: true });
    const dir = path.join(root, 'layers');
    const metas = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    expect(metas).to.have.length(2);
    for (const meta of metas) {
      const kept = JSON.parse(await readFile(path.join(dir, meta), 'utf8')) as { digest: string; size: number };
      const blobFile = path.join(dir, `${kept.digest.slice('sha256:'.length)}.tar.gz`);
      const changed = tamper(await readFile(blobFile), kept);
      if (Buffer.isBuffer(changed)) {
        await writeFile(blobFile, changed);
      } else {
        // A consistent pair, as a hostile writer of the cache dir could leave: the blob under its own digest, the entry naming it.
        const digest = `sha256:${sha(changed.blob)}`;
        await writeFile(path.join(dir, `${sha(changed.blob)}.tar.gz`), changed.blob);
        await writeFile(path.join(dir, meta), JSON.stringify({ digest, size: changed.blob.length }));
      }
    }
    return root;
  }

  /** The same tar with one file's text changed: valid gzip, valid tar, the wrong content. */
  function otherContent(blob: Buffer): { blob: Buffer; rewriteMeta: true } {
    const tar = zlib.gunzipSync(blob);
    const at = tar.indexOf('// module ');
    if (at < 0) tar[tar.length - 1100] ^= 1;
    else tar.write('// MODULE ', at);
    return { blob: zlib.gzipSync(tar), rewriteMeta: true };
  }

  // Unsandboxed, the build's own code could have written the cache: every kept blob is inflated and compared.
  describe('a tampered cache entry is never copied into the slug', () => {
    /** Builds from a tampered copy of the cold build's cache root, its buildpacks unsandboxed. */
    async function rebuildAfter(tamper: Parameters<typeof tamperedRoot>[0], sandbox: 'on' | 'off' = 'off') {
      const res = await build(await tamperedRoot(tamper), app, { sandbox });
      expect(res.stderr).to.include('Slug: 0 of 3 parts reused from the layer cache\n');
      expect(sha(res.slug)).to.equal(sha(cold.slug));
      return res;
    }

    it('a blob of the wrong size', async () => {
      await rebuildAfter((blob) => Buffer.concat([blob, Buffer.from('x')]));
    });

    it('a blob of the right size whose bytes do not match the kept digest', async () => {
      await rebuildAfter((blob) => {
        const copy = Buffer.from(blob);
        copy[Math.floor(copy.length / 2)] ^= 0xff;
        return copy;
      });
    });

    it('a blob of other content with an entry naming its digest and size', async () => {
      const res = await rebuildAfter(otherContent);
      expect(zlib.gunzipSync(res.slug).includes('// MODULE ')).to.equal(false);
    });

    it('a blob of the right content with zero bytes after its member, which gzip readers stop at', async () => {
      await rebuildAfter((blob) => ({ blob: Buffer.concat([blob, Buffer.alloc(64)]), rewriteMeta: true }));
    });

    it('sandboxed too: a blob of the wrong size, or whose bytes do not match the kept digest', async function () {
      requireBwrap(this);
      await rebuildAfter((blob) => Buffer.concat([blob, Buffer.from('x')]), 'on');
      await rebuildAfter((blob) => {
        const copy = Buffer.from(blob);
        copy[100] ^= 0xff;
        return copy;
      }, 'on');
    });

    it('sandboxed, when a dir the buildpacks write holds the layer cache (--cache-dir at the cache root)', async function () {
      requireBwrap(this);
      const root = await tamperedRoot(otherContent);
      const res = await build(root, app, { sandbox: 'on', cacheDir: root });
      expect(res.stderr).to.include('Slug: 0 of 3 parts reused from the layer cache\n');
      expect(sha(res.slug)).to.equal(sha(cold.slug));
    });
  });

  // Sandboxed, no process of the build can reach the cache root: a kept part is proved by the record slugkit wrote.
  it('sandboxed: a buildpack cannot write the layer cache, and the record proves a kept part (the tree hashed, not the blob inflated)', async function () {
    requireBwrap(this);
    const root = path.join(work, 'root-sandboxed');
    const open = path.join(work, 'root-unsandboxed');
    await cp(coldRoot, root, { recursive: true });
    await cp(coldRoot, open, { recursive: true });
    const before = await readdir(path.join(root, 'layers'));
    // A hostile buildpack that knows where the cache roots are: it tries to plant an entry and change every kept blob.
    const hostile = await writeBuildpack(path.join(await tempDir('slugkit-bp-'), 'parts'), {
      compile: [
        `for layers in ${root}/layers ${open}/layers; do`,
        '  for f in "$layers"/*; do echo planted >> "$f" 2>/dev/null || true; done',
        `  echo '{}' > "$layers/planted.json" 2>/dev/null || true`,
        'done',
        'echo "-----> tried the layer cache"',
      ].join('\n'),
    });
    const warm = await build(root, app, { sandbox: 'on', buildpack: hostile });
    expect(warm.stderr).to.include('tried the layer cache');
    expect(await readdir(path.join(root, 'layers'))).to.have.members(before);
    expect(warm.stderr).to.match(/^ {7}Slug: 2 of 3 parts reused from the layer cache \(\d+\.\dM of tar not compressed again\)$/m);
    expect(sha(warm.slug)).to.equal(sha(cold.slug));

    // Unsandboxed, the same buildpack does reach the cache; the build inflates what it finds there and compresses again.
    const spoiled = await build(open, app, { sandbox: 'off', buildpack: hostile });
    expect(await readdir(path.join(open, 'layers'))).to.include('planted.json');
    expect(spoiled.stderr).to.include('Slug: 0 of 3 parts reused from the layer cache\n');
    expect(sha(spoiled.slug)).to.equal(sha(cold.slug));
  });
});

// Node's gunzip already goes on past a member's end (this holds on the code before the slug had parts too): kept so it stays so.
describe('slugrunner reads a gzip of several members as one stream', () => {
  after(removeTempDirs);

  it('unpacks every member, whether the cuts fall between entries or inside one', async () => {
    const app = await makeApp({ 'a.txt': 'first\n', 'b/c.txt': 'second\n', 'd.txt': 'third\n'.repeat(1000) });
    const tar = (await execa('tar', ['-cf', '-', '-C', app, '.'], { encoding: 'buffer' })).stdout as unknown as Buffer;
    // Cuts after the first header, inside the second entry, and one empty member.
    const cuts = [512, 1300, 1300, 4000, tar.length];
    const gz: Buffer[] = [];
    for (let i = 0, from = 0; i < cuts.length; from = cuts[i++]) gz.push(zlib.gzipSync(tar.subarray(from, cuts[i])));
    const file = path.join(await tempDir(), 'members.tgz');
    await writeFile(file, Buffer.concat(gz));
    const dir = path.join(await tempDir(), 'app');
    const run = await runRunner(['--app-dir', dir, '--slug', file, '-q', 'run', 'true']);
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(await readFile(path.join(dir, 'd.txt'), 'utf8')).to.equal('third\n'.repeat(1000));
    expect(await readFile(path.join(dir, 'b/c.txt'), 'utf8')).to.equal('second\n');
  });
});
