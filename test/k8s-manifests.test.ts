/**
 * `slugbuilder manifests` from real builds' summaries, through the real CLI:
 * every object is checked against the Kubernetes OpenAPI schema and the
 * restricted Pod Security Standard (test/helpers/k8s.ts), and the output is
 * the same bytes for the same input.
 */

import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { makeApp, makeBuildpack, ROOT, removeTempDirs, runBuilder, tempDir } from './helpers/cli.js';
import { type Obj, parseStream, podSpecOf, restrictedViolations, validateSchema } from './helpers/k8s.js';
import { startKubeApi } from './helpers/kube-api.js';
import { requireTools } from './helpers/tools.js';

const SIGNED_SLUG = 'https://store.example/apps/shop/v7.tgz?X-Amz-Credential=AKIAEXAMPLE1234&X-Amz-Signature=0123456789abcdef0123';

function checkAll(objects: Obj[]): void {
  for (const o of objects) {
    validateSchema(o);
    const spec = podSpecOf(o);
    if (spec) expect(restrictedViolations(spec), `${o.kind} ${o.metadata.name}`).to.deep.equal([]);
  }
}

const byKind = (objects: Obj[], kind: string) => objects.filter((o) => o.kind === kind);

describe('slugbuilder manifests (an app)', () => {
  let summary: string;

  before(async () => {
    const app = await makeApp({ Procfile: 'web: node server.js\nworker: node worker.js\nrelease: node migrate.js\n', 'server.js': '' });
    const bp = await makeBuildpack({ detect: 'echo test', compile: 'true' });
    const out = await tempDir();
    summary = path.join(out, 'build.json');
    const res = await runBuilder([
      '--source',
      app,
      '--buildpack',
      bp,
      '--cache-dir',
      path.join(out, 'cache'),
      '-o',
      path.join(out, 'slug.tgz'),
      '--summary',
      summary,
      '--source-version',
      'abc123',
    ]);
    expect(res.exitCode, res.stderr).to.equal(0);
  });

  after(removeTempDirs);

  it('renders valid, restricted objects: the slug Secret and release Job, a Deployment per type, a Service for web', async () => {
    const res = await runBuilder([
      'manifests',
      '--summary',
      summary,
      '--app',
      'shop',
      '--namespace',
      'apps',
      '--replicas',
      'web=2',
      '--slug-url',
      SIGNED_SLUG,
    ]);
    expect(res.exitCode, res.stderr).to.equal(0);
    expect(res.stderr).to.equal('');
    const objects = parseStream(res.stdout.toString());
    checkAll(objects);
    const sha = JSON.parse(await readFile(summary, 'utf8')).slug.sha256.slice(0, 10);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).to.deep.equal([
      `Secret/shop-slug-${sha}`,
      `Job/shop-release-${sha}`,
      'Deployment/shop-web',
      'Deployment/shop-worker',
      'Service/shop-web',
    ]);
    for (const o of objects) expect(o.metadata.namespace).to.equal('apps');
    // Applied first with -l slugkit.dev/stage=release: the release Job and the Secret it reads.
    expect(objects.filter((o) => o.metadata.labels['slugkit.dev/stage'] === 'release').map((o) => o.kind)).to.deep.equal(['Secret', 'Job']);

    // The presigned slug URL is in the Secret alone.
    const [secret] = byKind(objects, 'Secret');
    expect(secret.stringData).to.deep.equal({ SLUG_URL: SIGNED_SLUG });
    for (const o of objects.filter((x) => x.kind !== 'Secret')) expect(JSON.stringify(o)).not.to.include('X-Amz-Signature');

    const [job] = byKind(objects, 'Job');
    expect(job.spec).to.include({ backoffLimit: 0, activeDeadlineSeconds: 1800, ttlSecondsAfterFinished: 86400 });
    expect(job.spec.template.spec.restartPolicy).to.equal('Never');
    expect(job.spec.template.spec.containers[0].args).to.deep.equal(['--grace', '30s', 'start', 'release']);

    const [web, worker] = byKind(objects, 'Deployment');
    expect(web.spec.replicas).to.equal(2);
    expect(worker.spec.replicas).to.equal(0); // Heroku's default for non-web types
    const pod = web.spec.template.spec;
    expect(pod.terminationGracePeriodSeconds).to.be.above(30);
    const c = pod.containers[0];
    expect(c.image).to.equal('slugrunner:latest');
    expect(c.args).to.deep.equal(['--grace', '30s', 'start', 'web']);
    expect(c.env).to.deep.include({ name: 'PORT', value: '5000' });
    expect(c.env).to.deep.include({ name: 'SLUG_URL', valueFrom: { secretKeyRef: { name: secret.metadata.name, key: 'SLUG_URL' } } });
    expect(c.envFrom).to.deep.equal([{ secretRef: { name: 'shop-config', optional: true } }]);
    expect(c.readinessProbe.tcpSocket.port).to.equal('http');
    expect(c.livenessProbe.tcpSocket.port).to.equal('http');
    expect(c.ports).to.deep.equal([{ name: 'http', containerPort: 5000, protocol: 'TCP' }]);
    // The slug is unpacked into /app at start: /app and /tmp are the only writable places.
    expect(c.volumeMounts.map((m: Obj) => m.mountPath)).to.deep.equal(['/app', '/tmp']);
    expect(pod.volumes.every((v: Obj) => v.emptyDir)).to.equal(true);
    expect(web.spec.template.metadata.annotations).to.deep.equal({ 'slugkit.dev/release': sha, 'slugkit.dev/source-version': 'abc123' });
    expect(worker.spec.template.spec.containers[0].ports).to.equal(undefined);

    const [service] = byKind(objects, 'Service');
    expect(service.spec.selector).to.deep.equal(web.spec.selector.matchLabels);
    expect(service.spec.ports).to.deep.equal([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
  });

  it('gives the same bytes for the same input', async () => {
    const args = ['manifests', '--summary', summary, '--app', 'shop', '--slug-url', SIGNED_SLUG, '--replicas', 'worker=3,web=1'];
    const a = await runBuilder(args);
    const b = await runBuilder(args);
    expect(a.exitCode).to.equal(0);
    expect(a.stdout.equals(b.stdout)).to.equal(true);
    expect(a.stdout.toString()).not.to.match(/[&*]a\d/); // no YAML anchors: each object reads on its own
  });

  it('uses the pushed image by digest, with /app read-only from the image', async () => {
    const doc = JSON.parse(await readFile(summary, 'utf8'));
    const digest = 'sha256:' + 'ab'.repeat(32);
    doc.image = { reference: 'docker://registry.example:5000/shop:v7', digest };
    const withImage = path.join(path.dirname(summary), 'image.json');
    await writeFile(withImage, JSON.stringify(doc));
    const res = await runBuilder(['manifests', '--summary', withImage, '--app', 'shop']);
    expect(res.exitCode, res.stderr).to.equal(0);
    const objects = parseStream(res.stdout.toString());
    checkAll(objects);
    expect(byKind(objects, 'Secret')).to.deep.equal([]);
    const web = objects.find((o) => o.metadata.name === 'shop-web');
    const c = web.spec.template.spec.containers[0];
    expect(c.image).to.equal(`registry.example:5000/shop@${digest}`);
    expect(c.env.map((e: Obj) => e.name)).to.deep.equal(['PORT']);
    expect(c.volumeMounts.map((m: Obj) => m.mountPath)).to.deep.equal(['/tmp']);
    expect(objects.find((o) => o.kind === 'Job').metadata.name).to.equal('shop-release-abababab' + 'ab');
  });

  it('refuses what it cannot render with one line and exit 2, printing no URL query', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['--summary', summary, '--app', 'shop', '--slug-url', SIGNED_SLUG, '--replicas', 'clock=1'],
        /--replicas names "clock", which is not a process type of this build: it has web, worker/,
      ],
      [['--summary', summary, '--app', 'Shop_1', '--slug-url', SIGNED_SLUG], /--app "Shop_1" cannot name Kubernetes objects/],
      [['--summary', summary, '--app', 'shop'], /pass --slug-url URL/],
      [['--summary', summary, '--app', 'shop', '--slug-url', SIGNED_SLUG, '--replicas', 'web=two'], /--replicas expects TYPE=N/],
      [['--app', 'shop', '--slug-url', SIGNED_SLUG], /needs --summary FILE/],
      [['--summary', summary, '--app', 'shop', '--tar-url', 'https://x/y'], /--tar-url goes with "manifests build"/],
    ];
    for (const [args, message] of cases) {
      const res = await runBuilder(['manifests', ...args]);
      expect(res.exitCode, res.stderr).to.equal(2);
      expect(res.stdout.length).to.equal(0);
      expect(res.stderr.trimEnd().split('\n')).to.have.length(1);
      expect(res.stderr)
        .to.match(/^ ! {5}/)
        .and.to.match(message);
      expect(res.stderr).not.to.include('X-Amz');
    }
  });

  it('says so when the summary is not one', async () => {
    const bogus = path.join(path.dirname(summary), 'bogus.json');
    await writeFile(bogus, '{"hello": 1}\n');
    const res = await runBuilder(['manifests', '--summary', bogus, '--app', 'shop', '--slug-url', SIGNED_SLUG]);
    expect(res.exitCode).to.equal(1);
    expect(res.stderr).to.match(/^ ! {5}--summary .*bogus\.json is not a slugbuilder build summary/);
  });
});

describe('slugbuilder manifests build (a build as a Job)', () => {
  const TAR = 'https://store.example/src/shop.tgz?X-Amz-Signature=aaaaaaaaaaaaaaaaaaaa';
  const PUT = 'https://store.example/slugs/shop.tgz?X-Amz-Signature=bbbbbbbbbbbbbbbbbbbb';
  const CACHE = 'https://store.example/cache/shop.tgz?X-Amz-Signature=cccccccccccccccccccc';

  it('slug mode: one restricted container, the URLs from a Secret, backoffLimit 0 and deadlines', async () => {
    const res = await runBuilder([
      'manifests',
      'build',
      '--app',
      'shop',
      '--tar-url',
      TAR,
      '--put-url',
      PUT,
      '--cache-url',
      CACHE,
      '--buildpack',
      'https://github.com/heroku/heroku-buildpack-nodejs#v250',
    ]);
    expect(res.exitCode, res.stderr).to.equal(0);
    const objects = parseStream(res.stdout.toString());
    checkAll(objects);
    const [secret, job] = objects;
    expect([secret.kind, job.kind]).to.deep.equal(['Secret', 'Job']);
    expect(secret.metadata.name)
      .to.equal(job.metadata.name)
      .and.to.match(/^shop-build-[0-9a-f]{10}$/);
    expect(secret.stringData).to.deep.equal({ TAR_URL: TAR, PUT_URL: PUT, CACHE_URL: CACHE });
    expect(JSON.stringify(job)).not.to.include('X-Amz-Signature');
    expect(job.spec).to.include({ backoffLimit: 0, activeDeadlineSeconds: 1800, ttlSecondsAfterFinished: 86400 });
    const pod = job.spec.template.spec;
    expect(pod.restartPolicy).to.equal('Never');
    expect(pod.containers).to.have.length(1);
    const c = pod.containers[0];
    expect(c.args).to.deep.equal(['--app', 'shop', '--buildpack', 'https://github.com/heroku/heroku-buildpack-nodejs#v250']);
    expect(c.env.filter((e: Obj) => e.valueFrom).map((e: Obj) => e.name)).to.deep.equal(['TAR_URL', 'PUT_URL', 'CACHE_URL']);
    expect(c.env).to.deep.include({ name: 'ENV_DIR', value: '/etc/slugkit/config-vars' });
    expect(c.volumeMounts.map((m: Obj) => m.mountPath)).to.deep.equal(['/tmp', '/cache', '/etc/slugkit/config-vars']);
    expect(pod.volumes.find((v: Obj) => v.name === 'config-vars').secret).to.deep.equal({ secretName: 'shop-config', optional: true });
  });

  it('image mode: the registry credentials are mounted only into the push step, after a build step without them', async () => {
    const res = await runBuilder([
      'manifests',
      'build',
      '--app',
      'shop',
      '--tar-url',
      TAR,
      '--image',
      'docker://registry.example/shop:v7',
      '--run-image',
      'docker://registry.example/runner:24',
      '--registry-secret',
      'push-creds',
    ]);
    expect(res.exitCode, res.stderr).to.equal(0);
    const objects = parseStream(res.stdout.toString());
    checkAll(objects);
    const pod = objects[1].spec.template.spec;
    const [build] = pod.initContainers;
    const [push] = pod.containers;
    expect(build.args).to.deep.equal([
      '--app',
      'shop',
      '--run-image',
      'docker://registry.example/runner:24',
      '--image',
      'oci:/workspace/image',
    ]);
    expect(push.args).to.deep.equal([
      'rebase',
      'oci:/workspace/image',
      '--run-image',
      'docker://registry.example/runner:24',
      '--image',
      'docker://registry.example/shop:v7',
    ]);
    const registry = pod.volumes.find((v: Obj) => v.secret?.secretName === 'push-creds');
    expect(registry.secret.items).to.deep.equal([{ key: '.dockerconfigjson', path: 'config.json' }]);
    expect(build.volumeMounts.map((m: Obj) => m.name)).not.to.include(registry.name);
    expect(push.volumeMounts.find((m: Obj) => m.name === registry.name)).to.include({ readOnly: true });
    expect(push.env).to.deep.equal([{ name: 'DOCKER_CONFIG', value: '/etc/slugkit/registry' }]);
    expect(push.env.concat(build.env).map((e: Obj) => e.name)).not.to.include('REGISTRY_PASSWORD');
  });

  it('needs a destination', async () => {
    const res = await runBuilder(['manifests', 'build', '--app', 'shop', '--tar-url', TAR]);
    expect(res.exitCode).to.equal(2);
    expect(res.stderr).to.match(/^ ! {5}manifests build needs --put-url URL \(a slug\) or --image REF/);
  });
});

describe('the manifest checks themselves', () => {
  it('reject a wrongly typed field and a pod outside the restricted profile', () => {
    const bad = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: { selector: {}, template: { spec: { containers: [{ name: 'c', image: 'i', securityContext: { runAsNonRoot: 'yes' } }] } } },
    };
    expect(() => validateSchema(bad)).to.throw(/runAsNonRoot must be boolean/);
    const loose = {
      containers: [{ name: 'c', image: 'i', securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }],
      volumes: [{ name: 'h', hostPath: { path: '/' } }],
    };
    expect(restrictedViolations(loose as Obj)).to.include.members([
      'volume h: hostPath',
      'container c: allowPrivilegeEscalation is not false',
      'container c: capabilities do not drop ALL',
      'container c: adds SYS_ADMIN',
      'container c: root filesystem not read-only',
    ]);
  });
});

/** The `wait_job` function as docs/kubernetes.md gives it. */
async function waitJobRecipe(): Promise<string> {
  const doc = await readFile(path.join(ROOT, 'docs/kubernetes.md'), 'utf8');
  const block = /```bash\n(# wait_job[\s\S]*?\nwait_job\(\) \{[\s\S]*?\n\})\n```/.exec(doc);
  if (!block) throw new Error('docs/kubernetes.md has no wait_job function in a bash block');
  return block[1];
}

/** The conditions the Job controller leaves on a Job that ended (Kubernetes 1.31+ adds the first of each). */
const ENDED = {
  failed: {
    failed: 1,
    conditions: [
      { type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
      { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
    ],
  },
  complete: {
    succeeded: 1,
    conditions: [
      { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached' },
      { type: 'Complete', status: 'True', reason: 'CompletionsReached' },
    ],
  },
};

describe('docs/kubernetes.md: wait_job ends on either outcome of a Job (the real kubectl, a stand-in API server)', function () {
  this.timeout(60_000);
  let job: Obj;
  after(removeTempDirs);

  before(async function () {
    requireTools(this, 'kubectl');
    const summary = path.join(await tempDir(), 'build.json');
    await writeFile(
      summary,
      JSON.stringify({ slug: { sha256: 'ab'.repeat(32) }, process_types: { web: 'node server.js', release: 'node migrate.js' } }),
    );
    const res = await runBuilder(['manifests', '--summary', summary, '--app', 'shop', '--slug-url', SIGNED_SLUG]);
    expect(res.exitCode, res.stderr).to.equal(0);
    job = parseStream(String(res.stdout)).find((o) => o.kind === 'Job');
  });

  it('the status fields it reads are the Job schema’s, on the rendered Job', () => {
    for (const status of Object.values(ENDED)) validateSchema({ ...job, status });
    expect(() => validateSchema({ ...job, status: { conditions: [{ type: 'Failed', status: true }] } })).to.throw(/status must be string/);
  });

  for (const [outcome, code] of [
    ['failed', 1],
    ['complete', 0],
  ] as const) {
    it(`returns ${code} soon after the Job is ${outcome}, long before its timeout`, async () => {
      const api = await startKubeApi(job, await tempDir());
      try {
        setTimeout(() => api.setStatus({ active: 1 }), 300);
        setTimeout(() => api.setStatus(ENDED[outcome]), 1500);
        const started = Date.now();
        const r = await execa('bash', ['-c', `${await waitJobRecipe()}\nwait_job "job/${job.metadata.name}" 120s`], {
          env: { KUBECONFIG: api.kubeconfig, HOME: await tempDir() },
          reject: false,
          timeout: 50_000,
        });
        expect(r.exitCode, r.stderr).to.equal(code);
        expect(Date.now() - started).to.be.below(30_000);
      } finally {
        await api.close();
      }
    });
  }

  it('returns 1 when the timeout passes first', async () => {
    const api = await startKubeApi(job, await tempDir());
    try {
      const r = await execa('bash', ['-c', `${await waitJobRecipe()}\nwait_job "job/${job.metadata.name}" 2s`], {
        env: { KUBECONFIG: api.kubeconfig, HOME: await tempDir() },
        reject: false,
        timeout: 50_000,
      });
      expect(r.exitCode, r.stderr).to.equal(1);
    } finally {
      await api.close();
    }
  });
});
