/**
 * Running one CNB's bin/detect, and the platform check before it: does the
 * buildpack support this build's stack (Buildpack API before 0.10) or
 * target (os/arch/distro, 0.10 on)?
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hasExecEnv, usesTargets } from '../../../shared/app/buildpack-api.js';
import { layersDirName } from '../../../shared/app/layout.js';
import { UserError } from '../../../shared/errors.js';
import { applyPlatformEnv } from '../../../shared/layer-env.js';
import { runScript } from '../run-script.js';
import { NO_SANDBOX, type Sandbox, widen } from '../sandbox.js';
import { type BuildpackDescriptor, buildpackLabel, type Target } from './descriptor.js';
import { type BuildPlan, parseBuildPlan } from './plan.js';

/** The machine a build runs for, in OCI names (os linux, arch amd64/arm64). */
export interface BuildTarget {
  os: string;
  arch: string;
  variant?: string;
  distro?: { name: string; version: string };
}

const OCI_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

/** ID and VERSION_ID of an os-release file. */
export function parseOsRelease(text: string): { name: string; version: string } | undefined {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) fields[m[1]] = m[2].replace(/^(["'])(.*)\1$/, '$2');
  }
  return fields.ID ? { name: fields.ID, version: fields.VERSION_ID ?? '' } : undefined;
}

/**
 * This build's target: linux, the arch Node runs on, and the distro from
 * the build machine's os-release unless the caller names one (a run image
 * that names none gives `distro: undefined`: no host distro then).
 */
export async function buildTarget(given: Partial<BuildTarget> = {}, osRelease = '/etc/os-release'): Promise<BuildTarget> {
  let distro = given.distro;
  if (!distro && !('distro' in given)) {
    const text = await readFile(osRelease, 'utf8').catch(() => '');
    distro = parseOsRelease(text);
  }
  return {
    os: given.os ?? 'linux',
    arch: given.arch ?? OCI_ARCH[process.arch] ?? process.arch,
    variant: given.variant ?? (process.arch === 'arm' ? 'v7' : undefined),
    distro,
  };
}

/** What a build offers buildpacks to match against. */
export interface PlatformInfo {
  /** The stack (--stack), matched against [[stacks]] before Buildpack API 0.10. */
  stack?: string;
  target: BuildTarget;
}

/** Empty on either side matches anything. */
function same(a: string | undefined, b: string | undefined): boolean {
  return !a || !b || a === '*' || b === '*' || a === b;
}

function targetMatches(t: Target, build: BuildTarget): boolean {
  if (!same(t.os, build.os) || !same(t.arch, build.arch) || !same(t.variant, build.variant)) return false;
  if (t.distros.length === 0) return true;
  if (!build.distro) return false;
  return t.distros.some((d) => same(d.name, build.distro!.name) && same(d.version, build.distro!.version));
}

function describeTarget(t: Target): string {
  const base = [t.os ?? '*', t.arch ?? '*'].join('/') + (t.variant ? `/${t.variant}` : '');
  const distros = t.distros.map((d) => [d.name, d.version].filter(Boolean).join(' ')).join(', ');
  return distros ? `${base} (${distros})` : base;
}

function describeBuild(b: BuildTarget): string {
  const base = `${b.os}/${b.arch}${b.variant ? `/${b.variant}` : ''}`;
  return b.distro ? `${base} (${[b.distro.name, b.distro.version].filter(Boolean).join(' ')})` : base;
}

/**
 * Why this buildpack cannot run in this build, as one line naming it and
 * what it supports; undefined when it can. Before API 0.10 only [[stacks]]
 * counts, from 0.10 only [[targets]]; a buildpack listing neither runs anywhere.
 */
export function platformMismatch(d: BuildpackDescriptor, platform: PlatformInfo): string | undefined {
  const who = `buildpack ${buildpackLabel(d)}`;
  if (!usesTargets(d.api)) {
    if (d.stacks.length === 0 || d.stacks.some((s) => s === '*' || s === platform.stack)) return undefined;
    return `${who} supports stacks ${d.stacks.join(', ')}; this build is ${platform.stack ?? 'on no stack'}`;
  }
  if (d.targets.length === 0 || d.targets.some((t) => targetMatches(t, platform.target))) return undefined;
  return `${who} supports targets ${d.targets.map(describeTarget).join(', ')}; this build is ${describeBuild(platform.target)}`;
}

/** The CNB_TARGET_* variables (Buildpack API 0.10 on) and CNB_EXEC_ENV (0.12). */
export function targetEnv(api: string, target: BuildTarget): Record<string, string> {
  if (!usesTargets(api)) return {};
  const env: Record<string, string> = { CNB_TARGET_OS: target.os, CNB_TARGET_ARCH: target.arch };
  if (target.variant) env.CNB_TARGET_ARCH_VARIANT = target.variant;
  if (target.distro) {
    env.CNB_TARGET_DISTRO_NAME = target.distro.name;
    env.CNB_TARGET_DISTRO_VERSION = target.distro.version;
  }
  if (hasExecEnv(api)) env.CNB_EXEC_ENV = 'production';
  return env;
}

export interface DetectContext {
  appDir: string;
  platformDir: string;
  /** A directory of this build's own: each buildpack's plan file is made below it. */
  scratchDir: string;
  /** The clean build environment the buildpack starts from. */
  env: NodeJS.ProcessEnv;
  platform: PlatformInfo;
  timeoutMs?: number;
  /** The build's sandbox (the app dir in reach); none when not given. */
  sandbox?: Sandbox;
}

export type DetectOutcome =
  | { status: 'pass'; plan: BuildPlan; output: string }
  | { status: 'fail'; output: string; reason?: string }
  /** bin/detect broke (an exit code other than 0 and 100, bad plan): `message` is the one line. */
  | { status: 'error'; output: string; message: string };

function failureLine(who: string, r: { exitCode?: number; signal?: string; timedOut: boolean }, timeoutMs?: number): string {
  if (r.timedOut) return `buildpack ${who}: bin/detect timed out after ${Math.round((timeoutMs ?? 0) / 1000)}s`;
  if (r.signal) return `buildpack ${who}: bin/detect was killed by ${r.signal}`;
  if (r.exitCode === undefined) return `buildpack ${who}: bin/detect could not be run: check it is executable`;
  return `buildpack ${who}: bin/detect failed (exit ${r.exitCode})`;
}

/**
 * Runs bin/detect of a component CNB in the app dir: `$1` the platform dir,
 * `$2` its plan file (made empty first), with the CNB_* variables for its API.
 */
export async function detectCnb(d: BuildpackDescriptor, ctx: DetectContext): Promise<DetectOutcome> {
  const who = buildpackLabel(d);
  const planDir = path.join(ctx.scratchDir, `${layersDirName(d.id)}@${d.version ?? ''}`);
  await mkdir(planDir, { recursive: true });
  const planPath = path.join(planDir, 'plan.toml');
  await writeFile(planPath, '');

  const base = Object.fromEntries(Object.entries(ctx.env).filter((e): e is [string, string] => e[1] !== undefined));
  const env: NodeJS.ProcessEnv = d.clearEnv ? base : await applyPlatformEnv(base, ctx.platformDir);
  Object.assign(env, {
    CNB_BUILDPACK_DIR: d.dir,
    CNB_PLATFORM_DIR: ctx.platformDir,
    CNB_BUILD_PLAN_PATH: planPath,
    ...targetEnv(d.api, ctx.platform.target),
  });
  if (ctx.platform.stack) env.CNB_STACK_ID = ctx.platform.stack;

  const result = await runScript(path.join(d.dir, 'bin', 'detect'), [ctx.platformDir, planPath], {
    env,
    cwd: ctx.appDir,
    timeoutMs: ctx.timeoutMs,
    captureStdout: true,
    sandbox: widen(ctx.sandbox ?? NO_SANDBOX, { ro: [d.dir, ctx.platformDir], rw: [planDir] }),
  });
  const output = result.stdout;
  if (result.exitCode === 100 && !result.timedOut) return { status: 'fail', output };
  if (result.exitCode !== 0 || result.timedOut || result.signal) {
    return { status: 'error', output, message: failureLine(who, result, ctx.timeoutMs) };
  }
  try {
    return { status: 'pass', output, plan: parseBuildPlan(await readFile(planPath, 'utf8'), who) };
  } catch (err) {
    if (err instanceof UserError) return { status: 'error', output, message: err.message };
    throw err;
  }
}
