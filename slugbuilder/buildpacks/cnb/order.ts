/**
 * Choosing the group to build, as the lifecycle's detector does: the groups
 * of an order are tried in turn and the first that passes wins. A composite
 * member is expanded depth first, each of its own groups followed by the rest
 * of the outer group. A group passes when every non-optional member passes
 * detect and the build plan resolves. Groups may mix classic buildpacks
 * (which pass or fail but take no part in the plan) with CNBs.
 */
import { UserError } from '../../../shared/errors.js';
import { log } from '../../../shared/log.js';
import { detect as classicDetect } from '../classic/detect.js';
import { NO_SANDBOX } from '../sandbox.js';
import { type BuildpackDescriptor, buildpackLabel, type GroupMember } from './descriptor.js';
import { type DetectContext, type DetectOutcome, detectCnb, platformMismatch } from './detect.js';
import { EMPTY_PLAN, type PlanMember, type Require, resolvePlans } from './plan.js';

/** A buildpack a group member names, ready to detect. */
export interface OrderBuildpack {
  /** A CNB's id; for a classic buildpack, whatever the caller names it by (its uri). */
  id: string;
  version?: string;
  dir: string;
  /** undefined: a classic buildpack. */
  descriptor?: BuildpackDescriptor;
}

/** Finds the buildpack a member names; throws a UserError for an unknown one. */
export type BuildpackLookup = (member: GroupMember) => Promise<OrderBuildpack>;

export interface DetectOrderOptions extends DetectContext {
  lookup: BuildpackLookup;
  /** Classic bin/detect; default: run it with `env` in the app dir, exit 0 passes. */
  detectClassic?: (bp: OrderBuildpack) => Promise<boolean>;
}

export interface DetectedMember {
  buildpack: OrderBuildpack;
  /** The buildpack plan for bin/build's `$3` (empty for classic buildpacks). */
  plan: Require[];
}

export interface DetectError {
  /** id@version. */
  buildpack: string;
  /** One line naming the buildpack and what went wrong. */
  message: string;
  /** What bin/detect printed on stdout. */
  output: string;
  /** A group named it as a required member (its group failed); else only optional (it was left out). */
  required: boolean;
}

export interface OrderResult {
  /** The group that passed, or undefined. */
  group?: DetectedMember[];
  /** Why each group failed, "group N: ...", in order. */
  tried: string[];
  /** Buildpacks whose detect broke, each once, whether or not a group passed. */
  errors: DetectError[];
}

interface Entry {
  member: GroupMember;
  bp: OrderBuildpack;
  key: string;
  mismatch?: string;
}

type GroupOutcome = { ok: true; group: DetectedMember[] } | { ok: false; reason: string };

function keyOf(bp: OrderBuildpack): string {
  return bp.descriptor ? `cnb ${bp.descriptor.id}@${bp.descriptor.version ?? ''}` : `classic ${bp.id}`;
}

function labelOf(bp: OrderBuildpack): string {
  return buildpackLabel(bp.descriptor ?? bp);
}

class Detector {
  /** Each buildpack's detect runs once per build, however many groups name it. */
  private runs = new Map<string, Promise<DetectOutcome>>();
  readonly errors = new Map<string, DetectError>();

  constructor(private opts: DetectOrderOptions) {}

  private run(e: Entry): Promise<DetectOutcome> {
    let outcome = this.runs.get(e.key);
    if (!outcome) {
      outcome = e.bp.descriptor ? detectCnb(e.bp.descriptor, this.opts) : this.classic(e.bp);
      this.runs.set(e.key, outcome);
    }
    return outcome;
  }

  private async classic(bp: OrderBuildpack): Promise<DetectOutcome> {
    const passed = this.opts.detectClassic
      ? await this.opts.detectClassic(bp)
      : (await classicDetect(bp.dir, this.opts.appDir, this.opts.env, this.opts.sandbox ?? NO_SANDBOX)).detected;
    return passed ? { status: 'pass', plan: EMPTY_PLAN, output: '' } : { status: 'fail', output: '' };
  }

  /** An order inside a group: each of its groups, followed by `rest`; skipped entirely when optional. */
  async order(order: GroupMember[][], done: Entry[], rest: GroupMember[], optional: boolean, composites: string[]): Promise<GroupOutcome> {
    const reasons: string[] = [];
    for (const group of order) {
      const r = await this.group([...group, ...rest], done, composites);
      if (r.ok) return r;
      reasons.push(r.reason);
    }
    if (optional) {
      const r = await this.group(rest, done, composites);
      if (r.ok) return r;
      reasons.push(r.reason);
    }
    return { ok: false, reason: [...new Set(reasons)].join(' / ') };
  }

  async group(group: GroupMember[], doneBefore: Entry[], composites: string[]): Promise<GroupOutcome> {
    const done = [...doneBefore];
    for (const [i, member] of group.entries()) {
      // A buildpack already in the group (say, through a composite) is not added twice.
      if (done.some((e) => e.member.id === member.id)) continue;
      const bp = await this.opts.lookup(member);
      const d = bp.descriptor;
      if (d?.kind === 'composite') {
        if (composites.includes(d.id)) throw new UserError(`buildpack ${buildpackLabel(d)}: its [[order]] includes itself`);
        return this.order(d.order, done, group.slice(i + 1), member.optional, [...composites, d.id]);
      }
      const mismatch = d ? platformMismatch(d, this.opts.platform) : undefined;
      if (mismatch && member.optional) continue;
      const entry: Entry = { member, bp, key: keyOf(bp), mismatch };
      done.push(entry);
      if (!mismatch) await this.run(entry);
    }
    return this.resolve(done);
  }

  private async resolve(done: Entry[]): Promise<GroupOutcome> {
    const passed: PlanMember[] = [];
    const byKey = new Map<string, OrderBuildpack>();
    const problems: string[] = [];
    for (const e of done) {
      const label = labelOf(e.bp);
      if (e.mismatch) {
        problems.push(e.mismatch);
        continue;
      }
      const outcome = await this.run(e);
      if (outcome.status === 'pass') {
        passed.push({ key: e.key, label, optional: e.member.optional, plan: outcome.plan });
        byKey.set(e.key, e.bp);
      } else if (outcome.status === 'error') {
        const known = this.errors.get(e.key);
        if (!known)
          this.errors.set(e.key, { buildpack: label, message: outcome.message, output: outcome.output, required: !e.member.optional });
        else if (!e.member.optional) known.required = true;
        if (!e.member.optional) problems.push(outcome.message);
      } else if (!e.member.optional) {
        problems.push(`${label} failed detect`);
      }
    }
    if (problems.length > 0) return { ok: false, reason: problems.join(', ') };
    if (passed.length === 0) return { ok: false, reason: 'no buildpack passed detect' };
    const resolved = resolvePlans(passed);
    if (typeof resolved === 'string') return { ok: false, reason: resolved };
    return {
      ok: true,
      group: resolved.members.map((m) => ({ buildpack: byKey.get(m.key)!, plan: resolved.plans.get(m.key) ?? [] })),
    };
  }
}

/** Tries the groups of `order` in turn; the result holds the first that passed, or why each failed. */
export async function detectOrder(order: GroupMember[][], opts: DetectOrderOptions): Promise<OrderResult> {
  const detector = new Detector(opts);
  const tried: string[] = [];
  for (const [i, group] of order.entries()) {
    const r = await detector.group(group, [], []);
    if (r.ok) return { group: r.group, tried, errors: [...detector.errors.values()] };
    tried.push(`group ${i + 1}: ${r.reason}`);
  }
  return { tried, errors: [...detector.errors.values()] };
}

/** The one line for an order where no group passed. */
export function noGroupPassedMessage(result: OrderResult): string {
  return `no buildpack group passed detection (${result.tried.join('; ')}): check the app has what one of these buildpacks looks for, or choose buildpacks with --buildpack`;
}

/**
 * What each broken bin/detect printed, as the lifecycle shows it: the output
 * under a heading naming the buildpack. The one-line reasons come after.
 */
export function logDetectOutput(errors: DetectError[]): void {
  for (const e of errors) {
    const lines = e.output.replace(/\n+$/, '').split('\n');
    if (lines.length === 1 && lines[0].trim() === '') continue;
    log.info(`======== Output: ${e.buildpack} ========`);
    for (const line of lines) log.info(line);
  }
}

/** detectOrder, throwing the one-line UserError when no group passed. */
export async function selectGroup(order: GroupMember[][], opts: DetectOrderOptions): Promise<DetectedMember[]> {
  const result = await detectOrder(order, opts);
  if (!result.group) {
    logDetectOutput(result.errors);
    throw new UserError(noGroupPassedMessage(result));
  }
  return result.group;
}
