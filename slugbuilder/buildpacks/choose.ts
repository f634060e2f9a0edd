/**
 * Which buildpacks build the app: one group of classic and Cloud Native
 * Buildpacks, in chain order.
 *
 * An explicit list (`--buildpack`, BUILDPACK_URL, project.toml's buildpacks,
 * the app's `.buildpacks`) is one group in that order. Its classic members
 * run even where their detect says no, as on Heroku; its CNB members must
 * pass detect and the group's plan must resolve, as pack requires of an
 * explicit group (a composite expands to its order). Otherwise the builder
 * file's order (`--builder`, else the bundled buildpacks/builder.toml) is
 * detected and the first group that passes builds.
 */
import { UserError } from '../../shared/errors.js';
import { log } from '../../shared/log.js';
import { type BuilderFile, builderLookup, type FetchedBuildpack, readBuilderFile } from './builder-file.js';
import { detect as classicDetect } from './classic/detect.js';
import { type BuildpackDescriptor, buildpackLabel, type GroupMember, readBuildpackDescriptor } from './cnb/descriptor.js';
import type { PlatformInfo } from './cnb/detect.js';
import {
  type BuildpackLookup,
  type DetectOrderOptions,
  detectOrder,
  logDetectOutput,
  noGroupPassedMessage,
  type OrderBuildpack,
} from './cnb/order.js';
import type { Require } from './cnb/plan.js';
import { appBuildpackList, BUNDLED_BUILDER, type Buildpack, prepareBuildpack, type ResolveOptions, workingCopy } from './prepare.js';
import type { Sandbox } from './sandbox.js';

interface MemberBase {
  /** Where it came from, as it may be printed (no credentials). */
  origin: string;
  /** Working copy the scripts run from. */
  dir: string;
  /** What exactly was fetched (git commit or tarball sha256); absent for a local directory. */
  version?: Buildpack['version'];
}

export interface ClassicMember extends MemberBase {
  kind: 'classic';
  /** What detect called it, else its directory's name. */
  name: string;
}

export interface CnbMember extends MemberBase {
  kind: 'cnb';
  /** id@version, for logs. */
  name: string;
  descriptor: BuildpackDescriptor;
  /** The buildpack plan for its bin/build. */
  plan: Require[];
}

export type GroupMemberBuildpack = ClassicMember | CnbMember;

/** A classic member, the shape the classic compile and release steps take. */
export type ChosenBuildpack = ClassicMember;

/** A buildpack of an explicit list: a spec (directory, URL), or a CNB id (and version) found in the builder. */
export type ListedBuildpack = string | { id: string; version?: string };

export interface ChooseOptions extends ResolveOptions {
  /** Explicit buildpacks (command line, project.toml); empty means the app's `.buildpacks`, then the builder's order. */
  buildpacks: ListedBuildpack[];
  /** Where the explicit list came from, for the log. */
  listedIn?: string;
  /** The builder file; undefined: the bundled one. */
  builder?: BuilderFile;
  buildDir: string;
  env: NodeJS.ProcessEnv;
  /** Holds env/ with the config vars. */
  platformDir: string;
  /** Scratch space for detect's plan files. */
  scratchDir: string;
  platform: PlatformInfo;
  timeoutMs?: number;
  sandbox: Sandbox;
}

/** Said to whoever pushed an app no bundled buildpack recognises: the app-side fix first. */
export const NOTHING_DETECTED =
  'no buildpack detected this app: add a package.json (Node.js), requirements.txt or pyproject.toml (Python), index.html (static site) or a Procfile to it, ' +
  'or a .buildpacks file listing the buildpacks to use (slugbuilder users: or pass --buildpack or BUILDPACK_URL)';

interface Prepared {
  bp: Buildpack;
  descriptor?: BuildpackDescriptor;
}

async function prepare(spec: string, o: ResolveOptions): Promise<Prepared> {
  const bp = await prepareBuildpack(spec, o);
  try {
    return { bp, descriptor: await readBuildpackDescriptor(bp.dir) };
  } catch (err) {
    // Named by where the user's buildpack came from, not the build's working copy.
    if (err instanceof UserError) throw new UserError(err.message.split(bp.dir).join(bp.origin));
    throw err;
  }
}

/** Every [[buildpacks]] entry of a builder file, fetched. */
async function fetchBuilder(
  builder: BuilderFile,
  o: ResolveOptions,
): Promise<{ fetched: FetchedBuildpack[]; origins: Map<string, Buildpack> }> {
  const fetched: FetchedBuildpack[] = [];
  const origins = new Map<string, Buildpack>();
  for (const entry of builder.buildpacks) {
    const { bp, descriptor } = await prepare(entry.location, { ...o, deferLocalCopy: true });
    fetched.push({ entry, dir: bp.dir, descriptor });
    origins.set(bp.dir, { ...bp, origin: entry.uri });
  }
  return { fetched, origins };
}

/** The explicit list's members in the order they were listed. */
function groupInOrder(explicit: ListedBuildpack[], bySpec: GroupMember[], byId: GroupMember[]): GroupMember[] {
  let spec = 0;
  let id = 0;
  return explicit.map((e) => (typeof e === 'string' ? bySpec[spec++] : byId[id++]));
}

/** The one line for an explicit group that did not pass: the buildpack's own error first. */
function explicitFailure(result: DetectResult): string {
  if (result.errors.length > 0) return result.errors[0].message;
  const reason = result.tried[0]?.replace(/^group 1: /, '') ?? 'no buildpack passed detect';
  return `the buildpacks chosen for this app did not pass detection: ${reason}`;
}

type DetectResult = Awaited<ReturnType<typeof detectOrder>>;
type DetectedGroup = NonNullable<DetectResult['group']>;

/** What the steps of one choice share: the fetch options, the builder, and what detect learned. */
interface Choice {
  o: ChooseOptions;
  resolve: ResolveOptions;
  builder: BuilderFile;
  /** No --builder: the bundled builder file. */
  bundled: boolean;
  /** Classic buildpacks' names, as their detect printed them. */
  classicNames: Map<string, string>;
  /** Where each fetched buildpack came from, by working dir. */
  origins: Map<string, Buildpack>;
}

export async function chooseBuildpacks(o: ChooseOptions): Promise<GroupMemberBuildpack[]> {
  const choice: Choice = {
    o,
    resolve: { workDir: o.workDir, cacheRoot: o.cacheRoot },
    builder: o.builder ?? (await readBuilderFile(BUNDLED_BUILDER)),
    bundled: o.builder === undefined,
    classicNames: new Map(),
    origins: new Map(),
  };
  const { list, listedIn } = await explicitList(o);
  const group = list.length > 0 ? await detectExplicitGroup(choice, list, listedIn) : await detectBuilderOrder(choice);
  return membersOf(choice, group);
}

/** The explicit list: the options' own, else the app's `.buildpacks`. */
async function explicitList(o: ChooseOptions): Promise<{ list: ListedBuildpack[]; listedIn?: string }> {
  if (o.buildpacks.length > 0) return { list: o.buildpacks, listedIn: o.listedIn };
  const list = await appBuildpackList(o.buildDir);
  return { list, listedIn: list.length > 0 ? '.buildpacks' : o.listedIn };
}

/** Runs a classic buildpack's detect, keeping the name it printed. */
async function detectClassicMember(c: Choice, bp: OrderBuildpack): Promise<boolean> {
  const found = await classicDetect(bp.dir, c.o.buildDir, c.o.env, c.o.sandbox);
  if (found.name) c.classicNames.set(bp.dir, found.name);
  return found.detected;
}

function detectOptions(c: Choice, lookup: BuildpackLookup, classic: DetectOrderOptions['detectClassic']): DetectOrderOptions {
  const { o } = c;
  return {
    appDir: o.buildDir,
    platformDir: o.platformDir,
    scratchDir: o.scratchDir,
    env: o.env,
    platform: o.platform,
    timeoutMs: o.timeoutMs,
    sandbox: o.sandbox,
    lookup,
    detectClassic: classic,
  };
}

/** Fetches the builder's buildpacks, remembering where each came from. */
async function fetchBuilderInto(c: Choice): Promise<FetchedBuildpack[]> {
  const { fetched, origins } = await fetchBuilder(c.builder, c.resolve);
  for (const [dir, bp] of origins) c.origins.set(dir, bp);
  return fetched;
}

/** An explicit list as one group: it must pass as a whole. */
async function detectExplicitGroup(c: Choice, explicit: ListedBuildpack[], listedIn?: string): Promise<DetectedGroup> {
  if (listedIn) log.info(`Using the buildpacks listed in ${listedIn}`);
  // Members named by id (a composite's) are found among the list and the builder's buildpacks.
  const listed: Array<{ member: GroupMember; found: OrderBuildpack }> = [];
  const byId: GroupMember[] = [];
  for (const [i, spec] of explicit.entries()) {
    if (typeof spec !== 'string') {
      byId.push({ id: spec.id, version: spec.version, optional: false });
      continue;
    }
    const { bp, descriptor } = await prepare(spec, c.resolve);
    c.origins.set(bp.dir, bp);
    const found: OrderBuildpack = {
      id: descriptor?.id ?? `#${i + 1} ${bp.origin}`,
      version: descriptor?.version,
      dir: bp.dir,
      descriptor,
    };
    listed.push({ member: { id: found.id, version: found.version, optional: false }, found });
  }
  let fromBuilder: BuildpackLookup | undefined;
  const lookup: BuildpackLookup = async (m) => {
    const hit = listed.find((l) => l.found.id === m.id && (!m.version || l.found.version === m.version));
    if (hit) return hit.found;
    fromBuilder ??= builderLookup({ ...c.builder, order: [] }, await fetchBuilderInto(c));
    return fromBuilder(m);
  };
  // An explicitly listed classic buildpack runs whatever its detect says.
  const classic = async (bp: OrderBuildpack) => {
    await detectClassicMember(c, bp);
    return true;
  };
  const group = groupInOrder(
    explicit,
    listed.map((l) => l.member),
    byId,
  );
  const result = await detectOrder([group], detectOptions(c, lookup, classic));
  if (!result.group) {
    logDetectOutput(result.errors);
    throw new UserError(explicitFailure(result));
  }
  return passed(result, result.group);
}

/** The builder's order: the first group that passes detect. */
async function detectBuilderOrder(c: Choice): Promise<DetectedGroup> {
  const fetched = await fetchBuilderInto(c);
  const result = await detectOrder(
    c.builder.order,
    detectOptions(c, builderLookup(c.builder, fetched), (bp) => detectClassicMember(c, bp)),
  );
  if (!result.group) {
    logDetectOutput(result.errors);
    log.step('Unable to select a buildpack');
    // The bundled buildpacks are all classic: the app-side hint says more than the groups tried.
    throw new UserError(c.bundled && result.errors.length === 0 ? NOTHING_DETECTED : noGroupPassedMessage(result));
  }
  return passed(result, result.group);
}

/** A group passed: the broken detects on the way there are shown and warned about. */
function passed(result: DetectResult, group: DetectedGroup): DetectedGroup {
  // The spec's fallback: a required member's broken detect fails its group and the next group is tried.
  logDetectOutput(result.errors);
  for (const e of result.errors) {
    log.warn(
      `${e.message} (${e.required ? 'a required buildpack: its group failed, a later group was chosen' : 'an optional buildpack, left out'})`,
    );
  }
  return group;
}

/** The passing group as members, each in its own working copy, logged as chosen. */
async function membersOf(c: Choice, group: DetectedGroup): Promise<GroupMemberBuildpack[]> {
  const chosen: GroupMemberBuildpack[] = [];
  for (const { buildpack, plan } of group) {
    const source = c.origins.get(buildpack.dir);
    const base: MemberBase = {
      origin: source?.origin ?? buildpack.id,
      // Only now copied, when it came from a builder's list of many.
      dir: await workingCopy(buildpack.dir, c.resolve),
      ...(source?.version ? { version: source.version } : {}),
    };
    const d = buildpack.descriptor;
    if (d) {
      const member: CnbMember = { ...base, kind: 'cnb', name: buildpackLabel(d), descriptor: d, plan };
      log.step(`Detected buildpack ${member.name}`);
      chosen.push(member);
      continue;
    }
    const detectedName = c.classicNames.get(buildpack.dir);
    const name = detectedName ?? source?.name ?? buildpack.id;
    log.step(detectedName ? `${name} app detected` : `Using buildpack ${base.origin}`);
    chosen.push({ ...base, kind: 'classic', name });
  }
  return chosen;
}
