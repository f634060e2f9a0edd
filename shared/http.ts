/**
 * Streaming HTTP with Node's fetch: TAR_URL and SLUG_URL downloads, PUT_URL
 * uploads. Credentials inside URLs are redacted from every message, and
 * transient failures (connection errors, 429, 5xx) are retried with backoff.
 */
import { Readable } from 'node:stream';
import { UserError, errorMessage } from './errors.js';
import { redact } from './log.js';

/**
 * Remove and redact the user-info part of a URL. For http(s), git and file
 * URLs all of it goes: `https://TOKEN@host` puts the secret in the user name.
 * For ssh the user name is an account (`git`), not a secret, so it stays and
 * only a password would be hidden.
 */
export function withoutCredentials(url: URL): { display: string; username: string; password: string } {
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const shown = new URL(url.href);
  // A lone user name is a token (`https://TOKEN@host/...`); with a password, the password is.
  if (password) redact(password, url.password);
  else if (username && url.protocol !== 'ssh:') redact(username, url.username);
  if (url.protocol !== 'ssh:') shown.username = '';
  shown.password = '';
  return { display: shown.href, username, password };
}

/** The URL as it may be printed: no credentials. */
export function displayUrl(raw: string): string {
  try {
    return withoutCredentials(new URL(raw)).display;
  } catch {
    return raw.replace(/\/\/[^@/]*@/, '//');
  }
}

/** An HTTP Basic authorization header value, itself registered as a secret. */
export function basicAuthorization(username: string, password: string): string {
  const value = 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
  redact(value, value.slice('Basic '.length));
  return value;
}

export function isHttpUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

/** fetch() refuses URLs with credentials: move them into a Basic header. */
function splitCredentials(raw: string): { url: string; headers: Record<string, string> } {
  const u = new URL(raw);
  const headers: Record<string, string> = {};
  if (u.username || u.password) {
    const { username, password } = withoutCredentials(u);
    headers.authorization = basicAuthorization(username, password);
    u.username = '';
    u.password = '';
  }
  return { url: u.toString(), headers };
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export interface RetryOptions {
  attempts?: number;
  /** First backoff in ms; doubles each time. */
  backoffMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The root cause of a fetch failure ("fetch failed" alone says nothing). */
function networkCause(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = cause && typeof cause === 'object' && 'code' in cause ? String(cause.code) : '';
  return code ? `${code}` : errorMessage(cause);
}

/**
 * One request with retries on connection errors and retryable statuses.
 * Returns the first OK response; throws the last problem as one line.
 */
async function requestWithRetries(rawUrl: string, what: string, init: (headers: Record<string, string>) => RequestInit, retry: RetryOptions): Promise<Response> {
  const shown = displayUrl(rawUrl);
  let target: { url: string; headers: Record<string, string> };
  try {
    target = splitCredentials(rawUrl);
  } catch {
    throw new UserError(`${what} ${shown} is not a valid URL`);
  }
  const attempts = retry.attempts ?? 4;
  let lastProblem = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await sleep((retry.backoffMs ?? 250) * 2 ** (attempt - 2));
    let res: Response;
    try {
      res = await fetch(target.url, init(target.headers));
    } catch (err) {
      lastProblem = `cannot reach ${shown} (${networkCause(err)})`;
      continue;
    }
    if (res.ok) return res;
    await res.body?.cancel();
    lastProblem = `${shown} answered HTTP ${res.status}`;
    if (!RETRY_STATUS.has(res.status)) break;
  }
  throw new UserError(`${what}: ${lastProblem}; check the URL and that the server is up`);
}

/**
 * GET a URL as a stream. `what` names it in errors ("SLUG_URL", "source URL").
 * Only the connection and status are retried: once bytes flow, the caller
 * owns the stream.
 */
export async function download(rawUrl: string, what: string, retry: RetryOptions = {}): Promise<Readable> {
  const res = await requestWithRetries(rawUrl, what, (headers) => ({ headers, redirect: 'follow' }), retry);
  if (!res.body) throw new UserError(`${what}: ${displayUrl(rawUrl)} sent an empty response`);
  return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
}

/** Streamed PUT of a file, as the classic slugbuilder does with PUT_URL; `body` is called once per attempt. */
export async function upload(rawUrl: string, body: () => Readable, size: number, what: string, retry: RetryOptions = {}): Promise<void> {
  const res = await requestWithRetries(
    rawUrl,
    `${what} upload`,
    (headers) =>
      ({
        method: 'PUT',
        headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body: Readable.toWeb(body()) as unknown as BodyInit,
        duplex: 'half',
      }) as RequestInit,
    retry,
  );
  await res.body?.cancel();
}
