/**
 * The environment buildpacks see: the fixed stack PATH and build variables,
 * the proxy and CA variables, whatever the operator names with --pass-env,
 * and nothing else of slugbuilder's own environment. A real build with a
 * bash buildpack that records its environment in the slug.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { extract } from 'tar';
import { makeApp, makeBuildpack, removeTempDirs, runBuilder, tempDir, writeTree } from './helpers/cli.js';
import { hasCommand } from './helpers/tools.js';

/** Records env, which python3 runs and where node is, into the app. */
const RECORDER = `
env | sort > "$1/env.txt"
python3 -c 'print("python3 ran")' > "$1/python.txt" 2>&1 || true
command -v node > "$1/node.txt"
command -v npm git bash >> "$1/node.txt"
`;

interface Seen {
  exitCode: number;
  stderr: string;
  env: Record<string, string>;
  python: string;
  tools: string;
}

async function buildWith(hostEnv: NodeJS.ProcessEnv, flags: string[] = []): Promise<Seen> {
  const root = await tempDir('slugkit-env-');
  const bp = await makeBuildpack({ compile: RECORDER });
  const app = await makeApp({ Procfile: 'web: true\n' });
  const slug = path.join(root, 'slug.tgz');
  const r = await runBuilder(['--source', app, '--buildpack', bp, '--cache-dir', path.join(root, 'cache'), '-o', slug, ...flags], {
    env: hostEnv,
  });
  if (r.exitCode !== 0) return { exitCode: r.exitCode, stderr: r.stderr, env: {}, python: '', tools: '' };
  const out = path.join(root, 'out');
  await mkdir(out);
  await extract({ file: slug, cwd: out });
  const env: Record<string, string> = {};
  for (const line of (await readFile(path.join(out, 'env.txt'), 'utf8')).split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return {
    exitCode: 0,
    stderr: r.stderr,
    env,
    python: await readFile(path.join(out, 'python.txt'), 'utf8'),
    tools: await readFile(path.join(out, 'node.txt'), 'utf8'),
  };
}

describe('the buildpack environment', function () {
  this.timeout(60_000);
  let fakeBin: string;
  let host: NodeJS.ProcessEnv;

  before(async () => {
    // A host PATH entry with its own python3, as pyenv or a virtualenv puts there.
    fakeBin = await writeTree(await tempDir('slugkit-fakebin-'), {
      python3: { content: '#!/bin/sh\necho fake python from the host PATH\n', mode: 0o755 },
    });
    host = {
      ...process.env,
      PATH: `${fakeBin}:${process.env.PATH}`,
      AWS_SECRET_ACCESS_KEY: 'host-aws-secret-9f3e1d',
      OPERATOR_NOTE: 'only-when-passed-42',
      HTTPS_PROXY: 'http://127.0.0.1:9/',
      no_proxy: 'localhost,127.0.0.1',
      // Not NODE_EXTRA_CA_CERTS: slugbuilder's own node would warn about a missing file.
      REQUESTS_CA_BUNDLE: '/etc/ssl/private-ca.pem',
      LANG: 'de_DE.ISO-8859-1',
    };
  });

  after(removeTempDirs);

  it('has neither the host secrets nor the host PATH, and the stack tools are found', async () => {
    const seen = await buildWith(host);
    expect(seen.exitCode, seen.stderr).to.equal(0);
    expect(Object.keys(seen.env)).to.not.include.members(['AWS_SECRET_ACCESS_KEY', 'OPERATOR_NOTE']);
    expect(JSON.stringify(seen.env)).to.not.include('host-aws-secret-9f3e1d');
    expect(seen.env.PATH.split(':')).to.not.include(fakeBin);
    expect(seen.env.PATH.startsWith('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')).to.equal(true);
    // The host PATH's python3 is never the one found; the stack's is, where the stack has one.
    expect(seen.python).to.not.include('fake python');
    if (hasCommand('python3')) expect(seen.python).to.equal('python3 ran\n');
    // The node running slugbuilder is found even when it is not on the stack PATH.
    expect(seen.tools.split('\n')[0]).to.equal(path.join(path.dirname(process.execPath), 'node'));
    // node, then each of npm, git and bash the stack has.
    expect(seen.tools.trim().split('\n')).to.have.length(1 + ['npm', 'git', 'bash'].filter(hasCommand).length);
  });

  it('has the build variables, a UTF-8 locale and a scratch HOME and TMPDIR', async () => {
    const seen = await buildWith(host, ['--stack', 'heroku-22', '--source-version', 'abc123']);
    expect(seen.exitCode, seen.stderr).to.equal(0);
    expect(seen.env.STACK).to.equal('heroku-22');
    expect(seen.env.SOURCE_VERSION).to.equal('abc123');
    expect(seen.env.REQUEST_ID).to.match(/^[0-9a-f-]{36}$/);
    expect(seen.env.LANG).to.equal('C.UTF-8');
    expect(seen.env.HOME).to.match(/slugbuilder-[^/]+\/home$/);
    expect(seen.env.TMPDIR).to.match(/slugbuilder-[^/]+\/tmp$/);
    expect(seen.env.APP_DIR).to.match(/slugbuilder-[^/]+\/app$/);
  });

  it('passes the proxy and CA variables through', async () => {
    const seen = await buildWith(host);
    expect(seen.exitCode, seen.stderr).to.equal(0);
    expect(seen.env.HTTPS_PROXY).to.equal('http://127.0.0.1:9/');
    expect(seen.env.no_proxy).to.equal('localhost,127.0.0.1');
    expect(seen.env.REQUESTS_CA_BUNDLE).to.equal('/etc/ssl/private-ca.pem');
    expect(seen.env).to.not.have.property('HTTP_PROXY');
  });

  it('--pass-env NAME brings one variable through, and LANG when named', async () => {
    const seen = await buildWith(host, ['--pass-env', 'OPERATOR_NOTE', '--pass-env', 'LANG', '--pass-env', 'NOT_SET_ANYWHERE']);
    expect(seen.exitCode, seen.stderr).to.equal(0);
    expect(seen.env.OPERATOR_NOTE).to.equal('only-when-passed-42');
    expect(seen.env.LANG).to.equal('de_DE.ISO-8859-1');
    expect(seen.env).to.not.have.property('AWS_SECRET_ACCESS_KEY');
    expect(seen.env).to.not.have.property('NOT_SET_ANYWHERE');
  });

  it('a proxy password passed through is redacted from the log', async () => {
    const seen = await buildWith({ ...host, HTTP_PROXY: 'http://proxyuser:proxy-pa55-1b2c@127.0.0.1:9/' }, []);
    expect(seen.exitCode, seen.stderr).to.equal(0);
    expect(seen.env.HTTP_PROXY).to.include('proxy-pa55-1b2c');
    const loud = await runBuilder(
      [
        '--source',
        await makeApp({ Procfile: 'web: true\n' }),
        '--buildpack',
        await makeBuildpack({ compile: 'echo "proxy is $HTTP_PROXY"' }),
        '--cache-dir',
        path.join(await tempDir(), 'c'),
        '-o',
        path.join(await tempDir(), 's.tgz'),
      ],
      {
        env: { ...host, HTTP_PROXY: 'http://proxyuser:proxy-pa55-1b2c@127.0.0.1:9/' },
      },
    );
    expect(loud.exitCode, loud.stderr).to.equal(0);
    expect(loud.stderr).to.include('proxy is http://proxyuser:[REDACTED]@127.0.0.1:9/');
  });

  for (const [name, message] of [
    ['HOME', /--pass-env HOME: slugbuilder sets HOME for buildpacks itself/],
    ['PUT_URL', /--pass-env PUT_URL: buildpacks never get PUT_URL or TAR_URL/],
    ['1BAD', /--pass-env expects a variable name, got "1BAD"/],
  ] as const) {
    it(`--pass-env ${name} is a usage error`, async () => {
      const r = await runBuilder(['--pass-env', name, '-o', path.join(await tempDir(), 's.tgz')], { env: host });
      expect(r.exitCode).to.equal(2);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stderr).to.match(message);
    });
  }
});
