/**
 * The shape of every JSON document slugkit reads from a registry or an OCI
 * layout (index, manifest, config, token response), checked before any
 * field is used: a registry may send `null`, `[null]` or a number where an
 * object belongs. Each failure is one line: `what` (the reference), the
 * field, what it is and what it should be. Only the fields slugkit uses are
 * checked; unknown fields pass.
 */
import { UserError } from '../../shared/errors.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from './blobs.js';

type Json = Record<string, unknown>;

/** A value as a line may show it: its kind, and a short string or number as it is. */
function shown(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return value.length > 40 ? `the string "${value.slice(0, 40)}…"` : `the string "${value}"`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

function wrong(what: string, field: string, value: unknown, expected: string): UserError {
  return new UserError(`${what}: ${field} is ${shown(value)}, not ${expected}`);
}

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, what: string, field: string): Json {
  if (!isObject(value)) throw wrong(what, field, value, 'a JSON object');
  return value;
}

function string(value: unknown, what: string, field: string): string {
  if (typeof value !== 'string') throw wrong(what, field, value, 'a string');
  return value;
}

function optionalString(doc: Json, key: string, what: string, field: string): void {
  if (doc[key] !== undefined) string(doc[key], what, `${field}.${key}`);
}

function stringList(value: unknown, what: string, field: string): string[] {
  if (!Array.isArray(value)) throw wrong(what, field, value, 'a list of strings');
  for (const [i, item] of value.entries()) string(item, what, `${field}[${i}]`);
  return value as string[];
}

function list(value: unknown, what: string, field: string): unknown[] {
  if (!Array.isArray(value)) throw wrong(what, field, value, 'a list');
  return value;
}

/** A descriptor: media type, a sha256 digest and a size that is a whole number. */
export function checkDescriptor(value: unknown, what: string, field: string): Descriptor {
  const d = object(value, what, field);
  string(d.mediaType, what, `${field}.mediaType`);
  const digest = string(d.digest, what, `${field}.digest`);
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw wrong(what, `${field}.digest`, digest, 'a sha256 digest');
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0)
    throw wrong(what, `${field}.size`, d.size, 'a whole number of bytes');
  if (d.platform !== undefined) {
    const p = object(d.platform, what, `${field}.platform`);
    for (const key of ['os', 'architecture', 'variant']) optionalString(p, key, what, `${field}.platform`);
  }
  if (d.annotations !== undefined) stringMap(d.annotations, what, `${field}.annotations`);
  if (d.urls !== undefined) stringList(d.urls, what, `${field}.urls`);
  return d as unknown as Descriptor;
}

function stringMap(value: unknown, what: string, field: string): Record<string, string> {
  const map = object(value, what, field);
  for (const [k, v] of Object.entries(map)) string(v, what, `${field}["${k}"]`);
  return map as Record<string, string>;
}

/** An image index (or a layout's index.json): `manifests` is a list of descriptors. */
export function checkIndex(doc: unknown, what: string, name = 'the index'): ImageIndex {
  const index = object(doc, what, name);
  for (const [i, m] of list(index.manifests, what, `${name}'s manifests`).entries()) checkDescriptor(m, what, `${name}'s manifests[${i}]`);
  if (index.annotations !== undefined) stringMap(index.annotations, what, `${name}'s annotations`);
  return index as unknown as ImageIndex;
}

/** A schema 2 image manifest: a config descriptor and a list of layer descriptors. */
export function checkManifest(doc: unknown, what: string, name = 'the manifest'): ImageManifest {
  const m = object(doc, what, name);
  if (m.schemaVersion !== 2) throw wrong(what, `${name}'s schemaVersion`, m.schemaVersion, '2 (a schema 2 image manifest)');
  checkDescriptor(m.config, what, `${name}'s config`);
  for (const [i, l] of list(m.layers, what, `${name}'s layers`).entries()) checkDescriptor(l, what, `${name}'s layers[${i}]`);
  if (m.annotations !== undefined) stringMap(m.annotations, what, `${name}'s annotations`);
  return m as unknown as ImageManifest;
}

/** An image config: the fields a build and a rebase read or carry over. */
export function checkConfig(doc: unknown, what: string): ImageConfig {
  const name = 'its config';
  const c = object(doc, what, name);
  string(c.os, what, `${name}'s os`);
  string(c.architecture, what, `${name}'s architecture`);
  optionalString(c, 'variant', what, name);
  const rootfs = object(c.rootfs, what, `${name}'s rootfs`);
  stringList(rootfs.diff_ids, what, `${name}'s rootfs.diff_ids`);
  if (c.config !== undefined && c.config !== null) {
    const run = object(c.config, what, `${name}'s config`);
    for (const key of ['User', 'WorkingDir']) optionalString(run, key, what, `${name}'s config`);
    if (run.Env !== undefined && run.Env !== null) stringList(run.Env, what, `${name}'s config.Env`);
    for (const key of ['Entrypoint', 'Cmd'])
      if (run[key] !== undefined && run[key] !== null) stringList(run[key], what, `${name}'s config.${key}`);
    if (run.Labels !== undefined && run.Labels !== null) stringMap(run.Labels, what, `${name}'s config.Labels`);
    if (run.ExposedPorts !== undefined && run.ExposedPorts !== null) object(run.ExposedPorts, what, `${name}'s config.ExposedPorts`);
  }
  if (c.history !== undefined)
    for (const [i, h] of list(c.history, what, `${name}'s history`).entries()) object(h, what, `${name}'s history[${i}]`);
  return c as unknown as ImageConfig;
}

/** `docker save`'s manifest.json: a list of {Config, Layers, RepoTags}. */
export function checkDockerSaveManifest(doc: unknown, what: string): unknown[] {
  const entries = list(doc, what, 'manifest.json');
  for (const [i, value] of entries.entries()) {
    const e = object(value, what, `manifest.json[${i}]`);
    string(e.Config, what, `manifest.json[${i}].Config`);
    stringList(e.Layers, what, `manifest.json[${i}].Layers`);
    if (e.RepoTags !== undefined && e.RepoTags !== null) stringList(e.RepoTags, what, `manifest.json[${i}].RepoTags`);
  }
  return entries;
}

/** A Bearer token answer: `token` or `access_token`, a string. */
export function checkTokenResponse(doc: unknown, what: string): string {
  const answer = object(doc, what, 'its answer');
  const token = answer.token ?? answer.access_token;
  if (token === undefined) throw new UserError(`${what} sent no token`);
  return string(token, what, answer.token !== undefined ? 'its token' : 'its access_token');
}
