/**
 * Dockerfile.builder in real Docker: the image is built from this working
 * tree on locally made base images (see helpers/docker.ts), then used exactly
 * as the README says: `git archive HEAD | docker run -i --rm slugbuilder > slug.tgz`.
 */

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { BUILDER, ROOT, slugPaths } from './helpers/cli.js';
import {
  BUILDER_IMAGE,
  buildSlugkitImages,
  buildSlugWithDocker,
  docker,
  gitRepoOf,
  imageConfig,
  requireDocker,
  STACK_IMAGE,
} from './helpers/docker.js';

const HELLO = join(ROOT, 'examples/hello');

describe('Dockerfile.builder (real Docker)', () => {
  let work: string;

  before(async function () {
    // First run on a fresh machine: debootstrap + npm ci inside the build.
    this.timeout(1_500_000);
    await requireDocker(this);
    await buildSlugkitImages();
    work = await mkdtemp(join(tmpdir(), 'slugkit-docker-builder-'));
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('is configured as documented: slugbuilder entrypoint, unprivileged user, /cache as the cache dir', async () => {
    const config = await imageConfig(BUILDER_IMAGE);
    expect(config.Entrypoint).to.deep.equal(['slugbuilder']);
    expect(config.User).to.match(/^\d+:0$/);
    expect(config.User).not.to.match(/^0:/);
    expect(config.Env).to.include('SLUGBUILDER_CACHE_DIR=/cache');
  });

  it('holds only production dependencies, the compiled product and the bundled buildpacks', async () => {
    const result = await docker([
      'run',
      '--rm',
      '--entrypoint',
      'sh',
      BUILDER_IMAGE,
      '-c',
      'ls /opt/slugkit; echo --; ls /opt/slugkit/dist; echo --; ls /opt/slugkit/node_modules; echo --; ls /opt/slugkit/buildpacks; echo --; ls /opt/slugkit/bin',
    ]);
    const [top, dist, modules, buildpacks, bin] = String(result.stdout)
      .split('--\n')
      .map((s) => s.trim().split('\n'));
    expect(top).to.have.members(['bin', 'buildpacks', 'dist', 'node_modules', 'package.json']);
    // What the image launcher layer is made from (slugbuilder/image/launcher-layer.ts).
    expect(bin).to.have.members(['slugrunner', 'dyno.bash']);
    expect(dist).to.include.members(['shared', 'slugbuilder', 'slugrunner']);
    expect(dist).not.to.include('test');
    expect(modules).to.include.members(['tar', 'execa', 'yaml', 'undici']);
    expect(modules).not.to.include.members(['typescript']);
    expect(modules).not.to.include('mocha');
    expect(modules).not.to.include('esbuild');
    expect(buildpacks).to.include.members(['nodejs', 'procfile']);
  });

  it('sends docker build only what the images need (.dockerignore)', async function () {
    this.timeout(300_000);
    const tag = `slugkit-test/context:${process.pid}`;
    try {
      await docker([
        'build',
        '-q',
        '-f',
        join(ROOT, 'test/fixtures/docker/context.Dockerfile'),
        '--build-arg',
        `STACK_IMAGE=${STACK_IMAGE}`,
        '-t',
        tag,
        ROOT,
      ]);
      const listing = await docker(['run', '--rm', tag, 'sh', '-c', 'ls -A /context; du -sk /context']);
      const lines = String(listing.stdout).trim().split('\n');
      const kilobytes = Number(lines.pop()?.split(/\s+/)[0]);
      expect(lines).to.have.members([
        'bin',
        'buildpacks',
        'package-lock.json',
        'package.json',
        'scripts',
        'shared',
        'slugbuilder',
        'slugrunner',
        'tsconfig.json',
      ]);
      expect(kilobytes).to.be.below(10_000);
    } finally {
      await docker(['rmi', '-f', tag], { reject: false });
    }
  });

  it('git archive HEAD | docker run -i --rm slugbuilder > slug.tgz builds examples/hello with no flags or mounts (but the Node mirror of the test run)', async function () {
    this.timeout(300_000);
    const slug = join(work, 'hello.tgz');
    const build = await buildSlugWithDocker(HELLO, slug);
    expect(build.exitCode, build.stderr).to.equal(0);
    expect(build.stderr).to.match(/^-----> /m);
    const paths = await slugPaths(slug);
    expect(paths).to.include.members(['Procfile', 'server.js', '.release']);

    // The same source through the host CLI gives the byte-identical slug:
    // the image adds nothing of its own to the artifact.
    const repo = await gitRepoOf(HELLO);
    try {
      const hostSlug = join(work, 'hello-host.tgz');
      await execa('git', ['archive', 'HEAD'], { cwd: repo, buffer: false }).pipe(process.execPath, [BUILDER], {
        stdout: { file: hostSlug },
      });
      expect(Buffer.compare(await readFile(slug), await readFile(hostSlug))).to.equal(0);
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });

  it('fails with exit 1, one clear line on stderr and nothing on stdout when no buildpack detects the app', async function () {
    this.timeout(300_000);
    const app = join(work, 'undetectable');
    await mkdir(app, { recursive: true });
    await writeFile(join(app, 'notes.txt'), 'no Procfile, no package.json, nothing to build\n');
    const slug = join(work, 'undetectable.tgz');
    const build = await buildSlugWithDocker(app, slug);
    expect(build.exitCode).to.equal(1);
    expect(build.slugBytes).to.equal(0);
    expect(build.stderr).to.match(/^ ! .*buildpack/im);
  });

  it('keeps the build cache in a volume mounted at /cache across builds', async function () {
    this.timeout(300_000);
    const volume = `slugkit-test-cache-${process.pid}`;
    try {
      const build = await buildSlugWithDocker(HELLO, join(work, 'cached.tgz'), ['-v', `${volume}:/cache`]);
      expect(build.exitCode, build.stderr).to.equal(0);
      const listing = await docker([
        'run',
        '--rm',
        '-v',
        `${volume}:/cache`,
        '--entrypoint',
        'sh',
        BUILDER_IMAGE,
        '-c',
        'find /cache -mindepth 1 | head -n 50',
      ]);
      expect(String(listing.stdout).split('\n')).to.include('/cache/cache');
    } finally {
      await docker(['volume', 'rm', '-f', volume], { reject: false });
    }
  });
});
