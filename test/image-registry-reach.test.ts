/**
 * Reaching registries as docker does, through the slugbuilder CLI against
 * Debian's docker-registry on 127.0.0.1: Docker Hub names (read through a
 * local registry acting as --registry-mirror, since Docker Hub itself is out
 * of reach) and credentials from a credential helper named by credHelpers.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { removeTempDirs, runBuilder, tarOf, tempDir } from './helpers/cli.js';
import { execFileP, makeApp, makeRunImages, type RunImages, requireTools, skopeoInspect } from './helpers/image-fixtures.js';
import { type RunningRegistry, startRegistry } from './helpers/registry.js';

const ERROR = /^ ! {5}(.*)$/;

function errorLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => ERROR.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
}

describe('reaching registries as docker does (CLI)', function () {
  this.timeout(120_000);
  let root: string;
  let run: RunImages;
  let source: Buffer;
  let cache: string;
  const stops: Array<() => Promise<void>> = [];

  async function seed(host: string, repoTag: string, creds?: string): Promise<void> {
    const extra = creds ? ['--dest-creds', creds] : [];
    await execFileP('skopeo', ['copy', '--dest-tls-verify=false', ...extra, `oci:${run.layout}:24`, `docker://${host}/${repoTag}`]);
  }

  const build = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runBuilder(['-o', path.join(root, 'slug.tgz'), ...args], {
      input: source,
      env: { ...process.env, SLUGBUILDER_CACHE_DIR: cache, DOCKER_CONFIG: path.join(root, 'no-config'), ...env },
    });

  before(async function () {
    requireTools(this, 'docker-registry', 'skopeo');
    root = await tempDir('slugkit-reach-');
    cache = path.join(root, 'cache');
    run = await makeRunImages(root);
    const app = path.join(root, 'app');
    await makeApp(app);
    await writeFile(path.join(app, 'Procfile'), 'web: httpd -f -p ${PORT:-5000} -h /app/public\n');
    source = await tarOf(app);
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await removeTempDirs();
  });

  async function registry(opts: Parameters<typeof startRegistry>[0] = {}): Promise<RunningRegistry> {
    const r = await startRegistry(opts);
    stops.push(r.stop);
    return r;
  }

  it('reads debian:bookworm as docker.io/library/debian:bookworm, through --registry-mirror', async () => {
    const mirror = await registry();
    await seed(mirror.host, 'library/debian:bookworm');
    const res = await build([
      '--run-image',
      'debian:bookworm',
      '--registry-mirror',
      mirror.host,
      '--image',
      `docker://${mirror.host}/myapp:v1`,
    ]);
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stderr).to.include('Reading run image debian:bookworm (docker.io/library/debian:bookworm)');
    expect(res.stderr).to.include(`read from registry mirror ${mirror.host}`);
    // The run image's layers came from the mirror, so the push mounts nothing new: they are already there.
    expect(res.stderr).to.match(/run image layer 1\/1 sha256:[0-9a-f]{12} \S+ mounted from library\/debian/);
    const pushed = await skopeoInspect(`docker://${mirror.host}/myapp:v1`);
    expect((pushed.Layers as string[])[0]).to.equal(run.v24.layerDigests[0]);
  });

  it('passes over a mirror that lacks the image and goes on to the next, then Docker Hub', async () => {
    const empty = await registry();
    const full = await registry();
    await seed(full.host, 'heroku/heroku:24');
    const res = await build([
      '--run-image',
      'heroku/heroku:24',
      '--registry-mirror',
      empty.host,
      '--registry-mirror',
      `http://${full.host}/`,
      '--image',
      `oci:${path.join(root, 'from-second-mirror')}`,
    ]);
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stderr).to.include(
      `registry mirror ${empty.host}: image ${empty.host}/heroku/heroku:24 not found: check the name and tag; trying registry mirror ${full.host}`,
    );
    expect(res.stderr).to.include(`read from registry mirror ${full.host}`);

    // With no mirror holding it, the pull falls back to Docker Hub's own API host, out of reach here.
    const fallback = await build([
      '--run-image',
      'slugkit-test/absent:never',
      '--registry-mirror',
      empty.host,
      '--image',
      `oci:${path.join(root, 'never')}`,
      '--net-timeout',
      '5s',
    ]);
    expect(fallback.exitCode).to.equal(1);
    expect(fallback.stderr).to.include('Reading run image slugkit-test/absent:never (docker.io/slugkit-test/absent:never)');
    expect(fallback.stderr).to.include(`registry mirror ${empty.host}: image ${empty.host}/slugkit-test/absent:never not found`);
    expect(fallback.stderr).to.include('; trying docker.io');
    const line = errorLines(fallback.stderr).at(-1);
    expect(line, fallback.stderr).to.match(/^registry docker\.io|^image docker\.io\/slugkit-test\/absent:never not found/);
  });

  it('refuses a --registry-mirror that is no host before building', async () => {
    const res = await build(['--run-image', 'debian', '--registry-mirror', 'not a host', '--image', `oci:${path.join(root, 'x')}`]);
    expect(res.exitCode).to.equal(2);
    expect(errorLines(res.stderr)).to.deep.equal(['--registry-mirror not a host is not HOST[:PORT][/PREFIX] (e.g. mirror.gcr.io)']);
  });

  describe('credential helpers', () => {
    let secured: RunningRegistry;
    let bin: string;
    let config: string;
    const secret = 'helper-secret-horse';

    before(async function () {
      requireTools(this, 'htpasswd');
      secured = await registry({ htpasswd: { username: 'deploy', password: secret } });
      await seed(secured.host, 'runner:24', `deploy:${secret}`);
      bin = path.join(root, 'helpers-bin');
      config = path.join(root, 'docker-config');
      await mkdir(bin, { recursive: true });
      await mkdir(config, { recursive: true });
      // A helper speaking docker's protocol: the server on stdin, JSON on stdout; it logs what it was asked.
      await writeFile(
        path.join(bin, 'docker-credential-slugkit-test'),
        `#!/bin/sh\n[ "$1" = get ] || exit 3\nread -r server\necho "$server" >> "${path.join(root, 'asked')}"\n` +
          `printf '{"ServerURL":"%s","Username":"deploy","Secret":"${secret}"}' "$server"\n`,
        { mode: 0o755 },
      );
      await writeFile(
        path.join(bin, 'docker-credential-broken'),
        '#!/bin/sh\necho "error getting credentials - err: exit status 1, out: keychain locked" >&2\nexit 1\n',
        { mode: 0o755 },
      );
      await writeFile(path.join(bin, 'docker-credential-empty'), '#!/bin/sh\necho "credentials not found in native keychain"\nexit 1\n', {
        mode: 0o755,
      });
    });

    const withHelper = async (helpers: Record<string, string>, extra: object = {}) => {
      await writeFile(path.join(config, 'config.json'), JSON.stringify({ credHelpers: helpers, ...extra }));
      return { DOCKER_CONFIG: config, PATH: `${bin}:${process.env.PATH}` };
    };

    it('pulls and pushes with the credentials a credHelpers helper gives, never printing the secret', async () => {
      const env = await withHelper({ [secured.host]: 'slugkit-test' });
      const res = await build(['--run-image', `docker://${secured.host}/runner:24`, '--image', `docker://${secured.host}/myapp:v1`], env);
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.not.include(secret);
      // Asked once per registry, with the server as docker passes it.
      expect((await readFile(path.join(root, 'asked'), 'utf8')).trim().split('\n')).to.deep.equal([secured.host]);
      const { stdout } = await execFileP('skopeo', [
        'inspect',
        '--tls-verify=false',
        '--creds',
        `deploy:${secret}`,
        `docker://${secured.host}/myapp:v1`,
      ]);
      expect(JSON.parse(stdout).Name).to.equal(`${secured.host}/myapp`);
    });

    it('says in one line which helper failed for which registry, and the credsStore helper is asked otherwise', async () => {
      const args = ['--run-image', `docker://${secured.host}/runner:24`, '--image', `oci:${path.join(root, 'never')}`];
      const cases: Array<[Record<string, string>, object, string]> = [
        [
          { [secured.host]: 'missing' },
          {},
          `credential helper docker-credential-missing for registry ${secured.host}: not found on PATH: install it, or remove it from the Docker config`,
        ],
        [
          { [secured.host]: 'broken' },
          {},
          `credential helper docker-credential-broken for registry ${secured.host}: exited with 1: error getting credentials - err: exit status 1, out: keychain locked`,
        ],
        [
          { [secured.host]: 'empty' },
          {},
          `registry ${secured.host} needs credentials for reading runner:24: set REGISTRY_USERNAME and REGISTRY_PASSWORD, or add ${secured.host} to the auths or credHelpers of $DOCKER_CONFIG/config.json or ~/.docker/config.json`,
        ],
        [
          {},
          { credsStore: 'broken' },
          `credential helper docker-credential-broken for registry ${secured.host}: exited with 1: error getting credentials - err: exit status 1, out: keychain locked`,
        ],
      ];
      for (const [helpers, extra, message] of cases) {
        const res = await build(args, await withHelper(helpers, extra));
        expect(res.exitCode, res.stderr).to.equal(1);
        expect(errorLines(res.stderr), JSON.stringify(helpers)).to.deep.equal([message]);
      }
      // credsStore alone, with a helper that has the credentials.
      const res = await build(args, await withHelper({}, { credsStore: 'slugkit-test' }));
      expect(res.exitCode, res.stderr).to.equal(0);
      expect(res.stderr).to.not.include(secret);
    });
  });
});
