/**
 * A stand-in Kubernetes API server on 127.0.0.1 for the one thing the docs'
 * recipes ask of a cluster: a Job read and watched by `kubectl wait` and
 * `kubectl get`. It answers the legacy discovery documents, GET, list and
 * watch of jobs in one namespace, and pushes a MODIFIED event when the test
 * sets the Job's status, as the Job controller would.
 */
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Obj } from './k8s.js';

export interface KubeApi {
  /** A kubeconfig file pointing kubectl at this server. */
  kubeconfig: string;
  /** Replace the Job's status (as the controller does) and tell every watcher. */
  setStatus(status: Obj): void;
  close(): Promise<void>;
}

const json = (res: http.ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

export async function startKubeApi(job: Obj, dir: string): Promise<KubeApi> {
  const ns = job.metadata.namespace ?? 'default';
  let version = 1;
  let current: Obj = { ...job, metadata: { ...job.metadata, namespace: ns, uid: 'f00d', resourceVersion: '1' } };
  const watchers = new Set<http.ServerResponse>();
  const jobsPath = `/apis/batch/v1/namespaces/${ns}/jobs`;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    if (p === '/version') return json(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0' });
    if (p === '/api') return json(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (p === '/apis') {
      const v = { groupVersion: 'batch/v1', version: 'v1' };
      return json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [{ name: 'batch', versions: [v], preferredVersion: v }] });
    }
    if (p === '/api/v1') return json(res, 200, { kind: 'APIResourceList', groupVersion: 'v1', resources: [] });
    if (p === '/apis/batch/v1') {
      const jobs = { name: 'jobs', singularName: 'job', namespaced: true, kind: 'Job', verbs: ['get', 'list', 'watch'] };
      return json(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'batch/v1', resources: [jobs] });
    }
    if (p === `${jobsPath}/${current.metadata.name}`) return json(res, 200, current);
    if (p === jobsPath && url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      watchers.add(res);
      res.on('close', () => watchers.delete(res));
      if (Number(url.searchParams.get('resourceVersion') ?? 0) < version)
        res.write(`${JSON.stringify({ type: 'MODIFIED', object: current })}\n`);
      return;
    }
    if (p === jobsPath) {
      return json(res, 200, { kind: 'JobList', apiVersion: 'batch/v1', metadata: { resourceVersion: String(version) }, items: [current] });
    }
    json(res, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'stand-in', cluster: { server: `http://127.0.0.1:${port}` } }],
      users: [{ name: 'nobody', user: {} }],
      contexts: [{ name: 'stand-in', context: { cluster: 'stand-in', user: 'nobody', namespace: ns } }],
      'current-context': 'stand-in',
    }),
  );
  return {
    kubeconfig,
    setStatus(status) {
      version += 1;
      current = { ...current, metadata: { ...current.metadata, resourceVersion: String(version) }, status };
      for (const w of watchers) w.write(`${JSON.stringify({ type: 'MODIFIED', object: current })}\n`);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const w of watchers) w.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
