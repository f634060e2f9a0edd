/**
 * Cloud Native Buildpacks written from code for the CNB tests: a
 * buildpack.toml and bash bin/detect and bin/build, so what a test buildpack
 * does is readable where the test sets it up. One family per Buildpack API
 * range is made by passing `api`.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface CnbSpec {
  id: string;
  version?: string;
  /** Buildpack API, e.g. '0.8', '0.10', '0.12'. */
  api: string;
  /** bin/detect body; default: pass with an empty plan. */
  detect?: string;
  /** bin/build body; default: do nothing. */
  build?: string;
  /** Extra TOML appended to buildpack.toml ([[stacks]], [[targets]], clear-env, ...). */
  extraToml?: string;
}

export interface CompositeSpec {
  id: string;
  version?: string;
  api: string;
  /** Each group lists members as id, version and optional. */
  order: Array<Array<{ id: string; version?: string; optional?: boolean }>>;
}

const SHEBANG = '#!/usr/bin/env bash\nset -euo pipefail\n';

function tomlString(s: string): string {
  return JSON.stringify(s);
}

/** Writes a component CNB into `dir` (created) and returns `dir`. */
export async function writeCnb(dir: string, spec: CnbSpec): Promise<string> {
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  const toml = [
    `api = ${tomlString(spec.api)}`,
    '',
    '[buildpack]',
    `id = ${tomlString(spec.id)}`,
    `version = ${tomlString(spec.version ?? '0.0.1')}`,
    `name = ${tomlString(spec.id)}`,
    '',
    spec.extraToml ?? '',
  ].join('\n');
  await writeFile(path.join(dir, 'buildpack.toml'), toml + '\n');
  const scripts = { detect: spec.detect ?? 'exit 0', build: spec.build ?? 'exit 0' };
  for (const [name, body] of Object.entries(scripts)) {
    const file = path.join(dir, 'bin', name);
    await writeFile(file, SHEBANG + body + '\n');
    await chmod(file, 0o755);
  }
  return dir;
}

/** Writes a composite (meta) buildpack: buildpack.toml with [[order]] and no bin/. */
export async function writeComposite(dir: string, spec: CompositeSpec): Promise<string> {
  await mkdir(dir, { recursive: true });
  const lines = [
    `api = ${tomlString(spec.api)}`,
    '',
    '[buildpack]',
    `id = ${tomlString(spec.id)}`,
    `version = ${tomlString(spec.version ?? '0.0.1')}`,
    '',
  ];
  for (const group of spec.order) {
    lines.push('[[order]]');
    for (const m of group) {
      lines.push('[[order.group]]', `id = ${tomlString(m.id)}`);
      if (m.version) lines.push(`version = ${tomlString(m.version)}`);
      if (m.optional) lines.push('optional = true');
    }
    lines.push('');
  }
  await writeFile(path.join(dir, 'buildpack.toml'), lines.join('\n'));
  return dir;
}

/** A bin/detect body that writes a build plan (TOML) to $2 and passes. */
export function detectWithPlan(planToml: string): string {
  return `cat > "$2" <<'TOML'\n${planToml}\nTOML\nexit 0`;
}
