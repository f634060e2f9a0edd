/**
 * The labels the CNB tools read, so `pack inspect`, `pack rebase`,
 * `pack sbom download` and the lifecycle's rebaser take a slugkit image for
 * one of their own (platform spec, "Labels"):
 *
 *  - `io.buildpacks.lifecycle.metadata`: `runImage` {topLayer, reference,
 *    image} and `stack.runImage.image` (what rebase swaps and where the new
 *    run image comes from), `buildpacks` [{key, version, layers: {name: {sha,
 *    data, launch, build, cache}}}] (each CNB launch layer with its diff_id),
 *    `app` [{sha}] (the app's layers), `sbom.sha` (the SBOM layer,
 *    sbom-layer.ts), `launcher.sha` and `config.sha` when the image has
 *    such layers (slugkit keeps metadata.toml in the app layer: `config` is it);
 *  - `io.buildpacks.build.metadata`: `buildpacks` [{id, version, homepage}],
 *    `processes` [{type, command, args, direct, buildpackID, working-dir}],
 *    `launcher` {version, source}, `bom` (empty: no buildpack API < 0.7 runs);
 *  - `io.buildpacks.project.metadata`: the source's commit, when known.
 *
 * `io.buildpacks.stack.*` and `io.buildpacks.base.*` describe the run image:
 * they come with its labels and rebase replaces them with the new one's.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { readLaunchMetadata } from '../../shared/app/launch-metadata.js';
import { LAYERS, layersDirName } from '../../shared/app/layout.js';
import { cnbCommandLine } from '../../shared/app/processes.js';
import { readTextInside } from '../../shared/fs.js';
import { slugkitVersion } from '../../shared/package.js';
import type { ProcessTypes } from '../../shared/procfile.js';
import { parseToml, type TomlTable } from '../../shared/toml.js';
import type { ImageReference } from './reference.js';
import { SBOM_IMAGE_PATH } from './sbom-layer.js';

export const CNB_LABELS = {
  lifecycle: 'io.buildpacks.lifecycle.metadata',
  build: 'io.buildpacks.build.metadata',
  project: 'io.buildpacks.project.metadata',
} as const;

/** Labels that describe the run image: taken from it, replaced on rebase. */
export function isRunImageLabel(key: string): boolean {
  return key.startsWith('io.buildpacks.stack.') || key.startsWith('io.buildpacks.base.');
}

export interface CnbLayerInfo {
  data: TomlTable;
  launch: boolean;
  build: boolean;
  cache: boolean;
}

/** What the labels say about the build, read from the built app (also a slug's, for --slug). */
export interface CnbAppInfo {
  /** The chain in order: CNBs by id, classic buildpacks by name. */
  buildpacks: Array<{ id: string; version: string; homepage?: string }>;
  /** Each CNB launch layer by its image path (`/app/.layers/<bp dir>/<layer>`). */
  layers: Map<string, { buildpackId: string; name: string; info: CnbLayerInfo }>;
  processes: Array<Record<string, unknown>>;
}

/** The run image as the label names it: `image` as given, `reference` a digest reference (or the image ID off a registry). */
export interface RunImageIds {
  image: string;
  reference: string;
}

export function runImageIds(ref: ImageReference, manifestDigest: string, configDigest: string): RunImageIds {
  if (ref.kind === 'registry') {
    const name = `${ref.host}/${ref.repository}`;
    return { image: ref.tag ? `${name}:${ref.tag}` : ref.digest ? `${name}@${ref.digest}` : name, reference: `${name}@${manifestDigest}` };
  }
  return { image: ref.text, reference: configDigest };
}

/** A chain member as the build's summary lists it (build.ts BuildpackSummary). */
interface ChainMember {
  name: string;
  kind: 'classic' | 'cnb';
  id?: string;
  version?: string;
  commit?: string;
}

async function layerInfo(appDir: string, rel: string): Promise<CnbLayerInfo | undefined> {
  try {
    const text = await readTextInside(appDir, rel);
    if (text === undefined) return undefined;
    const toml = parseToml(text, rel);
    const types = (toml.types ?? {}) as Record<string, unknown>;
    const data = toml.metadata && typeof toml.metadata === 'object' && !Array.isArray(toml.metadata) ? (toml.metadata as TomlTable) : {};
    return { data, launch: types.launch === true, build: types.build === true, cache: types.cache === true };
  } catch {
    // The builder checked it; one that no longer reads only loses its entry.
    return undefined;
  }
}

export async function readCnbAppInfo(appDir: string, processTypes: ProcessTypes, chain: readonly ChainMember[] = []): Promise<CnbAppInfo> {
  const meta = await readLaunchMetadata(appDir).catch(() => undefined);
  const cnbs = meta?.buildpacks ?? [];
  const buildpacks =
    chain.length > 0
      ? chain.map((m) => ({ id: m.kind === 'cnb' && m.id ? m.id : m.name, version: m.version ?? m.commit ?? '' }))
      : cnbs.map((bp) => ({ id: bp.id, version: bp.version ?? '' }));

  const layers: CnbAppInfo['layers'] = new Map();
  for (const bp of cnbs) {
    const dir = path.join(LAYERS, layersDirName(bp.id));
    const names = (await readdir(path.join(appDir, dir)).catch(() => [] as string[])).sort();
    for (const file of names) {
      if (!file.endsWith('.toml') || ['launch.toml', 'build.toml', 'store.toml'].includes(file)) continue;
      const name = file.slice(0, -'.toml'.length);
      const info = await layerInfo(appDir, path.join(dir, file));
      if (info?.launch) layers.set(`/app/${dir}/${name}`, { buildpackId: bp.id, name, info });
    }
  }

  // The processes the image runs: a CNB's as it declared them, any other as the command line the launcher runs.
  const byType = new Map((meta?.processes ?? []).map((p) => [p.type, p]));
  const processes = Object.keys(processTypes)
    .sort()
    .map((type) => {
      const p = byType.get(type);
      if (p && cnbCommandLine(p) === processTypes[type]) {
        return {
          type,
          command: p.command,
          args: p.args,
          direct: p.direct,
          buildpackID: p.buildpackId ?? '',
          ...(p.workingDir ? { 'working-dir': p.workingDir } : {}),
        };
      }
      return { type, command: [processTypes[type]], args: [], direct: false, buildpackID: '' };
    });
  return { buildpacks, layers, processes };
}

export interface CnbLabelInput {
  info: CnbAppInfo;
  runImage: RunImageIds;
  /** The run image's rootfs diff_ids. */
  runDiffIds: readonly string[];
  /** Every layer above the run image, in image order. */
  layers: ReadonlyArray<{ diffId: string; imagePath: string }>;
  /** The launcher layer's diff_id (launcher-layer.ts). */
  launcherDiffId?: string;
  sourceVersion?: string;
}

export function cnbLabels(input: CnbLabelInput): Record<string, string> {
  const { info } = input;
  const app: Array<{ sha: string }> = [];
  let sbom: { sha: string } | undefined;
  const launcher = input.launcherDiffId ? { sha: input.launcherDiffId } : undefined;
  const layersByBp = new Map<string, Record<string, Record<string, unknown>>>();
  for (const l of input.layers) {
    const cnb = info.layers.get(l.imagePath);
    if (cnb) {
      const entry = layersByBp.get(cnb.buildpackId) ?? {};
      entry[cnb.name] = { sha: l.diffId, data: cnb.info.data, launch: cnb.info.launch, build: cnb.info.build, cache: cnb.info.cache };
      layersByBp.set(cnb.buildpackId, entry);
    } else if (l.imagePath === SBOM_IMAGE_PATH) sbom = { sha: l.diffId };
    else app.push({ sha: l.diffId });
  }
  const lifecycle = {
    app,
    // metadata.toml travels in the app's top layer.
    ...(app.length ? { config: app[app.length - 1] } : {}),
    ...(launcher ? { launcher } : {}),
    ...(sbom ? { sbom } : {}),
    buildpacks: info.buildpacks.map((bp) => ({ key: bp.id, version: bp.version, layers: layersByBp.get(bp.id) ?? {} })),
    runImage: { topLayer: input.runDiffIds[input.runDiffIds.length - 1], reference: input.runImage.reference, image: input.runImage.image },
    stack: { runImage: { image: input.runImage.image } },
  };
  const build = {
    buildpacks: info.buildpacks.map((bp) => ({ id: bp.id, version: bp.version, ...(bp.homepage ? { homepage: bp.homepage } : {}) })),
    processes: info.processes,
    launcher: { version: slugkitVersion(), source: { git: { repository: 'slugkit', commit: '' } } },
    bom: [],
  };
  const project = input.sourceVersion ? { source: { type: 'git', version: { commit: input.sourceVersion } } } : {};
  return {
    [CNB_LABELS.lifecycle]: JSON.stringify(lifecycle),
    [CNB_LABELS.build]: JSON.stringify(build),
    [CNB_LABELS.project]: JSON.stringify(project),
  };
}

/**
 * The lifecycle label after a rebase, as the lifecycle's rebaser writes it:
 * the new top layer and reference; a new run image name replaces `image`
 * (mirrors dropped) and `stack`. Undefined when the image has no such label.
 */
export function rebasedLifecycleLabel(label: string | undefined, next: { topLayer: string } & RunImageIds): string | undefined {
  if (!label) return undefined;
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(label);
  } catch {
    return undefined;
  }
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) return undefined;
  const runImage: Record<string, unknown> = {
    ...((meta.runImage as Record<string, unknown>) ?? {}),
    topLayer: next.topLayer,
    reference: next.reference,
  };
  const mirrors = Array.isArray(runImage.mirrors) ? (runImage.mirrors as unknown[]) : [];
  if (runImage.image !== next.image && !mirrors.includes(next.image)) {
    runImage.image = next.image;
    delete runImage.mirrors;
    meta.stack = { runImage: { image: next.image } };
  }
  meta.runImage = runImage;
  return JSON.stringify(meta);
}
