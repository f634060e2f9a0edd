/**
 * End to end with the project's real runner image (Dockerfile.runner, built
 * by test/helpers/docker.ts on locally made base images): `docker save` it,
 * use the tarball and a registry copy as run images, then `docker load` /
 * `docker pull` the app image and `docker run` it: the real slugrunner finds
 * the app layer in /app and serves HTTP. Then rebase onto a new runner.
 */

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { readApp } from '../shared/app/app.js';
import { writeLaunchPlan } from '../shared/app/launch-plan.js';
import { setLogSink } from '../shared/log.js';
import { type ExportOptions, exportImage } from '../slugbuilder/image/export.js';
import { rebaseImage as rebaseParsed } from '../slugbuilder/image/rebase.js';
import { parseReference } from '../slugbuilder/image/reference.js';
import { buildSlugkitImages, containerName, docker, RUNNER_IMAGE, removeContainers, requireDocker } from './helpers/docker.js';
import { execFileP, fetchWhenReady, requireTools } from './helpers/image-fixtures.js';
import { freePort, type RunningRegistry, startRegistry } from './helpers/registry.js';

const SERVER = `const http = require('http');
http.createServer((req, res) => res.end('hello from ' + process.env.DYNO + ' as ' + process.getuid() + '\\n')).listen(process.env.PORT);
`;

/** rebaseImage with references written as text, as a user types them. */
const rebaseImage = (o: { image: string; runImage: string; output?: string; insecureRegistries: string[] }) =>
  rebaseParsed({
    image: parseReference(o.image),
    runImage: parseReference(o.runImage),
    output: o.output ? parseReference(o.output) : undefined,
    insecureRegistries: o.insecureRegistries,
  });

describe('image export onto the real runner image', function () {
  this.timeout(1_200_000);
  let root: string;
  let app: string;
  let registry: RunningRegistry | undefined;
  const containers: string[] = [];
  const images: string[] = [];

  const opts = (over: Partial<ExportOptions>): ExportOptions => ({
    appDir: app,
    runImage: `docker-archive:${path.join(root, 'runner.tar')}`,
    image: `oci-archive:${path.join(root, 'app.tar')}`,
    processTypes: { web: 'node server.js' },
    sourceVersion: 'e2e',
    insecureRegistries: [],
    env: {},
    ...over,
  });

  /** docker run the image and return what its web process answers. */
  async function serve(image: string): Promise<string> {
    const name = containerName('image');
    containers.push(name);
    const port = await freePort();
    await docker(['run', '-d', '--name', name, '-p', `127.0.0.1:${port}:5000`, image]);
    const res = await fetchWhenReady(`http://127.0.0.1:${port}/`, 300);
    expect(res.status).to.equal(200);
    return res.body;
  }

  before(async function () {
    await requireDocker(this);
    requireTools(this, 'docker-registry', 'skopeo');
    await buildSlugkitImages();
    root = await mkdtemp(path.join(os.tmpdir(), 'slugkit-image-e2e-'));
    app = path.join(root, 'app');
    await mkdir(app);
    await writeFile(path.join(app, 'server.js'), SERVER);
    await writeFile(path.join(app, 'Procfile'), 'web: node server.js\n');
    await writeFile(path.join(app, '.release'), '--- {}\n');
    // As a build leaves it: the image's launcher starts the app from its launch plan.
    await writeLaunchPlan(await readApp(app));
    await docker(['save', '-o', path.join(root, 'runner.tar'), RUNNER_IMAGE]);
    registry = await startRegistry();
    await execFileP('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      `docker-archive:${path.join(root, 'runner.tar')}`,
      `docker://${registry.host}/runner:dev`,
    ]);
    setLogSink(() => undefined);
  });
  after(async () => {
    setLogSink((t) => process.stderr.write(t));
    await removeContainers(containers);
    for (const image of images) await docker(['rmi', '-f', image], { reject: false });
    await registry?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('docker load + docker run of the archive: the runner starts the app as its own user', async () => {
    const tag = `slugkit-test/image-e2e:${process.pid}`;
    images.push(tag);
    const result = await exportImage(opts({ image: `oci-archive:${path.join(root, 'app.tar')}:${tag}` }));
    // Dockerfile.runner runs as USER 1500:0; the app layer follows it.
    expect(result.layer).to.include({ uid: 1500, gid: 0 });
    const { stdout } = await docker(['load', '-i', path.join(root, 'app.tar')]);
    expect(String(stdout)).to.include(`Loaded image: ${tag}`);
    expect(await serve(tag)).to.equal('hello from web.1 as 1500\n');
    // /app holds the app, so stdin is the command's, not a new slug.
    const piped = await docker(['run', '-i', '--rm', tag, 'run', 'cat; cat Procfile'], { input: 'data for cat\n' });
    expect(String(piped.stdout)).to.equal('data for cat\nweb: node server.js');
  });

  it('docker pull + docker run of the pushed image, and again after a rebase onto a new runner', async () => {
    const ref = `${registry!.host}/e2e:v1`;
    images.push(ref);
    const pushed = await exportImage(opts({ runImage: `docker://${registry!.host}/runner:dev`, image: `docker://${ref}` }));
    await docker(['pull', ref]);
    expect(await serve(ref)).to.equal('hello from web.1 as 1500\n');

    // A new runner: the same image plus one marker file.
    const next = `slugkit-test/slugrunner:rebase-${process.pid}`;
    images.push(next);
    const context = path.join(root, 'next-runner');
    await mkdir(context);
    await writeFile(
      path.join(context, 'Dockerfile'),
      `FROM ${RUNNER_IMAGE}\nUSER root\nRUN echo rebased > /etc/slugkit-runner-rev\nUSER 1500:0\n`,
    );
    await docker(['build', '-q', '-t', next, context]);
    await docker(['save', '-o', path.join(root, 'next.tar'), next]);
    await execFileP('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      `docker-archive:${path.join(root, 'next.tar')}`,
      `docker://${registry!.host}/runner:next`,
    ]);

    const rebased = await rebaseImage({
      image: `docker://${ref}`,
      runImage: `docker://${registry!.host}/runner:next`,
      output: `docker://${registry!.host}/e2e:v2`,
      insecureRegistries: [],
    });
    expect(rebased.appLayers).to.deep.equal([pushed.launcher.digest, pushed.layer.digest]);
    const ref2 = `${registry!.host}/e2e:v2`;
    images.push(ref2);
    await docker(['pull', ref2]);
    expect(await serve(ref2)).to.equal('hello from web.1 as 1500\n');
    const name = containers[containers.length - 1];
    const { stdout } = await docker(['exec', name, 'cat', '/etc/slugkit-runner-rev']);
    expect(String(stdout).trim()).to.equal('rebased');
  });
});
