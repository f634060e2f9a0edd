/**
 * Outputs of a build, delivered all or nothing. Each output is a function of
 * the build result that stages its artifact (a temp file beside the target,
 * a staged image) and returns its --summary entry; only when every output
 * staged cleanly are they committed. What cannot be taken back (a push, an
 * upload, bytes sent to stdout or into a device) commits first, so that when
 * it fails no local file has appeared yet; renames of staged files come last.
 */
import type { BuildResult } from '../build.js';
import type { ExportPlan } from '../image/export.js';
import type { SlugLayerOptions } from '../image/slug-layers.js';

export interface Delivery {
  /** Entries this output adds to --summary. */
  summary?: Record<string, unknown>;
  /** Committing cannot be taken back (push, upload, stdout, a device). */
  irreversible?: boolean;
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/** `summary` holds the entries of the outputs staged before this one (the --summary output is last). */
export type Output = (result: BuildResult, summary: Readonly<Record<string, unknown>>) => Promise<Delivery>;

/** What every kind is told when it reads its flags. */
export interface ParseContext {
  env: NodeJS.ProcessEnv;
  /** --slug FILE: the slug exists already (nothing is built). */
  fromSlug: boolean;
  /** The builder file's [run] image: the default of --run-image. */
  builderRunImage?: string;
}

/** What `check()` may use: where slugkit keeps its caches. */
export interface CheckContext {
  env: NodeJS.ProcessEnv;
  cacheRoot: string;
}

/**
 * One output the command line asked for (outputs/index.ts lists the kinds):
 * `check()` runs before the build and fails fast on a target that cannot be
 * written; `outputs()` gives the Outputs that stage and commit after it.
 */
export interface RequestedOutput {
  /** The flag that asked for it, as written in messages. */
  flag: string;
  check(ctx: CheckContext): Promise<void>;
  outputs(mtime: Date): Output[];
  /** The export plan check() read (--image only): the build describes its run image. */
  plan?(): ExportPlan | undefined;
  /** --slug: what its dependency trees may go into straight from the slug (--image without --layer), else undefined. */
  slugLayers?(mtime: Date): SlugLayerOptions | undefined;
  /** Frees what check() took. */
  close?(): Promise<void>;
}

/** An output kind: reads its own flags, undefined when the build does not ask for it. */
export interface OutputKind<V> {
  parse(values: V, ctx: ParseContext): RequestedOutput | undefined;
}

export async function deliverAll(outputs: Output[], result: BuildResult): Promise<void> {
  const pending: Delivery[] = [];
  const summary: Record<string, unknown> = {};
  try {
    for (const output of outputs) {
      const staged = await output(result, summary);
      pending.push(staged);
      Object.assign(summary, staged.summary);
    }
    const ordered = [...pending.filter((d) => d.irreversible), ...pending.filter((d) => !d.irreversible)];
    for (const d of ordered) {
      await d.commit();
      pending.splice(pending.indexOf(d), 1);
    }
  } catch (err) {
    await Promise.allSettled(pending.map((d) => d.discard()));
    throw err;
  }
}
