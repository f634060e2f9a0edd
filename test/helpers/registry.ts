/**
 * Real registries for the image tests. `startRegistry` runs Debian's
 * `docker-registry` (distribution 2.8) with a config file of our own: it
 * listens on 127.0.0.1 only (the packaged config listens on every interface)
 * and stores blobs in a temp dir. `startProxy` puts a small Node HTTP server
 * in front of it that can demand Basic or Bearer-token auth (with its own
 * token endpoint), inject failures (503s, connection resets) and records every
 * request, so tests can count uploads.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export interface RunningRegistry {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string;
  dir: string;
  /** Everything the registry printed so far (its log). */
  output(): string;
  stop(): Promise<void>;
}

/** One free-port helper for every test server. */
import { freePort } from './cli.js';

export { freePort };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until `url` answers at all (any status), or fail with what the process said. */
async function waitForHttp(url: string, child: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`registry exited with ${child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`registry did not answer ${url}:\n${output()}`);
}

export interface RegistryOptions {
  /** Require htpasswd (bcrypt) Basic auth for this user. Needs `htpasswd` from apache2-utils. */
  htpasswd?: { username: string; password: string };
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<RunningRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slugkit-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let auth = '';
  if (opts.htpasswd) {
    const line = execFileSync('htpasswd', ['-Bbn', opts.htpasswd.username, opts.htpasswd.password], { encoding: 'utf8' });
    await writeFile(path.join(dir, 'htpasswd'), line.trim() + '\n');
    auth = `auth:\n  htpasswd:\n    realm: slugkit-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  }
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${host}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    auth,
  ].join('\n');
  const configFile = path.join(dir, 'config.yml');
  await writeFile(configFile, config);
  let out = '';
  const child = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const output = () => out;
  try {
    await waitForHttp(`http://${host}/v2/`, child, output);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    host,
    dir,
    output,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ProxiedRequest {
  method: string;
  url: string;
  status: number;
  /** Request body bytes the proxy passed on to the registry. */
  bytes: number;
}

export type Fault = 'reset' | number | undefined;

export interface ProxyOptions {
  auth?: { scheme: 'basic' | 'bearer'; username: string; password: string };
  /** Decide per request whether to fail it before it reaches the registry. */
  fault?: (req: http.IncomingMessage) => Fault;
  /** Rewrite absolute Location headers to relative ones (the spec allows both). */
  relativeLocation?: boolean;
}

export interface RunningProxy {
  host: string;
  requests: ProxiedRequest[];
  /** Scopes asked for at the token endpoint, in order. */
  tokenScopes: string[][];
  stop(): Promise<void>;
}

/** `repository:NAME:pull,push` for a /v2/NAME/... path. */
function scopeFor(url: string): string | undefined {
  const m = /^\/v2\/(.+?)\/(blobs|manifests|tags)\//.exec(url);
  return m ? `repository:${m[1]}:pull,push` : undefined;
}

export async function startProxy(upstream: string, opts: ProxyOptions = {}): Promise<RunningProxy> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const requests: ProxiedRequest[] = [];
  const tokenScopes: string[][] = [];
  const tokens = new Map<string, string[]>();
  const basic = opts.auth ? 'Basic ' + Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64') : '';

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    let bytes = 0;
    const record = (status: number) => requests.push({ method: req.method ?? '', url, status, bytes });

    if (url.startsWith('/token')) {
      // Token endpoint of the Bearer flow: Basic credentials in, a token for the asked scopes out.
      if (req.headers.authorization !== basic) {
        record(401);
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
        return;
      }
      const scopes = new URL(url, `http://${host}`).searchParams.getAll('scope');
      tokenScopes.push(scopes);
      const token = randomBytes(12).toString('hex');
      tokens.set(token, scopes);
      record(200);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }

    const fault = opts.fault?.(req);
    if (fault === 'reset') {
      record(0);
      req.socket.destroy();
      return;
    }
    if (typeof fault === 'number') {
      record(fault);
      req.resume();
      res
        .writeHead(fault, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"UNAVAILABLE","message":"injected by the test proxy"}]}');
      return;
    }

    if (opts.auth?.scheme === 'basic' && req.headers.authorization !== basic) {
      record(401);
      req.resume();
      res.writeHead(401, { 'www-authenticate': 'Basic realm="slugkit-test"' }).end();
      return;
    }
    if (opts.auth?.scheme === 'bearer') {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const granted = token ? tokens.get(token) : undefined;
      const needed = scopeFor(url);
      if (!granted || (needed && !granted.some((s) => s === needed || s.startsWith(needed.replace(/pull,push$/, ''))))) {
        record(401);
        req.resume();
        const scope = needed ? `,scope="${needed}"` : '';
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="slugkit-test"${scope}` }).end();
        return;
      }
    }

    const headers = { ...req.headers };
    delete headers.authorization;
    const [uhost, uport] = upstream.split(':');
    const forward = http.request({ host: uhost, port: Number(uport), method: req.method, path: url, headers }, (up) => {
      record(up.statusCode ?? 0);
      const headers = { ...up.headers };
      if (opts.relativeLocation && typeof headers.location === 'string')
        headers.location = headers.location.replace(/^https?:\/\/[^/]+/, '');
      res.writeHead(up.statusCode ?? 502, headers);
      up.pipe(res);
    });
    forward.on('error', () => {
      record(502);
      res.destroy();
    });
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host,
    requests,
    tokenScopes,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Body bytes the registry was sent in blob uploads (PATCH and PUT), whatever the client believes it sent. */
export function uploadedBytes(requests: ProxiedRequest[]): number {
  return requests
    .filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && r.url.includes('/blobs/uploads/'))
    .reduce((n, r) => n + r.bytes, 0);
}

/** Blob uploads the registry completed: PUTs with a digest that got 201. */
export function completedBlobUploads(requests: ProxiedRequest[]): ProxiedRequest[] {
  return requests.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/') && r.status === 201);
}
