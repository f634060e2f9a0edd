/**
 * slugbuilder end to end: real fixture apps and bash buildpacks, piped
 * through the real CLI as a child process.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { execa } from 'execa';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, slugEntries, tarOf, tempDir } from './helpers/cli.js';
import { serveFiles, startHttpServer } from './helpers/http-server.js';
import { requireTools } from './helpers/tools.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const HELLO = {
  Procfile: 'web: node server.js\nworker: node worker.js\n',
  'server.js': 'console.log("hi")\n',
  'bin/tool': { content: '#!/bin/sh\necho tool\n', mode: 0o700 },
  'lib/deep/file.txt': 'deep\n',
};

describe('slugbuilder', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  let cacheDir: string;
  let noop: string;
  beforeEach(async () => {
    cacheDir = path.join(await tempDir(), 'cache');
    noop = await makeBuildpack({ detect: 'echo Noop', compile: 'echo "compiling"', release: 'echo "--- {}"' }, 'noop');
  });

  describe('the slug', () => {
    it('is a gzip tar on stdout with ./ entries, normalised modes, owner 0 and a fixed mtime', async () => {
      const app = await makeApp(HELLO);
      await mkdir(path.join(app, '.git'));
      await writeFile(path.join(app, '.git/HEAD'), 'ref: refs/heads/main\n');
      const res = await runBuilder(['--buildpack', noop, '--cache-dir', cacheDir], { input: await tarOf(app) });
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stdout.subarray(0, 2)).to.deep.equal(Buffer.from([0x1f, 0x8b]));
      const entries = await slugEntries(res.stdout);
      const byPath = Object.fromEntries(entries.map((e) => [e.path, e]));
      expect(entries.map((e) => e.path)).to.deep.equal([
        './',
        './.release',
        './.slugkit-launch',
        './Procfile',
        './bin/',
        './bin/tool',
        './lib/',
        './lib/deep/',
        './lib/deep/file.txt',
        './server.js',
      ]);
      expect(byPath['./bin/tool'].mode).to.equal(0o755);
      expect(byPath['./server.js'].mode).to.equal(0o644);
      expect(byPath['./lib/'].mode).to.equal(0o755);
      for (const e of entries) {
        expect(e.uid, e.path).to.equal(0);
        expect(e.gid, e.path).to.equal(0);
        expect(e.uname, e.path).to.equal('');
        expect(e.mtime, e.path).to.equal(Date.UTC(1980, 0, 1, 0, 0, 1));
      }
      expect(byPath['./Procfile'].body).to.equal(HELLO.Procfile);
      expect(byPath['./.release'].body).to.equal('--- {}\n');
      // The launch plan for bin/slugrunner's fast start, made after the release.
      expect(byPath['./.slugkit-launch'].body.startsWith('slugkit-launch 2\0fast\0')).to.equal(true);
      expect(byPath['./.slugkit-launch'].mode).to.equal(0o644);
    });

    it('is byte-identical across builds of the same source, and follows SOURCE_DATE_EPOCH', async () => {
      const app = await makeApp(HELLO);
      const first = await runBuilder(['--buildpack', noop, '--cache-dir', cacheDir], { input: await tarOf(app, true) });
      const second = await runBuilder(['--buildpack', noop, '--cache-dir', cacheDir], { input: await tarOf(app, false) });
      expect(first.exitCode).to.equal(0);
      expect(sha256(first.stdout)).to.equal(sha256(second.stdout));
      const epoch = await runBuilder(['--buildpack', noop, '--cache-dir', cacheDir], {
        input: await tarOf(app),
        env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' },
      });
      const entries = await slugEntries(epoch.stdout);
      expect(entries[0].mtime).to.equal(1700000000 * 1000);
    });

    it('is written to -o FILE atomically, with the size reported and a JSON summary', async () => {
      const app = await makeApp(HELLO);
      const out = await tempDir();
      const slug = path.join(out, 'slug.tgz');
      const summary = path.join(out, 'summary.json');
      const res = await runBuilder([
        '--source',
        app,
        '--buildpack',
        noop,
        '--cache-dir',
        cacheDir,
        '-o',
        slug,
        '--summary',
        summary,
        '--source-version',
        'abc123',
      ]);
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stdout.length).to.equal(0);
      expect(await readdir(out)).to.have.members(['slug.tgz', 'summary.json']);
      const bytes = await readFile(slug);
      const json = JSON.parse(await readFile(summary, 'utf8'));
      expect(json.slug).to.deep.equal({ path: slug, size: bytes.length, sha256: sha256(bytes) });
      expect(json.buildpacks).to.deep.equal([{ name: 'Noop', origin: noop, kind: 'classic' }]);
      expect(json.process_types).to.deep.equal({ web: 'node server.js', worker: 'node worker.js' });
      expect(json.stack).to.equal('heroku-24');
      expect(json.source_version).to.equal('abc123');
      expect(res.stderr).to.match(/^-----> Compiled slug size is \d+(\.\d)?[BKM]$/m);
    });

    it('is uploaded with a streamed PUT to --put-url', async () => {
      const received: Buffer[] = [];
      const server = await startHttpServer(async (req, res) => {
        for await (const chunk of req) received.push(chunk as Buffer);
        res.writeHead(200);
        res.end();
      });
      try {
        const app = await makeApp(HELLO);
        const res = await runBuilder(['--buildpack', noop, '--cache-dir', cacheDir, '--put-url', `${server.origin}/slugs/v1.tgz`], {
          input: await tarOf(app),
        });
        expect(res.exitCode, res.stderr).to.equal(0);
        expect(res.stdout.length).to.equal(0);
        expect(server.requests.map((r) => `${r.method} ${r.url}`)).to.deep.equal(['PUT /slugs/v1.tgz']);
        const body = Buffer.concat(received);
        expect(gunzipSync(body).length).to.be.greaterThan(0);
        expect((await slugEntries(body)).map((e) => e.path)).to.include('./Procfile');
      } finally {
        await server.close();
      }
    });
  });

  describe('source intake', () => {
    it('reads a source tarball from --source FILE and from an http URL (TAR_URL)', async () => {
      const app = await makeApp(HELLO);
      const tgz = await tarOf(app, true);
      const file = path.join(await tempDir(), 'src.tgz');
      await writeFile(file, tgz);
      const fromFile = await runBuilder(['--source', file, '--buildpack', noop, '--cache-dir', cacheDir]);
      const server = await startHttpServer(serveFiles({ '/src.tgz': tgz }));
      try {
        const fromUrl = await runBuilder(['--buildpack', noop, '--cache-dir', cacheDir], {
          env: { ...process.env, TAR_URL: `${server.origin}/src.tgz` },
        });
        expect(fromFile.exitCode, fromFile.stderr).to.equal(0);
        expect(fromUrl.exitCode, fromUrl.stderr).to.equal(0);
        expect(sha256(fromUrl.stdout)).to.equal(sha256(fromFile.stdout));
      } finally {
        await server.close();
      }
    });

    for (const [label, input, message] of [
      ['empty stdin', Buffer.alloc(0), 'source on stdin is empty: expected a tar or tar.gz archive'],
      [
        'input that is not a tarball',
        Buffer.from('this is not a tarball at all\n'.repeat(40)),
        'source on stdin is not a tar or tar.gz archive',
      ],
    ] as const) {
      it(`rejects ${label} with one error line, exit 1 and nothing on stdout`, async () => {
        const res = await runBuilder(['--buildpack', noop, '--cache-dir', cacheDir], { input });
        expect(res.exitCode).to.equal(1);
        expect(res.stdout.length).to.equal(0);
        expect(res.stderr.split('\n').filter((l) => l.startsWith(' !     '))).to.deep.equal([` !     ${message}`]);
      });
    }

    it('takes SOURCE_VERSION from the commit git archive records, unless one is given', async function () {
      requireTools(this, 'git');
      const repo = await makeApp(HELLO);
      const git = (...args: string[]) =>
        execa('git', ['-C', repo, '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], {
          encoding: 'buffer',
          stripFinalNewline: false,
        });
      await git('init', '-q');
      await git('add', '.');
      await git('commit', '-qm', 'app');
      const sha = Buffer.from((await git('rev-parse', 'HEAD')).stdout as Uint8Array)
        .toString()
        .trim();
      const bp = await makeBuildpack({ compile: 'echo "SOURCE_VERSION=${SOURCE_VERSION:-unset}"' });
      const summary = path.join(await tempDir(), 'summary.json');
      for (const format of ['tar', 'tar.gz']) {
        const archive = Buffer.from((await git('archive', `--format=${format}`, 'HEAD')).stdout as Uint8Array);
        const res = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir, '--summary', summary], { input: archive });
        expect(res.exitCode, res.stderr).to.equal(0);
        expect(res.stderr).to.include(`       SOURCE_VERSION=${sha}`);
        expect(JSON.parse(await readFile(summary, 'utf8')).source_version).to.equal(sha);
      }
      const told = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir, '--source-version', 'v42'], {
        input: Buffer.from((await git('archive', 'HEAD')).stdout as Uint8Array),
      });
      expect(told.stderr).to.include('       SOURCE_VERSION=v42');
      const plain = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir], { input: await tarOf(repo) });
      expect(plain.stderr).to.include('       SOURCE_VERSION=unset');
    });

    it('names an unreachable source URL in one line', async () => {
      const server = await startHttpServer(serveFiles({}));
      const url = `${server.origin}/missing.tgz`;
      await server.close();
      const res = await runBuilder(['--source', url, '--buildpack', noop, '--cache-dir', cacheDir]);
      expect(res.exitCode).to.equal(1);
      expect(res.stdout.length).to.equal(0);
      expect(res.stderr).to.match(/ !     source URL: cannot reach http:\/\/127\.0\.0\.1:\d+\/missing\.tgz \(connection refused\)/);
    });

    it('removes .slugignore matches before any buildpack runs', async () => {
      const app = await makeApp({
        ...HELLO,
        '.slugignore': '# big things\n*.psd\n/docs\nspec/**/*.rb\n!keep.psd\n',
        'art/logo.psd': 'x',
        'keep.psd': 'kept',
        'docs/guide.md': 'x',
        'spec/models/user_spec.rb': 'x',
        'lib/docs/inner.txt': 'not anchored: kept',
      });
      const bp = await makeBuildpack({
        compile:
          'for f in art/logo.psd docs/guide.md spec/models/user_spec.rb; do if [ -e "$1/$f" ]; then echo "$f still present during compile"; exit 1; fi; done; echo "clean before compile"',
      });
      const res = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir], { input: await tarOf(app) });
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.include('       clean before compile');
      const paths = (await slugEntries(res.stdout)).map((e) => e.path);
      expect(paths).to.include.members(['./keep.psd', './lib/docs/inner.txt', './.slugignore']);
      expect(paths).not.to.include.members(['./art/logo.psd', './docs/', './spec/models/user_spec.rb']);
    });
  });

  describe('buildpacks', () => {
    it('detects among the bundled buildpacks and prints the detected name', async () => {
      const app = await makeApp({ Procfile: 'web: echo hi\n' });
      const res = await runBuilder(['--cache-dir', cacheDir], { input: await tarOf(app) });
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.match(/^-----> Procfile app detected$/m);
    });

    it('says when no buildpack detects the app, exits 1 and writes nothing', async () => {
      const app = await makeApp({ 'README.txt': 'no Procfile here\n' });
      const res = await runBuilder(['--cache-dir', cacheDir], { input: await tarOf(app) });
      expect(res.exitCode).to.equal(1);
      expect(res.stdout.length).to.equal(0);
      expect(res.stderr).to.match(/^-----> Unable to select a buildpack$/m);
    });

    it('passes BUILD_DIR CACHE_DIR ENV_DIR and the build environment to compile', async () => {
      const envFile = path.join(await tempDir(), 'config.env');
      await writeFile(envFile, 'FROM_FILE=file value\nMULTI="line one\\nline two"\n');
      const envDir = await tempDir();
      await writeFile(path.join(envDir, 'FROM_DIR'), 'dir value');
      const bp = await makeBuildpack({
        compile: [
          'echo "build=$(basename "$1") cache seed=$(cat "$2/seed")"',
          // Config var values are redacted from the log, so compare them here.
          '[ "$(cat "$3/FLAG_TOKEN")" = "flag-value" ] && [ "$(cat "$3/FROM_FILE")" = "file value" ] && [ "$(cat "$3/FROM_DIR")" = "dir value" ] && echo "config vars ok"',
          'echo "leak: $(cat "$3/FLAG_TOKEN")"',
          'echo "MULTI lines=$(wc -l < "$3/MULTI")"',
          'echo "STACK=$STACK SOURCE_VERSION=$SOURCE_VERSION"',
          'echo "REQUEST_ID=${REQUEST_ID:+set} HOME=${HOME:+set} APP_DIR_is_build=$([ "$APP_DIR" = "$1" ] && echo yes)"',
          'echo "FLAG_TOKEN in env: ${FLAG_TOKEN:-no}"',
        ].join('\n'),
      });
      await mkdir(cacheDir, { recursive: true });
      await writeFile(path.join(cacheDir, 'seed'), 'planted');
      const app = await makeApp(HELLO);
      const res = await runBuilder(
        ['--buildpack', bp, '--cache-dir', cacheDir, '-e', 'FLAG_TOKEN=flag-value', '--env-file', envFile, '--stack', 'heroku-22'],
        {
          input: await tarOf(app),
          env: { ...process.env, ENV_DIR: envDir, SOURCE_VERSION: 'deadbeef' },
        },
      );
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.include('       build=app cache seed=planted');
      expect(res.stderr).to.include('       config vars ok');
      expect(res.stderr).to.include('       leak: [REDACTED]');
      expect(res.stderr).not.to.include('flag-value');
      expect(res.stderr).to.include('       MULTI lines=1');
      expect(res.stderr).to.include('       STACK=heroku-22 SOURCE_VERSION=deadbeef');
      expect(res.stderr).to.include('       REQUEST_ID=set HOME=set APP_DIR_is_build=yes');
      // Config vars reach buildpacks through ENV_DIR only, as on Heroku.
      expect(res.stderr).to.include('       FLAG_TOKEN in env: no');
    });

    it('redacts secret-named config values and URL credentials, and leaves other values and ordinary words readable', async () => {
      const bp = await makeBuildpack({
        compile: 'for f in "$3"/*; do echo "$(basename "$f")=$(cat "$f")"; done; echo "the node runtime says hello over http"',
      });
      const res = await runBuilder(
        [
          '--buildpack',
          bp,
          '--cache-dir',
          cacheDir,
          '-e',
          'DB_PASSWORD=hunter2-pw',
          '-e',
          'GITHUBTOKEN=ghp-0a1b2c3d',
          '-e',
          'SENTRY=https://k3y-public@sentry.example/42',
          '-e',
          'DATABASE_URL=postgres://app:db-pa55word@db.internal/app',
          '-e',
          'GREETING=hello',
          '-e',
          'NPM_CONFIG_LOGLEVEL=http',
          '-e',
          'API_KEY=node',
          '-e',
          'AUTHOR=jane-the-author',
        ],
        { input: await tarOf(await makeApp(HELLO)) },
      );
      expect(res.exitCode, res.stderr).to.equal(0);
      // Hidden: values of secret-named vars, and the credentials of any URL.
      expect(res.stderr).to.include('       DB_PASSWORD=[REDACTED]\n');
      expect(res.stderr).to.include('       GITHUBTOKEN=[REDACTED]\n');
      expect(res.stderr).to.include('       SENTRY=https://[REDACTED]@sentry.example/42\n');
      expect(res.stderr).to.include('       DATABASE_URL=postgres://app:[REDACTED]@db.internal/app\n');
      for (const secret of ['hunter2-pw', 'ghp-0a1b2c3d', 'k3y-public', 'db-pa55word']) expect(res.stderr).to.not.include(secret);
      // Readable: settings, names that merely contain a secret word, and a value too short to redact (with a note saying so).
      expect(res.stderr).to.include('       GREETING=hello\n');
      expect(res.stderr).to.include('       NPM_CONFIG_LOGLEVEL=http\n');
      expect(res.stderr).to.include('       AUTHOR=jane-the-author\n');
      expect(res.stderr).to.include('       API_KEY=node\n');
      expect(res.stderr).to.include('       API_KEY is shorter than 6 characters: too short to redact, it may appear in this log\n');
      expect(res.stderr).to.include('       the node runtime says hello over http\n');
    });

    it('keeps CACHE_DIR between builds', async () => {
      const bp = await makeBuildpack({
        compile: 'n=$(cat "$2/count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$2/count"; echo "build number $n"',
      });
      const app = await makeApp(HELLO);
      const first = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir], { input: await tarOf(app) });
      const second = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir], { input: await tarOf(app) });
      expect(first.stderr).to.include('       build number 1');
      expect(second.stderr).to.include('       build number 2');
    });

    it('streams buildpack output Heroku-style: headings pass through, the rest is indented', async () => {
      const bp = await makeBuildpack({
        compile: 'echo "-----> Installing things"; echo "detail"; echo "to stderr" >&2; echo " !     a warning"',
      });
      const res = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir], { input: await tarOf(await makeApp(HELLO)) });
      const lines = res.stderr.split('\n');
      expect(lines).to.include.members(['-----> Installing things', '       detail', '       to stderr', ' !     a warning']);
    });

    it('fails with the buildpack name and exit code when compile fails, with nothing on stdout', async () => {
      const bp = await makeBuildpack({ detect: 'echo Broken', compile: 'echo "about to fail"; exit 3' }, 'broken');
      const res = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir], { input: await tarOf(await makeApp(HELLO)) });
      expect(res.exitCode).to.equal(1);
      expect(res.stdout.length).to.equal(0);
      expect(res.stderr).to.match(/^ !     Buildpack Broken failed to compile \(exit 3\): its output above says why$/m);
    });

    it('sources each buildpack export before the next one compiles', async () => {
      const first = await makeBuildpack(
        { compile: 'bp_dir=$(cd "$(dirname "$0")/.." && pwd); echo "export FIRST_TOOL=ready" > "$bp_dir/export"' },
        'first',
      );
      const second = await makeBuildpack(
        { compile: 'echo "FIRST_TOOL=${FIRST_TOOL:-missing}"', release: 'echo "default_process_types: {web: second}"' },
        'second',
      );
      const res = await runBuilder(['--buildpack', first, '--buildpack', second, '--cache-dir', cacheDir], {
        input: await tarOf(await makeApp({ 'a.txt': 'a' })),
      });
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.include('       FIRST_TOOL=ready');
      expect(res.stderr).to.include('Default types for buildpacks -> web');
    });

    it('runs the app hooks bin/pre-compile and bin/post-compile around the buildpacks', async () => {
      const app = await makeApp({
        ...HELLO,
        'bin/pre-compile': { content: '#!/bin/sh\necho pre > hook-order\n', mode: 0o755 },
        'bin/post-compile': { content: '#!/bin/sh\necho post >> hook-order\n', mode: 0o755 },
      });
      const bp = await makeBuildpack({ compile: 'echo compile >> "$1/hook-order"' });
      const res = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir], { input: await tarOf(app) });
      expect(res.exitCode, res.stderr).to.equal(0);
      const order = (await slugEntries(res.stdout)).find((e) => e.path === './hook-order');
      expect(order?.body).to.equal('pre\ncompile\npost\n');
    });

    it('uses BUILDPACK_URL when it names a directory', async () => {
      const bp = await makeBuildpack({ detect: 'echo FromEnv', compile: 'true' });
      const res = await runBuilder(['--cache-dir', cacheDir], {
        input: await tarOf(await makeApp(HELLO)),
        env: { ...process.env, BUILDPACK_URL: bp },
      });
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.match(/^-----> FromEnv app detected$/m);
    });
  });

  describe('release and process types', () => {
    it('saves the release as .release and lists Procfile and default types', async () => {
      const bp = await makeBuildpack({
        compile: 'true',
        release: 'cat <<YAML\n---\nconfig_vars:\n  LANG: en_US.UTF-8\ndefault_process_types:\n  web: bin/web\n  console: bin/console\nYAML',
      });
      const res = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir], { input: await tarOf(await makeApp(HELLO)) });
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.include(
        '-----> Discovering process types\n       Procfile declares types -> web, worker\n       Default types for buildpack -> web, console\n',
      );
      const release = (await slugEntries(res.stdout)).find((e) => e.path === './.release');
      expect(release?.body).to.equal(
        '---\nconfig_vars:\n  LANG: en_US.UTF-8\ndefault_process_types:\n  web: bin/web\n  console: bin/console\n',
      );
    });

    for (const output of ['', '---', '--- {}']) {
      it(`accepts a release that prints ${JSON.stringify(output)}`, async () => {
        const bp = await makeBuildpack({ compile: 'true', release: `printf '%s' '${output}'` });
        const res = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir], { input: await tarOf(await makeApp(HELLO)) });
        expect(res.exitCode, res.stderr).to.equal(0);
      });
    }

    it('fails on invalid release YAML with one clear line and no slug', async () => {
      const bp = await makeBuildpack({ detect: 'echo Yamlish', compile: 'true', release: 'echo "default_process_types: [web: {"' });
      const res = await runBuilder(['--buildpack', bp, '--cache-dir', cacheDir], { input: await tarOf(await makeApp(HELLO)) });
      expect(res.exitCode).to.equal(1);
      expect(res.stdout.length).to.equal(0);
      expect(res.stderr).to.match(/^ !     bin\/release of buildpack Yamlish printed invalid YAML: .+$/m);
    });
  });

  describe('usage', () => {
    it('exits 2 with one line on an unknown flag', async () => {
      const res = await runBuilder(['--no-such-flag']);
      expect(res.exitCode).to.equal(2);
      expect(res.stderr.trim().split('\n')).to.have.length(1);
      expect(res.stderr).to.include('--no-such-flag');
    });
  });
});
