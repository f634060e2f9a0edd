/**
 * Registry credentials and auth challenges. Credentials come from
 * REGISTRY_USERNAME/REGISTRY_PASSWORD, else from Docker's config.json
 * ($DOCKER_CONFIG/config.json or ~/.docker/config.json) as docker reads it:
 * the registry's `credHelpers` entry, else the `credsStore` helper, else
 * `auths`. Every secret is registered with redact() the moment it is read.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../shared/errors.js';
import { basicAuthorization } from '../../shared/http.js';
import { redact } from '../../shared/log.js';
import { helperGet } from './credential-helper.js';
import { DOCKER_HUB } from './reference.js';

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for messages (never the values). */
  source: string;
  /** A helper's `<token>` answer: an OAuth2 refresh token for the token server, not a password. */
  identityToken?: string;
}

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

/** Docker Hub's key in config.json, and what its helpers are asked for. */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** `https://host:port/v1/` and `host:port` name the same registry; Docker Hub has several names. */
function hostOfKey(key: string): string {
  const host = key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

function fromHelper(answer: { username: string; secret: string }, source: string): Credentials {
  // docker-credential-helpers' convention: the user name `<token>` marks an identity token.
  if (answer.username === '<token>') return { username: '<token>', password: '', identityToken: answer.secret, source };
  return { username: answer.username, password: answer.secret, source };
}

export async function findCredentials(host: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  if (env.REGISTRY_USERNAME || env.REGISTRY_PASSWORD) {
    redact(env.REGISTRY_PASSWORD);
    return { username: env.REGISTRY_USERNAME ?? '', password: env.REGISTRY_PASSWORD ?? '', source: 'REGISTRY_USERNAME/REGISTRY_PASSWORD' };
  }
  const file = dockerConfigPath(env);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let doc: DockerConfig;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new UserError(`${file} is not valid JSON: fix it or point DOCKER_CONFIG at another directory`);
  }
  const wanted = host.toLowerCase();
  // The server a helper is asked about: the key as written, Docker Hub's as docker writes it.
  const server = wanted === DOCKER_HUB ? DOCKER_HUB_KEY : host;
  const helperKey = Object.keys(doc.credHelpers ?? {}).find((key) => hostOfKey(key) === wanted);
  if (helperKey !== undefined) {
    const name = String(doc.credHelpers?.[helperKey]);
    const answer = await helperGet(name, wanted === DOCKER_HUB ? DOCKER_HUB_KEY : helperKey, host, env);
    if (answer) return fromHelper(answer, `docker-credential-${name}`);
    return undefined;
  }
  if (doc.credsStore) {
    const answer = await helperGet(String(doc.credsStore), server, host, env);
    if (answer) return fromHelper(answer, `docker-credential-${doc.credsStore}`);
  }
  for (const [key, entry] of Object.entries(doc.auths ?? {})) {
    if (hostOfKey(key) !== wanted || !entry) continue;
    if (entry.identitytoken) {
      redact(entry.identitytoken);
      return { username: '<token>', password: '', identityToken: entry.identitytoken, source: file };
    }
    if (entry.auth) {
      redact(entry.auth);
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new UserError(`${file}: auths["${key}"].auth is not base64 of user:password`);
      const password = decoded.slice(colon + 1);
      redact(password);
      return { username: decoded.slice(0, colon), password, source: file };
    }
    if (entry.username !== undefined && entry.password !== undefined) {
      redact(entry.password);
      return { username: entry.username, password: entry.password, source: file };
    }
  }
  return undefined;
}

export function basicHeader(creds: Credentials): string {
  return basicAuthorization(creds.username, creds.password);
}

/** Parse `Bearer realm="...",service="...",scope="a:b:pull,push"` (quoted values may hold commas). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let p = re.exec(m[2]); p; p = re.exec(m[2])) {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  }
  return { scheme, params };
}
