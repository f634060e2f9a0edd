/**
 * `--max-files` and `--max-source-size` hold for a directory `--source` as
 * they do for a tarball: checked before anything is copied, one line naming
 * the limit and the flag that raises it, exit 1, no slug.
 */

import { access } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, tempDir } from './helpers/cli.js';

describe('source limits for a directory --source', function () {
  this.timeout(120_000);
  let buildpack: string;
  before(async () => {
    buildpack = await makeBuildpack({ detect: 'echo Limits', compile: 'echo compiled', release: "echo '--- {}'" });
  });
  after(removeTempDirs);

  async function build(source: string, flags: string[]) {
    const dir = await tempDir();
    const out = path.join(dir, 'slug.tgz');
    const r = await runBuilder(
      ['--source', source, '--buildpack', buildpack, '--cache-dir', path.join(dir, 'cache'), '-o', out, ...flags],
      {
        env: { ...process.env, TMPDIR: dir, PUT_URL: '', TAR_URL: '', BUILDPACK_URL: '' },
      },
    );
    const written = await access(out).then(
      () => true,
      () => false,
    );
    return { ...r, written, errors: r.stderr.split('\n').filter((l) => l.startsWith(' !     ')) };
  }

  it('refuses more entries than --max-files, and builds within it; .git is not counted', async () => {
    const files: Record<string, string> = { Procfile: 'web: true\n' };
    for (let i = 0; i < 29; i++) files[`lib/f${i}.txt`] = `${i}\n`;
    for (let i = 0; i < 50; i++) files[`.git/objects/o${i}`] = 'x\n';
    const app = await makeApp(files);

    const over = await build(app, ['--max-files', '20']);
    expect(over.exitCode, over.stderr).to.equal(1);
    expect(over.errors).to.deep.equal([` !     source ${app} has more than 20 entries: remove files or raise --max-files`]);
    expect(over.written).to.equal(false);

    // Procfile, lib/ and 29 files: 31 entries.
    const within = await build(app, ['--max-files', '31']);
    expect(within.exitCode, within.stderr).to.equal(0);
    expect(within.written).to.equal(true);
  });

  it('refuses more bytes than --max-source-size, and builds within it', async () => {
    const app = await makeApp({ Procfile: 'web: true\n', 'big.bin': 'x'.repeat(300_000) });

    const over = await build(app, ['--max-source-size', '100K']);
    expect(over.exitCode, over.stderr).to.equal(1);
    expect(over.errors).to.deep.equal([` !     source ${app} holds more than 100.0K: make it smaller or raise --max-source-size`]);
    expect(over.written).to.equal(false);

    const within = await build(app, ['--max-source-size', '400K']);
    expect(within.exitCode, within.stderr).to.equal(0);
    expect(within.written).to.equal(true);
  });
});
