/**
 * Classic and Cloud Native Buildpacks in one chain, through the real
 * slugbuilder CLI: the app is built in place in a temp `--app-dir` (never
 * /app: CI runs tests as root), and what a user sees is the slug's files,
 * its .release and .layers/config/metadata.toml, the exit code and the one
 * ` !     ` line of a failure.
 */
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { x as untar } from 'tar';
import { parse as parseYaml } from 'yaml';
import { parse as parseTomlText } from 'smol-toml';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, tarOf, tempDir, type CliResult, type FileSpec } from './helpers/cli.js';
import { detectWithPlan, writeCnb, writeComposite, type CnbSpec } from './helpers/cnb.js';

interface Built {
  res: CliResult;
  /** The slug unpacked. */
  slug: string;
  appDir: string;
  cacheDir: string;
}

async function cnb(spec: CnbSpec): Promise<string> {
  return writeCnb(path.join(await tempDir('slugkit-cnb-'), spec.id.replace(/\//g, '_')), spec);
}

async function build(files: Record<string, FileSpec>, args: string[], opts: { cacheDir?: string; appDir?: string } = {}): Promise<Built> {
  const app = await makeApp(files);
  const cacheDir = opts.cacheDir ?? path.join(await tempDir(), 'cache');
  const appDir = opts.appDir ?? path.join(await tempDir(), 'app');
  const out = path.join(await tempDir(), 'slug.tgz');
  const res = await runBuilder(['--app-dir', appDir, '--cache-dir', cacheDir, '-o', out, ...args], { input: await tarOf(app) });
  const slug = await tempDir('slugkit-slug-');
  if (res.exitCode === 0) await untar({ file: out, cwd: slug });
  return { res, slug, appDir, cacheDir };
}

function oneErrorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith(' !     '));
  expect(lines, stderr).to.have.length(1);
  return lines[0];
}

async function metadata(slug: string): Promise<Record<string, unknown>> {
  return parseTomlText(await readFile(path.join(slug, '.layers/config/metadata.toml'), 'utf8')) as Record<string, unknown>;
}

async function release(slug: string): Promise<{ default_process_types?: Record<string, string> }> {
  return parseYaml(await readFile(path.join(slug, '.release'), 'utf8')) as { default_process_types?: Record<string, string> };
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

describe('classic and CNB buildpacks in one chain (slugbuilder CLI)', function () {
  this.timeout(120_000);
  after(removeTempDirs);

  describe('mixed chains', () => {
    it('classic then CNB: the CNB sees the classic buildpack’s export', async () => {
      const classic = await makeBuildpack({ detect: 'echo First', compile: 'echo "export FROM_CLASSIC=hello-from-classic" > "$(dirname "$0")/../export"' }, 'first');
      const bp = await cnb({ id: 'test/second', api: '0.10', build: 'echo "$FROM_CLASSIC" > seen-by-cnb' });
      const b = await build({ 'index.txt': 'x' }, ['--buildpack', classic, '--buildpack', bp]);
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect(await readFile(path.join(b.slug, 'seen-by-cnb'), 'utf8')).to.equal('hello-from-classic\n');
    });

    it('CNB then classic: the classic buildpack gets PATH from the CNB’s build layer', async () => {
      const bp = await cnb({
        id: 'test/tools',
        api: '0.9',
        build: [
          'mkdir -p "$1/tools/bin"',
          'printf "#!/bin/sh\\necho tool-ran\\n" > "$1/tools/bin/mytool"; chmod +x "$1/tools/bin/mytool"',
          'printf "[types]\\nbuild = true\\n" > "$1/tools.toml"',
        ].join('\n'),
      });
      const classic = await makeBuildpack({ compile: 'mytool > "$1/tool-output"' }, 'user');
      const b = await build({ 'index.txt': 'x' }, ['--buildpack', bp, '--buildpack', classic]);
      expect(b.res.exitCode, b.res.stderr).to.equal(0);
      expect(await readFile(path.join(b.slug, 'tool-output'), 'utf8')).to.equal('tool-ran\n');
      // A build-only layer is not in the slug.
      expect(await exists(path.join(b.slug, '.layers/test_tools/tools'))).to.equal(false);
    });
  });
});
