/**
 * The one HTTP transport, over Node's fetch: TAR_URL and SLUG_URL downloads,
 * PUT_URL uploads, buildpack tarballs and the registry client all go through
 * `request()`, with one retry policy. URLs are printed only through
 * `displayUrl()`: no user-info, and query values replaced by `…` (presigned
 * URLs carry their signature there).
 */
import { Readable, Transform } from 'node:stream';
import { errorMessage, UserError } from './errors.js';
import { log, redact } from './log.js';
import { formatSize } from './units.js';

/** What stands in for a query value in a printed URL. */
export const HIDDEN = '…';

/** Query values shorter than this (`v=2`, `X-Amz-Expires=3600`) are no secret and stay readable in buildpack output. */
const MIN_QUERY_SECRET = 8;

export interface UrlParts {
  /** As it may be printed: no user-info, query names without their values. */
  display: string;
  /** For git and fetch: no user-info, the query as given. Never printed. */
  bare: string;
  username: string;
  password: string;
}

/**
 * Split a URL into what may be printed and what is secret, registering the
 * secrets with redact(). For http(s), git and file URLs all user-info goes:
 * `https://TOKEN@host` puts the secret in the user name. For ssh the user
 * name is an account (`git`), not a secret, so it stays.
 */
export function withoutCredentials(url: URL): UrlParts {
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  // A lone user name is a token (`https://TOKEN@host/...`); with a password, the password is.
  if (password) redact(password, url.password);
  else if (username && url.protocol !== 'ssh:') redact(username, url.username);
  const bare = new URL(url.href);
  if (url.protocol !== 'ssh:') bare.username = '';
  bare.password = '';
  const shown = new URL(bare.href);
  shown.search = '';
  shown.hash = '';
  let display = shown.href;
  if (url.search.length > 1) {
    const names = url.search
      .slice(1)
      .split('&')
      .filter(Boolean)
      .map((pair) => {
        const eq = pair.indexOf('=');
        // A bare item (`?SECRETTOKEN`) may itself be the secret.
        if (eq < 0) {
          registerQueryValue(pair);
          return HIDDEN;
        }
        registerQueryValue(pair.slice(eq + 1));
        return `${pair.slice(0, eq)}=${HIDDEN}`;
      });
    display += `?${names.join('&')}`;
  }
  return { display: display + url.hash, bare: bare.href, username, password };
}

function registerQueryValue(raw: string): void {
  if (raw.length < MIN_QUERY_SECRET) return;
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    // a malformed escape: the raw form is what would be printed anyway
  }
  redact(raw, decoded);
}

/** The URL as it may be printed: no credentials, no query values. */
export function displayUrl(raw: string): string {
  try {
    return withoutCredentials(new URL(raw)).display;
  } catch {
    return raw.replace(/\/\/[^@/]*@/, '//').replace(/\?.*$/, `?${HIDDEN}`);
  }
}

/** An HTTP Basic authorization header value, itself registered as a secret. */
export function basicAuthorization(username: string, password: string): string {
  const encoded = Buffer.from(`${username}:${password}`).toString('base64');
  redact(encoded);
  return `Basic ${encoded}`;
}

export function isHttpUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

export interface RequestTarget {
  /** The URL fetch gets: user-info moved out (fetch refuses it), query kept. */
  url: string;
  /** `Basic ...` when the URL carried user-info. */
  authorization?: string;
  display: string;
}

/** fetch() refuses URLs with credentials: move them into a Basic header. Throws a plain Error for an invalid URL. */
export function splitCredentials(raw: string): RequestTarget {
  const parts = withoutCredentials(new URL(raw));
  const authorization = parts.username || parts.password ? basicAuthorization(parts.username, parts.password) : undefined;
  return { url: parts.bare, authorization, display: parts.display };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The root cause behind fetch's "fetch failed", in a few words; URLs in it lose their credentials. */
export function describeNetworkError(err: unknown): string {
  const code = networkCode(err);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'name not found';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'connection timed out';
  if (code) return code;
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return errorMessage(e).replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1');
}

/** The system or undici error code behind a fetch failure, a few causes deep. */
export function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    if ('code' in e && typeof e.code === 'string') return e.code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A request that never got an HTTP answer, after every attempt. */
export class NetworkError extends Error {
  constructor(
    readonly code: string | undefined,
    readonly description: string,
  ) {
    super(description);
    this.name = 'NetworkError';
  }
}

/** The retry policy: the same for every caller. */
export const RETRY = { attempts: 4, backoffMs: 250, maxRetryAfterMs: 10_000 };
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
/** Network failures that another attempt cannot fix. */
const FINAL_CODES = new Set([
  'ENOTFOUND',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);

export function isRetryableStatus(status: number): boolean {
  return RETRY_STATUS.has(status);
}

export type RequestBody = Buffer | Readable;

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /**
   * Called once per attempt, so a retried upload sends the whole body again.
   * A body that cannot be made again must not be passed here.
   */
  body?: () => RequestBody | Promise<RequestBody>;
}

/** `Retry-After` in seconds or as an HTTP date; undefined when absent or unusable. */
function retryAfterMs(res: Response): number | undefined {
  const value = res.headers.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) && ms >= 0 ? Math.min(ms, RETRY.maxRetryAfterMs) : undefined;
}

/**
 * One HTTP request with the retry policy: 408, 429 and 5xx answers and
 * network errors are retried with doubling backoff (or the server's
 * Retry-After), up to RETRY.attempts in all. Returns the last response,
 * whatever its status, for the caller to judge; throws NetworkError when no
 * attempt got an answer. `url` must not carry user-info (see splitCredentials).
 */
export async function request(url: string, opts: RequestOptions = {}): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const last = attempt >= RETRY.attempts;
    const backoff = RETRY.backoffMs * 2 ** (attempt - 1);
    let stream: Readable | undefined;
    let res: Response;
    try {
      const init: RequestInit & { duplex?: 'half' } = { method: opts.method ?? 'GET', headers: opts.headers ?? {}, redirect: 'follow' };
      if (opts.body) {
        const body = await opts.body();
        if (Buffer.isBuffer(body)) {
          init.body = new Uint8Array(body) as unknown as BodyInit;
        } else {
          stream = body;
          init.body = Readable.toWeb(body) as unknown as BodyInit;
          init.duplex = 'half';
        }
      }
      res = await fetch(url, init);
    } catch (err) {
      stream?.destroy();
      if (err instanceof UserError) throw err;
      const code = networkCode(err);
      if (last || (code && FINAL_CODES.has(code))) throw new NetworkError(code, describeNetworkError(err));
      await sleep(backoff);
      continue;
    }
    if (last || !RETRY_STATUS.has(res.status)) return res;
    stream?.destroy();
    await res.body?.cancel().catch(() => undefined);
    await sleep(retryAfterMs(res) ?? backoff);
  }
}

/**
 * A request to a URL that may carry credentials, judged for the simple
 * callers (downloads and uploads): any non-2xx answer or network failure
 * becomes one line naming `what` and the URL as it may be printed.
 */
async function requestOk(rawUrl: string, what: string, opts: RequestOptions): Promise<Response> {
  let target: RequestTarget;
  try {
    target = splitCredentials(rawUrl);
  } catch {
    throw new UserError(`${what} ${displayUrl(rawUrl)} is not a valid URL`);
  }
  const headers = { ...(opts.headers ?? {}), ...(target.authorization ? { authorization: target.authorization } : {}) };
  let res: Response;
  try {
    res = await request(target.url, { ...opts, headers });
  } catch (err) {
    if (err instanceof NetworkError)
      throw new UserError(`${what}: cannot reach ${target.display} (${err.description}); check the URL and that the server is up`);
    throw err;
  }
  if (res.ok) return res;
  await res.body?.cancel().catch(() => undefined);
  const hint =
    res.status === 401 || res.status === 403
      ? 'check the credentials (or the signature and expiry of a presigned URL)'
      : res.status === 404
        ? 'check the URL'
        : 'check the URL and that the server is up';
  throw new UserError(`${what}: ${target.display} answered HTTP ${res.status}; ${hint}`);
}

/**
 * GET a URL as a stream. `what` names it in errors ("SLUG_URL", "source URL").
 * Only the connection and status are retried: once bytes flow, the caller
 * owns the stream. `onResponse` sees the headers first (e.g. for a length).
 */
export async function download(rawUrl: string, what: string, onResponse?: (res: Response) => void): Promise<Readable> {
  const res = await requestOk(rawUrl, what, {});
  if (!res.body) throw new UserError(`${what}: ${displayUrl(rawUrl)} sent an empty response`);
  onResponse?.(res);
  const length = Number(res.headers.get('content-length')) || undefined;
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  return body.pipe(withProgress(body, `${what} download`, length));
}

/** Streamed PUT of a file, as the classic slugbuilder does with PUT_URL; `body` is called once per attempt. */
export async function upload(rawUrl: string, body: () => Readable, size: number, what: string): Promise<void> {
  const res = await requestOk(rawUrl, `${what} upload`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: () => {
      const stream = body();
      return stream.pipe(withProgress(stream, `${what} upload`, size));
    },
  });
  await res.body?.cancel().catch(() => undefined);
}

/** How often a long transfer reports: once a second for a person at a terminal, every 10 s in a log. */
export function progressIntervalMs(tty = Boolean(process.stderr.isTTY)): number {
  return tty ? 1000 : 10_000;
}

/**
 * A pass-through that counts the bytes of `source` and, while they flow,
 * logs how far it got and the rate at most every progressIntervalMs(). A
 * transfer shorter than one interval prints nothing. Errors of `source`
 * are passed on.
 */
export function withProgress(source: Readable, what: string, total?: number): Transform {
  const started = Date.now();
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const timer = setInterval(() => {
    const seconds = (Date.now() - started) / 1000;
    const rate = formatSize(Math.round(bytes / Math.max(seconds, 0.001)));
    log.info(`${what}: ${formatSize(bytes)}${total ? ` of ${formatSize(total)}` : ''} (${rate}/s)`);
  }, progressIntervalMs());
  timer.unref();
  const stop = () => clearInterval(timer);
  meter.on('end', stop);
  meter.on('close', stop);
  meter.on('error', stop);
  source.on('error', (err) => meter.destroy(err));
  meter.on('close', () => source.destroy());
  return meter;
}
