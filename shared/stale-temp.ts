/**
 * Temp dirs whose process was killed (kill -9, OOM killer, power cut) run no
 * cleanup; the next run of the same program removes them. A dir is only ever
 * removed when it carries an owner record this code wrote, and that record
 * shows its process is gone: the pid alone could have been reused, so the
 * record also holds the process's start time (/proc/PID/stat) and the boot
 * it ran in. A record from another PID namespace (two containers sharing a
 * temp dir) cannot be checked, so such a dir is left alone.
 */
import { readFileSync } from 'node:fs';
import { lstat, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

const OWNER = '.slugkit-owner';
const MAGIC = 'slugkit-owner 1';

interface Owner {
  pid: number;
  start: string;
  pidNamespace: string;
  boot: string;
}

/** Field 22 of /proc/PID/stat, the start time in clock ticks since boot; undefined when there is no such process. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

async function self(): Promise<Owner | undefined> {
  const start = startTime(process.pid);
  const pidNamespace = await readlink('/proc/self/ns/pid').catch(() => undefined);
  const boot = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (b) => b.trim(),
    () => undefined,
  );
  if (!start || !pidNamespace || !boot) return undefined;
  return { pid: process.pid, start, pidNamespace, boot };
}

/** Records this process as the owner of `dir` (a temp dir it just made). Without /proc nothing is recorded, and nothing removed later. */
export async function claimTempDir(dir: string): Promise<void> {
  const me = await self();
  if (!me) return;
  await writeFile(path.join(dir, OWNER), `${MAGIC}\n${me.pid} ${me.start} ${me.pidNamespace} ${me.boot}\n`, { flag: 'wx', mode: 0o600 });
}

function parseOwner(text: string): Owner | undefined {
  const [magic, fields] = text.split('\n');
  const m = /^([1-9][0-9]*) ([0-9]+) (\S+) ([0-9a-f-]+)$/.exec(fields ?? '');
  if (magic !== MAGIC || !m) return undefined;
  return { pid: Number(m[1]), start: m[2], pidNamespace: m[3], boot: m[4] };
}

function ownerGone(owner: Owner, me: Owner): boolean {
  if (owner.boot !== me.boot) return true;
  if (owner.pidNamespace !== me.pidNamespace) return false;
  return startTime(owner.pid) !== owner.start;
}

/**
 * Removes the dirs named `<prefix>*` in `parent` whose owner process is gone.
 * Best effort: a dir that cannot be read or removed is left as it is.
 */
export async function removeStaleTempDirs(parent: string, prefix: string): Promise<void> {
  const me = await self();
  if (!me) return;
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const dir = path.join(parent, name);
    try {
      const st = await lstat(dir);
      // Ours only: a real dir of this user, with an owner record that is a plain file.
      if (!st.isDirectory() || st.uid !== process.getuid?.()) continue;
      const record = await lstat(path.join(dir, OWNER));
      if (!record.isFile()) continue;
      const owner = parseOwner(await readFile(path.join(dir, OWNER), 'utf8'));
      if (owner && ownerGone(owner, me)) await rm(dir, { recursive: true, force: true });
    } catch {
      // gone meanwhile, no record, or not ours to read: leave it
    }
  }
}
