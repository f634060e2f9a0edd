/**
 * A real HTTP server on 127.0.0.1 for tests, on a free port, that records
 * every request it gets (so a test can assert "no second download") and can
 * be closed at any time (so a test can show something works without it).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query, as the client sent them. */
  url: string;
  headers: http.IncomingHttpHeaders;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export interface TestHttpServer {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  origin: string;
  port: number;
  requests: RecordedRequest[];
  /** Requests whose path (without query) is `pathname`. */
  count(pathname: string): number;
  close(): Promise<void>;
}

export async function startHttpServer(handler: Handler): Promise<TestHttpServer> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers });
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closed = false;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    count: (pathname) => requests.filter((r) => r.url.split('?')[0] === pathname).length,
    close: async () => {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface StaticFile {
  body: Uint8Array | string;
  status?: number;
  contentType?: string;
}

/** A handler serving fixed bodies by path; anything else is a 404. */
export function serveFiles(files: Record<string, Uint8Array | string | StaticFile>): Handler {
  return (req, res) => {
    const pathname = (req.url ?? '/').split('?')[0];
    const file = files[pathname];
    if (file === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    const {
      body,
      status = 200,
      contentType = 'application/octet-stream',
    } = typeof file === 'string' || file instanceof Uint8Array ? { body: file } : file;
    const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    res.writeHead(status, { 'content-type': contentType, 'content-length': bytes.length });
    res.end(bytes);
  };
}

/** Wrap a handler so it answers 401 unless the request carries these Basic credentials. */
export function requireBasicAuth(user: string, password: string, inner: Handler): Handler {
  const expected = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
  return (req, res) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'text/plain' });
      res.end('authentication required\n');
      return;
    }
    return inner(req, res);
  };
}
