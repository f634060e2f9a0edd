import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { list } from 'tar';
import { UserError } from '../shared/errors.js';
import { writeLayer } from '../slugbuilder/image/layer.js';
import { makeApp } from './helpers/image-fixtures.js';

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

describe('image layer (writeLayer)', () => {
  let dir: string;
  let app: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'slugkit-layer-test-'));
    app = path.join(dir, 'app');
    await makeApp(app);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes app/ entries owned by the app user, and digests that match the bytes', async () => {
    const mtime = new Date(Date.UTC(2020, 0, 2, 3, 4, 5));
    await mkdir(path.join(dir, 'out'));
    const result = await writeLayer(app, { uid: 1234, gid: 2345, mtime, outFile: path.join(dir, 'out', 'layer.tar.gz') });
    const gz = await readFile(result.path);
    expect(result.size).to.equal(gz.length);
    expect(result.digest).to.equal(sha(gz));
    expect(result.diffId).to.equal(sha(gunzipSync(gz)));

    const entries: Array<{ path: string; uid?: number; gid?: number; mtime?: Date; mode?: number }> = [];
    await list({
      file: result.path,
      onReadEntry: (e) => entries.push({ path: e.path, uid: e.uid, gid: e.gid, mtime: e.mtime, mode: e.mode }),
    });
    expect(entries.map((e) => e.path)).to.deep.equal([
      'app/',
      'app/.profile.d/',
      'app/.release',
      'app/Procfile',
      'app/bin-run.sh',
      'app/public/',
      'app/public/index.html',
    ]);
    for (const e of entries) {
      expect(e.uid, e.path).to.equal(1234);
      expect(e.gid, e.path).to.equal(2345);
      expect(e.mtime?.getTime(), e.path).to.equal(mtime.getTime());
    }
    expect(entries.find((e) => e.path === 'app/bin-run.sh')?.mode).to.equal(0o755);
    // Only the layer itself is left in the target dir: no temp files.
    expect(await readdir(path.join(dir, 'out'))).to.deep.equal(['layer.tar.gz']);
  });

  it('makes the app group-writable when group 0 owns it, so an arbitrary UID in group 0 can write (OpenShift)', async () => {
    const result = await writeLayer(app, { uid: 1500, gid: 0, mtime: new Date(0), outFile: path.join(dir, 'group0.tar.gz') });
    const modes: Record<string, number | undefined> = {};
    await list({ file: result.path, onReadEntry: (e) => (modes[e.path] = e.mode) });
    expect(modes['app/']).to.equal(0o775);
    expect(modes['app/public/']).to.equal(0o775);
    expect(modes['app/Procfile']).to.equal(0o664);
    expect(modes['app/bin-run.sh']).to.equal(0o775);
  });

  it('is byte-identical for the same tree, owner and mtime', async () => {
    const opts = { uid: 1000, gid: 1000, mtime: new Date(Date.UTC(1980, 0, 1, 0, 0, 1)) };
    const a = await writeLayer(app, { ...opts, outFile: path.join(dir, 'a.tar.gz') });
    const b = await writeLayer(app, { ...opts, outFile: path.join(dir, 'b.tar.gz') });
    expect(a.digest).to.equal(b.digest);
    expect(a.diffId).to.equal(b.diffId);
    const c = await writeLayer(app, { ...opts, uid: 1001, outFile: path.join(dir, 'c.tar.gz') });
    expect(c.diffId).to.not.equal(a.diffId);
  });

  it('refuses an id that tar cannot hold, leaving no file', async () => {
    const out = path.join(dir, 'bad', 'layer.tar.gz');
    const err = await writeLayer(app, { uid: -1, gid: 0, mtime: new Date(0), outFile: out }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(UserError);
    expect((err as Error).message).to.equal('app uid -1 is not a valid id (0 to 2097151)');
    expect(await readdir(dir)).to.not.include('bad');
  });

  it('fails with one line when the app dir is missing, leaving no partial layer', async () => {
    const out = path.join(dir, 'missing.tar.gz');
    const err = await writeLayer(path.join(dir, 'nope'), { uid: 0, gid: 0, mtime: new Date(0), outFile: out }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(UserError);
    expect((err as Error).message).to.match(/^writing the image layer failed: ENOENT/);
    expect((await readdir(dir)).filter((n) => n.startsWith('missing'))).to.deep.equal([]);
  });
});
