/**
 * Secrets never reach the output. Values are planted in ENV_DIR, `-e`,
 * `--env-file` (one of them spread over several lines) and as credentials in
 * TAR_URL, PUT_URL, BUILDPACK_URL and SLUG_URL (real HTTP servers on
 * 127.0.0.1 that demand them). A buildpack prints every config var and its
 * whole environment from detect, compile and release, on stdout and stderr;
 * builds succeed and fail in several ways; then ALL of stdout, stderr and the
 * summary are searched for every secret.
 */

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { BUILDER, RUNNER, writeBuildpack } from './helpers/cli.js';
import { type Handler, requireBasicAuth, serveFiles, startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { file, gzip, tar } from './helpers/tar-blocks.js';

const SECRETS = {
  envDir: 'envdir-s3cret-4f1a9c',
  flag: 'flag-s3cret-77b2e0',
  // A plain word: redacted because its name says it is a credential (shared/env-dir.ts secretValues).
  plainWordToken: 'hunterhunterhunter',
  envFile: 'envfile-s3cret-c3d9a1',
  multiLine: ['-----BEGIN TEST KEY-----', 'multiline-s3cret-line-one-8e21', 'multiline-s3cret-line-two-5d0f', '-----END TEST KEY-----'],
  // Contains another secret: must be replaced whole, not in pieces.
  superset: 'flag-s3cret-77b2e0-and-more-91aa',
  tarPassword: 'tar-pa55-9d2c1e',
  putPassword: 'put-pa55-0b7e44',
  buildpackPassword: 'bp-pa55-61c0fa',
  slugPassword: 'slug-pa55-e83b27',
  // Percent-encoded in the URL: both spellings are secret.
  encodedPassword: 'p@ss/w0rd-0e55',
};

/** Every string that must not appear anywhere. */
function needles(): string[] {
  const list = [
    SECRETS.envDir,
    SECRETS.flag,
    SECRETS.plainWordToken,
    SECRETS.envFile,
    ...SECRETS.multiLine.filter((l) => l.includes('s3cret')),
    SECRETS.superset,
    'and-more-91aa',
    SECRETS.tarPassword,
    SECRETS.putPassword,
    SECRETS.buildpackPassword,
    SECRETS.slugPassword,
    SECRETS.encodedPassword,
    encodeURIComponent(SECRETS.encodedPassword),
  ];
  for (const [user, pass] of [
    ['tar', SECRETS.tarPassword],
    ['put', SECRETS.putPassword],
    ['bp', SECRETS.buildpackPassword],
    ['slug', SECRETS.slugPassword],
  ]) {
    list.push(Buffer.from(`${user}:${pass}`).toString('base64'));
  }
  return list;
}

function leaks(text: string): string[] {
  return needles().filter((n) => text.includes(n));
}

/** Prints everything it can see, on both streams. */
const LOUD = `
echo "config vars:"; for f in "$3"/*; do echo "$(basename "$f")=$(cat "$f")"; echo "$(basename "$f")=$(cat "$f")" >&2; done
env | sort; env | sort >&2
`;

describe('secrets never appear in output, errors or the summary', function () {
  this.timeout(120_000);
  let root: string;
  let server: TestHttpServer;
  let putStatus = 201;
  let envDir: string;
  let envFile: string;
  let buildpack: string;
  let failing: string;
  const slugBytes: Buffer[] = [];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'slugkit-secrets-'));
    envDir = path.join(root, 'env');
    await mkdir(envDir);
    await writeFile(path.join(envDir, 'ENVDIR_SECRET'), SECRETS.envDir);
    envFile = path.join(root, 'config.env');
    await writeFile(envFile, `ENVFILE_SECRET=${SECRETS.envFile}\nMULTI_LINE_KEY="${SECRETS.multiLine.join('\\n')}"\n`);

    const loudDetect = `echo "Loud $(cat "$1/marker" 2>/dev/null)"; ${LOUD.replace(/\$3/g, '${ENV_DIR_FOR_DETECT:-/nonexistent}')}`;
    buildpack = await writeBuildpack(path.join(root, 'loud'), {
      detect: loudDetect,
      compile: LOUD,
      release: `{
${LOUD.replace(/\$3/g, '/nonexistent')}
} >&2
echo '--- {}'`,
    });
    failing = await writeBuildpack(path.join(root, 'loud-failing'), {
      compile: `${LOUD}\necho " !     giving up with $(cat "$3/FLAG_SECRET")" >&2; exit 7`,
    });

    const buildpackTarball = gzip(
      tar(
        file('bin/detect', '#!/usr/bin/env bash\necho Fetched\n', { mode: 0o755 }),
        file('bin/compile', `#!/usr/bin/env bash\n${LOUD}\n`, { mode: 0o755 }),
        file('bin/release', "#!/usr/bin/env bash\necho '--- {}'\n", { mode: 0o755 }),
      ),
    );
    const source = gzip(tar(file('Procfile', 'web: echo hi\n'), file('marker', 'm\n')));
    const routes: Record<string, Handler> = {
      '/source.tgz': requireBasicAuth('tar', SECRETS.tarPassword, serveFiles({ '/source.tgz': source })),
      '/encoded.tgz': requireBasicAuth('tar', SECRETS.encodedPassword, serveFiles({ '/encoded.tgz': source })),
      '/buildpack.tgz': requireBasicAuth('bp', SECRETS.buildpackPassword, serveFiles({ '/buildpack.tgz': buildpackTarball })),
      '/slug.tgz': requireBasicAuth('slug', SECRETS.slugPassword, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(slugBytes[0]);
      }),
      '/upload': requireBasicAuth('put', SECRETS.putPassword, (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (putStatus < 300) slugBytes.unshift(Buffer.concat(chunks));
          res.writeHead(putStatus);
          res.end();
        });
      }),
    };
    server = await startHttpServer((req, res) => {
      const route = routes[(req.url ?? '').split('?')[0]];
      if (route) return route(req, res);
      res.writeHead(404);
      res.end();
    });
  });

  after(async () => {
    await server?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const url = (user: string, pass: string, p: string) => `http://${user}:${encodeURIComponent(pass)}@127.0.0.1:${server.port}${p}`;

  interface Build {
    exitCode: number;
    everything: string;
  }

  async function slugbuilder(args: string[], env: Record<string, string> = {}): Promise<Build> {
    const dir = await mkdtemp(path.join(root, 'build-'));
    const summary = path.join(dir, 'summary.json');
    const r = await execa(
      'node',
      [
        BUILDER,
        '--cache-dir',
        path.join(dir, 'cache'),
        '-e',
        `FLAG_SECRET=${SECRETS.flag}`,
        '-e',
        `SUPERSET_SECRET=${SECRETS.superset}`,
        '-e',
        `DEPLOY_TOKEN=${SECRETS.plainWordToken}`,
        '--env-file',
        envFile,
        '--summary',
        summary,
        ...args,
      ],
      {
        env: {
          ENV_DIR: envDir,
          TMPDIR: dir,
          SLUGBUILDER_CACHE_DIR: path.join(dir, 'bp-cache'),
          TAR_URL: '',
          PUT_URL: '',
          BUILDPACK_URL: '',
          ...env,
        },
        reject: false,
        stdin: 'ignore',
        encoding: 'buffer',
        timeout: 90_000,
      },
    );
    const summaryText = await readFile(summary, 'utf8').catch(() => '');
    return {
      exitCode: r.exitCode ?? -1,
      everything: [Buffer.from(r.stdout).toString('latin1'), Buffer.from(r.stderr).toString(), summaryText].join('\n'),
    };
  }

  function expectNoLeaks(b: Build, context: string): void {
    expect(leaks(b.everything), `${context}:\n${b.everything}`).to.deep.equal([]);
  }

  it('a successful build from TAR_URL to PUT_URL with a BUILDPACK_URL prints no secret', async () => {
    const b = await slugbuilder([], {
      TAR_URL: url('tar', SECRETS.tarPassword, '/source.tgz'),
      PUT_URL: url('put', SECRETS.putPassword, '/upload'),
      BUILDPACK_URL: url('bp', SECRETS.buildpackPassword, '/buildpack.tgz'),
    });
    expect(b.exitCode, b.everything).to.equal(0);
    // The buildpack did print its config vars (redacted), so the test is not vacuous.
    expect(b.everything).to.include('FLAG_SECRET=[REDACTED]');
    expect(b.everything).to.include('ENVDIR_SECRET=[REDACTED]');
    expect(b.everything).to.include('SUPERSET_SECRET=[REDACTED]');
    expect(b.everything).to.include('DEPLOY_TOKEN=[REDACTED]');
    expect(b.everything).to.include('[REDACTED]');
    expectNoLeaks(b, 'successful build');
    expect(slugBytes.length).to.be.greaterThan(0);
  });

  it('a local buildpack printing everything from detect, compile and release leaks nothing', async () => {
    const source = path.join(root, 'source.tgz');
    await writeFile(source, gzip(tar(file('Procfile', 'web: echo hi\n'), file('marker', 'm\n'))));
    const b = await slugbuilder(
      [
        '--source',
        source,
        '--buildpack',
        buildpack,
        '--pass-env',
        'ENV_DIR_FOR_DETECT',
        '--put-url',
        url('put', SECRETS.putPassword, '/upload'),
      ],
      { ENV_DIR_FOR_DETECT: envDir },
    );
    expect(b.exitCode, b.everything).to.equal(0);
    expect(b.everything).to.include('MULTI_LINE_KEY=');
    expectNoLeaks(b, 'local loud buildpack');
  });

  it('buildpacks see neither PUT_URL nor TAR_URL', async () => {
    const b = await slugbuilder(['--buildpack', buildpack], {
      TAR_URL: url('tar', SECRETS.tarPassword, '/source.tgz'),
      PUT_URL: url('put', SECRETS.putPassword, '/upload'),
    });
    expect(b.exitCode, b.everything).to.equal(0);
    expect(b.everything).to.not.match(/^\s*(PUT_URL|TAR_URL)=/m);
  });

  it('a failing compile that echoes a secret in its error leaks nothing', async () => {
    const b = await slugbuilder(['--buildpack', failing], {
      TAR_URL: url('tar', SECRETS.tarPassword, '/source.tgz'),
      PUT_URL: url('put', SECRETS.putPassword, '/upload'),
    });
    expect(b.exitCode, b.everything).to.equal(1);
    expect(b.everything, b.everything).to.match(/failed to compile \(exit 7\)/);
    expectNoLeaks(b, 'failing compile');
  });

  it('an upload the server refuses leaks no credential', async () => {
    putStatus = 500;
    try {
      const b = await slugbuilder(['--buildpack', buildpack], {
        TAR_URL: url('tar', SECRETS.tarPassword, '/source.tgz'),
        PUT_URL: url('put', SECRETS.putPassword, '/upload'),
      });
      expect(b.exitCode, b.everything).to.equal(1);
      expect(b.everything, b.everything).to.match(/PUT_URL.*HTTP 500/);
      expectNoLeaks(b, 'refused upload');
    } finally {
      putStatus = 201;
    }
  });

  it('wrong, unreachable and malformed URLs with credentials leak nothing', async () => {
    const closed = await startHttpServer((_req, res) => {
      res.end();
    });
    const closedPort = closed.port;
    await closed.close();
    const attempts: Array<Record<string, string>> = [
      { TAR_URL: url('tar', SECRETS.tarPassword, '/missing.tgz') },
      { TAR_URL: `http://tar:${SECRETS.tarPassword}@127.0.0.1:${closedPort}/source.tgz` },
      { TAR_URL: `http://tar:${SECRETS.tarPassword}@[not-a-host/source.tgz` },
      {
        TAR_URL: url('tar', SECRETS.encodedPassword, '/encoded.tgz'),
        PUT_URL: `http://put:${SECRETS.putPassword}@127.0.0.1:${closedPort}/upload`,
      },
      {
        TAR_URL: url('tar', SECRETS.tarPassword, '/source.tgz'),
        BUILDPACK_URL: url('bp', SECRETS.buildpackPassword, '/no-such-buildpack.tgz'),
      },
      { TAR_URL: url('tar', 'wrong-password', '/source.tgz') },
    ];
    for (const env of attempts) {
      const b = await slugbuilder(['--max-source-size', '10M'], env);
      expect(b.exitCode, b.everything).to.equal(1);
      expectNoLeaks(b, JSON.stringify(Object.keys(env)));
    }
  });

  it('slugrunner with SLUG_URL credentials leaks nothing, whether the slug arrives or not', async () => {
    if (slugBytes.length === 0) {
      const made = await slugbuilder(['--buildpack', buildpack], {
        TAR_URL: url('tar', SECRETS.tarPassword, '/source.tgz'),
        PUT_URL: url('put', SECRETS.putPassword, '/upload'),
      });
      expect(made.exitCode, made.everything).to.equal(0);
    }
    for (const [slugUrl, wantExit] of [
      [url('slug', SECRETS.slugPassword, '/slug.tgz'), 0],
      [url('slug', 'wrong', '/slug.tgz'), 1],
      [url('slug', SECRETS.slugPassword, '/nothing-here.tgz'), 1],
    ] as const) {
      const appDir = await mkdtemp(path.join(root, 'app-'));
      const r = await execa(RUNNER, ['--app-dir', appDir, 'types'], { env: { SLUG_URL: slugUrl }, reject: false, stdin: 'ignore' });
      const everything = `${r.stdout}\n${r.stderr}`;
      expect(r.exitCode, everything).to.equal(wantExit);
      expect(leaks(everything), everything).to.deep.equal([]);
    }
  });
});
