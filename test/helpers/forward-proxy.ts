/**
 * A forward HTTP proxy on 127.0.0.1 for tests: absolute-form requests
 * (`GET http://host/...`, how curl, git and slugkit send plain-http URLs to a
 * proxy) and CONNECT tunnels. It is the only way to reach `*.invalid`: it maps
 * `NAME.invalid:PORT` to 127.0.0.1:PORT, and refuses every other host. A
 * forward proxy resolves names itself, which is why a packaged one
 * (tinyproxy, squid) cannot stand in: `.invalid` never resolves (RFC 2606).
 * It demands Proxy-Authorization when given credentials, and records what
 * it was asked.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';

export interface ForwardProxy {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `METHOD target` for every request, CONNECT included (`CONNECT host:port`). */
  seen: string[];
  close(): Promise<void>;
}

/** `NAME.invalid:PORT` → 127.0.0.1:PORT; anything else is not ours to reach. */
function mapped(hostPort: string): { host: string; port: number } | undefined {
  const m = /^([a-z0-9.-]+\.invalid):(\d+)$/i.exec(hostPort);
  return m ? { host: '127.0.0.1', port: Number(m[2]) } : undefined;
}

export async function startForwardProxy(auth?: { username: string; password: string }): Promise<ForwardProxy> {
  const seen: string[] = [];
  const expected = auth ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` : undefined;
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (expected && req.headers['proxy-authorization'] !== expected) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test-proxy"' }).end();
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('not a proxy request');
      return;
    }
    const to = mapped(`${target.hostname}:${target.port || 80}`);
    if (!to) {
      res.writeHead(502).end(`the test proxy reaches only *.invalid, not ${target.host}`);
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = http.request(
      { host: to.host, port: to.port, method: req.method, path: target.pathname + target.search, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (expected && req.headers['proxy-authorization'] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test-proxy"\r\n\r\n');
      return;
    }
    const to = mapped(req.url ?? '');
    if (!to) {
      client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      return;
    }
    const upstream = net.connect(to.port, to.host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
