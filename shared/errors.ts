/**
 * Errors a user can cause. Each carries the one line we print and the exit
 * code we leave with (0 ok, 1 build or run failure, 2 usage).
 */
export class UserError extends Error {
  readonly exitCode: number;
  /**
   * The cause and its fix are already on screen as the ` !     ` line a
   * buildpack printed last: this message closes the log as a heading
   * instead, so a failed build shows one error line, not two.
   */
  readonly explained: boolean;
  constructor(message: string, exitCode = 1, opts: { explained?: boolean } = {}) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
    this.explained = opts.explained ?? false;
  }
}

/** Bad flags or arguments: exit 2. */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** A system error code (ENOENT, ENOSPC, ...) when `err` carries one. */
export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
