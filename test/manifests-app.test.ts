/**
 * slugbuilder/manifests/app.ts: an app's objects from a summary, as plain
 * data (the end-to-end suite, k8s-manifests, runs the CLI over real builds).
 */
import { expect } from 'chai';
import { type AppManifestOptions, type BuildSummary, renderAppManifests, repositoryOf } from '../slugbuilder/manifests/app.js';
import { type Obj, validateSchema } from './helpers/k8s.js';

const SUMMARY: BuildSummary = {
  slug: { sha256: 'ab'.repeat(32) },
  process_types: { worker: 'node worker.js', web: 'node server.js', release: 'node migrate.js' },
  source_version: 'c0ffee',
};

function options(more: Partial<AppManifestOptions> = {}): AppManifestOptions {
  return {
    app: 'shop',
    summary: SUMMARY,
    replicas: {},
    runnerImage: 'registry.example/slugrunner:1',
    slugUrl: 'https://store.example/shop.tgz?sig=secret',
    configSecret: 'shop-config',
    port: 5000,
    graceSeconds: 30,
    releaseTimeoutSeconds: 600,
    ...more,
  };
}

const render = (more: Partial<AppManifestOptions> = {}): Obj[] => renderAppManifests(options(more));
const names = (objects: Obj[]) => objects.map((o) => `${o.kind} ${o.metadata?.name}`);

describe('manifests/app.ts: renderAppManifests', () => {
  it('renders the slug Secret, the release Job, one Deployment per type and the web Service, in that order', () => {
    const objects = render();
    expect(names(objects)).to.deep.equal([
      'Secret shop-slug-ababababab',
      'Job shop-release-ababababab',
      'Deployment shop-web',
      'Deployment shop-worker',
      'Service shop-web',
    ]);
    for (const o of objects) validateSchema(o);
  });

  it('gives the same objects for the same input', () => {
    expect(JSON.stringify(render())).to.equal(JSON.stringify(render()));
  });

  it('reads the slug URL from the Secret in every pod, and shows it in none', () => {
    const objects = render();
    expect(objects[0].stringData).to.deep.equal({ SLUG_URL: 'https://store.example/shop.tgz?sig=secret' });
    expect(JSON.stringify(objects.slice(1))).not.to.include('sig=secret');
    const c = objects[2].spec.template.spec.containers[0];
    expect(c.args).to.deep.equal(['--grace', '30s', 'start', 'web']);
    expect(c.env).to.deep.equal([
      { name: 'SLUG_URL', valueFrom: { secretKeyRef: { name: 'shop-slug-ababababab', key: 'SLUG_URL' } } },
      { name: 'PORT', value: '5000' },
    ]);
  });

  it('uses the pushed image by digest, with no Secret and no /app scratch volume', () => {
    const digest = `sha256:${'cd'.repeat(32)}`;
    const summary = { ...SUMMARY, image: { reference: 'docker://registry.example/shop:latest', digest } };
    const objects = render({ summary, slugUrl: undefined });
    expect(names(objects)[0]).to.equal('Job shop-release-cdcdcdcdcd');
    const job = objects[0];
    expect(job.spec.template.spec.containers[0].image).to.equal(`registry.example/shop@${digest}`);
    expect(job.spec.template.spec.volumes.map((v: Obj) => v.name)).to.deep.equal(['tmp']);
  });

  it('refuses a slug-only build without --slug-url, and --replicas for a type the build lacks', () => {
    expect(() => render({ slugUrl: undefined })).to.throw(/the build pushed no image: pass --slug-url URL/);
    expect(() => render({ replicas: { clock: 1 } })).to.throw(
      '--replicas names "clock", which is not a process type of this build: it has web, worker',
    );
    expect(() => render({ replicas: { release: 1 } })).to.throw(/--replicas names "release"/);
  });

  it('names the repository of a reference', () => {
    expect(repositoryOf('docker://host:5000/a/b:tag')).to.equal('host:5000/a/b');
    expect(repositoryOf(`host/a@sha256:${'0'.repeat(64)}`)).to.equal('host/a');
  });
});
