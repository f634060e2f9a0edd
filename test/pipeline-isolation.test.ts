/**
 * One app against another in the git-push pipeline (issue 19, items 11 and
 * 12), the way it was found: two apps in one store, and app beta's source
 * ships links into alpha's store and an npm script (run by the bundled
 * Node.js buildpack) that reads alpha's config and writes every file under
 * alpha. The hook builds beta in a sandbox that holds only beta's cache,
 * config and scratch dir, so after beta's push alpha's store and cache are
 * byte-identical and no alpha secret reaches beta's output. Its release phase
 * is sandboxed the same way. With bwrap unable to run, the push is refused
 * in one line unless slugkit.sandbox is off.
 */

import { chmod, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { type Clone, Pipeline, treeHashes } from './helpers/git-push.js';
import { hasCommand, requireTools, skipOrFail } from './helpers/tools.js';

const SECRET = 'alpha-secret-9f8e7d6c5b4a';

describe('git-push pipeline: one app cannot touch another', function () {
  this.timeout(120_000);
  let p: Pipeline;
  let alpha: Clone;
  let beta: Clone;

  before(function () {
    requireTools(this, 'git', 'flock');
    if (!hasCommand('bwrap')) skipOrFail(this, 'needs bwrap (apt-get install bubblewrap)');
  });

  beforeEach(async () => {
    p = await Pipeline.create();
    // The bundled buildpacks, as in production: beta's npm script is the app's code the Node.js buildpack runs.
    delete p.env.BUILDPACK_URL;
    await p.repo('alpha');
    await p.repo('beta');
    alpha = await p.clone('alpha', 'alpha');
    beta = await p.clone('beta', 'beta');
    expect((await p.slugkitApp(['config:set', 'alpha', `SECRET_KEY=${SECRET}`])).exitCode).to.equal(0);
    await alpha.commit(
      { 'package.json': '{"name":"alpha","version":"1.0.0"}\n', 'server.js': 'console.log("alpha")\n', Procfile: 'web: node server.js\n' },
      'alpha',
    );
    const pushed = await p.push(alpha);
    expect(pushed.exitCode, pushed.all).to.equal(0);
  });

  afterEach(async () => {
    await p.close();
  });

  it("beta's links and build scripts reach nothing of alpha: alpha's store and cache stay byte-identical, its secret never shows", async () => {
    const alphaDir = p.appDir('alpha');
    const alphaCache = join(p.work, 'cache', 'apps', 'alpha');
    const before = { store: await treeHashes(alphaDir), cache: await treeHashes(alphaCache) };
    expect(Object.keys(before.store)).to.include.members(['current', 'releases/v1/slug.tgz', 'config/SECRET_KEY']);

    // Relative links climb out of wherever the build unpacks the source; absolute ones name alpha's files.
    const up = '../'.repeat(24);
    const attack = [
      '#!/bin/sh',
      `echo "pre-compile: reading alpha's config"`,
      `cat '${alphaDir}'/config/* ${up}${alphaDir.slice(1)}/config/* 2>&1 | sed 's/^/read: /'`,
      `find '${alphaDir}' '${alphaCache}' ${up}${alphaDir.slice(1)} -type f 2>/dev/null | while read -r f; do echo pwned > "$f" && echo "wrote $f"; done`,
      `rm -rf '${alphaDir}/releases' 2>/dev/null; ln -sfn /nowhere '${alphaDir}/current' 2>/dev/null`,
      'exit 0',
      '',
    ].join('\n');
    await beta.commit(
      {
        'package.json': JSON.stringify({ name: 'beta', version: '1.0.0', scripts: { 'heroku-prebuild': 'sh bin/pre-compile' } }),
        'server.js': 'console.log("beta")\n',
        Procfile: 'web: node server.js\n',
        'bin/pre-compile': attack,
      },
      'beta',
    );
    await symlink(`${up}${alphaDir.slice(1)}/current`, join(beta.dir, '.release'));
    await symlink(join(alphaDir, 'config', 'SECRET_KEY'), join(beta.dir, '.slugkit-launch'));
    await beta.git(['add', '-A']);
    await beta.git(['commit', '-qm', 'links into alpha']);

    const result = await p.push(beta);
    // The pre-compile script did run, in the sandbox, and found nothing to read.
    expect(result.all).to.include("pre-compile: reading alpha's config");
    expect(result.all).to.not.include(SECRET);
    expect(result.all).to.not.match(/^remote: wrote /m);
    expect(await treeHashes(alphaDir)).to.deep.equal(before.store);
    expect(await treeHashes(alphaCache)).to.deep.equal(before.cache);
  });

  it("beta's release phase runs like a dyno: it sees its own slug, not the store, nor alpha's secret", async () => {
    const alphaDir = p.appDir('alpha');
    const before = await treeHashes(alphaDir);
    await beta.commit(
      {
        'package.json': '{"name":"beta","version":"1.0.0"}\n',
        'server.js': 'console.log("beta")\n',
        Procfile: `web: node server.js\nrelease: echo "release sees: $(ls '${p.store}' 2>&1 | tr '\\n' ' ')"; cat '${alphaDir}/config/SECRET_KEY' 2>&1; echo pwned > '${alphaDir}/config/SECRET_KEY' 2>&1; true\n`,
      },
      'beta with a release phase',
    );
    const result = await p.push(beta);
    expect(result.exitCode, result.all).to.equal(0);
    // The store's path exists in the sandbox only as the way to beta's own scratch dir.
    expect(result.all).to.match(/^remote: release sees: beta \s*$/m);
    expect(result.all).to.match(/^remote: cat: .*SECRET_KEY: No such file or directory/m);
    expect(result.all).to.not.include(SECRET);
    expect(await treeHashes(alphaDir)).to.deep.equal(before);
  });

  it('with the sandbox on and bwrap unable to run, a push is refused in one line; slugkit.sandbox off builds without it', async () => {
    // A bwrap that fails as it does in an unprivileged container.
    await writeFile(join(p.bin, 'bwrap'), '#!/bin/sh\necho "bwrap: No permissions to creating new namespace" >&2\nexit 1\n');
    await chmod(join(p.bin, 'bwrap'), 0o755);
    await beta.commit(
      { 'package.json': '{"name":"beta","version":"1.0.0"}\n', 'server.js': '\n', Procfile: 'web: node server.js\n' },
      'beta',
    );
    const refused = await p.push(beta);
    expect(refused.exitCode).to.not.equal(0);
    expect(
      refused.all
        .split('\n')
        .filter((l) => l.startsWith('remote:  !'))
        .map((l) => l.trimEnd()),
    ).to.deep.equal([
      "remote:  !     bwrap cannot run here (bwrap: No permissions to creating new namespace): the build sandbox is on; set slugkit.sandbox off to build with the hook user's rights (e.g. in an unprivileged container)",
    ]);
    expect(await p.ref('beta')).to.equal('');

    const off = await p.push(beta, { SLUGKIT_SANDBOX: 'off' });
    expect(off.exitCode, off.all).to.equal(0);
  });
});
