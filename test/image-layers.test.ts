/**
 * The app image in several layers (slugbuilder/image/app-layers.ts) through
 * the real CLI: a node-style app pushed twice to a real registry behind a
 * counting proxy, a CNB-style slug given with --slug, and the rule's edges
 * (empty and symlinked trees). Images are read back with skopeo and umoci,
 * and run with docker where a daemon answers.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { list } from 'tar';
import { planAppLayers } from '../slugbuilder/image/app-layers.js';
import { BUILDER, makeBuildpack, runBuilder, tarOf, writeTree } from './helpers/cli.js';
import {
  answerOfFixtureImage,
  dockerAvailable,
  execFileP,
  makeRunImages,
  type RunImages,
  requireDocker,
  requireTools,
  skopeoInspect,
} from './helpers/image-fixtures.js';
import {
  completedBlobUploads,
  type RunningProxy,
  type RunningRegistry,
  startProxy,
  startRegistry,
  uploadedBytes,
} from './helpers/registry.js';
import { hasCommand } from './helpers/tools.js';

const noise = (n: number) => randomBytes(n).toString('base64');

interface Summary {
  image: {
    digest: string;
    layer: { digest: string; size: number };
    layers: Array<{ path: string; digest: string; diffId: string; size: number }>;
    launcher: { digest: string };
  };
  layer?: { digest: string };
}

async function inspectLayers(ref: string): Promise<{ layers: string[]; labels: Record<string, string> }> {
  const inspected = await skopeoInspect(ref);
  return { layers: inspected.Layers as string[], labels: inspected.Labels as Record<string, string> };
}

/** umoci unpack of a layout tag; rootless when not root (owners are then not kept). */
async function unpack(layout: string, tag: string, bundle: string): Promise<string> {
  const rootless = process.getuid?.() !== 0;
  await execFileP('umoci', ['unpack', ...(rootless ? ['--rootless'] : []), '--image', `${layout}:${tag}`, bundle]);
  return path.join(bundle, 'rootfs');
}

describe('image layers split by rule', () => {
  let root: string;
  let run: RunImages;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'slugkit-layers-test-'));
    run = await makeRunImages(root);
    env = { ...process.env, SLUGBUILDER_CACHE_DIR: path.join(root, 'cache'), SOURCE_DATE_EPOCH: '' };
  });
  after(() => rm(root, { recursive: true, force: true }));

  describe('a node app pushed twice to a registry', () => {
    let registry: RunningRegistry | undefined;
    let proxy: RunningProxy | undefined;
    let src: string;
    let buildpack: string;
    let first: Summary;
    let second: Summary;

    const build = async (tag: string, summary: string) => {
      const res = await runBuilder(
        [
          '--source',
          src,
          '--buildpack',
          buildpack,
          '--cache-dir',
          path.join(root, 'app-cache'),
          '--run-image',
          `docker://${proxy!.host}/runner:24`,
          '--image',
          `docker://${proxy!.host}/nodeapp:${tag}`,
          '--summary',
          summary,
        ],
        { env },
      );
      expect(res.exitCode, res.stderr).to.equal(0);
      return { stderr: res.stderr, summary: JSON.parse(await readFile(summary, 'utf8')) as Summary };
    };

    before(async function () {
      requireTools(this, 'docker-registry', 'skopeo');
      src = path.join(root, 'node-src');
      const modules: Record<string, string> = {};
      for (let i = 0; i < 20; i++) modules[`node_modules/pkg${i}/index.js`] = `module.exports = ${JSON.stringify(noise(20_000))};\n`;
      await writeTree(src, {
        Procfile: 'web: httpd -f -p ${BIND:-0.0.0.0}:${PORT:-5000} -h /app/public\n',
        'public/index.html': 'version one\n',
        'package.json': '{"name":"nodeapp","version":"1.0.0"}\n',
        '.heroku/node/bin/node': noise(50_000),
        'vendor/other.txt': 'not a bundle: stays with the app\n',
        ...modules,
      });
      buildpack = await makeBuildpack({ detect: 'echo node', compile: 'true', release: 'echo "--- {}"' });
      registry = await startRegistry();
      await execFileP('skopeo', ['copy', '--dest-tls-verify=false', `oci:${run.layout}:24`, `docker://${registry.host}/runner:24`]);
      await execFileP('skopeo', ['copy', '--dest-tls-verify=false', `oci:${run.layout}:24.1`, `docker://${registry.host}/runner:24.1`]);
      proxy = await startProxy(registry.host);

      first = (await build('1', path.join(root, 'first.json'))).summary;
      proxy.requests.length = 0;
      await writeFile(path.join(src, 'public/index.html'), 'version two\n');
      second = (await build('2', path.join(root, 'second.json'))).summary;
    });
    after(async () => {
      await proxy?.stop();
      await registry?.stop();
    });

    it('gives the dependency trees their own layers, then the rest of the app', () => {
      expect(first.image.layers.map((l) => l.path)).to.deep.equal(['/app/.heroku/node', '/app/node_modules', '/app']);
      expect(first.image.layer.digest).to.equal(first.image.layers[2].digest);
    });

    it('pushes only the changed app layer and a config the second time; the dependency layers keep their digests', async () => {
      expect(second.image.layers.slice(0, 2)).to.deep.equal(first.image.layers.slice(0, 2));
      expect(second.image.layers[2].digest).to.not.equal(first.image.layers[2].digest);
      const uploads = completedBlobUploads(proxy!.requests);
      expect(uploads).to.have.length(2);
      expect(uploads[0].url).to.include(`digest=${encodeURIComponent(second.image.layer.digest)}`);
      // What the registry received: the small app layer and the config, not node_modules again.
      const received = uploadedBytes(proxy!.requests);
      expect(received).to.be.at.least(second.image.layer.size);
      expect(received).to.be.below(second.image.layer.size + 8192);
      expect(received).to.be.below(first.image.layers[1].size / 10);

      const { layers, labels } = await inspectLayers(`docker://${registry!.host}/nodeapp:2`);
      expect(layers).to.deep.equal([run.v24.layerDigests[0], second.image.launcher.digest, ...second.image.layers.map((l) => l.digest)]);
      expect(JSON.parse(labels['io.slugkit.layers'])).to.deep.equal(second.image.layers.map((l) => ({ path: l.path, diffID: l.diffId })));
    });

    it('is read by umoci with every file where it was', async function () {
      requireTools(this, 'umoci');
      const layout = path.join(root, 'node-layout');
      await execFileP('skopeo', ['copy', '--src-tls-verify=false', `docker://${registry!.host}/nodeapp:2`, `oci:${layout}:2`]);
      const rootfs = await unpack(layout, '2', path.join(root, 'node-bundle'));
      expect(await readFile(path.join(rootfs, 'app/public/index.html'), 'utf8')).to.equal('version two\n');
      expect(await readFile(path.join(rootfs, 'app/node_modules/pkg7/index.js'), 'utf8')).to.match(/^module\.exports = /);
      expect((await readFile(path.join(rootfs, 'app/.heroku/node/bin/node'))).length).to.be.greaterThan(60_000);
      expect(await readFile(path.join(rootfs, 'app/vendor/other.txt'), 'utf8')).to.equal('not a bundle: stays with the app\n');
    });

    it('rebase swaps only the run image and keeps every app layer', async () => {
      const res = await runBuilder(
        [
          'rebase',
          `docker://${registry!.host}/nodeapp:2`,
          '--run-image',
          `docker://${registry!.host}/runner:24.1`,
          '--image',
          `docker://${registry!.host}/nodeapp:2-rebased`,
        ],
        { env },
      );
      expect(res.exitCode, res.stderr).to.equal(0);
      // The launcher layer moves with the app layers.
      expect(res.stderr).to.include('1 run image layers, 4 app layer(s)');
      const { layers, labels } = await inspectLayers(`docker://${registry!.host}/nodeapp:2-rebased`);
      expect(layers).to.deep.equal([...run.v241.layerDigests, second.image.launcher.digest, ...second.image.layers.map((l) => l.digest)]);
      expect(JSON.parse(labels['io.slugkit.layers']).map((l: { path: string }) => l.path)).to.deep.equal([
        '/app/.heroku/node',
        '/app/node_modules',
        '/app',
      ]);
      expect(labels['io.slugkit.run-image.top-layer']).to.equal(run.v241.diffIds[1]);
    });

    it('docker pulls and runs the second image', async function () {
      requireDocker(this, await dockerAvailable());
      if (!hasCommand('busybox')) requireTools(this, 'busybox');
      const ref = `${registry!.host}/nodeapp:2`;
      await execFileP('docker', ['pull', ref]);
      expect(await answerOfFixtureImage(ref)).to.deep.equal({ status: 200, body: 'version two\n' });
    });
  });

  describe('a CNB-style slug given with --slug', () => {
    let appDir: string;

    const makeSlug = async (name: string): Promise<string> => {
      const file = path.join(root, name);
      await writeFile(file, await tarOf(appDir, true));
      return file;
    };

    before(async () => {
      appDir = path.join(root, 'cnb-app');
      const launch = '[types]\nlaunch = true\n';
      await writeTree(appDir, {
        Procfile: 'web: sh app.sh\n',
        '.release': '---\ndefault_process_types:\n  worker: sh worker.sh\n',
        'app.sh': 'echo one\n',
        '.layers/config/metadata.toml': [
          '[[buildpacks]]\nid = "example/web"\nversion = "1.0.0"\napi = "0.10"\n',
          '[[buildpacks]]\nid = "example/base"\nversion = "2.0.0"\napi = "0.9"\n',
          '[[labels]]\nkey = "org.example.team"\nvalue = "web"\n',
          '[[labels]]\nkey = "io.slugkit.version"\nvalue = "forged"\n',
        ].join('\n'),
        '.layers/example_web/launch.toml': '[[processes]]\ntype = "web"\ncommand = ["sh", "app.sh"]\n',
        '.layers/example_web/deps.toml': launch,
        '.layers/example_web/deps/lib/dep.txt': noise(5000),
        '.layers/example_web/empty.toml': launch,
        '.layers/example_base/runtime.toml': launch + '[metadata]\nversion = "2"\n',
        '.layers/example_base/runtime/bin/tool': { content: '#!/bin/sh\necho tool\n', mode: 0o755 },
        '.layers/example_base/notlaunch.toml': '[types]\ncache = true\n',
        '.layers/example_base/notlaunch/kept.txt': 'stays with the app\n',
        '.layers/unlisted_bp/zz.toml': launch,
        '.layers/unlisted_bp/zz/file': 'z\n',
      });
      await mkdir(path.join(appDir, '.layers/example_web/empty'));
    });

    it('makes one layer per launch layer in buildpack order, labels from metadata.toml, stable digests across a code change', async function () {
      requireTools(this, 'skopeo', 'umoci');
      const layout = path.join(root, 'cnb-layout');
      const build = async (slug: string, tag: string) => {
        const summaryFile = path.join(root, `cnb-${tag}.json`);
        const res = await runBuilder(
          ['--slug', slug, '--run-image', `oci:${run.layout}:24`, '--image', `oci:${layout}:${tag}`, '--summary', summaryFile],
          { env },
        );
        expect(res.exitCode, res.stderr).to.equal(0);
        return {
          stderr: res.stderr,
          summary: JSON.parse(await readFile(summaryFile, 'utf8')) as Summary & {
            process_types: Record<string, string>;
            buildpacks: unknown[];
          },
        };
      };
      const one = await build(await makeSlug('cnb-1.tgz'), '1');
      expect(one.summary.image.layers.map((l) => l.path)).to.deep.equal([
        '/app/.layers/example_web/deps',
        '/app/.layers/example_base/runtime',
        '/app/.layers/unlisted_bp/zz',
        '/app',
      ]);
      expect(one.summary.process_types).to.deep.equal({ worker: 'sh worker.sh', web: 'sh app.sh' });
      expect(one.summary.buildpacks).to.deep.equal([]);
      expect(one.stderr).to.include('label io.slugkit.version is left out');

      const { layers, labels } = await inspectLayers(`oci:${layout}:1`);
      expect(layers).to.deep.equal([
        run.v24.layerDigests[0],
        one.summary.image.launcher.digest,
        ...one.summary.image.layers.map((l) => l.digest),
      ]);
      expect(labels['org.example.team']).to.equal('web');
      expect(labels['io.slugkit.version']).to.not.equal('forged');
      expect(labels['io.slugkit.process-types']).to.equal(JSON.stringify({ web: 'sh app.sh', worker: 'sh worker.sh' }));

      await writeFile(path.join(appDir, 'app.sh'), 'echo two\n');
      const two = await build(await makeSlug('cnb-2.tgz'), '2');
      expect(two.summary.image.layers.slice(0, 3)).to.deep.equal(one.summary.image.layers.slice(0, 3));
      expect(two.summary.image.layer.digest).to.not.equal(one.summary.image.layer.digest);
      expect((await inspectLayers(`oci:${layout}:2`)).layers.slice(0, 4)).to.deep.equal(layers.slice(0, 4));

      const rootfs = await unpack(layout, '2', path.join(root, 'cnb-bundle'));
      expect(await readFile(path.join(rootfs, 'app/app.sh'), 'utf8')).to.equal('echo two\n');
      expect(await readFile(path.join(rootfs, 'app/.layers/example_base/runtime/bin/tool'), 'utf8')).to.equal('#!/bin/sh\necho tool\n');
      expect(await readFile(path.join(rootfs, 'app/.layers/example_base/runtime.toml'), 'utf8')).to.include('version = "2"');
      expect(await readFile(path.join(rootfs, 'app/.layers/example_base/notlaunch/kept.txt'), 'utf8')).to.equal('stays with the app\n');
      expect(await readFile(path.join(rootfs, 'app/.layers/config/metadata.toml'), 'utf8')).to.include('example/web');
    });

    it('--layer stays the whole app in one layer', async () => {
      const layerFile = path.join(root, 'cnb-whole.tar.gz');
      const res = await runBuilder(['--slug', await makeSlug('cnb-layer.tgz'), '--layer', layerFile], { env });
      expect(res.exitCode, res.stderr).to.equal(0);
      const entries: string[] = [];
      await list({ file: layerFile, onReadEntry: (e) => entries.push(e.path) });
      expect(entries).to.include.members([
        'app/app.sh',
        'app/.layers/example_web/deps/lib/dep.txt',
        'app/.layers/example_base/runtime/bin/tool',
        'app/.layers/example_web/empty/',
      ]);
    });
  });

  describe('--slug usage', () => {
    it('refuses flags that build, a missing target, and a bad slug, in one line', async () => {
      const slug = path.join(root, 'plain.tgz');
      const app = await writeTree(path.join(root, 'plain-app'), { Procfile: 'web: true\n' });
      await writeFile(slug, await tarOf(app, true));
      const usage: Array<[string[], string]> = [
        [['--source', app], '--slug FILE builds nothing: --source does not apply (see slugbuilder --help)'],
        [['--buildpack', app], '--slug FILE builds nothing: --buildpack does not apply (see slugbuilder --help)'],
        [['-e', 'A=1', '--layer', 'l.tgz'], '--slug FILE builds nothing: --env does not apply (see slugbuilder --help)'],
        [[], '--slug FILE needs --image REF (with --run-image) or --layer FILE: the slug is already built'],
      ];
      for (const [args, message] of usage) {
        const res = await runBuilder(['--slug', slug, ...args], { env, cwd: root });
        expect(res.exitCode, args.join(' ')).to.equal(2);
        expect(res.stderr, args.join(' ')).to.equal(` !     ${message}\n`);
      }
      // A source redirected from a file would be ignored: refused too.
      const redirect = '"$0" -- "$1" --slug "$2" --layer "$3" < "$2"';
      const fromFile = await execa('sh', ['-c', redirect, process.execPath, BUILDER, slug, path.join(root, 'never.tgz')], {
        env,
        reject: false,
      });
      expect(fromFile.exitCode).to.equal(2);
      expect(fromFile.stderr).to.equal(' !     --slug FILE builds nothing: a source on stdin does not apply (see slugbuilder --help)');

      const missing = await runBuilder(['--slug', path.join(root, 'nope.tgz'), '--layer', path.join(root, 'never.tgz')], { env });
      expect(missing.exitCode).to.equal(1);
      expect(missing.stderr).to.equal(
        ` !     --slug ${path.join(root, 'nope.tgz')} does not exist: give the path of a slug (tar.gz) slugbuilder wrote\n`,
      );
      const notTar = path.join(root, 'not-a-slug.tgz');
      await writeFile(notTar, 'hello, not a tarball\n');
      const bad = await runBuilder(['--slug', notTar, '--layer', path.join(root, 'never.tgz')], { env });
      expect(bad.exitCode).to.equal(1);
      expect(bad.stderr).to.include(` !     slug ${notTar} is not a tar or tar.gz archive\n`);
      expect(bad.stderr.split('\n').filter((l) => l.startsWith(' !'))).to.have.length(1);
      expect(await readFile(path.join(root, 'never.tgz')).catch(() => 'absent')).to.equal('absent');
    });
  });

  describe('the rule at its edges', () => {
    it('leaves empty and symlinked trees with the app, and takes only top-level ones', async () => {
      const app = path.join(root, 'edges');
      await writeTree(app, {
        'vendor/bundle/ruby/3.3/gems/x.rb': 'x\n',
        '.apt/usr/bin/tool': 'tool\n',
        'lib/node_modules/nested.js': 'not top level\n',
        'real-python/lib/site.py': 'py\n',
        '.heroku/python-version': '3.12\n',
      });
      await mkdir(path.join(app, 'node_modules'));
      await symlink('real-python', path.join(app, '.heroku/python'));
      expect((await planAppLayers(app)).map((p) => p.tree)).to.deep.equal(['.apt', 'vendor/bundle', '']);

      await writeFile(path.join(app, 'node_modules/a.js'), 'a\n');
      await rm(path.join(app, '.heroku'), { recursive: true });
      await symlink('real-python', path.join(app, '.heroku'));
      expect((await planAppLayers(app)).map((p) => p.tree)).to.deep.equal(['.apt', 'vendor/bundle', 'node_modules', '']);
    });
  });
});
