/**
 * The CNB layer env rules on real directories: env file suffixes and
 * delimiters, path directories per phase, buildpack and layer order,
 * process-specific launch env, config vars from the platform dir, and
 * exec.d executables writing TOML to fd 3.
 */

import path from 'node:path';
import { expect } from 'chai';
import { apiAtLeast, applyBuildLayers, applyEnvDir, applyPlatformEnv, launchEnv, launchLayerDirs, runExecD } from '../shared/layer-env.js';
import { removeTempDirs, tempDir, writeTree } from './helpers/cli.js';

const exe = (body: string) => ({ content: `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`, mode: 0o755 });
const BASE = { PATH: '/usr/bin:/bin' };

describe('layer env', () => {
  after(removeTempDirs);

  it('compares Buildpack API versions numerically', () => {
    expect(apiAtLeast('0.10', '0.9')).to.equal(true);
    expect(apiAtLeast('0.9', '0.10')).to.equal(false);
    expect(apiAtLeast('0.12', '0.12')).to.equal(true);
    expect(apiAtLeast('1', '0.12')).to.equal(true);
  });

  it('applies env file suffixes: none and .override set, .default fills only empty, .append/.prepend join with .delim', async () => {
    const dir = await writeTree(await tempDir(), {
      PLAIN: 'plain',
      'SET.override': 'over',
      'KEEP.default': 'ignored',
      'EMPTY.default': 'filled',
      'NEW.default': 'new',
      'LIST.append': 'b',
      'LIST.delim': ',',
      'JOINED.append': 'tail',
      'FRONT.prepend': '/front',
      'FRONT.delim': ':',
      'ODD.suffix': 'nothing',
      'NL.override': 'line\n',
      'SHELL.override': '$HOME `id`',
    });
    const env = await applyEnvDir({ PLAIN: 'old', SET: 'old', KEEP: 'kept', EMPTY: '', LIST: 'a', JOINED: 'head', FRONT: '/usr/bin' }, dir);
    expect(env).to.deep.equal({
      PLAIN: 'plain',
      SET: 'over',
      KEEP: 'kept',
      EMPTY: 'filled',
      NEW: 'new',
      LIST: 'a,b',
      JOINED: 'headtail',
      FRONT: '/front:/usr/bin',
      NL: 'line\n',
      SHELL: '$HOME `id`',
    });
  });

  it('an .append or .prepend to an unset variable is the value alone', async () => {
    const dir = await writeTree(await tempDir(), { 'A.append': 'x', 'A.delim': ':', 'B.prepend': 'y', 'B.delim': ':' });
    expect(await applyEnvDir({}, dir)).to.deep.equal({ A: 'x', B: 'y' });
  });

  it('build layers give bin, lib, include and pkgconfig paths, then env/ and env.build/ (not env.launch/)', async () => {
    const root = await tempDir();
    const layer = path.join(root, 'bp_a', 'tools');
    await writeTree(layer, {
      'bin/tool': exe('true'),
      'lib/libx.so': '',
      'include/x.h': '',
      'pkgconfig/x.pc': '',
      'env/FROM_ENV': 'env',
      'env.build/FROM_BUILD.override': 'build',
      'env.launch/FROM_LAUNCH': 'launch',
    });
    const env = await applyBuildLayers({ ...BASE, CPATH: '/opt/include' }, [layer]);
    expect(env).to.deep.equal({
      PATH: `${layer}/bin:/usr/bin:/bin`,
      LD_LIBRARY_PATH: `${layer}/lib`,
      LIBRARY_PATH: `${layer}/lib`,
      CPATH: `${layer}/include:/opt/include`,
      PKG_CONFIG_PATH: `${layer}/pkgconfig`,
      FROM_ENV: 'env',
      FROM_BUILD: 'build',
    });
  });

  it('at launch: bin and lib only, buildpacks in order, layers alphabetically, env.launch/<process>/ for that process', async () => {
    const root = await tempDir();
    const first = path.join(root, 'ex_first');
    const second = path.join(root, 'ex_second');
    await writeTree(first, {
      'b/bin/x': exe('true'),
      'b/include/x.h': '',
      'b/env/WHO': 'first-b',
      'a/env/WHO': 'first-a',
      'a/env/ORDER.append': 'a',
      'b/env/ORDER.append': 'b',
    });
    await writeTree(second, {
      'z/lib/libz.so': '',
      'z/env/ORDER.append': 'z',
      'z/env.launch/MODE': 'any',
      'z/env.launch/web/MODE': 'web',
      'z/env.launch/web/PORT.default': '5000',
    });
    const dirs = await launchLayerDirs([first, second]);
    expect(dirs).to.deep.equal([`${first}/a`, `${first}/b`, `${second}/z`]);

    const web = await launchEnv({ ...BASE, PORT: '8080' }, dirs, 'web');
    expect(web).to.deep.equal({
      PATH: `${first}/b/bin:/usr/bin:/bin`,
      LD_LIBRARY_PATH: `${second}/z/lib`,
      PORT: '8080',
      WHO: 'first-b',
      ORDER: 'abz',
      MODE: 'web',
    });
    const worker = await launchEnv(BASE, dirs, 'worker');
    expect(worker.MODE).to.equal('any');
    expect(worker).to.not.have.property('PORT');
    expect(worker).to.not.have.property('CPATH');
  });

  it('config vars from <platform>/env: path variables prepended, others set', async () => {
    const platform = await writeTree(await tempDir(), { 'env/PATH': '/cfg/bin', 'env/GREETING': 'hi', 'env/MULTI': 'a\nb' });
    expect(await applyPlatformEnv({ ...BASE, GREETING: 'old' }, platform)).to.deep.equal({
      PATH: '/cfg/bin:/usr/bin:/bin',
      GREETING: 'hi',
      MULTI: 'a\nb',
    });
    expect(await applyPlatformEnv(BASE, path.join(platform, 'absent'))).to.deep.equal(BASE);
  });

  describe('exec.d', () => {
    it('runs exec.d/* then exec.d/<process>/*, each seeing the env so far, and sets what they write to fd 3', async () => {
      const root = await tempDir();
      const app = await tempDir();
      const layer = path.join(root, 'ex_a', 'agent');
      await writeTree(layer, {
        'exec.d/10-first': exe(`printf 'FIRST = "one"\\nSHARED = "general"\\n' >&3`),
        'exec.d/20-second': exe(`printf 'SECOND = "saw %s in %s"\\n' "$FIRST" "$(pwd)" >&3`),
        'exec.d/web/30-web': exe(`printf 'SHARED = "web"\\n' >&3`),
      });
      const env = await runExecD(BASE, [layer], { appDir: app, processType: 'web' });
      expect(env).to.deep.equal({ ...BASE, FIRST: 'one', SECOND: `saw one in ${app}`, SHARED: 'web' });
      const worker = await runExecD(BASE, [layer], { appDir: app, processType: 'worker' });
      expect(worker.SHARED).to.equal('general');
    });

    it('an exec.d that fails or writes bad TOML stops the launch with one line', async () => {
      const app = await tempDir();
      const failing = await writeTree(await tempDir(), { 'exec.d/boom': exe('exit 4') });
      let err = await runExecD(BASE, [failing], { appDir: app }).catch((e: Error) => e);
      expect((err as Error).message).to.equal(`exec.d ${failing}/exec.d/boom failed (exit 4)`);

      const bad = await writeTree(await tempDir(), { 'exec.d/bad': exe(`printf 'OK = "1"\\nBROKEN = \\n' >&3`) });
      err = await runExecD(BASE, [bad], { appDir: app }).catch((e: Error) => e);
      expect((err as Error).message).to.match(new RegExp(`^exec\\.d ${bad}/exec\\.d/bad output: invalid TOML at line 2: `));

      const notString = await writeTree(await tempDir(), { 'exec.d/num': exe(`printf 'N = 3\\n' >&3`) });
      err = await runExecD(BASE, [notString], { appDir: app }).catch((e: Error) => e);
      expect((err as Error).message).to.equal(`exec.d ${notString}/exec.d/num output: N must be a string`);
    });
  });
});
