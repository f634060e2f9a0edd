/**
 * Buildpacks from URLs, against real servers on 127.0.0.1: a git repository
 * made by the test and served over file://, git:// (git daemon) and smart
 * HTTP (git http-backend behind a Node server), ssh:// and git@host:path
 * through a stand-in ssh that runs git-upload-pack locally, and real
 * tarballs from a Node HTTP server.
 */

import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { execa } from 'execa';
import { create as tarCreate } from 'tar';
import { UserError } from '../shared/errors.js';
import { setLogSink } from '../shared/log.js';
import {
  parseBuildpackSpec,
  type ResolvedBuildpack,
  type ResolveOptions,
  resolveBuildpack,
} from '../slugbuilder/buildpacks/fetch/resolve.js';
import { fakeSsh, freePort, type GitDaemon, GitFixture, gitHttpBackend, startGitDaemon } from './helpers/git-server.js';
import { requireBasicAuth, serveFiles, startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { requireTools } from './helpers/tools.js';

/** Everything the fetcher logs, as the user would see it on stderr. */
let logged = '';
function captureLog(): void {
  logged = '';
  setLogSink((text) => (logged += text));
}
function restoreLog(): void {
  setLogSink((text) => process.stderr.write(text));
}

function buildpackFiles(version: string): Record<string, string> {
  return {
    'bin/detect': '#!/bin/sh\necho test\n',
    'bin/compile': `#!/bin/sh\necho "compiling with ${version}"\necho ${version} > "$1/built-by.txt"\n`,
    'bin/release': '#!/bin/sh\necho "--- {}"\n',
    VERSION: `${version}\n`,
  };
}

async function versionOf(bp: ResolvedBuildpack): Promise<string> {
  return (await readFile(path.join(bp.dir, 'VERSION'), 'utf8')).trim();
}

/** The one-line UserError a failing resolve throws. */
async function failure(spec: string, cacheDir: string, offline = false): Promise<UserError> {
  try {
    await fetchBuildpack(spec, { cacheDir, offline });
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(UserError);
    const message = (err as UserError).message;
    expect(message.split('\n'), message).to.have.length(1);
    return err as UserError;
  }
  throw new Error(`resolving ${spec} should have failed`);
}

/** A gzip tarball of `files`, under `top/` when given (GitHub style). */
async function makeTarball(dir: string, files: Record<string, string>, top?: string, gzip = true): Promise<Buffer> {
  const root = await mkdtemp(path.join(dir, 'tarball-'));
  const base = top ? path.join(root, top) : root;
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(base, rel)), { recursive: true });
    await writeFile(path.join(base, rel), content, { mode: rel.startsWith('bin/') ? 0o755 : 0o644 });
  }
  const chunks: Buffer[] = [];
  const stream = tarCreate(
    { cwd: root, gzip, portable: true },
    top
      ? [top]
      : Object.keys(files)
          .map((f) => f.split('/')[0])
          .filter((v, i, a) => a.indexOf(v) === i),
  );
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** Every file under `dir`, as text, to search for leaked secrets. */
async function allText(dir: string): Promise<string> {
  let out = '';
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    out += await readFile(path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name), 'latin1');
  }
  return out;
}

/** Each resolve gets its own new target dir, as each build's workspace does. */
let copies = 0;
const copiesRoot = mkdtemp(path.join(tmpdir(), 'slugkit-bpcopies-'));
async function fetchBuildpack(spec: string, opts: Omit<ResolveOptions, 'into'>): Promise<ResolvedBuildpack> {
  return resolveBuildpack(spec, { ...opts, into: path.join(await copiesRoot, String(++copies), 'bp') });
}

describe('buildpacks from URLs (resolveBuildpack)', () => {
  let root: string;
  let repo: GitFixture;
  let v1: string; // first commit on main: not a branch tip once v2 lands
  let v2: string;

  before(async function () {
    root = await mkdtemp(path.join(tmpdir(), 'slugkit-bpfetch-'));
    requireTools(this, 'git');
    repo = await GitFixture.create(path.join(root, 'srv'), 'bp');
    v1 = await repo.commit(buildpackFiles('v1'), 'v1');
    await repo.tag('v1.0');
    await repo.branch('stable');
    v2 = await repo.commit(buildpackFiles('v2'), 'v2');
    await repo.push();
  });
  after(async () => {
    restoreLog();
    await rm(root, { recursive: true, force: true });
    await rm(await copiesRoot, { recursive: true, force: true });
  });
  beforeEach(captureLog);
  afterEach(restoreLog);

  const freshCache = () => mkdtemp(path.join(root, 'cache-'));

  describe('spec parsing', () => {
    it('tells git from tarball by the URL and keeps credentials out of what is printed', () => {
      const cases: Array<[string, string, string, string, string | undefined]> = [
        [
          'https://github.com/heroku/heroku-buildpack-nodejs',
          'git',
          'https://github.com/heroku/heroku-buildpack-nodejs',
          'heroku-buildpack-nodejs',
          undefined,
        ],
        [
          'https://github.com/heroku/heroku-buildpack-nodejs.git#v200',
          'git',
          'https://github.com/heroku/heroku-buildpack-nodejs.git',
          'heroku-buildpack-nodejs',
          'v200',
        ],
        ['https://user:s3cr3tpass@example.com/x/bp.tgz', 'tarball', 'https://example.com/x/bp.tgz', 'bp', undefined],
        ['http://example.com/bp-1.2.tar.gz?sig=1', 'tarball', 'http://example.com/bp-1.2.tar.gz?sig=…', 'bp-1.2', undefined],
        ['http://example.com/bp.tar', 'tarball', 'http://example.com/bp.tar', 'bp', undefined],
        ['https://tok3nvalue@example.com/repo.git#main', 'git', 'https://example.com/repo.git', 'repo', 'main'],
        ['git://127.0.0.1:9418/bp.git#stable', 'git', 'git://127.0.0.1:9418/bp.git', 'bp', 'stable'],
        ['file:///srv/buildpacks/ruby.git', 'git', 'file:///srv/buildpacks/ruby.git', 'ruby', undefined],
        ['file:///srv/buildpacks/ruby-1.0.tgz', 'tarball', 'file:///srv/buildpacks/ruby-1.0.tgz', 'ruby-1.0', undefined],
        ['/srv/buildpacks/go.tar.gz', 'tarball', '/srv/buildpacks/go.tar.gz', 'go', undefined],
        ['./packs/php.tar', 'tarball', './packs/php.tar', 'php', undefined],
        [
          'https://store.example/bp.tgz?X-Amz-Credential=AKIA1234%2Fx&X-Amz-Signature=abcdef0123456789',
          'tarball',
          'https://store.example/bp.tgz?X-Amz-Credential=…&X-Amz-Signature=…',
          'bp',
          undefined,
        ],
        ['ssh://git@example.com:2222/owner/pack.git#abc', 'git', 'ssh://git@example.com:2222/owner/pack.git', 'pack', 'abc'],
        ['git@example.com:owner/pack.git#v1', 'git', 'git@example.com:owner/pack.git', 'pack', 'v1'],
      ];
      for (const [spec, source, display, name, ref] of cases) {
        const parsed = parseBuildpackSpec(spec);
        expect({ source: parsed.source, display: parsed.display, name: parsed.name, ref: parsed.ref }, spec).to.deep.equal({
          source,
          display,
          name,
          ref,
        });
      }
    });

    it('rejects what is neither a git nor a tarball URL, in one line', async () => {
      const cache = await freshCache();
      expect((await failure('./no-such-dir', cache)).message).to.match(
        /not a local directory, a git URL .*, a tarball URL .* or a registry name \(heroku\/NAME\)/,
      );
      expect((await failure('ftp://example.com/bp.tgz', cache)).message).to.match(/unsupported URL scheme 'ftp:'/);
      expect((await failure('http://127.0.0.1:1/bp.tgz#v1', cache)).message).to.match(/tarball URL cannot take a #ref/);
      expect((await failure('file:///x.git#--upload-pack=evil', cache)).message).to.match(/not a valid git ref/);
      expect((await failure('file:///x.git#', cache)).message).to.match(/empty ref/);
    });
  });

  describe('git over file://', () => {
    const url = () => `file://${repo.bare}`;

    it('checks out the default branch, a branch, an annotated tag and a sha that is not a tip', async () => {
      const cache = await freshCache();
      const main = await fetchBuildpack(url(), { cacheDir: cache });
      expect(await versionOf(main)).to.equal('v2');
      expect(main).to.include({ name: 'bp', url: url(), commit: v2 });
      expect(main.ref).to.equal(undefined);
      expect(await versionOf(await fetchBuildpack(`${url()}#stable`, { cacheDir: cache }))).to.equal('v1');
      const tagged = await fetchBuildpack(`${url()}#v1.0`, { cacheDir: cache });
      expect(await versionOf(tagged)).to.equal('v1');
      expect(tagged).to.include({ ref: 'v1.0', commit: v1 });
      expect(await versionOf(await fetchBuildpack(`${url()}#${v1}`, { cacheDir: cache }))).to.equal('v1');
      // An abbreviated sha is found too (by fetching the history).
      expect(await versionOf(await fetchBuildpack(`${url()}#${v1.slice(0, 10)}`, { cacheDir: cache }))).to.equal('v1');
      expect(logged).to.include(`-----> Fetching buildpack ${url()}#stable`);
      // The checkout carries no .git and keeps the executable bits.
      expect(await exists(path.join(main.dir, '.git'))).to.equal(false);
      await access(path.join(main.dir, 'bin', 'compile'), 1);
    });

    it('a cached sha needs no repository at all the second time', async () => {
      const cache = await freshCache();
      const clone = path.join(root, 'srv', 'moving.git');
      await execa('git', ['clone', '--quiet', '--bare', repo.bare, clone]);
      await fetchBuildpack(`file://${clone}#${v1}`, { cacheDir: cache });
      await rename(clone, `${clone}.gone`);
      captureLog();
      const again = await fetchBuildpack(`file://${clone}#${v1}`, { cacheDir: cache });
      expect(await versionOf(again)).to.equal('v1');
      expect(logged).to.include('-----> Using cached buildpack');
      await rm(`${clone}.gone`, { recursive: true, force: true });
    });

    it('gives each build its own writable copy, so an export never reaches the cache', async () => {
      const cache = await freshCache();
      const first = await fetchBuildpack(`${url()}#${v2}`, { cacheDir: cache });
      await writeFile(path.join(first.dir, 'export'), 'export FROM_FIRST=1\n');
      const second = await fetchBuildpack(`${url()}#${v2}`, { cacheDir: cache });
      expect(second.dir).to.not.equal(first.dir);
      expect(await exists(path.join(second.dir, 'export'))).to.equal(false);
    });
  });

  describe('git over git:// (git daemon)', () => {
    let daemon: GitDaemon;
    let moving: GitFixture;
    before(async () => {
      moving = await GitFixture.create(path.join(root, 'daemon'), 'moving');
      await moving.commit(buildpackFiles('d1'), 'd1');
      await moving.push();
      daemon = await startGitDaemon(path.join(root, 'daemon'));
    });
    after(async () => daemon?.close());

    it('refetches a branch: a pushed commit shows up in the next resolve', async () => {
      const cache = await freshCache();
      const spec = `${daemon.base}/moving.git#main`;
      expect(await versionOf(await fetchBuildpack(spec, { cacheDir: cache }))).to.equal('d1');
      const d2 = await moving.commit(buildpackFiles('d2'), 'd2');
      await moving.push();
      const again = await fetchBuildpack(spec, { cacheDir: cache });
      expect(await versionOf(again)).to.equal('d2');
      expect(again.commit).to.equal(d2);
      // No ref means the default branch, fetched again the same way.
      expect(await versionOf(await fetchBuildpack(`${daemon.base}/moving.git`, { cacheDir: cache }))).to.equal('d2');
    });

    it('resolves a cached sha with the daemon stopped; a cached branch only offline', async () => {
      const cache = await freshCache();
      const own = await startGitDaemon(path.join(root, 'srv'));
      const sha = `${own.base}/bp.git#${v1}`;
      const branch = `${own.base}/bp.git#main`;
      expect(await versionOf(await fetchBuildpack(sha, { cacheDir: cache }))).to.equal('v1');
      expect(await versionOf(await fetchBuildpack(branch, { cacheDir: cache }))).to.equal('v2');
      expect(own.log()).to.match(/Connection from 127\.0\.0\.1/);
      await own.close();

      expect(await versionOf(await fetchBuildpack(sha, { cacheDir: cache }))).to.equal('v1');
      // A branch is always asked for again, so without its server it fails in one line...
      expect((await failure(branch, cache)).message).to.equal(
        `Buildpack ${branch}: cannot reach the host (connection failed); check the URL and that the server is up`,
      );
      // ...unless the build is offline, which takes the cache as it is.
      expect(await versionOf(await fetchBuildpack(branch, { cacheDir: cache, offline: true }))).to.equal('v2');
      const uncached = `${own.base}/bp.git#stable`;
      expect((await failure(uncached, cache, true)).message).to.equal(
        `Buildpack ${uncached} is not in the buildpack cache and the build is offline; run one build with network access first`,
      );
    });

    it('names an unknown ref and a missing repository in one line', async () => {
      const cache = await freshCache();
      expect((await failure(`${daemon.base}/moving.git#no-such-branch`, cache)).message).to.equal(
        `Buildpack ${daemon.base}/moving.git#no-such-branch: ref 'no-such-branch' does not exist in the repository; use an existing branch, tag or full commit sha`,
      );
      expect((await failure(`${daemon.base}/moving.git#${'0'.repeat(40)}`, cache)).message).to.match(/ref '0{40}' does not exist/);
      expect((await failure(`${daemon.base}/nothing-here.git`, cache)).message).to.equal(
        `Buildpack ${daemon.base}/nothing-here.git: not a git repository, or it does not exist; check the URL`,
      );
    });

    it('lets two concurrent builds resolve the same branch', async () => {
      const cache = await freshCache();
      const spec = `${daemon.base}/moving.git#main`;
      const [a, b] = await Promise.all([fetchBuildpack(spec, { cacheDir: cache }), fetchBuildpack(spec, { cacheDir: cache })]);
      expect(await versionOf(a)).to.equal(await versionOf(b));
      expect(a.dir).to.not.equal(b.dir);
      await access(path.join(a.dir, 'bin', 'compile'));
      await access(path.join(b.dir, 'bin', 'compile'));
    });
  });

  describe('git over smart HTTP (git http-backend)', () => {
    let server: TestHttpServer;
    let secured: TestHttpServer;
    before(async () => {
      server = await startHttpServer(gitHttpBackend(path.join(root, 'srv')));
      secured = await startHttpServer(requireBasicAuth('deploy', 'secret', gitHttpBackend(path.join(root, 'srv'))));
    });
    after(async () => {
      await server?.close();
      await secured?.close();
    });

    it('fetches branch, tag and sha; a cached sha makes no request', async () => {
      const cache = await freshCache();
      const url = `${server.origin}/bp.git`;
      expect(await versionOf(await fetchBuildpack(`${url}#stable`, { cacheDir: cache }))).to.equal('v1');
      expect(await versionOf(await fetchBuildpack(`${url}#v1.0`, { cacheDir: cache }))).to.equal('v1');
      expect(await versionOf(await fetchBuildpack(url, { cacheDir: cache }))).to.equal('v2');
      expect(await versionOf(await fetchBuildpack(`${url}#${v1}`, { cacheDir: cache }))).to.equal('v1');
      const seen = server.requests.length;
      expect(seen).to.be.greaterThan(0);
      expect(await versionOf(await fetchBuildpack(`${url}#${v1}`, { cacheDir: cache }))).to.equal('v1');
      expect(server.requests.length).to.equal(seen);
      // A branch, by contrast, asks the server again.
      await fetchBuildpack(`${url}#stable`, { cacheDir: cache });
      expect(server.requests.length).to.be.greaterThan(seen);
    });

    it('uses credentials from the URL and never shows them', async () => {
      const cache = await freshCache();
      const bp = await fetchBuildpack(`http://deploy:secret@127.0.0.1:${secured.port}/bp.git#stable`, { cacheDir: cache });
      expect(await versionOf(bp)).to.equal('v1');
      expect(bp.url).to.equal(`${secured.origin}/bp.git`);
      const unknown = await failure(`http://deploy:secret@127.0.0.1:${secured.port}/bp.git#nope`, cache);
      expect(unknown.message).to.equal(
        `Buildpack ${secured.origin}/bp.git#nope: ref 'nope' does not exist in the repository; use an existing branch, tag or full commit sha`,
      );
      const denied = await failure(`http://deploy:wrongsecret@127.0.0.1:${secured.port}/bp.git`, cache);
      expect(denied.message).to.match(/^Buildpack http:\/\/127\.0\.0\.1:\d+\/bp\.git: access denied;/);
      const missing = await failure(`http://deploy:secret@127.0.0.1:${secured.port}/missing.git`, cache);
      expect(missing.message).to.match(/not a git repository, or it does not exist/);
      const everything = [logged, unknown.message, denied.message, missing.message, bp.url, await allText(cache)].join('\n');
      expect(everything).to.not.include('secret');
    });

    it('reports an unreachable host in one line', async () => {
      const port = await freePort();
      const error = await failure(`http://user:secret@127.0.0.1:${port}/bp.git`, await freshCache());
      expect(error.message).to.equal(
        `Buildpack http://127.0.0.1:${port}/bp.git: cannot reach the host (connection failed); check the URL and that the server is up`,
      );
      expect(logged + error.message).to.not.include('secret');
    });
  });

  describe('git over ssh:// and git@host:path', () => {
    const saved = process.env.GIT_SSH_COMMAND;
    afterEach(() => {
      if (saved === undefined) delete process.env.GIT_SSH_COMMAND;
      else process.env.GIT_SSH_COMMAND = saved;
    });

    it('hands user, host, port and path to ssh and fetches through it', async () => {
      // No sshd here: GIT_SSH_COMMAND points at a script that records what git
      // asked ssh to do and runs that remote command locally.
      const ssh = await fakeSsh(await mkdtemp(path.join(root, 'ssh-')));
      process.env.GIT_SSH_COMMAND = ssh.command;
      const cache = await freshCache();

      const viaUrl = await fetchBuildpack(`ssh://git@buildpacks.example:2222${repo.bare}#stable`, { cacheDir: cache });
      expect(await versionOf(viaUrl)).to.equal('v1');
      expect(viaUrl.url).to.equal(`ssh://git@buildpacks.example:2222${repo.bare}`);
      let args = (await readFile(ssh.argsFile, 'utf8')).split('\n');
      expect(args).to.include.members(['-p', '2222', 'git@buildpacks.example', `git-upload-pack '${repo.bare}'`]);

      await rm(ssh.argsFile);
      const scp = await fetchBuildpack(`deploy@buildpacks.example:${repo.bare}#${v1}`, { cacheDir: cache });
      expect(await versionOf(scp)).to.equal('v1');
      expect(scp.name).to.equal('bp');
      args = (await readFile(ssh.argsFile, 'utf8')).split('\n');
      expect(args).to.include.members(['deploy@buildpacks.example', `git-upload-pack '${repo.bare}'`]);
      expect(args).to.not.include('-p');
    });
  });

  describe('tarballs over HTTP', () => {
    let server: TestHttpServer;
    let served: Record<string, Uint8Array>;
    before(async () => {
      const work = await mkdtemp(path.join(root, 'tarballs-'));
      served = {
        '/bp-1.0.tgz': await makeTarball(work, buildpackFiles('t1'), 'heroku-buildpack-test-1.0'),
        '/flat.tar': await makeTarball(work, buildpackFiles('flat'), undefined, false),
        '/flat.tar.gz': await makeTarball(work, buildpackFiles('flatgz')),
        // What GitHub serves for an archive link: git archive with a prefix and a pax global header.
        '/github-style.tar.gz': (
          await execa('git', ['archive', '--format=tar.gz', '--prefix=heroku-buildpack-bp-abc1234/', 'v1.0'], {
            cwd: repo.work,
            encoding: 'buffer',
          })
        ).stdout,
        '/no-compile.tgz': await makeTarball(work, { 'bin/detect': '#!/bin/sh\n', 'README.md': 'hi\n' }, 'pack'),
        '/not-a-tarball.tgz': Buffer.from('<html>this is a login page</html>\n'),
        '/truncated.tgz': (await makeTarball(work, buildpackFiles('t'), 'x')).subarray(0, 60),
      };
      server = await startHttpServer(requireBasicAuth('deploy', 'secret', serveFiles(served)));
    });
    after(async () => server?.close());
    const url = (p: string, password = 'secret') => `http://deploy:${password}@127.0.0.1:${server.port}${p}`;

    it('downloads with progress, strips the top directory, and never asks twice', async () => {
      const cache = await freshCache();
      const bp = await fetchBuildpack(url('/bp-1.0.tgz'), { cacheDir: cache });
      expect(await versionOf(bp)).to.equal('t1');
      expect(bp).to.include({
        name: 'bp-1.0',
        url: `${server.origin}/bp-1.0.tgz`,
        sha256: createHash('sha256').update(served['/bp-1.0.tgz']).digest('hex'),
      });
      expect(await readdir(bp.dir)).to.have.members(['bin', 'VERSION']);
      expect(logged).to.include(`-----> Fetching buildpack ${server.origin}/bp-1.0.tgz\n`);
      expect(logged).to.match(/^ {7}Downloading \d+B\n/m);
      expect(logged).to.match(/^ {7}Downloaded \d+B\n/m);
      expect(server.count('/bp-1.0.tgz')).to.equal(1);

      captureLog();
      const again = await fetchBuildpack(url('/bp-1.0.tgz'), { cacheDir: cache });
      expect(await versionOf(again)).to.equal('t1');
      expect(again.sha256).to.equal(bp.sha256);
      expect(server.count('/bp-1.0.tgz')).to.equal(1);
      expect(logged).to.include(`-----> Using cached buildpack ${server.origin}/bp-1.0.tgz\n`);
      expect(logged + (await allText(cache))).to.not.include('secret');
    });

    it('takes plain .tar, archives without a top directory, and git-archive (GitHub) tarballs', async () => {
      const cache = await freshCache();
      expect(await versionOf(await fetchBuildpack(url('/flat.tar'), { cacheDir: cache }))).to.equal('flat');
      expect(await versionOf(await fetchBuildpack(url('/flat.tar.gz'), { cacheDir: cache }))).to.equal('flatgz');
      const github = await fetchBuildpack(url('/github-style.tar.gz'), { cacheDir: cache });
      expect(await versionOf(github)).to.equal('v1');
      expect(await readdir(github.dir)).to.have.members(['bin', 'VERSION']);
      await access(path.join(github.dir, 'bin', 'compile'), 1);
    });

    it('downloads once when two builds ask at the same time', async () => {
      const cache = await freshCache();
      const before = server.count('/flat.tar.gz');
      const [a, b] = await Promise.all([
        fetchBuildpack(url('/flat.tar.gz'), { cacheDir: cache }),
        fetchBuildpack(url('/flat.tar.gz'), { cacheDir: cache }),
      ]);
      expect(await versionOf(a)).to.equal('flatgz');
      expect(await versionOf(b)).to.equal('flatgz');
      expect(server.count('/flat.tar.gz') - before).to.equal(1);
    });

    it('fails in one line, without credentials and without caching, for each bad download', async () => {
      const cache = await freshCache();
      const origin = server.origin;
      const messages: string[] = [];
      const expectFailure = async (spec: string, expected: string | RegExp) => {
        const { message } = await failure(spec, cache);
        messages.push(message);
        if (typeof expected === 'string') expect(message).to.equal(expected);
        else expect(message).to.match(expected);
      };
      await expectFailure(url('/missing.tgz'), `Buildpack ${origin}/missing.tgz: download failed with HTTP 404 Not Found; check the URL`);
      await expectFailure(
        url('/bp-1.0.tgz', 'wrongsecret'),
        `Buildpack ${origin}/bp-1.0.tgz: download failed with HTTP 401 Unauthorized; put credentials in the URL (https://USER:TOKEN@host/...)`,
      );
      await expectFailure(
        url('/no-compile.tgz'),
        `Buildpack ${origin}/no-compile.tgz: not a buildpack (no bin/compile at its root); point at a classic buildpack with bin/detect and bin/compile`,
      );
      await expectFailure(url('/not-a-tarball.tgz'), `Buildpack ${origin}/not-a-tarball.tgz is not a tar or tar.gz archive`);
      await expectFailure(url('/truncated.tgz'), new RegExp(`^Buildpack ${origin}/truncated.tgz is (damaged|truncated)`));
      const port = await freePort();
      await expectFailure(
        `http://deploy:secret@127.0.0.1:${port}/bp.tgz`,
        `Buildpack http://127.0.0.1:${port}/bp.tgz: cannot reach the host (connection refused); check the URL and that the server is up`,
      );
      expect([logged, ...messages, await allText(cache)].join('\n')).to.not.include('secret');
      // Nothing half-fetched was left to be mistaken for a buildpack later.
      const entries = await readdir(path.join(cache, 'buildpacks'));
      for (const entry of entries) expect(await readdir(path.join(cache, 'buildpacks', entry))).to.deep.equal([]);
    });
  });

  describe('tarballs on this machine (file:// and a path)', () => {
    it('reads a file:// tarball and a plain .tgz path as tarballs, every build afresh, with their sha256', async () => {
      const work = await mkdtemp(path.join(root, 'local-tgz-'));
      const archive = path.join(work, 'bp.tgz');
      const first = await makeTarball(work, buildpackFiles('l1'), 'bp-1');
      await writeFile(archive, first);
      const cache = await freshCache();
      const viaUrl = await fetchBuildpack(`file://${archive}`, { cacheDir: cache });
      expect(await versionOf(viaUrl)).to.equal('l1');
      expect(viaUrl).to.include({ name: 'bp', url: `file://${archive}`, sha256: createHash('sha256').update(first).digest('hex') });
      expect(logged).to.include(`-----> Reading buildpack file://${archive}\n`);

      // A changed file is picked up: a local tarball is never served from the cache.
      const second = await makeTarball(work, buildpackFiles('l2'));
      await writeFile(archive, second);
      const relative = path.relative(process.cwd(), archive);
      const viaPath = await fetchBuildpack(relative, { cacheDir: cache });
      expect(await versionOf(viaPath)).to.equal('l2');
      expect(viaPath).to.include({ url: relative, sha256: createHash('sha256').update(second).digest('hex') });
      expect(await exists(path.join(cache, 'buildpacks'))).to.equal(false);

      expect((await failure(`file://${work}/missing.tgz`, cache)).message).to.equal(
        `Buildpack file://${work}/missing.tgz: cannot read ${work}/missing.tgz (ENOENT); check the path`,
      );
      expect((await failure(`${archive}#v1`, cache)).message).to.match(/a tarball cannot take a #ref/);
    });

    it("shows git's own reason in one line when a file:// URL is not a repository", async () => {
      const work = await mkdtemp(path.join(root, 'not-git-'));
      await writeFile(path.join(work, 'bp.zip'), 'PK not a repository\n');
      const { message } = await failure(`file://${work}/bp.zip`, await freshCache());
      expect(message).to.equal(`Buildpack file://${work}/bp.zip: git fetch failed: invalid gitfile format: ${work}/bp.zip`);
    });
  });

  describe('a repository whose HEAD names no branch', () => {
    // `git init --bare` without -b names master; the developer pushed main (or more).
    async function danglingRepo(name: string, branches: string[]): Promise<{ url: string; commit: string }> {
      const dir = await mkdtemp(path.join(root, `dangling-${name}-`));
      const fixture = await GitFixture.create(dir, name);
      const commit = await fixture.commit(buildpackFiles(name), name);
      for (const b of branches.filter((b) => b !== 'main')) await fixture.branch(b);
      if (!branches.includes('main')) {
        await fixture.switchTo(branches[0]);
        await execa('git', ['-C', fixture.work, 'branch', '-D', 'main']);
      }
      await fixture.push();
      await execa('git', ['-C', fixture.bare, 'symbolic-ref', 'HEAD', 'refs/heads/master']);
      return { url: `file://${fixture.bare}`, commit };
    }

    it('uses the only branch, or main when it is the one usual name, and says so', async () => {
      const only = await danglingRepo('only', ['main']);
      const bp = await fetchBuildpack(only.url, { cacheDir: await freshCache() });
      expect(bp).to.include({ commit: only.commit });
      expect(await versionOf(bp)).to.equal('only');
      expect(logged).to.include("The repository's HEAD names no existing branch; using main\n");

      const several = await danglingRepo('several', ['main', 'dev', 'stable']);
      expect(await fetchBuildpack(several.url, { cacheDir: await freshCache() })).to.include({ commit: several.commit });
    });

    it('lists the branches when it cannot choose', async () => {
      const other = await danglingRepo('other', ['dev', 'stable']);
      const { message } = await failure(other.url, await freshCache());
      expect(message).to.equal(
        `Buildpack ${other.url}: the repository's HEAD names no existing branch; add #BRANCH to the URL (branches: dev, stable)`,
      );
      expect(await versionOf(await fetchBuildpack(`${other.url}#stable`, { cacheDir: await freshCache() }))).to.equal('other');
    });
  });

  describe('the cache lock', () => {
    it('names an unusable cache directory in one line', async () => {
      const notADir = path.join(await freshCache(), 'a-file');
      await writeFile(notADir, 'not a directory\n');
      const { message } = await failure(`file://${repo.bare}`, notADir);
      expect(message).to.match(
        /^Cannot write the buildpack cache at .*a-file\/buildpacks \(ENOTDIR\); point SLUGBUILDER_CACHE_DIR at a writable directory$/,
      );
    });

    it('takes over a lock left by a build that died', async () => {
      const cache = await freshCache();
      const spec = `file://${repo.bare}#${v2}`;
      await fetchBuildpack(spec, { cacheDir: cache });
      const [entry] = await readdir(path.join(cache, 'buildpacks'));
      // A real process that has exited: its pid is free.
      const dead = execa('true');
      const { pid } = dead;
      await dead;
      const { hostname } = await import('node:os');
      await writeFile(path.join(cache, 'buildpacks', entry, 'lock'), `${hostname()} ${pid} dead\n`);
      expect(await versionOf(await fetchBuildpack(spec, { cacheDir: cache }))).to.equal('v2');
      expect(await exists(path.join(cache, 'buildpacks', entry, 'lock'))).to.equal(false);
    });
  });

  describe('through the slugbuilder CLI', () => {
    const cli = fileURLToPath(new URL('../slugbuilder/cli.js', import.meta.url));
    let server: TestHttpServer;
    let daemon: GitDaemon;
    let app: string;
    before(async () => {
      const work = await mkdtemp(path.join(root, 'cli-'));
      app = path.join(work, 'app');
      await mkdir(app);
      await writeFile(path.join(app, 'Procfile'), 'web: sh -c "cat built-by.txt"\n');
      server = await startHttpServer(
        requireBasicAuth(
          'deploy',
          'secret',
          serveFiles({ '/pack.tgz': await makeTarball(work, buildpackFiles('from-tarball'), 'pack-main') }),
        ),
      );
      daemon = await startGitDaemon(path.join(root, 'srv'));
    });
    after(async () => {
      await server?.close();
      await daemon?.close();
    });

    /** One real build: the CLI in a child process, the slug in a file. */
    async function build(args: string[], env: Record<string, string> = {}) {
      const out = await mkdtemp(path.join(root, 'out-'));
      const slug = path.join(out, 'slug.tgz');
      const result = await execa('node', [cli, '--source', app, '-o', slug, ...args], {
        env: { SLUGBUILDER_CACHE_DIR: path.join(root, 'cli-cache'), ...env },
        stdin: 'ignore',
        reject: false,
      });
      let builtBy: string | undefined;
      if (result.exitCode === 0) {
        await execa('tar', ['-xzf', slug, '-C', out]);
        builtBy = (await readFile(path.join(out, 'built-by.txt'), 'utf8')).trim();
      }
      return { ...result, builtBy, slugExists: await exists(slug) };
    }

    it('builds with a git URL from --buildpack', async () => {
      const result = await build(['--buildpack', `${daemon.base}/bp.git#stable`]);
      expect(result.exitCode, result.stderr).to.equal(0);
      expect(result.builtBy).to.equal('v1');
      expect(result.stderr).to.include(`-----> Fetching buildpack ${daemon.base}/bp.git#stable`);
    });

    it('builds with a tarball URL from BUILDPACK_URL, and from the cache with the server gone', async () => {
      const spec = `http://deploy:secret@127.0.0.1:${server.port}/pack.tgz`;
      const first = await build([], { BUILDPACK_URL: spec });
      expect(first.exitCode, first.stderr).to.equal(0);
      expect(first.builtBy).to.equal('from-tarball');
      expect(server.count('/pack.tgz')).to.equal(1);
      await server.close();
      const second = await build([], { BUILDPACK_URL: spec });
      expect(second.exitCode, second.stderr).to.equal(0);
      expect(second.builtBy).to.equal('from-tarball');
      expect(second.stderr).to.include(`-----> Using cached buildpack ${server.origin}/pack.tgz`);
      expect(first.stderr + first.stdout + second.stderr + second.stdout).to.not.include('secret');
    });

    it('builds with a tarball from a file:// URL and from a path, and fails in one line for a file:// that is not git', async () => {
      const work = await mkdtemp(path.join(root, 'cli-local-'));
      const archive = path.join(work, 'local-pack.tar.gz');
      await writeFile(archive, await makeTarball(work, buildpackFiles('from-file'), 'local-pack'));
      for (const spec of [`file://${archive}`, archive]) {
        const result = await build(['--buildpack', spec]);
        expect(result.exitCode, result.stderr).to.equal(0);
        expect(result.builtBy).to.equal('from-file');
        expect(result.stderr).to.include(`-----> Reading buildpack ${spec}\n`);
      }
      await writeFile(path.join(work, 'pack.zip'), 'not a repository\n');
      const bad = await build(['--buildpack', `file://${work}/pack.zip`]);
      expect(bad.exitCode).to.equal(1);
      expect(bad.slugExists).to.equal(false);
      expect(bad.stderr.split('\n').filter((l) => l.startsWith(' !     '))).to.deep.equal([
        ` !     Buildpack file://${work}/pack.zip: git fetch failed: invalid gitfile format: ${work}/pack.zip`,
      ]);
    });

    it('fails with one line and exit 1 for a ref that does not exist, leaving no slug', async () => {
      const result = await build(['--buildpack', `git://u:secret@127.0.0.1:${daemon.port}/bp.git#no-such-tag`]);
      expect(result.exitCode).to.equal(1);
      expect(result.slugExists).to.equal(false);
      const errors = result.stderr.split('\n').filter((l) => l.startsWith(' !     '));
      expect(errors).to.deep.equal([
        ` !     Buildpack git://127.0.0.1:${daemon.port}/bp.git#no-such-tag: ref 'no-such-tag' does not exist in the repository; use an existing branch, tag or full commit sha`,
      ]);
      expect(result.stderr).to.not.include('secret');
    });
  });
});

// Outside the suite above, which needs git: this one is for the machine without it.
describe('git buildpacks without git', () => {
  it('says so in one line when git is not installed', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'slugkit-nogit-'));
    const saved = process.env.PATH;
    process.env.PATH = path.join(root, 'empty-path');
    try {
      const { message } = await failure(`file://${path.join(root, 'bp.git')}`, path.join(root, 'cache'));
      expect(message).to.equal(
        'Cannot fetch git buildpacks: git is not installed (not on PATH); install git or use a tarball URL or a local directory',
      );
    } finally {
      process.env.PATH = saved;
      await rm(root, { recursive: true, force: true });
    }
  });
});
