/**
 * The compile phase of a group of classic and Cloud Native Buildpacks, in
 * chain order. What an earlier buildpack made for build time reaches every
 * later one, whatever its kind: a classic `export` file is sourced before a
 * later bin/compile or bin/build, and a CNB's build layers (paths and env
 * files) are in the environment of later buildpacks of both kinds.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { BuiltApp } from '../../shared/app/app.js';
import { type LaunchMetadata as AppLaunchMetadata, cnbApp, writeLaunchMetadata } from '../../shared/app/launch-metadata.js';
import { LAUNCH_METADATA, RELEASE } from '../../shared/app/layout.js';
import { cnbCommandLine } from '../../shared/app/processes.js';
import { writeRelease } from '../../shared/app/release-file.js';
import { UserError } from '../../shared/errors.js';
import { stringEnv } from '../../shared/layer-env.js';
import { log } from '../../shared/log.js';
import { emptyRelease, type Release } from '../../shared/release.js';
import { writeLaunchSboms } from '../sbom/layout.js';
import type { CnbMember, GroupMemberBuildpack } from './choose.js';
import { type CompileContext, compileOne } from './classic/compile.js';
import { mergeReleases, release } from './classic/release.js';
import { buildCnb, classicBuildEnv } from './cnb/build.js';
import type { BuildTarget } from './cnb/detect.js';
import type { CnbProcess, LaunchMetadata } from './cnb/launch-toml.js';
import { type CnbRef, finalizeLayers } from './cnb/layers.js';
import { mergeLabels } from './cnb/metadata.js';
import type { SbomFile } from './cnb/sbom.js';
import type { ScriptContext } from './run-script.js';

export interface ChainContext extends CompileContext {
  platformDir: string;
  target: BuildTarget;
  /** A dir of this build's own for the CNB plan files. */
  scratchDir?: string;
}

export interface ChainResult {
  /** Export files of the classic buildpacks, for the app's post-compile hook. */
  exports: string[];
  /** Each CNB's launch.toml, by its directory. */
  launch: Map<string, LaunchMetadata>;
  /** The SBOM files the CNBs wrote, in chain order (the launch ones are also in the app, sbom/layout.ts). */
  sboms: SbomFile[];
}

/** Buildpack API refs of the group's CNBs, in order. */
export function cnbRefs(group: readonly GroupMemberBuildpack[]): CnbRef[] {
  return group
    .filter((m): m is CnbMember => m.kind === 'cnb')
    .map((m) => ({ id: m.descriptor.id, version: m.descriptor.version ?? '', api: m.descriptor.api }));
}

export async function compileChain(group: readonly GroupMemberBuildpack[], ctx: ChainContext): Promise<ChainResult> {
  const exports: string[] = [];
  const buildLayers: string[] = [];
  const launch = new Map<string, LaunchMetadata>();
  const sboms: SbomFile[] = [];
  for (const [i, member] of group.entries()) {
    if (group.length > 1) log.step(`Running buildpack ${member.name}`);
    if (member.kind === 'classic') {
      const env = buildLayers.length === 0 ? ctx.env : await classicBuildEnv(stringEnv(ctx.env), buildLayers);
      await compileOne(member, exports, { ...ctx, env });
      const exportFile = path.join(member.dir, 'export');
      if (
        await access(exportFile).then(
          () => true,
          () => false,
        )
      )
        exports.push(exportFile);
      continue;
    }
    const d = member.descriptor;
    const laterProvides = group.slice(i + 1).flatMap((m) => (m.kind === 'cnb' ? m.plan.map((e) => e.name) : []));
    const result = await buildCnb({
      buildpack: { id: d.id, version: d.version ?? '', api: d.api, dir: member.dir, clearEnv: d.clearEnv, sbomFormats: d.sbomFormats },
      appDir: ctx.buildDir,
      platformDir: ctx.platformDir,
      cacheDir: ctx.cacheDir,
      plan: member.plan,
      env: stringEnv(ctx.env),
      earlierBuildLayers: buildLayers,
      target: ctx.target,
      laterProvides,
      timeoutMs: ctx.timeoutMs,
      exports,
      sandbox: ctx.sandbox,
      scratchDir: ctx.scratchDir,
    });
    if (result.launch.slices.length > 0) {
      throw new UserError(
        `buildpack ${member.name}: launch.toml [[slices]] are not supported (slugkit writes the app as one layer): remove them`,
      );
    }
    buildLayers.push(...result.buildLayers);
    launch.set(member.dir, result.launch);
    sboms.push(...result.sboms);
  }
  await finalizeLayers({ appDir: ctx.buildDir, cacheDir: ctx.cacheDir, buildpacks: cnbRefs(group) });
  await writeLaunchSboms(ctx.buildDir, sboms);
  return { exports, launch, sboms };
}

/** What the chain releases: the merged .release and the launch metadata, as written. */
export interface ChainRelease {
  release: Release;
  labels: Array<{ key: string; value: string }>;
  /** The app as the runner will read it, but for its Procfile (the chain does not read it). */
  app: Omit<BuiltApp, 'procfile'>;
}

/**
 * Classic bin/release and CNB launch.toml processes merged in chain order, a
 * later buildpack winning a process type; writes `.release` (every type, CNB
 * ones as shell lines) and `.layers/config/metadata.toml` (the CNB processes
 * that won, the group's CNBs, the labels).
 */
export async function releaseChain(
  group: readonly GroupMemberBuildpack[],
  launch: Map<string, LaunchMetadata>,
  ctx: ScriptContext,
): Promise<ChainRelease> {
  const releases: Release[] = [];
  const winners = new Map<string, CnbProcess | undefined>();
  for (const member of group) {
    if (member.kind === 'classic') {
      const r = await release(member, ctx);
      for (const type of Object.keys(r.default_process_types)) winners.set(type, undefined);
      releases.push(r);
      continue;
    }
    const processes = launch.get(member.dir)?.processes ?? [];
    const r = emptyRelease();
    for (const p of processes) {
      r.default_process_types[p.type] = cnbCommandLine(toLaunchProcess(p));
      winners.set(p.type, p);
    }
    releases.push(r);
  }
  const merged = mergeReleases(releases);
  const releaseBytes = await writeRelease(ctx.buildDir, merged);
  const launches = group.flatMap((m) => (m.kind === 'cnb' ? [launch.get(m.dir) ?? { processes: [], labels: [], slices: [] }] : []));
  const labels = mergeLabels(launches);
  const processes = [...winners.values()].filter((p): p is CnbProcess => p !== undefined);
  const metadata: AppLaunchMetadata = { buildpacks: cnbRefs(group), processes: processes.map(toLaunchProcess), labels };
  const metadataBytes = await writeLaunchMetadata(ctx.buildDir, metadata);
  const app: ChainRelease['app'] = {
    appDir: ctx.buildDir,
    release: merged,
    cnb: metadataBytes ? cnbApp(ctx.buildDir, metadata) : undefined,
    files: { [RELEASE]: releaseBytes, [LAUNCH_METADATA]: metadataBytes },
  };
  return { release: merged, labels, app };
}

/** A launch.toml process as the launch metadata stores it. */
function toLaunchProcess({ api, ...p }: CnbProcess) {
  return { ...p, buildpackApi: api };
}
