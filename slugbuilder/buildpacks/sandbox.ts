/**
 * The build sandbox: every process a build starts for a buildpack (detect,
 * compile, release, CNB detect and build) or for the app itself (bin/pre- and
 * post-compile, and so npm scripts, setup.py) runs under bubblewrap and sees
 * a whitelist of the host: the stack read-only (/usr, /bin, /lib*, /etc,
 * /opt, the dir of the node running slugbuilder), a fresh /dev, /proc and
 * /tmp, and the dirs of this build that the caller names, each at its own
 * path so absolute paths recorded inside hold outside. Nothing else of the
 * host exists in there: the slug store, other apps' caches, /root, /home.
 *
 * User, mount, PID, IPC, UTS and cgroup namespaces are new; the network is
 * the host's (buildpacks fetch packages). docs/security.md says what this
 * stops and what it does not.
 */
import { constants, existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { UsageError, UserError } from '../../shared/errors.js';
import { log } from '../../shared/log.js';
import { CA_VARS } from './build-env.js';

export type SandboxMode = 'auto' | 'on' | 'off';
export const SANDBOX_MODES: readonly SandboxMode[] = ['auto', 'on', 'off'];

/** `--sandbox` or SLUGKIT_SANDBOX. */
export function parseSandboxMode(value: string, from: string): SandboxMode {
  if ((SANDBOX_MODES as readonly string[]).includes(value)) return value as SandboxMode;
  throw new UsageError(`${from} "${value}": use auto, on or off`);
}

/** Dirs a process may use besides the stack: written (`rw`) or only read (`ro`). */
export interface SandboxDirs {
  rw?: readonly string[];
  ro?: readonly string[];
}

/**
 * Namespaces new except the network; the process dies with slugbuilder
 * (--die-with-parent kills the PID namespace's init, and the kernel the rest
 * of it); a new session, so it has no terminal to push keystrokes into
 * (TIOCSTI); no capabilities (they matter when slugbuilder runs as root) and
 * no user namespaces of its own to regain some in.
 */
const NAMESPACE_FLAGS = ['--unshare-all', '--unshare-user', '--share-net', '--cap-drop', 'ALL', '--die-with-parent', '--new-session'];
/** bubblewrap 0.8 and later; without it the process could make a user namespace and mount in it (still nothing of the host). */
const NO_NESTED_USERNS = '--disable-userns';

/** Top-level dirs of the stack; on a merged-/usr system most of them are links into /usr. */
const STACK_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt'];

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

function realOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/** The stack, read-only: the same tree at the same paths, links kept as links. */
function stackArgs(nodePath: string, host: NodeJS.ProcessEnv): string[] {
  const args: string[] = [];
  const shown: string[] = [];
  for (const dir of STACK_DIRS) {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(dir);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else if (st.isDirectory()) {
      args.push('--ro-bind', dir, dir);
      shown.push(dir);
    }
  }
  args.push('--dev', '/dev', '--tmpfs', '/dev/shm', '--proc', '/proc', '--tmpfs', '/tmp');
  const visible = (p: string) => shown.some((d) => under(p, d));
  // The node slugbuilder runs on is on the buildpacks' PATH. Living elsewhere (nvm, /srv/node), its
  // install is shown whole when it looks like one (npm is in it), else the binary alone: never a home dir.
  const node = realOrUndefined(nodePath);
  if (node && !visible(node)) {
    const prefix = path.dirname(path.dirname(node));
    const install = path.basename(path.dirname(node)) === 'bin' && existsSync(path.join(prefix, 'lib', 'node_modules', 'npm'));
    const shownPath = install ? prefix : node;
    args.push('--ro-bind', shownPath, shownPath);
    shown.push(shownPath);
  }
  // Files /etc links out to (a resolv.conf under /run) and CA bundles named by the environment.
  const files = ['/etc/resolv.conf', ...CA_VARS.map((v) => host[v]).filter((v): v is string => Boolean(v) && path.isAbsolute(v!))];
  for (const file of files) {
    const real = realOrUndefined(file);
    if (real && !visible(real)) {
      args.push('--ro-bind', real, real);
      shown.push(real);
    }
    if (real && real !== file && !visible(file) && existsSync(file)) {
      args.push('--ro-bind', file, file);
      shown.push(file);
    }
  }
  return args;
}

/** The sandbox of one build: how its processes are started. */
export interface Sandbox {
  /** Absolute path of bwrap; undefined when processes run unsandboxed. */
  readonly bwrap?: string;
  /** bwrap's arguments before the build's own dirs: namespaces, then the stack. */
  readonly prefix: readonly string[];
  readonly dirs: Required<SandboxDirs>;
  /**
   * Every dir a process of this build was given to write, added as each one
   * starts; one set, shared by every widened copy (see canBuildWrite).
   */
  readonly granted?: Set<string>;
}

export const NO_SANDBOX: Sandbox = { prefix: [], dirs: { rw: [], ro: [] } };

/** The same sandbox with more dirs in reach. */
export function widen(sb: Sandbox, more: SandboxDirs): Sandbox {
  return { ...sb, dirs: { rw: [...sb.dirs.rw, ...(more.rw ?? [])], ro: [...sb.dirs.ro, ...(more.ro ?? [])] } };
}

/** Parents before children, so a rw dir inside a ro one is bound on top of it; a dir named rw and ro is rw. */
function dirArgs(dirs: Required<SandboxDirs>): string[] {
  const mode = new Map<string, 'rw' | 'ro'>();
  for (const d of dirs.ro) mode.set(path.resolve(d), 'ro');
  for (const d of dirs.rw) mode.set(path.resolve(d), 'rw');
  const depth = (p: string) => p.split('/').length;
  return [...mode.entries()]
    .sort(([a], [b]) => depth(a) - depth(b) || (a < b ? -1 : a > b ? 1 : 0))
    .flatMap(([d, m]) => [m === 'rw' ? '--bind-try' : '--ro-bind-try', d, d]);
}

/** `file args` as the command that runs it in the sandbox, in `cwd` (unchanged when unsandboxed). */
export function sandboxArgv(sb: Sandbox, file: string, args: readonly string[], cwd: string): { file: string; args: string[] } {
  if (!sb.bwrap) return { file, args: [...args] };
  for (const d of sb.dirs.rw) sb.granted?.add(path.resolve(d));
  return { file: sb.bwrap, args: [...sb.prefix, ...dirArgs(sb.dirs), '--chdir', cwd, '--', file, ...args] };
}

/**
 * Whether the build's own code (buildpacks, the app's hooks and npm scripts)
 * could have written `dir`: always when it ran unsandboxed; sandboxed, when
 * `dir` is inside, or holds, a dir one of its processes was given to write or
 * one whose contents slugkit then moved into place (`published`: the cache
 * dir, whose private copy the buildpacks wrote).
 */
export function canBuildWrite(sb: Sandbox, dir: string, published: readonly string[]): boolean {
  if (!sb.bwrap || !sb.granted) return true;
  const target = realPrefix(dir);
  return [...sb.granted, ...published].map(realPrefix).some((w) => under(target, w) || under(w, target));
}

/** `p` with links resolved as far as it exists: a dir not made yet is judged by its real parent. */
function realPrefix(p: string): string {
  const abs = path.resolve(p);
  const real = realOrUndefined(abs);
  if (real) return real;
  const parent = path.dirname(abs);
  return parent === abs ? abs : path.join(realPrefix(parent), path.basename(abs));
}

async function findOnPath(name: string, pathVar: string | undefined): Promise<string | undefined> {
  for (const dir of (pathVar ?? '').split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

/** Why bwrap cannot run here, in a few words; undefined when it can. */
async function probe(bwrap: string, prefix: readonly string[]): Promise<string | undefined> {
  const r = await execa(bwrap, [...prefix, '--', 'true'], {
    reject: false,
    stdin: 'ignore',
    timeout: 15_000,
    env: { PATH: '/usr/bin:/bin' },
    extendEnv: false,
  });
  if (r.exitCode === 0) return undefined;
  const said = String(r.stderr)
    .split('\n')
    .find((l) => l.trim() !== '');
  // bwrap's own line, without the "See <url>" pointer it ends with.
  const line = said?.trim().replace(/\.?\s*See <.*$/, '');
  return `bwrap cannot make the sandbox here (${line ?? `exit ${r.exitCode ?? r.signal}`})`;
}

/**
 * The flags every sandboxed process starts with, and why bwrap cannot run
 * them here (undefined when it can). One bwrap start in the common case: the
 * probe asks for NO_NESTED_USERNS, and only a bwrap that does not know it
 * (older than 0.8) is probed again without it.
 */
async function probedPrefix(bwrap: string, stack: readonly string[]): Promise<{ prefix: string[]; why?: string }> {
  const prefix = [...NAMESPACE_FLAGS, NO_NESTED_USERNS, ...stack];
  const why = await probe(bwrap, prefix);
  if (!why?.includes(`Unknown option ${NO_NESTED_USERNS}`)) return { prefix, why };
  const older = [...NAMESPACE_FLAGS, ...stack];
  return { prefix: older, why: await probe(bwrap, older) };
}

/**
 * The build's sandbox for `mode`, checked once before any buildpack runs:
 * `on` fails in one line where bwrap is missing or cannot make namespaces,
 * `auto` then warns in one line and runs buildpacks unsandboxed, `off` never
 * sandboxes.
 */
export async function resolveSandbox(mode: SandboxMode, opts: { nodePath: string; host: NodeJS.ProcessEnv }): Promise<Sandbox> {
  if (mode === 'off') return NO_SANDBOX;
  const bwrap = await findOnPath('bwrap', opts.host.PATH);
  const { prefix, why } = bwrap
    ? await probedPrefix(bwrap, stackArgs(opts.nodePath, opts.host))
    : { prefix: [], why: 'bwrap is not installed (apt-get install bubblewrap)' };
  if (!why) return { bwrap, prefix, dirs: { rw: [], ro: [] }, granted: new Set() };
  if (mode === 'on') {
    const fix = bwrap
      ? 'inside a container that cannot make namespaces pass --sandbox off (the container is then the sandbox)'
      : 'install it or pass --sandbox off';
    throw new UserError(`--sandbox on: ${why}: ${fix}`);
  }
  log.warn(`Warning: buildpacks run without a sandbox: ${why}; pass --sandbox off (or SLUGKIT_SANDBOX=off) if that is intended`);
  return NO_SANDBOX;
}
