/**
 * The git-push pipeline as an operator installs it, for tests: the hook
 * (examples/git-push/pre-receive) copied as both pre-receive and
 * post-receive into a bare repository, and `slugbuilder`, `slugrunner` and
 * `slugkit-app` on PATH as links to this checkout, as `npm install -g` makes
 * them (so the hook's sandbox finds the install they belong to).
 *
 * `Pipeline` is a whole deploy target in a temp dir: bare repositories of one
 * or more apps sharing one store, clones to push from, a fast buildpack, and
 * gates: a build of a commit holding `.gate` (or a release or restart
 * command) prints `gate NAME: waiting` and waits for `open(NAME)`, so a test
 * acts at a point it has seen on the pushing client, never after a sleep.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { BUILDER, ROOT } from './cli.js';

export const HOOK = join(ROOT, 'examples/git-push/pre-receive');
export const SLUGKIT_APP = join(ROOT, 'examples/git-push/slugkit-app');
const IDENTITY = ['-c', 'user.name=slugkit test', '-c', 'user.email=test@slugkit.invalid'];

/** Install the hook into a bare repository. */
export async function installHook(bare: string): Promise<void> {
  for (const name of ['pre-receive', 'post-receive']) {
    await copyFile(HOOK, join(bare, 'hooks', name));
    await chmod(join(bare, 'hooks', name), 0o755);
  }
}

/** `bin` with slugbuilder, slugrunner and slugkit-app; returns its path. */
export async function installCommands(bin: string): Promise<string> {
  await mkdir(bin, { recursive: true });
  await symlink(BUILDER, join(bin, 'slugbuilder'));
  await symlink(join(ROOT, 'bin/slugrunner'), join(bin, 'slugrunner'));
  await symlink(SLUGKIT_APP, join(bin, 'slugkit-app'));
  return bin;
}

/** A shell snippet that prints the gate line and waits until the test opens it. */
export function gateScript(gates: string, name: string): string {
  return `echo "-----> gate ${name}: waiting" >&2; while [ ! -e "${gates}/${name}.go" ]; do sleep 0.05; done`;
}

export type Push = ResultPromise<{ all: true; reject: false; detached: true; stdin: 'ignore' }>;

export class Pipeline {
  readonly bin: string;
  readonly store: string;
  readonly gates: string;
  readonly buildpack: string;
  readonly env: NodeJS.ProcessEnv;
  private readonly pushes: Push[] = [];

  private constructor(readonly work: string) {
    this.bin = join(work, 'bin');
    this.store = join(work, 'slugs');
    this.gates = join(work, 'gates');
    this.buildpack = join(work, 'buildpack');
    this.env = {
      ...process.env,
      PATH: `${this.bin}:${process.env.PATH}`,
      SLUG_STORE: this.store,
      SLUGBUILDER_CACHE_DIR: join(work, 'cache'),
      // A buildpack that builds in a moment, so races can run several rounds.
      BUILDPACK_URL: this.buildpack,
      // The gates are shown to the hook's sandbox, read-only.
      SLUGKIT_SANDBOX_PATHS: this.gates,
      TMPDIR: join(work, 'tmp'),
    };
  }

  static async create(store?: string): Promise<Pipeline> {
    const p = new Pipeline(await mkdtemp(join(tmpdir(), 'slugkit-pipeline-')));
    if (store) (p as { store: string }).store = store;
    p.env.SLUG_STORE = p.store;
    await installCommands(p.bin);
    await mkdir(p.gates);
    await mkdir(join(p.work, 'tmp'));
    // The fast buildpack: runs the app's bin/pre-compile (as Heroku's python
    // buildpack does), waits at the commit's gate if it has one.
    await mkdir(join(p.buildpack, 'bin'), { recursive: true });
    await writeFile(join(p.buildpack, 'bin/detect'), '#!/bin/sh\necho fast\n');
    await writeFile(
      join(p.buildpack, 'bin/compile'),
      `#!/bin/sh\ncd "$1"\nif [ -f .gate ]; then name=$(cat .gate); ${gateScript(p.gates, '$name')}; fi\n` +
        'if [ -x bin/pre-compile ]; then ./bin/pre-compile || exit 1; fi\necho "-----> fast build done"\n',
    );
    await writeFile(join(p.buildpack, 'bin/release'), '#!/bin/sh\necho "--- {}"\n');
    for (const s of ['detect', 'compile', 'release']) await chmod(join(p.buildpack, 'bin', s), 0o755);
    return p;
  }

  /** A bare repository for `app` with the hook installed; returns its path. */
  async repo(app: string, config: Record<string, string> = {}): Promise<string> {
    const bare = join(this.work, `${app}.git`);
    await execa('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    await installHook(bare);
    for (const [k, v] of Object.entries(config)) await execa('git', ['config', k, v], { cwd: bare });
    return bare;
  }

  /** A clone of `app`'s repository to push from (empty, or fetched when the repo has main). */
  async clone(app: string, name: string): Promise<Clone> {
    const dir = join(this.work, `clone-${name}`);
    await mkdir(dir);
    await execa('git', ['init', '-q', '-b', 'main'], { cwd: dir });
    await execa('git', ['remote', 'add', 'origin', join(this.work, `${app}.git`)], { cwd: dir });
    const clone = new Clone(this, dir, app);
    await clone.sync();
    return clone;
  }

  appDir(app: string, ...parts: string[]): string {
    return join(this.store, app, ...parts);
  }

  async ref(app: string, branch = 'main'): Promise<string> {
    const r = await execa('git', ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`], {
      cwd: join(this.work, `${app}.git`),
      reject: false,
    });
    return r.stdout.trim();
  }

  /** The sha of the release `current` names (from its info file), and the release. */
  async current(app: string): Promise<{ release: string; sha: string }> {
    const link = await readlink(this.appDir(app, 'current'));
    const release = link.replace(/^releases\/(v\d+)\/slug\.tgz$/, '$1');
    const info = await readFile(this.appDir(app, 'releases', release, 'info'), 'utf8');
    return { release, sha: /^sha=(\w+)$/m.exec(info)?.[1] ?? '' };
  }

  /** A push in a process group of its own (git push, receive-pack and the hook), so a test can SIGKILL the lot. */
  push(clone: Clone, env: NodeJS.ProcessEnv = {}, args: string[] = ['origin', 'main']): Push {
    const child = execa('git', ['push', ...args], {
      cwd: clone.dir,
      env: { ...this.env, ...env },
      reject: false,
      all: true,
      detached: true,
      stdin: 'ignore',
    });
    this.pushes.push(child);
    return child;
  }

  slugkitApp(args: string[], env: NodeJS.ProcessEnv = {}) {
    return execa(SLUGKIT_APP, args, { env: { ...this.env, ...env }, reject: false, all: true, stdin: 'ignore' });
  }

  async open(gate: string): Promise<void> {
    await writeFile(join(this.gates, `${gate}.go`), '');
  }

  /** SIGKILL a push's whole process group: the client, receive-pack and the hook. */
  async kill(push: Push): Promise<void> {
    if (push.pid) process.kill(-push.pid, 'SIGKILL');
    await push;
  }

  /** Waits until the app's lock is free (the guardian of a killed push has settled). */
  async settled(app: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await execa('flock', ['-n', this.appDir(app, '.lock'), 'true'], { reject: false });
      if (r.exitCode === 0) return;
      if (Date.now() > deadline) throw new Error(`the lock of ${app} is still held after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    for (const p of this.pushes) {
      if (p.exitCode === null && p.pid) {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {}
      }
    }
    await Promise.allSettled(this.pushes);
    await rm(this.work, { recursive: true, force: true });
  }
}

export class Clone {
  constructor(
    readonly pipeline: Pipeline,
    readonly dir: string,
    readonly app: string,
  ) {}

  git(args: string[]) {
    return execa('git', [...IDENTITY, ...args], { cwd: this.dir, env: this.pipeline.env });
  }

  /** Fetch and reset to the repository's main, when it has one. */
  async sync(): Promise<void> {
    await this.git(['fetch', '-q', 'origin']);
    const has = await execa('git', ['rev-parse', '--verify', '--quiet', 'origin/main'], { cwd: this.dir, reject: false });
    if (has.exitCode === 0) await this.git(['reset', '-q', '--hard', 'origin/main']);
  }

  /** Write files (bin/* executable; a `null` removes) and commit; returns the sha. */
  async commit(files: Record<string, string | null>, message: string): Promise<string> {
    for (const [name, content] of Object.entries(files)) {
      const file = join(this.dir, name);
      if (content === null) {
        await rm(file, { force: true });
        continue;
      }
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, content);
      if (name.startsWith('bin/')) await chmod(file, 0o755);
    }
    await this.git(['add', '-A']);
    await this.git(['commit', '-qm', message, '--allow-empty']);
    return (await this.git(['rev-parse', 'HEAD'])).stdout.trim();
  }
}

/** Resolves with the output so far once a push's output matches `pattern`; rejects if it ends first. */
export function outputShows(child: Push, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  let seen = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${seen}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve(seen);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.then(() => {
      clearTimeout(timer);
      reject(new Error(`the push ended before printing ${pattern}:\n${seen}`));
    }, reject);
  });
}

/** Every file, link and dir under `dir` with its mode and content hash (or link target). */
export async function treeHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(rel: string): Promise<void> {
    const path = join(dir, rel);
    const st = await lstat(path);
    if (st.isSymbolicLink()) out[rel] = `link ${await readlink(path)}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${(st.mode & 0o7777).toString(8)}`;
      for (const name of await readdir(path)) await walk(rel ? join(rel, name) : name);
    } else {
      out[rel] = `file ${(st.mode & 0o7777).toString(8)} ${createHash('sha256')
        .update(await readFile(path))
        .digest('hex')}`;
    }
  }
  if (existsSync(dir)) await walk('');
  return out;
}
