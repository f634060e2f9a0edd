/**
 * The build plan: what each buildpack's bin/detect says it provides and
 * requires, and how a group's plans resolve into the buildpack plan each
 * member's bin/build gets as `$3`. Resolution follows the lifecycle: a
 * require is met by a provide of the same buildpack or an earlier one, a
 * provide by a require of the same buildpack or a later one; alternatives
 * ([[or]]) are tried in order; optional members may be dropped to resolve.
 */

import { UserError } from '../../../shared/errors.js';
import { parseToml, type TomlTable, toToml } from '../../../shared/toml.js';

export interface Provide {
  name: string;
}

export interface Require {
  name: string;
  /** Deprecated top-level version (kept as the buildpack wrote it). */
  version?: string;
  metadata: TomlTable;
}

export interface PlanSection {
  provides: Provide[];
  requires: Require[];
}

export interface BuildPlan extends PlanSection {
  /** Alternatives, tried in order after the main section. */
  or: PlanSection[];
}

export const EMPTY_PLAN: BuildPlan = { provides: [], requires: [], or: [] };

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function entries(value: unknown, what: string): TomlTable[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every(isTable)) throw new Error(`${what} must be an array of tables ([[${what}]])`);
  return value;
}

function section(t: TomlTable, prefix: string): PlanSection {
  const provides = entries(t.provides, `${prefix}provides`).map((p, i) => {
    if (typeof p.name !== 'string' || !p.name) throw new Error(`[[${prefix}provides]] entry ${i + 1} has no name`);
    return { name: p.name };
  });
  const requires = entries(t.requires, `${prefix}requires`).map((r, i) => {
    if (typeof r.name !== 'string' || !r.name) throw new Error(`[[${prefix}requires]] entry ${i + 1} has no name`);
    const metadata = r.metadata ?? {};
    if (!isTable(metadata)) throw new Error(`[${prefix}requires.metadata] of "${r.name}" must be a table`);
    if (r.version !== undefined && typeof r.version !== 'string') throw new Error(`version of "${r.name}" must be a string`);
    if (r.version !== undefined && metadata.version !== undefined) {
      throw new Error(`"${r.name}" has both version and metadata.version: keep metadata.version`);
    }
    return r.version === undefined ? { name: r.name, metadata } : { name: r.name, version: r.version, metadata };
  });
  return { provides, requires };
}

/**
 * Parses the plan bin/detect wrote. `who` names the buildpack in the one-line
 * error (bad TOML gives the line).
 */
export function parseBuildPlan(text: string, who: string): BuildPlan {
  const table = parseToml(text, `buildpack ${who}: build plan from bin/detect`);
  try {
    return { ...section(table, ''), or: entries(table.or, 'or').map((alt) => section(alt, 'or.')) };
  } catch (err) {
    throw new UserError(`buildpack ${who}: build plan from bin/detect: ${(err as Error).message}`);
  }
}

/** The `$3` file of bin/build: `[[entries]] name` (+ version) + `[entries.metadata]`; empty for no entries. */
export function buildpackPlanToml(plan: readonly Require[]): string {
  if (plan.length === 0) return '';
  return toToml({ entries: plan.map((r) => ({ ...r, metadata: r.metadata ?? {} })) });
}

/** A group member as the resolver sees it: a key, whether it may be dropped, its plan. */
export interface PlanMember {
  key: string;
  label: string;
  optional: boolean;
  plan: BuildPlan;
}

export interface Resolved {
  /** Members that take part, in group order (optional ones may have been dropped). */
  members: PlanMember[];
  /** Per member key: the requires it is to provide, in the order they were made. */
  plans: Map<string, Require[]>;
}

interface Option {
  member: PlanMember;
  optional: boolean;
  section: PlanSection;
}

interface Dependency {
  providers: Option[];
  /** Provides not yet followed by a require. */
  pending: Option[];
  /** Requires seen before any provide. */
  early: Option[];
  requires: Require[];
}

/** One choice of sections, with optional members dropped until it resolves, or the reason it cannot. */
function tryOptions(choice: Option[]): Resolved | string {
  let trial = choice;
  for (;;) {
    const deps = new Map<string, Dependency>();
    const dep = (name: string) => {
      let d = deps.get(name);
      if (!d) {
        d = { providers: [], pending: [], early: [], requires: [] };
        deps.set(name, d);
      }
      return d;
    };
    for (const option of trial) {
      for (const p of option.section.provides) dep(p.name).pending.push(option);
      for (const r of option.section.requires) {
        const d = dep(r.name);
        d.providers.push(...d.pending);
        d.pending = [];
        if (d.providers.length === 0) d.early.push(option);
        else d.requires.push(r);
      }
    }
    const drop = new Set<Option>();
    for (const [name, d] of deps) {
      for (const o of d.early) {
        if (!o.optional) return `nothing at or before ${o.member.label} provides '${name}'`;
        drop.add(o);
      }
    }
    for (const [name, d] of deps) {
      for (const o of d.pending) {
        if (!o.optional) return `${o.member.label} provides '${name}' but nothing at or after it requires it`;
        drop.add(o);
      }
    }
    if (drop.size === 0) {
      if (trial.length === 0) return 'no buildpack left after dropping optional ones';
      const plans = new Map<string, Require[]>();
      for (const o of trial) plans.set(o.member.key, []);
      for (const d of deps.values()) {
        for (const provider of new Set(d.providers)) plans.get(provider.member.key)!.push(...d.requires);
      }
      return { members: trial.map((o) => o.member), plans };
    }
    trial = trial.filter((o) => !drop.has(o));
  }
}

/**
 * Resolves the plans of members that passed detect. Each member's sections
 * (its main plan, then each [[or]]) are tried in order, every combination
 * in turn; an optional member can only be dropped on its last alternative,
 * so its earlier ones are tried with it in the group first.
 */
export function resolvePlans(members: PlanMember[]): Resolved | string {
  let firstReason: string | undefined;
  const walk = (i: number, chosen: Option[]): Resolved | undefined => {
    if (i === members.length) {
      const r = tryOptions(chosen);
      if (typeof r !== 'string') return r;
      firstReason ??= r;
      return undefined;
    }
    const m = members[i];
    const sections = [m.plan as PlanSection, ...m.plan.or];
    for (let s = 0; s < sections.length; s++) {
      const option = { member: m, optional: m.optional && s === sections.length - 1, section: sections[s] };
      const r = walk(i + 1, [...chosen, option]);
      if (r) return r;
    }
    return undefined;
  };
  return walk(0, []) ?? `plan unresolved: ${firstReason}`;
}
