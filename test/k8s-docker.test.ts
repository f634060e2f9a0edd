/**
 * The rendered Pods' containers in real Docker, run exactly as their Pod
 * specs say (test/helpers/k8s.ts dockerRunFor: read-only root, tmpfs where
 * the spec has an emptyDir, all capabilities dropped, no new privileges, a
 * random UID in group 0, the spec's env and args). No API server can run
 * here; this is the behaviour a cluster would see. `--network host`: a
 * container reaches the test's store on 127.0.0.1 only so.
 */

import { createHash } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, ROOT, removeTempDirs, runBuilder, tarOf, tempDir } from './helpers/cli.js';
import {
  BUILDER_IMAGE,
  buildSlugkitImages,
  containerName,
  docker,
  fetchWhenUp,
  RUNNER_IMAGE,
  removeContainers,
  requireDocker,
} from './helpers/docker.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { dockerRunFor, type Obj, parseStream, podSpecOf, restrictedViolations, validateSchema } from './helpers/k8s.js';
import { skipOrFail } from './helpers/tools.js';

const SIG = 'X-Amz-Signature=5151515151515151aaaa';

describe('Kubernetes Pods in Docker, as their specs run them', () => {
  let store: TestHttpServer;
  const objects = new Map<string, Buffer>();
  let appDir: string;
  const containers: string[] = [];
  const uid = 100_000 + Math.floor(Math.random() * 900_000);

  before(async function () {
    this.timeout(1_500_000);
    await requireDocker(this);
    await buildSlugkitImages();
    appDir = await tempDir('slugkit-k8s-app-');
    await cp(path.join(ROOT, 'examples/hello'), appDir, { recursive: true });
    await writeFile(path.join(appDir, 'Procfile'), 'web: node server.js\nrelease: echo releasing && exit ${RELEASE_EXIT:-0}\n');
    const source = await tarOf(appDir, true);
    store = await startHttpServer(async (req, res) => {
      const key = (req.url ?? '/').split('?')[0];
      if (!(req.url ?? '').endsWith(SIG)) return void res.writeHead(403).end();
      if (req.method === 'PUT') {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        objects.set(key, Buffer.concat(chunks));
        return void res.writeHead(200).end();
      }
      const body = key === '/src/hello.tgz' ? source : objects.get(key);
      if (!body) res.writeHead(404).end();
      else res.writeHead(200, { 'content-length': body.length }).end(body);
    });
  });

  afterEach(async () => removeContainers(containers.splice(0)));
  after(async () => {
    await store?.close();
    await removeTempDirs();
  });

  const url = (key: string) => `${store.origin}${key}?${SIG}`;

  async function render(args: string[]): Promise<Obj[]> {
    const res = await runBuilder(['manifests', ...args]);
    expect(res.exitCode, res.stderr).to.equal(0);
    const docs = parseStream(res.stdout.toString());
    for (const o of docs) {
      validateSchema(o);
      const spec = podSpecOf(o);
      if (spec) expect(restrictedViolations(spec)).to.deep.equal([]);
    }
    return docs;
  }

  const secretsOf = (docs: Obj[], extra: Record<string, Record<string, string>> = {}) =>
    Object.fromEntries([...docs.filter((o) => o.kind === 'Secret').map((o) => [o.metadata.name, o.stringData]), ...Object.entries(extra)]);

  /** `docker run` a container of `obj`'s pod spec in the foreground; exit code and output. */
  async function runAttached(obj: Obj, container: string, image: string, secrets: Record<string, Record<string, string>>) {
    const name = containerName('k8s');
    containers.push(name);
    // The run's Node mirror (test/helpers/isolate.ts), for the nodejs buildpack in the build Job.
    const mirror: Record<string, string> = process.env.NODEJS_ORG_MIRROR ? { NODEJS_ORG_MIRROR: process.env.NODEJS_ORG_MIRROR } : {};
    const plan = dockerRunFor(podSpecOf(obj)!, container, image, uid, secrets, mirror);
    const res = await docker(['run', '--rm', '--name', name, ...plan.args], { reject: false, timeout: 600_000, stdin: 'ignore' });
    return { exitCode: res.exitCode, stdout: String(res.stdout), stderr: String(res.stderr) };
  }

  it('the build Job builds from TAR_URL, PUTs the slug and the cache, and the next build gets the cache', async function () {
    this.timeout(900_000);
    const docs = await render([
      'build',
      '--app',
      'hello',
      '--builder-image',
      BUILDER_IMAGE,
      '--tar-url',
      url('/src/hello.tgz'),
      '--put-url',
      url('/slugs/hello.tgz'),
      '--cache-url',
      url('/cache/hello.tgz'),
    ]);
    const job = docs.find((o) => o.kind === 'Job');
    const first = await runAttached(job, 'build', BUILDER_IMAGE, secretsOf(docs));
    expect(first.exitCode, first.stderr).to.equal(0);
    expect(first.stderr).to.include('No stored cache yet').and.to.include('Upload complete');
    expect(first.stderr).not.to.include('5151515151');
    const slug = objects.get('/slugs/hello.tgz');
    expect(slug?.subarray(0, 2)).to.deep.equal(Buffer.from([0x1f, 0x8b]));
    expect(objects.has('/cache/hello.tgz')).to.equal(true);

    const second = await runAttached(job, 'build', BUILDER_IMAGE, secretsOf(docs));
    expect(second.exitCode, second.stderr).to.equal(0);
    expect(second.stderr).to.include('Restoring the build cache').and.to.include('Restored');
  });

  describe('the app, from the slug the build Job stored', () => {
    let docs: Obj[];
    let port: number;

    before(async function () {
      this.timeout(300_000);
      const slug = objects.get('/slugs/hello.tgz');
      if (!slug) skipOrFail(this, 'needs the slug the build Job test PUT, which did not run or failed');
      // The summary a build of this source writes: process types and the slug's digest.
      const out = await tempDir();
      const summary = path.join(out, 'build.json');
      const built = await runBuilder([
        '--source',
        appDir,
        '--cache-dir',
        path.join(out, 'cache'),
        '-o',
        path.join(out, 'slug.tgz'),
        '--summary',
        summary,
      ]);
      expect(built.exitCode, built.stderr).to.equal(0);
      const doc = JSON.parse(await readFile(summary, 'utf8'));
      doc.slug.sha256 = createHash('sha256').update(slug!).digest('hex');
      await writeFile(summary, JSON.stringify(doc));
      port = await freePort();
      docs = await render([
        '--summary',
        summary,
        '--app',
        'hello',
        '--runner-image',
        RUNNER_IMAGE,
        '--slug-url',
        url('/slugs/hello.tgz'),
        '--port',
        String(port),
      ]);
    });

    it('the web Deployment serves HTTP on PORT and stops within its grace on SIGTERM', async function () {
      this.timeout(300_000);
      const web = docs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'hello-web');
      const name = containerName('k8s-web');
      containers.push(name);
      const plan = dockerRunFor(podSpecOf(web)!, 'web', web.spec.template.spec.containers[0].image, uid, secretsOf(docs));
      await docker(['run', '-d', '--name', name, ...plan.args]);
      const got = await fetchWhenUp(`http://127.0.0.1:${port}/`);
      expect(got.status).to.equal(200);
      expect(got.body).to.equal('Hello from slugkit! (dyno web.1, GET /)\n');
      const grace = web.spec.template.spec.terminationGracePeriodSeconds;
      // The kubelet's stop: SIGTERM, then SIGKILL after the grace. 137 would mean the kill came.
      await docker(['stop', '--time', String(grace), name]);
      const state = JSON.parse(String((await docker(['inspect', '--format', '{{json .State}}', name])).stdout));
      expect(state.ExitCode).to.equal(0);
      const logs = await docker(['logs', name]);
      expect(String(logs.stderr)).to.include('Starting web.1: node server.js');
    });

    it("the release Job's exit code decides: 0 completes, non-zero fails", async function () {
      this.timeout(300_000);
      const job = docs.find((o) => o.kind === 'Job');
      expect(job.metadata.labels['slugkit.dev/stage']).to.equal('release');
      const ok = await runAttached(job, 'release', job.spec.template.spec.containers[0].image, secretsOf(docs));
      expect(ok.exitCode, ok.stderr).to.equal(0);
      expect(ok.stdout).to.include('releasing');
      // A config var from the app's config Secret (envFrom) makes the release fail.
      const failed = await runAttached(
        job,
        'release',
        job.spec.template.spec.containers[0].image,
        secretsOf(docs, { 'hello-config': { RELEASE_EXIT: '3' } }),
      );
      expect(failed.exitCode).to.equal(3);
    });
  });
});
