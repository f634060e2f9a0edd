/**
 * `slugbuilder --slug SLUG --image REF` takes the dependency trees from the
 * slug's stream (slugbuilder/image/slug-layers.ts) instead of unpacking them:
 * through the real CLI into OCI layouts, every image is compared with the
 * one the unpack-then-pack path gives for the same slug (reached with
 * --layer, which needs the whole tree on disk): same layers, same manifest
 * digest. Slugs from other tools, hard links, links into a tree and hostile
 * slugs take the unpack path, with its one error line.
 */

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { makeBuildpack, runBuilder, writeTree } from './helpers/cli.js';
import { makeRootfs, requireTools, skopeoInspect, writeRunImage } from './helpers/image-fixtures.js';
import { dir, file, gzip, hardlink, header, symlink as linkEntry, pax, TYPE, tar } from './helpers/tar-blocks.js';

const execFileP = promisify(execFile);

interface Summary {
  image: { digest: string; layers: Array<{ path: string; digest: string; diffId: string; size: number }> };
}

const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith(' !'));

describe('--slug --image: dependency trees straight from the slug', () => {
  let root: string;
  let runImage: string;
  let app: string;
  let slug: string;
  let n = 0;

  /** One --slug image into a fresh layout; `extra` may add --layer (the unpack-then-pack path). */
  const image = async (slugFile: string, extra: string[] = [], cache = `cache-${++n}`) => {
    const layout = path.join(root, `layout-${++n}`);
    const summaryFile = path.join(root, `summary-${n}.json`);
    const res = await runBuilder(
      ['--slug', slugFile, '--run-image', runImage, '--image', `oci:${layout}:app`, '--summary', summaryFile, ...extra],
      { env: { ...process.env, SLUGBUILDER_CACHE_DIR: path.join(root, cache), SOURCE_DATE_EPOCH: '' } },
    );
    const summary = existsSync(summaryFile) ? (JSON.parse(await readFile(summaryFile, 'utf8')) as Summary) : undefined;
    return { ...res, layout, summary };
  };

  /** The same slug the old way (--layer keeps the trees on disk): its image must be the same. */
  const unpackedImage = async (slugFile: string) => {
    const old = await image(slugFile, ['--layer', path.join(root, `whole-${++n}.tar.gz`)]);
    expect(old.exitCode, old.stderr).to.equal(0);
    expect(old.stderr).to.not.include('from the slug');
    return old.summary!;
  };

  const expectSameImage = (got: Summary, want: Summary) => {
    expect(got.image.layers).to.deep.equal(want.image.layers);
    expect(got.image.digest).to.equal(want.image.digest);
  };

  before(async function () {
    requireTools(this, 'skopeo');
    root = await mkdtemp(path.join(os.tmpdir(), 'slugkit-slug-layers-test-'));
    const rootfs = path.join(root, 'rootfs');
    await makeRootfs(rootfs, '24');
    await writeRunImage(path.join(root, 'runner'), '24', { layers: [rootfs], version: '24' });
    runImage = `oci:${path.join(root, 'runner')}:24`;

    app = path.join(root, 'app');
    const longName = `node_modules/${'a-very-long-package-name-'.repeat(5)}/lib/index.js`;
    await writeTree(app, {
      // Only in the app's node_modules: the image check must find it there.
      Procfile: 'web: node_modules/.bin/serve\n',
      'server.js': 'console.log("one")\n',
      '.heroku/node/bin/node': { content: randomBytes(40_000).toString('base64'), mode: 0o755 },
      '.heroku/node/include/node/node_version.h': '#define NODE_MAJOR_VERSION 20\n',
      '.heroku/python-version': '3.12\n',
      'node_modules/serve/cli.js': { content: '#!/bin/sh\necho serve\n', mode: 0o755 },
      'node_modules/serve/package.json': '{"name":"serve","version":"1.0.0"}\n',
      // Past 256 KB (packTree streams it) and past the cache's 1 MB head together.
      'node_modules/big/blob.bin': randomBytes(700_000).toString('base64'),
      [longName]: 'module.exports = 1\n',
      'node_modules/zzz/index.js': 'module.exports = "last"\n',
    });
    await mkdir(path.join(app, 'node_modules/.bin'));
    await symlink('../serve/cli.js', path.join(app, 'node_modules/.bin/serve'));
    await mkdir(path.join(app, 'node_modules/empty-dir'));
    await mkdir(path.join(app, 'vendor/bundle'), { recursive: true }); // an empty tree: stays with the app
    const buildpack = await makeBuildpack({ detect: 'echo node', compile: 'true', release: 'echo "--- {}"' });
    slug = path.join(root, 'slug.tgz');
    const built = await runBuilder(['--source', app, '--buildpack', buildpack, '-o', slug], {
      env: { ...process.env, SLUGBUILDER_CACHE_DIR: path.join(root, 'build-cache') },
    });
    expect(built.exitCode, built.stderr).to.equal(0);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it("gives a slugkit slug's trees (symlinks, long names, empty dirs, large files) the layers unpacking gives", async () => {
    const got = await image(slug);
    expect(got.exitCode, got.stderr).to.equal(0);
    expect(got.stderr).to.match(/\/app\/\.heroku\/node \S+ compressed from the slug/);
    expect(got.stderr).to.match(/\/app\/node_modules \S+ compressed from the slug/);
    expect(got.stderr).to.not.include('neither on the run image');
    expect(got.summary!.image.layers.map((l) => l.path)).to.deep.equal(['/app/.heroku/node', '/app/node_modules', '/app']);
    expectSameImage(got.summary!, await unpackedImage(slug));
    const layers = (await skopeoInspect(`oci:${got.layout}:app`)).Layers as string[];
    expect(layers.slice(-3)).to.deep.equal(got.summary!.image.layers.map((l) => l.digest));
  });

  it('keeps the layer cache: an unchanged tree is taken from it, a changed one past the first MB is compressed again', async () => {
    const first = await image(slug, [], 'shared-cache');
    expect(first.exitCode, first.stderr).to.equal(0);
    await writeFile(path.join(app, 'server.js'), 'console.log("two")\n');
    await writeFile(path.join(app, 'node_modules/zzz/index.js'), 'module.exports = "changed"\n');
    const changed = path.join(root, 'changed.tgz');
    const buildpack = await makeBuildpack({ detect: 'echo node', compile: 'true', release: 'echo "--- {}"' });
    const built = await runBuilder(['--source', app, '--buildpack', buildpack, '-o', changed], {
      env: { ...process.env, SLUGBUILDER_CACHE_DIR: path.join(root, 'build-cache') },
    });
    expect(built.exitCode, built.stderr).to.equal(0);
    const second = await image(changed, [], 'shared-cache');
    expect(second.exitCode, second.stderr).to.equal(0);
    expect(second.stderr).to.match(/\/app\/\.heroku\/node \S+ from the layer cache/);
    expect(second.stderr).to.match(/\/app\/node_modules \S+ compressed from the slug/);
    const [node1, modules1] = first.summary!.image.layers;
    const [node2, modules2] = second.summary!.image.layers;
    expect(node2).to.deep.equal(node1);
    expect(modules2.digest).to.not.equal(modules1.digest);
    expectSameImage(second.summary!, await unpackedImage(changed));
    // And a third time, all from the cache.
    const third = await image(changed, [], 'shared-cache');
    expect(third.stderr).to.match(/\/app\/node_modules \S+ from the layer cache/);
    expectSameImage(third.summary!, second.summary!);
  });

  it('puts layer-cache entries a --source build of the same app then uses', async () => {
    const env = { ...process.env, SLUGBUILDER_CACHE_DIR: path.join(root, 'cross-cache'), SOURCE_DATE_EPOCH: '' };
    const buildpack = await makeBuildpack({ detect: 'echo node', compile: 'true', release: 'echo "--- {}"' });
    const slugFile = path.join(root, 'cross.tgz');
    const slugBuilt = await runBuilder(['--source', app, '--buildpack', buildpack, '-o', slugFile], { env });
    expect(slugBuilt.exitCode, slugBuilt.stderr).to.equal(0);
    const fromSlug = await image(slugFile, [], 'cross-cache');
    expect(fromSlug.stderr).to.match(/\/app\/node_modules \S+ compressed from the slug/);

    const summaryFile = path.join(root, 'from-source.json');
    const layout = path.join(root, 'from-source-layout');
    const fromSource = await runBuilder(
      ['--source', app, '--buildpack', buildpack, '--run-image', runImage, '--image', `oci:${layout}:src`, '--summary', summaryFile],
      { env },
    );
    expect(fromSource.exitCode, fromSource.stderr).to.equal(0);
    expect(fromSource.stderr).to.match(/\/app\/node_modules \S+ from the layer cache/);
    expect(fromSource.stderr).to.match(/\/app\/\.heroku\/node \S+ from the layer cache/);
    const layers = (JSON.parse(await readFile(summaryFile, 'utf8')) as Summary).image.layers;
    expect(layers.slice(0, 2)).to.deep.equal(fromSlug.summary!.image.layers.slice(0, 2));
  });

  it('streams a GNU tar --sort=name slug, and unpacks one in directory order or with a hard link, all to the same image', async () => {
    const unpacked = path.join(root, 'gnu-src');
    await mkdir(unpacked);
    await execFileP('tar', ['-xzf', slug, '-C', unpacked]);

    const sorted = path.join(root, 'gnu-sorted.tgz');
    await execFileP('tar', ['--sort=name', '--owner=0', '--group=0', '-czf', sorted, '-C', unpacked, '.']);
    const fromSorted = await image(sorted);
    expect(fromSorted.exitCode, fromSorted.stderr).to.equal(0);
    expect(fromSorted.stderr).to.match(/\/app\/node_modules \S+ compressed from the slug/);
    expectSameImage(fromSorted.summary!, await unpackedImage(sorted));

    // Not in packTree's order (rooted at "app-files" without "./", files before their siblings' dirs).
    const unordered = path.join(root, 'unordered.tgz');
    await execFileP('tar', [
      '--sort=none',
      '-czf',
      unordered,
      '-C',
      unpacked,
      'server.js',
      'node_modules',
      '.heroku',
      'Procfile',
      'vendor',
    ]);
    const fromUnordered = await image(unordered);
    expect(fromUnordered.exitCode, fromUnordered.stderr).to.equal(0);
    expect(fromUnordered.stderr).to.not.include('from the slug');
    expectSameImage(fromUnordered.summary!, await unpackedImage(unordered));
    expect(fromUnordered.summary!.image.layers.slice(0, 2)).to.deep.equal(fromSorted.summary!.image.layers.slice(0, 2));

    await link(path.join(unpacked, 'node_modules/serve/cli.js'), path.join(unpacked, 'node_modules/serve/cli-copy.js'));
    const linked = path.join(root, 'hardlink.tgz');
    await execFileP('tar', ['--sort=name', '-czf', linked, '-C', unpacked, '.']);
    const fromLinked = await image(linked);
    expect(fromLinked.exitCode, fromLinked.stderr).to.equal(0);
    expect(fromLinked.stderr).to.not.include('from the slug');
    expectSameImage(fromLinked.summary!, await unpackedImage(linked));
  });

  it('streams a slug written in parts (the rest, then each tree whole), and unpacks one whose tree comes twice', async () => {
    const unpacked = path.join(root, 'parts-src');
    await mkdir(unpacked);
    await execFileP('tar', ['-xzf', slug, '-C', unpacked]);
    const tarOfPart = async (name: string, args: string[]) => {
      const file = path.join(root, name);
      await execFileP('tar', ['--sort=name', '--owner=0', '--group=0', '-cf', file, '-C', unpacked, ...args]);
      return file;
    };
    // GNU tar -A joins archives without the end blocks between them: one tar, in parts.
    const rest = await tarOfPart('parts.tar', ['--exclude=./node_modules', '--exclude=./.heroku/node', '.']);
    const modules = await tarOfPart('parts-modules.tar', ['./node_modules']);
    const runtime = await tarOfPart('parts-runtime.tar', ['./.heroku/node']);
    await execFileP('tar', ['-Af', rest, modules]);
    await execFileP('tar', ['-Af', rest, runtime]);
    const inParts = path.join(root, 'parts.tgz');
    await execFileP('bash', ['-c', `gzip -c '${rest}' > '${inParts}'`]);
    const fromParts = await image(inParts);
    expect(fromParts.exitCode, fromParts.stderr).to.equal(0);
    expect(fromParts.stderr).to.match(/\/app\/node_modules \S+ compressed from the slug/);
    expect(fromParts.stderr).to.match(/\/app\/\.heroku\/node \S+ compressed from the slug/);
    expectSameImage(fromParts.summary!, await unpackedImage(inParts));

    // node_modules a second time, after the runtime: never streamed; the unpacker has the last word.
    await execFileP('tar', ['-Af', rest, modules]);
    const twice = path.join(root, 'parts-twice.tgz');
    await execFileP('bash', ['-c', `gzip -c '${rest}' > '${twice}'`]);
    const fromTwice = await image(twice);
    expect(fromTwice.stderr, fromTwice.stderr).to.not.include('from the slug');
    const unpackedTwice = await image(twice, ['--layer', path.join(root, 'parts-twice-layer.tgz')]);
    expect(fromTwice.exitCode).to.equal(unpackedTwice.exitCode);
    expect(errorLines(fromTwice.stderr)).to.deep.equal(errorLines(unpackedTwice.stderr));
  });

  it('unpacks a slug whose link outside the trees leads into one, so what reads it sees the same files', async () => {
    const entries = (serve: Buffer[]) =>
      gzip(
        tar(
          dir('./'),
          file('./Procfile', 'web: bin/serve\n'),
          dir('./bin'),
          ...serve,
          dir('./node_modules'),
          dir('./node_modules/serve'),
          file('./node_modules/serve/cli.js', '#!/bin/sh\n', { mode: 0o755 }),
        ),
      );
    // Without the link it streams.
    const plain = path.join(root, 'link-none.tgz');
    await writeFile(plain, entries([file('./bin/serve', '#!/bin/sh\n', { mode: 0o755 })]));
    const streamed = await image(plain);
    expect(streamed.stderr).to.match(/\/app\/node_modules \S+ compressed from the slug/);

    /** A slug whose bin/serve is `serve`: unpacked whole, not streamed, and the same image as unpacking gives. */
    const unpackedWhole = async (name: string, serve: Buffer[]) => {
      const slugFile = path.join(root, name);
      await writeFile(slugFile, entries(serve));
      const got = await image(slugFile);
      expect(got.exitCode, got.stderr).to.equal(0);
      expect(got.stderr).to.not.include('from the slug');
      expect(got.stderr).to.not.include('neither on the run image');
      expectSameImage(got.summary!, await unpackedImage(slugFile));
    };
    await unpackedWhole('link-in.tgz', [linkEntry('./bin/serve', '../node_modules/serve/cli.js')]);
    // Through another link and back up: bin/up is lib, so "bin/up/.." is the app's root, where node_modules is.
    await unpackedWhole('link-via.tgz', [
      linkEntry('./bin/serve', 'up/../node_modules/serve/cli.js'),
      linkEntry('./bin/up', '../lib'),
      dir('./lib'),
    ]);
    // Out of the app and back in by the name of the dir it is unpacked into.
    await unpackedWhole('link-out-in.tgz', [linkEntry('./bin/serve', '../../app/node_modules/serve/cli.js')]);
  });

  it('streams pax names and leaves device entries out, as unpacking does', async () => {
    const deep = `./node_modules/${'p'.repeat(80)}/${'q'.repeat(60)}.js`;
    const slugFile = path.join(root, 'pax.tgz');
    await writeFile(
      slugFile,
      gzip(
        tar(
          dir('./'),
          file('./Procfile', 'web: true\n'),
          dir('./node_modules'),
          header({ name: './node_modules/dev', type: TYPE.charDevice, devmajor: 1, devminor: 3 }),
          dir(`./node_modules/${'p'.repeat(80)}`),
          pax({ path: deep }),
          file(`./node_modules/${'p'.repeat(80)}/short.js`, 'module.exports = 2\n'),
          file('./node_modules/x.js', 'x\n', { mode: 0o700 }),
        ),
      ),
    );
    const got = await image(slugFile);
    expect(got.exitCode, got.stderr).to.equal(0);
    expect(got.stderr).to.match(/\/app\/node_modules \S+ compressed from the slug/);
    expectSameImage(got.summary!, await unpackedImage(slugFile));
  });

  it("refuses a hostile slug in slugkit's order with the unpacker's one error line and writes no image", async () => {
    // The same shape, harmless, streams: the cases below reach the streaming path.
    const fine = path.join(root, 'fine.tgz');
    await writeFile(fine, gzip(tar(dir('./'), dir('./node_modules'), file('./node_modules/a', 'a\n'))));
    const ok = await image(fine);
    expect(ok.exitCode, ok.stderr).to.equal(0);
    expect(ok.stderr).to.match(/\/app\/node_modules \S+ compressed from the slug/);
    const cases: Array<[string, Buffer, string[], RegExp]> = [
      [
        'dotdot',
        tar(dir('./'), dir('./node_modules'), dir('./node_modules/a'), file('./node_modules/a/../../../../escape', 'x\n')),
        [],
        /has an unsafe entry .*contains '\.\.'/,
      ],
      [
        'through-link',
        tar(dir('./'), dir('./node_modules'), linkEntry('./node_modules/l', '/tmp'), file('./node_modules/l/x', 'x\n')),
        [],
        /has an unsafe entry "node_modules\/l\/x": it goes through the symbolic link/,
      ],
      [
        'too-many',
        tar(dir('./'), dir('./node_modules'), file('./node_modules/a', 'a\n'), file('./node_modules/b', 'b\n')),
        ['--max-files', '3'],
        /has more than 3 entries/,
      ],
      [
        'empty-link',
        tar(dir('./'), dir('./node_modules'), linkEntry('./node_modules/nowhere', ''), file('./node_modules/z', 'z\n')),
        [],
        /is damaged: linkpath required "\.\/node_modules\/nowhere"/,
      ],
      [
        'link-outside',
        tar(dir('./'), dir('./node_modules'), hardlink('./node_modules/pw', '/etc/passwd')),
        [],
        /link target does not exist in the archive/,
      ],
    ];
    for (const [name, bytes, extra, message] of cases) {
      const slugFile = path.join(root, `${name}.tgz`);
      await writeFile(slugFile, gzip(bytes));
      const got = await image(slugFile, extra);
      expect(got.exitCode, `${name}: ${got.stderr}`).to.equal(1);
      expect(errorLines(got.stderr), name).to.have.length(1);
      expect(errorLines(got.stderr)[0], name).to.match(message);
      expect(existsSync(got.layout), name).to.equal(false);
    }
    // Cut short mid-tree.
    const whole = gzip(tar(dir('./'), dir('./node_modules'), file('./node_modules/a', randomBytes(200_000))));
    const cut = path.join(root, 'cut.tgz');
    await writeFile(cut, whole.subarray(0, whole.length - 40_000));
    const got = await image(cut);
    expect(got.exitCode).to.equal(1);
    expect(errorLines(got.stderr)).to.have.length(1);
    expect(errorLines(got.stderr)[0]).to.match(/is truncated/);
    expect(existsSync(got.layout)).to.equal(false);
  });
});
