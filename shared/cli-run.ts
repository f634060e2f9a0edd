/**
 * What both CLIs do around their real work: turn a thrown error into one
 * line and an exit code, and clean up temp dirs on every way out.
 */

import { errnoCode, errorMessage, UserError } from './errors.js';
import { removeAllNow } from './fs.js';
import { log, scrub } from './log.js';

const beforeExit: Array<() => Promise<void>> = [];

/** Run `fn` (awaited, its failure ignored) before the CLI exits, after its work or its error line. */
export function onCliExit(fn: () => Promise<void>): void {
  beforeExit.push(fn);
}

export async function runCli(main: () => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (err) {
    code = reportError(err);
  }
  for (const fn of beforeExit.splice(0)) await fn().catch(() => undefined);
  removeAllNow();
  // Let stdout drain (a slug may still be in flight) before leaving.
  process.exitCode = code;
  await new Promise<void>((resolve) => (process.stdout.writableLength === 0 ? resolve() : process.stdout.once('drain', () => resolve())));
  process.exit(code);
}

function reportError(err: unknown): number {
  if (err instanceof UserError) {
    if (err.explained) log.step(err.message);
    else log.error(err.message);
    return err.exitCode;
  }
  const code = errnoCode(err);
  if (code === 'ENOSPC') {
    log.error('no space left on the device: free some space and try again');
    return 1;
  }
  if (code === 'EPIPE') return 1;
  log.error(`internal error: ${scrub(errorMessage(err))}`);
  if (process.env.SLUGKIT_DEBUG && err instanceof Error && err.stack) process.stderr.write(scrub(err.stack) + '\n');
  return 1;
}
