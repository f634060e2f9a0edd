/**
 * A client for the OCI distribution API over Node's fetch: ping, the
 * anonymous / Basic / Bearer-token auth dance, blob HEAD, GET, cross-repo
 * mount and streamed monolithic upload, manifest GET and PUT. Requests go
 * through shared/http.ts's transport and its retry policy; bodies are
 * re-opened for each attempt, so uploads can be retried too.
 */
import { Readable } from 'node:stream';
import { UsageError, UserError } from '../../shared/errors.js';
import {
  isRetryableStatus,
  NetworkError,
  networkFailure,
  RETRY,
  RedirectedUpload,
  type RequestBody,
  readBody,
  readErrorText,
  request,
  TransferError,
} from '../../shared/http.js';
import { redact } from '../../shared/log.js';
import { type Descriptor, sha256, sizeLimit } from './blobs.js';
import { MANIFEST_ACCEPT } from './media-types.js';
import { DOCKER_HUB, DOCKER_HUB_API } from './reference.js';
import { basicHeader, type Challenge, type Credentials, findCredentials, parseChallenge } from './registry-auth.js';
import { checkTokenResponse } from './validate.js';

/** Manifests and configs are small JSON documents; refuse absurd ones. */
const MAX_DOCUMENT_BYTES = 8 * 1024 * 1024;
/** A token response is a few KB; registries' JWTs stay far below this. */
const MAX_TOKEN_BYTES = 1024 * 1024;

export function isLoopbackHost(host: string): boolean {
  const name = host
    .replace(/:\d+$/, '')
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** `--insecure-registry myhost` covers myhost on any port; `myhost:5000` only that port. */
function matchesHost(flag: string, host: string): boolean {
  const f = flag
    .trim()
    .toLowerCase()
    .replace(/^[a-z]+:\/\//, '')
    .replace(/\/.*$/, '');
  const h = host.toLowerCase();
  return f === h || (!/:\d+$/.test(f) && h.replace(/:\d+$/, '') === f);
}

/** The registry's own error text (`{"errors":[{"code","message"}]}`), if any. */
async function registryErrorText(res: Response): Promise<string> {
  const text = await readErrorText(res);
  try {
    const doc = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    if (doc.errors?.length) return doc.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch {
    // not JSON: fall through to the status line
  }
  return `HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`;
}

interface SendOptions {
  headers?: Record<string, string>;
  /** Opened again for every attempt, so a retried upload sends the whole body. */
  body?: () => Promise<RequestBody> | RequestBody;
  /** Token scopes this request needs (repository:NAME:pull,push ...). */
  scopes: string[];
  /** For messages: what we were doing. */
  what: string;
}

export interface RegistryClientOptions {
  insecureRegistries?: string[];
  /** --registry-mirror: HOST[:PORT][/PREFIX], tried in order for docker.io pulls. */
  registryMirrors?: string[];
  env?: NodeJS.ProcessEnv;
}

/** Where a pull may read an image: a mirror's client and repository, or the registry's own. */
export interface PullSource {
  client: RegistryClient;
  repository: string;
  /** Set for a mirror: its flag value, for messages. */
  mirror?: string;
}

/** `--registry-mirror mirror.gcr.io` or `HOST:PORT/some/prefix`, as kaniko takes it (a scheme is dropped). */
export function parseMirror(value: string): { host: string; prefix: string } {
  const bare = value
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/+$/, '');
  const slash = bare.indexOf('/');
  const host = slash < 0 ? bare : bare.slice(0, slash);
  const prefix = slash < 0 ? '' : bare.slice(slash + 1);
  if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(host) || (prefix && !/^[a-z0-9._/-]+$/.test(prefix)))
    throw new UsageError(`--registry-mirror ${value} is not HOST[:PORT][/PREFIX] (e.g. mirror.gcr.io)`);
  return { host: host.toLowerCase(), prefix };
}

export class RegistryClient {
  readonly host: string;
  readonly base: string;
  private credentials: Credentials | undefined;
  private credentialsLoaded: Promise<void> | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private challenge: Challenge | undefined;
  private pinged = false;
  private readonly tokens = new Map<string, string>();

  constructor(host: string, opts: RegistryClientOptions = {}) {
    this.host = host;
    const insecure = isLoopbackHost(host) || (opts.insecureRegistries ?? []).some((h) => matchesHost(h, host));
    // Like kaniko's --insecure-registry: those hosts are spoken to over plain HTTP.
    // docker.io is a name; Docker Hub's API answers on registry-1.docker.io.
    this.base = `${insecure ? 'http' : 'https'}://${host === DOCKER_HUB ? DOCKER_HUB_API : host}`;
    this.env = opts.env ?? process.env;
  }

  /** GET /v2/: learns whether and how the registry wants us to authenticate. */
  async ping(): Promise<void> {
    if (this.pinged) return;
    const res = await this.exchange('GET', `${this.base}/v2/`, {}, undefined, `reaching registry ${this.host}`);
    if (res.status === 401) {
      this.challenge = parseChallenge(res.headers.get('www-authenticate'));
      await res.body?.cancel();
      await this.loadCredentials();
      if (!this.challenge)
        throw new UserError(
          `registry ${this.host} wants authentication of a kind slugbuilder does not speak (only Basic and Bearer tokens)`,
        );
    } else if (res.ok) {
      await res.body?.cancel();
    } else {
      throw new UserError(`registry ${this.host} answered /v2/ with ${await registryErrorText(res)}: is it an OCI distribution registry?`);
    }
    this.pinged = true;
  }

  /** Only for a registry that asks, and once: a credential helper runs at most once per registry. */
  private loadCredentials(): Promise<void> {
    this.credentialsLoaded ??= findCredentials(this.host, this.env).then((found) => {
      this.credentials = found;
    });
    return this.credentialsLoaded;
  }

  // ---- blobs ----

  async blobExists(repo: string, digest: string): Promise<boolean> {
    const res = await this.send('HEAD', `/v2/${repo}/blobs/${digest}`, {
      scopes: [pushScope(repo)],
      what: `checking blob ${digest} in ${repo}`,
    });
    await res.body?.cancel();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw new UserError(`registry ${this.host}: checking blob ${digest} in ${repo} failed with HTTP ${res.status}`);
  }

  async blobGet(repo: string, desc: Descriptor): Promise<Readable> {
    const res = await this.send('GET', `/v2/${repo}/blobs/${desc.digest}`, {
      scopes: [pullScope(repo)],
      what: `downloading blob ${desc.digest} from ${repo}`,
    });
    if (!res.ok || !res.body)
      throw new UserError(`registry ${this.host}: downloading blob ${desc.digest} from ${repo} failed: ${await registryErrorText(res)}`);
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    // A blob ends at its declared size: one byte more and the download stops, before it fills a disk.
    return body.pipe(sizeLimit(body, desc, `registry ${this.host}: blob ${desc.digest} from ${repo}`));
  }

  async blobGetBytes(repo: string, desc: Descriptor): Promise<Buffer> {
    const res = await this.send('GET', `/v2/${repo}/blobs/${desc.digest}`, {
      scopes: [pullScope(repo)],
      what: `downloading ${desc.digest} from ${repo}`,
    });
    if (!res.ok)
      throw new UserError(`registry ${this.host}: downloading ${desc.digest} from ${repo} failed: ${await registryErrorText(res)}`);
    const bytes = await readBody(res, Math.min(desc.size, MAX_DOCUMENT_BYTES), `registry ${this.host}: ${desc.digest} from ${repo}`);
    if (sha256(bytes) !== desc.digest)
      throw new UserError(`registry ${this.host} sent ${desc.digest} from ${repo} with the wrong digest: the image is damaged`);
    return bytes;
  }

  /** Cross-repository mount: true when the registry linked the blob, false when it wants an upload. */
  async blobMount(repo: string, digest: string, fromRepo: string): Promise<boolean> {
    const query = `mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`;
    const res = await this.send('POST', `/v2/${repo}/blobs/uploads/?${query}`, {
      scopes: [pushScope(repo), pullScope(fromRepo)],
      what: `mounting ${digest} from ${fromRepo} into ${repo}`,
    });
    await res.body?.cancel();
    if (res.status === 201) return true;
    if (res.status === 202) return false; // an upload session we simply leave to expire
    throw new UserError(`registry ${this.host}: mounting ${digest} from ${fromRepo} failed with HTTP ${res.status}`);
  }

  /**
   * POST for an upload session, then one PUT of the whole blob to its
   * Location (opaque, possibly relative, possibly with a query already).
   * A session the registry lost on a failed attempt is started afresh once.
   */
  async blobUpload(repo: string, desc: Descriptor, open: () => Promise<Readable | Buffer> | Readable | Buffer): Promise<void> {
    for (let session = 1; ; session++) {
      const post = await this.send('POST', `/v2/${repo}/blobs/uploads/`, {
        scopes: [pushScope(repo)],
        what: `starting the upload of ${desc.digest} to ${repo}`,
      });
      await post.body?.cancel();
      const location = post.headers.get('location');
      if (post.status !== 202 || !location) {
        throw new UserError(
          `registry ${this.host} refused to start an upload to ${repo}: HTTP ${post.status}${post.status === 403 ? ' (no push access for these credentials)' : ''}`,
        );
      }
      const target = new URL(location, `${this.base}/v2/`).href;
      const url = `${target}${target.includes('?') ? '&' : '?'}digest=${encodeURIComponent(desc.digest)}`;
      const put = await this.send('PUT', url, {
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: open,
        scopes: [pushScope(repo)],
        what: `uploading ${desc.digest} to ${repo}`,
      });
      if (put.status === 201) {
        await put.body?.cancel();
        return;
      }
      const text = await registryErrorText(put);
      if (session < 2 && (put.status === 404 || /BLOB_UPLOAD_UNKNOWN|BLOB_UPLOAD_INVALID/.test(text))) continue;
      throw new UserError(`registry ${this.host} rejected blob ${desc.digest} for ${repo}: ${text}`);
    }
  }

  // ---- manifests ----

  async manifestGet(repo: string, ref: string): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
    const res = await this.send('GET', `/v2/${repo}/manifests/${ref}`, {
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [pullScope(repo)],
      what: `reading ${repo}:${ref}`,
    });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new UserError(`image ${this.host}/${repo}${ref.startsWith('sha256:') ? '@' : ':'}${ref} not found: check the name and tag`);
    }
    if (!res.ok) throw new UserError(`registry ${this.host}: reading ${repo}:${ref} failed: ${await registryErrorText(res)}`);
    const bytes = await readBody(res, MAX_DOCUMENT_BYTES, `registry ${this.host}: manifest ${repo}:${ref}`);
    const digest = sha256(bytes);
    if (ref.startsWith('sha256:') && ref !== digest)
      throw new UserError(`registry ${this.host} sent ${repo}@${ref} with digest ${digest}: the image is damaged`);
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0].trim();
    return { bytes, mediaType, digest };
  }

  async manifestPut(repo: string, tag: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.send('PUT', `/v2/${repo}/manifests/${tag}`, {
      headers: { 'content-type': mediaType },
      body: () => bytes,
      scopes: [pushScope(repo)],
      what: `pushing the manifest of ${repo}:${tag}`,
    });
    if (res.status !== 201 && res.status !== 200)
      throw new UserError(`registry ${this.host} rejected the manifest for ${repo}:${tag}: ${await registryErrorText(res)}`);
    await res.body?.cancel();
    const digest = sha256(bytes);
    const echoed = res.headers.get('docker-content-digest');
    if (echoed && echoed !== digest)
      throw new UserError(`registry ${this.host} stored the manifest of ${repo}:${tag} as ${echoed}, not ${digest}`);
    return digest;
  }

  // ---- transport ----

  /** One API call: auth header, retries, and one re-authentication on 401. */
  private async send(method: string, pathOrUrl: string, opts: SendOptions): Promise<Response> {
    await this.ping();
    const url = pathOrUrl.startsWith('/') ? `${this.base}${pathOrUrl}` : pathOrUrl;
    let refreshed = false;
    for (;;) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      // Credentials only go to the registry itself, never to another origin a Location names.
      const sameOrigin = new URL(url).origin === new URL(this.base).origin;
      const authorization = sameOrigin ? await this.authorization(opts.scopes, false) : undefined;
      if (authorization) headers.authorization = authorization;
      const res = await this.exchange(method, url, headers, opts.body, opts.what);
      if (res.status === 401) {
        await res.body?.cancel();
        const challenge = parseChallenge(res.headers.get('www-authenticate')) ?? this.challenge;
        if (!refreshed && challenge) {
          // A new challenge may name a different scope: fetch a token for it.
          this.challenge = challenge;
          await this.loadCredentials();
          const extra = challenge.params.scope ? challenge.params.scope.split(' ') : [];
          refreshed = true;
          if (challenge.scheme === 'bearer') {
            await this.authorization([...opts.scopes, ...extra], true);
            opts = { ...opts, scopes: [...new Set([...opts.scopes, ...extra])] };
          }
          if (challenge.scheme === 'bearer' || !authorization) continue;
        }
        throw this.credentialsError(`${opts.what}`);
      }
      if (res.status === 403) {
        await res.body?.cancel();
        const who = this.credentials ? `user ${this.credentials.username}` : 'anonymous access';
        throw new UserError(
          `registry ${this.host} denied ${opts.what} for ${who}: ask for access to the repository or use other credentials`,
        );
      }
      return res;
    }
  }

  private credentialsError(what: string): UserError {
    if (!this.credentials) {
      return new UserError(
        `registry ${this.host} needs credentials for ${what}: set REGISTRY_USERNAME and REGISTRY_PASSWORD, or add ${this.host} to the auths or credHelpers of ${'$DOCKER_CONFIG/config.json or ~/.docker/config.json'}`,
      );
    }
    if (this.credentials.identityToken)
      return new UserError(
        `registry ${this.host} rejected the identity token from ${this.credentials.source}: log in again (docker login ${this.host})`,
      );
    return new UserError(
      `registry ${this.host} rejected the credentials of user ${this.credentials.username} (from ${this.credentials.source}): check the username and password`,
    );
  }

  /** The Authorization header for these scopes, fetching a Bearer token when needed. */
  private async authorization(scopes: string[], forceNewToken: boolean): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic')
      return this.credentials && !this.credentials.identityToken ? basicHeader(this.credentials) : undefined;
    const key = [...new Set(scopes)].sort().join(' ');
    const cached = this.tokens.get(key);
    if (cached && !forceNewToken) return `Bearer ${cached}`;
    const token = await this.fetchToken(challenge, [...new Set(scopes)].sort());
    this.tokens.set(key, token);
    return `Bearer ${token}`;
  }

  private async fetchToken(challenge: Challenge, scopes: string[]): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw new UserError(`registry ${this.host} asked for a Bearer token without naming a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UserError(`registry ${this.host} named an invalid token realm ${realm}`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.base.startsWith('http:'))) {
      throw new UserError(`registry ${this.host} sent its token realm over plain HTTP (${url.origin}): refusing to send credentials there`);
    }
    let res: Response;
    const identityToken = this.credentials?.identityToken;
    if (identityToken) {
      // An identity token is an OAuth2 refresh token, as docker sends it: a POSTed form, never Basic.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: identityToken, client_id: 'slugkit' });
      if (challenge.params.service) form.set('service', challenge.params.service);
      form.set('scope', scopes.join(' '));
      const body = Buffer.from(form.toString());
      const headers = { 'content-type': 'application/x-www-form-urlencoded' };
      res = await this.exchange('POST', url.href, headers, () => body, `getting a token from ${url.origin}`);
    } else {
      if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      const headers: Record<string, string> = {};
      if (this.credentials) headers.authorization = basicHeader(this.credentials);
      res = await this.exchange('GET', url.href, headers, undefined, `getting a token from ${url.origin}`);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.credentialsError(`a ${scopes.join(' ')} token`);
    }
    if (!res.ok) throw new UserError(`token server ${url.origin} for registry ${this.host} answered ${await registryErrorText(res)}`);
    const from = `token server ${url.origin} for registry ${this.host}`;
    const text = (await readBody(res, MAX_TOKEN_BYTES, from)).toString('utf8');
    const token = tokenFrom(text, from);
    redact(token);
    return token;
  }

  /** One HTTP exchange through the shared transport (its retry policy), with registry wording for failures. */
  private async exchange(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: SendOptions['body'],
    what: string,
  ): Promise<Response> {
    let res: Response;
    try {
      res = await request(url, { method, headers, body, what: `registry ${this.host}: ${what}` });
    } catch (err) {
      if (err instanceof RedirectedUpload) throw new TransferError(`registry ${this.host}: ${what}: ${err.message}`);
      if (!(err instanceof NetworkError)) throw err;
      if (err.reached) throw new UserError(`registry ${this.host}: ${what} failed: ${networkFailure(err, this.host)}`);
      const hint = err.code === 'ECONNREFUSED' ? ': is the registry running, and is the host:port right?' : '';
      const tls = /EPROTO|SSL|TLS|wrong version/i.test(`${err.code} ${err.description}`)
        ? ': if this registry speaks plain HTTP, pass --insecure-registry ' + this.host
        : '';
      const api = this.host === DOCKER_HUB ? ` (${DOCKER_HUB_API})` : '';
      throw new UserError(`registry ${this.host}${api}: ${what} failed (${err.description})${hint}${tls}`);
    }
    if (isRetryableStatus(res.status)) {
      throw new UserError(`registry ${this.host}: ${what} failed after ${RETRY.attempts} attempts: ${await registryErrorText(res)}`);
    }
    return res;
  }
}

function pullScope(repo: string): string {
  return `repository:${repo}:pull`;
}

function pushScope(repo: string): string {
  return `repository:${repo}:pull,push`;
}

/** A token answer is a small JSON object; its token a string (validate.ts says what else is wrong). */
function tokenFrom(text: string, from: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new UserError(`${from} sent something that is not JSON`);
  }
  return checkTokenResponse(doc, from);
}

/** One client per registry host for a whole command, so tokens are reused. */
export class RegistryPool {
  private readonly clients = new Map<string, RegistryClient>();
  constructor(private readonly opts: RegistryClientOptions = {}) {}
  /**
   * Where to pull `host/repository` from, in order: for Docker Hub, each
   * --registry-mirror, then Docker Hub itself (kaniko's fallback).
   */
  pullSources(host: string, repository: string): PullSource[] {
    const own: PullSource = { client: this.get(host), repository };
    if (host !== DOCKER_HUB) return [own];
    const mirrors = (this.opts.registryMirrors ?? []).map((value) => {
      const { host: mirrorHost, prefix } = parseMirror(value);
      return { client: this.get(mirrorHost), repository: prefix ? `${prefix}/${repository}` : repository, mirror: value };
    });
    return [...mirrors, own];
  }

  get(host: string): RegistryClient {
    let client = this.clients.get(host);
    if (!client) {
      client = new RegistryClient(host, this.opts);
      this.clients.set(host, client);
    }
    return client;
  }
}
