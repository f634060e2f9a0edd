/**
 * The CNB files a build reads before anything runs: buildpack.toml,
 * builder.toml (the bundled one included) and project.toml, with their
 * one-line errors, and project.toml's include/exclude on a real tree.
 */

import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { UserError } from '../shared/errors.js';
import { builderLookup, type FetchedBuildpack, readBuilderFile } from '../slugbuilder/buildpacks/builder-file.js';
import { apiAtLeast, readBuildpackDescriptor } from '../slugbuilder/buildpacks/cnb/descriptor.js';
import { detectOrder } from '../slugbuilder/buildpacks/cnb/order.js';
import { applyProjectFilters, readProjectDescriptor } from '../slugbuilder/source/project-descriptor.js';
import { makeBuildpack, ROOT, removeTempDirs, tempDir, writeTree } from './helpers/cli.js';
import { writeCnb, writeComposite } from './helpers/cnb.js';

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(UserError);
    const message = (err as Error).message;
    expect(message).to.not.include('\n');
    return message;
  }
  throw new Error('expected a UserError');
}

async function descriptorDir(toml: string, bin: string[] = ['detect', 'build']): Promise<string> {
  const dir = await tempDir('slugkit-bp-');
  await writeFile(path.join(dir, 'buildpack.toml'), toml);
  for (const name of bin) await writeTree(dir, { [`bin/${name}`]: { content: '#!/bin/sh\nexit 0\n', mode: 0o755 } });
  return dir;
}

/** Every path below `dir`, sorted, directories with a trailing slash. */
async function tree(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(`${r}/`, ...(await tree(dir, r)));
    else out.push(r);
  }
  return out.sort();
}

describe('CNB descriptors', function () {
  this.timeout(30_000);
  after(removeTempDirs);

  describe('buildpack.toml', () => {
    it('reads a component: api, id, version, clear-env, stacks and targets', async () => {
      const dir = await writeCnb(path.join(await tempDir(), 'bp'), {
        id: 'example/node',
        version: '1.2.0',
        api: '0.10',
        extraToml:
          'clear-env = true\n\n[[targets]]\nos = "linux"\narch = "amd64"\n[[targets.distros]]\nname = "ubuntu"\nversion = "24.04"\n\n[[stacks]]\nid = "*"',
      });
      const d = await readBuildpackDescriptor(dir);
      expect(d).to.deep.include({
        kind: 'component',
        api: '0.10',
        id: 'example/node',
        version: '1.2.0',
        clearEnv: true,
        stacks: ['*'],
        order: [],
      });
      expect(d!.targets).to.deep.equal([
        { os: 'linux', arch: 'amd64', variant: undefined, distros: [{ name: 'ubuntu', version: '24.04' }] },
      ]);
    });

    it('a directory without buildpack.toml is a classic buildpack (undefined)', async () => {
      expect(await readBuildpackDescriptor(await makeBuildpack({ detect: 'exit 0', compile: 'exit 0' }))).to.equal(undefined);
    });

    it('reads a composite: [[order]] with optional members and no bin/', async () => {
      const dir = await writeComposite(path.join(await tempDir(), 'meta'), {
        id: 'example/meta',
        api: '0.9',
        order: [
          [
            { id: 'example/a', version: '1.0.0' },
            { id: 'example/b', optional: true },
          ],
          [{ id: 'example/c' }],
        ],
      });
      const d = await readBuildpackDescriptor(dir);
      expect(d!.kind).to.equal('composite');
      expect(d!.order).to.deep.equal([
        [
          { id: 'example/a', version: '1.0.0', optional: false },
          { id: 'example/b', version: undefined, optional: true },
        ],
        [{ id: 'example/c', version: undefined, optional: false }],
      ]);
    });

    it('an unsupported API is one line listing the supported ones', async () => {
      for (const api of ['0.6', '0.13', '1.0']) {
        const dir = await descriptorDir(`api = "${api}"\n[buildpack]\nid = "x/y"\nversion = "1.0.0"\n`);
        expect(await failure(readBuildpackDescriptor(dir))).to.equal(
          `${path.join(dir, 'buildpack.toml')}: api "${api}" is not a supported Buildpack API: slugkit supports 0.7, 0.8, 0.9, 0.10, 0.11, 0.12`,
        );
      }
    });

    it('bad TOML names the file and the line', async () => {
      const dir = await descriptorDir('api = "0.10"\n[buildpack]\nid = "x/y"\nversion = \n');
      expect(await failure(readBuildpackDescriptor(dir))).to.match(
        new RegExp(`^${path.join(dir, 'buildpack.toml')}: invalid TOML at line 4: `),
      );
    });

    it('rejects a missing id, reserved ids, a component without version, bin/ with [[order]] and a missing bin/build', async () => {
      const file = (dir: string) => path.join(dir, 'buildpack.toml');
      let dir = await descriptorDir('api = "0.10"\n[buildpack]\nversion = "1.0.0"\n');
      expect(await failure(readBuildpackDescriptor(dir))).to.equal(`${file(dir)}: [buildpack] id is required`);
      for (const id of ['app', 'config', 'sbom']) {
        dir = await descriptorDir(`api = "0.10"\n[buildpack]\nid = "${id}"\nversion = "1.0.0"\n`);
        expect(await failure(readBuildpackDescriptor(dir))).to.equal(
          `${file(dir)}: buildpack id "${id}" is reserved (config, app and sbom are): choose another id`,
        );
      }
      dir = await descriptorDir('api = "0.10"\n[buildpack]\nid = "x/y"\n');
      expect(await failure(readBuildpackDescriptor(dir))).to.equal(`${file(dir)}: [buildpack] version is required for buildpack x/y`);
      dir = await descriptorDir('api = "0.10"\n[buildpack]\nid = "x/meta"\n[[order]]\n[[order.group]]\nid = "x/a"\n');
      expect(await failure(readBuildpackDescriptor(dir))).to.equal(
        `buildpack x/meta (${file(dir)}) has both [[order]] and bin/: a composite buildpack has no bin/, a component no [[order]]`,
      );
      dir = await descriptorDir('api = "0.10"\n[buildpack]\nid = "x/y"\nversion = "1.0.0"\n', ['detect']);
      expect(await failure(readBuildpackDescriptor(dir))).to.equal(
        `buildpack x/y@1.0.0 (${file(dir)}) has no bin/build: a component buildpack needs bin/detect and bin/build (found buildpack.toml (api "0.10"), bin/detect)`,
      );
    });

    it('apiAtLeast compares minor versions as numbers', () => {
      expect(apiAtLeast('0.10', '0.9')).to.equal(true);
      expect(apiAtLeast('0.9', '0.10')).to.equal(false);
      expect(apiAtLeast('0.12', '0.12')).to.equal(true);
      expect(apiAtLeast('0.8', '0.9')).to.equal(false);
    });
  });

  describe('builder.toml', () => {
    it('the bundled builder.toml lists the bundled buildpacks in their detection order, by uri', async () => {
      const file = path.join(ROOT, 'buildpacks', 'builder.toml');
      const b = await readBuilderFile(file);
      expect(b.order.map((g) => g.map((m) => [m.uri, m.optional]))).to.deep.equal([
        [['nodejs', false]],
        [['python', false]],
        [['static', false]],
        [['procfile', false]],
      ]);
      expect(b.buildpacks.map((bp) => bp.location)).to.deep.equal(
        ['nodejs', 'python', 'static', 'procfile'].map((n) => path.join(ROOT, 'buildpacks', n)),
      );
      for (const bp of b.buildpacks) expect(await readBuildpackDescriptor(bp.location)).to.equal(undefined);
    });

    it("reads pack's fields: buildpacks, order, stack, build image, run images and build env; [lifecycle] is ignored", async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'builder.toml');
      await writeFile(
        file,
        [
          '[[buildpacks]]\nid = "example/node"\nversion = "1.0.0"\nuri = "bps/node"',
          '[[buildpacks]]\nuri = "https://example.com/python.tgz"',
          '[[buildpacks]]\nuri = "file:///opt/bps/ruby"',
          '[[buildpacks]]\nuri = "https://github.com/example/classic.git#v2"',
          '[[order]]\n[[order.group]]\nid = "example/node"\nversion = "1.0.0"\n[[order.group]]\nuri = "./bps/procfile"\noptional = true',
          '[stack]\nid = "heroku-24"\nbuild-image = "old/build"\nrun-image = "old/run"',
          '[build]\nimage = "example/build:24"\n[[build.env]]\nname = "BP_LOG_LEVEL"\nvalue = "DEBUG"',
          '[run]\n[[run.images]]\nimage = "example/run:24"\nmirrors = ["mirror.example.com/run:24"]\n[[run.images]]\nimage = "other/run"',
          '[lifecycle]\nversion = "0.20.0"',
        ].join('\n\n'),
      );
      const b = await readBuilderFile(file);
      expect(b.buildpacks.map((bp) => [bp.uri, bp.location, bp.id])).to.deep.equal([
        ['bps/node', path.join(dir, 'bps/node'), 'example/node'],
        ['https://example.com/python.tgz', 'https://example.com/python.tgz', undefined],
        ['file:///opt/bps/ruby', '/opt/bps/ruby', undefined],
        ['https://github.com/example/classic.git#v2', 'https://github.com/example/classic.git#v2', undefined],
        ['./bps/procfile', path.join(dir, 'bps/procfile'), undefined],
      ]);
      expect(b.order).to.deep.equal([
        [
          { id: 'example/node', version: '1.0.0', optional: false },
          { id: './bps/procfile', uri: './bps/procfile', optional: true },
        ],
      ]);
      expect(b).to.deep.include({
        stackId: 'heroku-24',
        buildImage: 'example/build:24',
        runImage: 'example/run:24',
        runImageMirrors: ['mirror.example.com/run:24'],
        env: [{ name: 'BP_LOG_LEVEL', value: 'DEBUG' }],
      });
    });

    it('errors are one line naming the file: bad TOML with its line, no uri, an image uri, no order, extensions', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'builder.toml');
      const cases: Array<[string, string | RegExp]> = [
        ['[[buildpacks]]\nuri = \n', /: invalid TOML at line 2: /],
        [
          '[[buildpacks]]\nid = "x/y"\n[[order]]\n[[order.group]]\nid = "x/y"\n',
          '[[buildpacks]] entry 1 has no uri: give the directory, tarball or git URL it comes from',
        ],
        [
          '[[buildpacks]]\nuri = "docker://example/bp"\n',
          'buildpack uri "docker://example/bp" names an image or registry buildpack, which slugkit cannot run: use a directory, a tarball URL or a git URL',
        ],
        ['[[buildpacks]]\nuri = "a"\n', 'has no [[order]]: add at least one [[order]] with [[order.group]] members'],
        ['[[order]]\n[[order.group]]\nversion = "1"\n', '[[order]] 1: a group member has no id (or uri, for a classic buildpack)'],
        [
          '[[extensions]]\nid = "x"\n[[order]]\n[[order.group]]\nuri = "a"\n',
          'image extensions ([[extensions]], [[order-extensions]]) are not supported: remove them',
        ],
      ];
      for (const [text, expected] of cases) {
        await writeFile(file, text);
        const message = await failure(readBuilderFile(file));
        expect(message.startsWith(`${file}: `)).to.equal(true, message);
        if (typeof expected === 'string') expect(message).to.equal(`${file}: ${expected}`);
        else expect(message).to.match(expected);
      }
      expect(await failure(readBuilderFile(path.join(dir, 'absent.toml')))).to.equal(
        `builder file ${path.join(dir, 'absent.toml')} does not exist: check the --builder path`,
      );
    });

    async function mixedBuilder() {
      const dir = await tempDir('slugkit-builder-');
      await writeCnb(path.join(dir, 'ruby'), { id: 'example/ruby', version: '1.0.0', api: '0.10', detect: 'exit 100' });
      await writeCnb(path.join(dir, 'node1'), { id: 'example/node', version: '1.0.0', api: '0.10' });
      await writeCnb(path.join(dir, 'node2'), { id: 'example/node', version: '2.0.0', api: '0.10' });
      await writeTree(path.join(dir, 'classic'), {
        'bin/detect': { content: '#!/bin/sh\necho Classic\n', mode: 0o755 },
        'bin/compile': { content: '#!/bin/sh\n', mode: 0o755 },
      });
      await writeFile(
        path.join(dir, 'builder.toml'),
        [
          '[[buildpacks]]\nuri = "ruby"',
          '[[buildpacks]]\nuri = "node1"',
          '[[buildpacks]]\nuri = "node2"',
          '[[order]]\n[[order.group]]\nid = "example/ruby"',
          '[[order]]\n[[order.group]]\nuri = "classic"\n[[order.group]]\nid = "example/node"\nversion = "2.0.0"',
        ].join('\n\n'),
      );
      const builder = await readBuilderFile(path.join(dir, 'builder.toml'));
      const fetched: FetchedBuildpack[] = [];
      for (const entry of builder.buildpacks)
        fetched.push({ entry, dir: entry.location, descriptor: await readBuildpackDescriptor(entry.location) });
      return { dir, builder, fetched };
    }

    it('a builder whose first group fails detect builds its second, a classic buildpack named by uri and a CNB by id and version', async () => {
      const { dir, builder, fetched } = await mixedBuilder();
      await mkdir(path.join(dir, 'app'));
      await mkdir(path.join(dir, 'scratch'));
      const r = await detectOrder(builder.order, {
        appDir: path.join(dir, 'app'),
        platformDir: path.join(dir, 'platform'),
        scratchDir: path.join(dir, 'scratch'),
        env: { PATH: process.env.PATH },
        platform: { stack: 'heroku-24', target: { os: 'linux', arch: 'amd64' } },
        lookup: builderLookup(builder, fetched),
      });
      expect(r.tried).to.deep.equal(['group 1: example/ruby@1.0.0 failed detect']);
      expect(r.group?.map((m) => [m.buildpack.id, m.buildpack.version, m.buildpack.dir])).to.deep.equal([
        ['classic', undefined, path.join(dir, 'classic')],
        ['example/node', '2.0.0', path.join(dir, 'node2')],
      ]);
    });

    it('an unknown id, an ambiguous version and a wrong listed id are one line each, before anything runs', async () => {
      const { dir, builder, fetched } = await mixedBuilder();
      const file = path.join(dir, 'builder.toml');
      const unknown = { ...builder, order: [[{ id: 'example/go', optional: false }]] };
      expect(await failure(Promise.resolve().then(() => builderLookup(unknown, fetched)))).to.equal(
        `${file}: no [[buildpacks]] entry provides example/go, which a group names: add it to [[buildpacks]] or fix the group`,
      );
      const ambiguous = { ...builder, order: [[{ id: 'example/node', optional: false }]] };
      expect(await failure(Promise.resolve().then(() => builderLookup(ambiguous, fetched)))).to.equal(
        `${file}: example/node is in [[buildpacks]] as 1.0.0 and 2.0.0: give the group member a version`,
      );
      const mislabelled = fetched.map((f) => (f.entry.uri === 'ruby' ? { ...f, entry: { ...f.entry, id: 'example/rubby' } } : f));
      expect(await failure(Promise.resolve().then(() => builderLookup(builder, mislabelled)))).to.equal(
        `${file}: [[buildpacks]] ruby is listed as example/rubby but holds example/ruby: fix the id`,
      );
    });
  });

  describe('project.toml', () => {
    it('schema 0.1: [build] include, buildpacks by uri or id, env', async () => {
      const app = await tempDir();
      await writeFile(
        path.join(app, 'project.toml'),
        '[project]\nid = "my-app"\n\n[build]\ninclude = ["src/", "package.json"]\n\n[[build.buildpacks]]\nuri = "https://example.com/bp.tgz"\n\n[[build.buildpacks]]\nid = "example/node"\nversion = "1.0.0"\n\n[[build.env]]\nname = "NODE_ENV"\nvalue = "production"\n',
      );
      expect(await readProjectDescriptor(app)).to.deep.equal({
        file: 'project.toml',
        schemaVersion: '0.1',
        include: ['src/', 'package.json'],
        exclude: undefined,
        buildpacks: [{ uri: 'https://example.com/bp.tgz' }, { id: 'example/node', version: '1.0.0' }],
        env: [{ name: 'NODE_ENV', value: 'production' }],
      });
    });

    it('schema 0.2: [_] schema-version and [io.buildpacks] exclude, group and build.env', async () => {
      const app = await tempDir();
      await writeFile(
        path.join(app, 'project.toml'),
        '[_]\nschema-version = "0.2"\nid = "my-app"\n\n[io.buildpacks]\nbuilder = "ignored/builder"\nexclude = ["*.log"]\n\n[[io.buildpacks.group]]\nuri = "../bp"\n\n[[io.buildpacks.build.env]]\nname = "A"\nvalue = "1"\n',
      );
      expect(await readProjectDescriptor(app)).to.deep.include({
        schemaVersion: '0.2',
        exclude: ['*.log'],
        include: undefined,
        buildpacks: [{ uri: '../bp' }],
        env: [{ name: 'A', value: '1' }],
      });
    });

    it('an app without project.toml has none', async () => {
      expect(await readProjectDescriptor(await tempDir())).to.equal(undefined);
    });

    it('errors are one line naming project.toml: include with exclude, inline buildpacks, bad schema, bad env, bad TOML', async () => {
      const app = await tempDir();
      const cases: Array<[string, string | RegExp]> = [
        ['[build]\ninclude = ["a"]\nexclude = ["b"]\n', '[build] has both include and exclude: use one of them'],
        [
          '[[build.buildpacks]]\nid = "x/inline"\n[build.buildpacks.script]\napi = "0.10"\ninline = "echo hi"\n',
          '[[build.buildpacks]] entry 1 is an inline buildpack (script), which slugkit does not run: put it in a buildpack directory and give its uri',
        ],
        ['[_]\nschema-version = "0.3"\n', 'schema-version "0.3" is not supported: slugkit reads 0.1 and 0.2'],
        ['[[build.env]]\nname = "1BAD"\nvalue = "x"\n', '[[build.env]] entry 1 needs a name that is a valid variable name'],
        ['[[build.buildpacks]]\nversion = "1"\n', '[[build.buildpacks]] entry 1 needs a uri, or an id and version'],
        [
          '[_]\nschema-version = "0.2"\n[[io.buildpacks.pre.group]]\nuri = "x"\n',
          '[io.buildpacks.pre] and [io.buildpacks.post] groups are not supported: list every buildpack in [[io.buildpacks.group]]',
        ],
        ['[build]\nexclude = ["a" "b"]\n', /^project\.toml: invalid TOML at line 2: /],
      ];
      for (const [text, expected] of cases) {
        await writeFile(path.join(app, 'project.toml'), text);
        const message = await failure(readProjectDescriptor(app));
        if (typeof expected === 'string') expect(message).to.equal(`project.toml: ${expected}`);
        else expect(message).to.match(expected);
      }
    });

    const source = {
      'project.toml': '',
      'package.json': '{}',
      'src/index.js': 'x',
      'src/lib/util.js': 'x',
      'src/debug.log': 'x',
      'docs/guide.md': 'x',
      'tmp/cache/blob': 'x',
      'app.log': 'x',
    };

    it('exclude removes the matching paths from the source, gitignore-style', async () => {
      const dir = await writeTree(await tempDir(), source);
      const removed = await applyProjectFilters(dir, {
        file: 'project.toml',
        schemaVersion: '0.1',
        exclude: ['*.log', 'tmp/', '/docs'],
        buildpacks: [],
        env: [],
      });
      expect(removed).to.equal(4);
      expect(await tree(dir)).to.deep.equal(['package.json', 'project.toml', 'src/', 'src/index.js', 'src/lib/', 'src/lib/util.js']);
    });

    it('include keeps only the matching paths (and the directories that lead to them)', async () => {
      const dir = await writeTree(await tempDir(), source);
      await applyProjectFilters(dir, {
        file: 'project.toml',
        schemaVersion: '0.1',
        include: ['src/lib/', 'package.json'],
        buildpacks: [],
        env: [],
      });
      expect(await tree(dir)).to.deep.equal(['package.json', 'src/', 'src/lib/', 'src/lib/util.js']);
    });

    it('removes a symlink that is excluded, never what it points to', async () => {
      const outside = await writeTree(await tempDir(), { 'keep.txt': 'mine' });
      const dir = await writeTree(await tempDir(), { 'a.txt': 'x' });
      const { symlink } = await import('node:fs/promises');
      await symlink(outside, path.join(dir, 'link'));
      await applyProjectFilters(dir, { file: 'project.toml', schemaVersion: '0.1', exclude: ['link'], buildpacks: [], env: [] });
      expect(await tree(dir)).to.deep.equal(['a.txt']);
      expect(await tree(outside)).to.deep.equal(['keep.txt']);
      await rm(outside, { recursive: true });
    });
  });
});
