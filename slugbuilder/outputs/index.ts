/**
 * The output room's door: every output kind the build command offers, in
 * staging order. deliverAll (deliver.ts) commits the irreversible ones
 * (upload, push, stdout) first; --summary is last because it describes the
 * others.
 *
 * A new output kind is a module here exporting its option specs, its usage
 * lines and an OutputKind (parse its flags -> check() before the build ->
 * outputs() staged after it), added to the lists below.
 */
import type { Values } from '../../shared/command.js';
import type { ExportPlan } from '../image/export.js';
import { APP_OUT_OPTIONS, APP_OUT_USAGE, appOutKind } from './app-out.js';
import type { CheckContext, Output, OutputKind, ParseContext, RequestedOutput } from './deliver.js';
import { imageKind } from './image.js';
import { IMAGE_OPTIONS, IMAGE_USAGE } from './image-flags.js';
import { SBOM_OPTIONS, SBOM_USAGE, sbomKind } from './sbom.js';
import { fileKind, putKind, SLUG_OPTIONS, SLUG_USAGE, stdoutKind } from './slug.js';
import { SUMMARY_OPTIONS, SUMMARY_USAGE, summaryKind } from './summary.js';

export const OUTPUT_OPTIONS = { ...SLUG_OPTIONS, ...SUMMARY_OPTIONS, ...SBOM_OPTIONS, ...APP_OUT_OPTIONS, ...IMAGE_OPTIONS } as const;

export type OutputValues = Values<typeof OUTPUT_OPTIONS>;

/** The "Output" section of slugbuilder --help; the image flags have their own section. */
export const OUTPUT_USAGE = `Output (default: stdout when it is not a terminal):\n${SLUG_USAGE}${SUMMARY_USAGE}${SBOM_USAGE}${APP_OUT_USAGE}`;
export { IMAGE_USAGE };

// --app-out moves the app dir's entries away: after every kind that reads them.
const KINDS: ReadonlyArray<OutputKind<OutputValues>> = [putKind, stdoutKind, fileKind, imageKind, sbomKind, appOutKind, summaryKind];

/** The outputs the flags ask for, in staging order; each flag's form checked. */
export function parseOutputs(values: OutputValues, ctx: ParseContext): RequestedOutput[] {
  return KINDS.map((kind) => kind.parse(values, ctx)).filter((r): r is RequestedOutput => r !== undefined);
}

/**
 * The preflight: each output checks its target before any buildpack runs, so
 * a target that cannot be written, a wrong run image or a bad image
 * destination fails in a second, not after a ten-minute compile.
 */
export async function checkOutputs(requested: RequestedOutput[], ctx: CheckContext): Promise<void> {
  for (const r of requested) await r.check(ctx);
}

export function makeOutputs(requested: RequestedOutput[], mtime: Date): Output[] {
  return requested.flatMap((r) => r.outputs(mtime));
}

/** The export plan the --image output read in its check, if any. */
export function exportPlanOf(requested: RequestedOutput[]): ExportPlan | undefined {
  for (const r of requested) {
    const plan = r.plan?.();
    if (plan) return plan;
  }
  return undefined;
}

export async function closeOutputs(requested: RequestedOutput[]): Promise<void> {
  await Promise.allSettled(requested.map((r) => r.close?.()));
}
