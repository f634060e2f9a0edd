/**
 * slugkit's own HTTP client: undici's fetch through its EnvHttpProxyAgent,
 * which reads HTTP_PROXY, HTTPS_PROXY and NO_PROXY (either case, lower case
 * first) as curl does. As with curl, loopback hosts are proxied too unless
 * NO_PROXY names them. Plain-http URLs go to the proxy as absolute-form
 * requests (curl's way, and what proxies that allow CONNECT only to 443
 * accept); https URLs through a CONNECT tunnel. undici is loaded on the
 * first request, so a build that never goes online never parses it.
 */
import { redact } from './log.js';

type UndiciFetch = typeof import('undici').fetch;
type Dispatcher = import('undici').Dispatcher;

export interface HttpClient {
  fetch: UndiciFetch;
  /** The dispatcher for a request to `url`. */
  dispatcherFor(url: string): Dispatcher;
}

let client: Promise<HttpClient> | undefined;

/** The proxy variables, as they are read: lower case first, as undici and curl read them. */
export function proxyEnv(env: NodeJS.ProcessEnv = process.env): { http?: string; https?: string; noProxy?: string } {
  const pick = (name: string) => env[name.toLowerCase()] || env[name] || undefined;
  const http = pick('HTTP_PROXY');
  return { http, https: pick('HTTPS_PROXY'), noProxy: pick('NO_PROXY') };
}

function registerProxySecrets(): void {
  const { http, https } = proxyEnv();
  for (const value of [http, https]) {
    if (!value) continue;
    try {
      const url = new URL(value);
      if (url.password) redact(decodeURIComponent(url.password), url.password);
    } catch {
      // not a URL: undici says so on the first request
    }
  }
}

/**
 * undici's fetch and the dispatchers requests use: our own clocks
 * (shared/http.ts) replace undici's 300 s header and body limits. undici
 * would send https through HTTP_PROXY when HTTPS_PROXY is unset; curl goes
 * direct then, and so do we.
 */
export function httpClient(): Promise<HttpClient> {
  client ??= (async () => {
    registerProxySecrets();
    const undici = await import('undici');
    const limits = { headersTimeout: 0, bodyTimeout: 0 };
    const viaEnv = new undici.EnvHttpProxyAgent({ ...limits, proxyTunnel: false });
    const direct = new undici.Agent(limits);
    return {
      fetch: undici.fetch,
      dispatcherFor: (url: string) => (url.startsWith('https:') && !proxyEnv().https ? direct : viaEnv),
    };
  })();
  return client;
}

/** The proxy a request to `url` goes through, for messages (no credentials); undefined when it goes direct. */
export function proxyFor(url: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return undefined;
  }
  const { http, https, noProxy } = proxyEnv(env);
  const proxy = target.protocol === 'https:' ? https : http;
  if (!proxy || bypassed(target, noProxy ?? '')) return undefined;
  try {
    const shown = new URL(proxy);
    shown.username = '';
    shown.password = '';
    return shown.origin;
  } catch {
    return proxy;
  }
}

/** NO_PROXY as undici matches it: `*`, host or domain suffix, with an optional :port. */
function bypassed(target: URL, noProxy: string): boolean {
  if (noProxy.trim() === '*') return true;
  const host = target.hostname.toLowerCase();
  const port = Number(target.port) || (target.protocol === 'https:' ? 443 : 80);
  return noProxy
    .split(/[,\s]/)
    .filter(Boolean)
    .some((entry) => {
      const m = /^(.+):(\d+)$/.exec(entry);
      const name = (m ? m[1] : entry).replace(/^\*?\./, '').toLowerCase();
      if (m && Number(m[2]) !== port) return false;
      return host === name || host.endsWith(`.${name}`);
    });
}
