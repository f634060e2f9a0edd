/**
 * Buildpack process groups die with slugbuilder, however it dies (kill -9
 * included, which runs no handler of ours). A guard process, bash in a group
 * of its own, reads the pids of the running groups from a pipe whose only
 * writer is this process; when the pipe ends, slugbuilder is gone, and the
 * guard kills every group still listed.
 *
 * Why not `setpriv --pdeathsig KILL` on each script: the parent-death signal
 * reaches only the process it is set on, not the `sleep`, `npm` or server a
 * script started, which would live on as orphans. Sandboxed processes have a
 * second line: bwrap's --die-with-parent ends their PID namespace.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Socket } from 'node:net';

/** `+PGID` lists a group, `-PGID` takes it off; at end of input, kill what is listed. */
const GUARD = `declare -A live
while read -r line; do
  [[ $line =~ ^[+-][1-9][0-9]*$ ]] || continue
  if [ "\${line:0:1}" = + ]; then live[\${line:1}]=1; else unset "live[\${line:1}]"; fi
done
for pgid in "\${!live[@]}"; do kill -KILL -- "-$pgid" 2>/dev/null; done
exit 0`;

let guard: ChildProcess | undefined;
let failed = false;

function tell(line: string): void {
  if (failed) return;
  if (!guard) {
    // The stack's bash, as for the buildpacks; the guard keeps no fd of ours but the pipe.
    guard = spawn('bash', ['-c', GUARD], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
      env: { PATH: '/usr/bin:/bin' },
    });
    guard.on('error', () => {
      failed = true;
    });
    guard.stdin?.on('error', () => undefined);
    // Neither the guard nor its pipe keeps slugbuilder running.
    guard.unref();
    (guard.stdin as Socket | null)?.unref?.();
  }
  guard.stdin?.write(`${line}\n`);
}

/** The group `pgid` (a buildpack process we started with detached: true) is killed if we die. */
export function guardGroup(pgid: number): void {
  tell(`+${pgid}`);
}

/** The group has ended: the guard forgets it (its pid may be reused). */
export function releaseGroup(pgid: number): void {
  tell(`-${pgid}`);
}
