/**
 * Real git repositories and real git servers on 127.0.0.1 for tests:
 * - `GitFixture`: a work repository the test commits to, pushed to a bare
 *   repository that the servers serve;
 * - `startGitDaemon`: `git daemon` serving a directory over git://;
 * - `gitHttpBackend`: a handler that runs `git http-backend` (CGI) for
 *   smart HTTP, to mount on `startHttpServer` from ./http-server.js.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { Handler } from './http-server.js';

const IDENTITY = [
  '-c',
  'user.name=Slugkit Test',
  '-c',
  'user.email=test@slugkit.invalid',
  '-c',
  'commit.gpgsign=false',
  '-c',
  'tag.gpgsign=false',
];

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await execa('git', [...IDENTITY, ...args], { cwd, stdin: 'ignore' });
  return stdout.trim();
}

export type FileContent = string | { content: string; mode: number };

export class GitFixture {
  private constructor(
    /** Where the test commits. */
    readonly work: string,
    /** The bare repository servers serve; `push()` updates it. */
    readonly bare: string,
  ) {}

  /** A new repository `<root>/<name>.git` (bare) with a work tree at `<root>/work-<name>`, branch main. */
  static async create(root: string, name: string): Promise<GitFixture> {
    const work = path.join(root, `work-${name}`);
    const bare = path.join(root, `${name}.git`);
    await mkdir(work, { recursive: true });
    await git(work, 'init', '--quiet', '-b', 'main');
    await execa('git', ['init', '--quiet', '--bare', '-b', 'main', bare]);
    return new GitFixture(work, bare);
  }

  /** Write files (mode 0755 for `bin/*` unless given) and commit them on the current branch; returns the sha. */
  async commit(files: Record<string, FileContent>, message: string): Promise<string> {
    for (const [rel, value] of Object.entries(files)) {
      const file = path.join(this.work, rel);
      await mkdir(path.dirname(file), { recursive: true });
      const { content, mode } = typeof value === 'string' ? { content: value, mode: rel.startsWith('bin/') ? 0o755 : 0o644 } : value;
      await writeFile(file, content);
      await chmod(file, mode);
    }
    await git(this.work, 'add', '--all');
    await git(this.work, 'commit', '--quiet', '-m', message);
    return git(this.work, 'rev-parse', 'HEAD');
  }

  async branch(name: string, startPoint = 'HEAD'): Promise<void> {
    await git(this.work, 'branch', name, startPoint);
  }

  async switchTo(name: string): Promise<void> {
    await git(this.work, 'checkout', '--quiet', name);
  }

  /** An annotated tag (the kind that needs peeling to reach its commit). */
  async tag(name: string, message = name): Promise<void> {
    await git(this.work, 'tag', '-a', name, '-m', message);
  }

  /** Mirror every branch and tag to the bare repository. */
  async push(): Promise<void> {
    await git(this.work, 'push', '--quiet', '--force', '--mirror', this.bare);
  }
}

/** One free-port helper for every test server. */
import { freePort } from './cli.js';

export { freePort };

async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface GitDaemon {
  /** `git://127.0.0.1:PORT` (no trailing slash); repositories are `${base}/<name>.git`. */
  base: string;
  port: number;
  /** Everything the daemon logged (`--verbose`): one "Connection from" line per client. */
  log(): string;
  close(): Promise<void>;
}

/** `git daemon` serving every repository under `root`, read-only, on 127.0.0.1. */
export async function startGitDaemon(root: string): Promise<GitDaemon> {
  const port = await freePort();
  let output = '';
  const child: ResultPromise = execa(
    'git',
    ['daemon', '--reuseaddr', '--verbose', '--export-all', `--base-path=${root}`, '--listen=127.0.0.1', `--port=${port}`, root],
    { stdin: 'ignore', reject: false, buffer: false },
  );
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exited = false;
  void child.then(() => (exited = true));
  // Readiness: poll until the port accepts connections (or the daemon died).
  for (let i = 0; i < 200 && !exited && !(await answers(port)); i++) await new Promise((r) => setTimeout(r, 25));
  if (exited || !(await answers(port))) throw new Error(`git daemon did not start on 127.0.0.1:${port}: ${output}`);
  return {
    base: `git://127.0.0.1:${port}`,
    port,
    log: () => output,
    close: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      await child;
    },
  };
}

/**
 * Smart HTTP: run `git http-backend` as a CGI program for each request, for
 * repositories under `root`. Mount on startHttpServer; URLs are
 * `${origin}/<name>.git`.
 */
export function gitHttpBackend(root: string): Handler {
  return async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      REMOTE_USER: 'test',
    };
    if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = String(req.headers['content-encoding']);
    if (req.headers['content-length']) env.CONTENT_LENGTH = String(req.headers['content-length']);

    const cgi = execa('git', ['http-backend'], { env, extendEnv: false, reject: false, buffer: false, stdin: 'pipe', encoding: 'buffer' });
    req.pipe(cgi.stdin!);

    // CGI output: header lines, a blank line, then the body, streamed through.
    let head = Buffer.alloc(0);
    let inBody = false;
    cgi.stdout!.on('data', (chunk: Buffer) => {
      if (inBody) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      inBody = true;
      res.write(head.subarray(end + 4));
    });
    await cgi;
    if (!inBody) res.writeHead(500);
    res.end();
  };
}

/**
 * A stand-in for `ssh` (GIT_SSH_COMMAND) that records the arguments git gave
 * it, one per line, to `argsFile`, then runs the remote command
 * (`git-upload-pack '/path'`) locally: the fetch is real, only sshd is not.
 */
export async function fakeSsh(dir: string): Promise<{ command: string; argsFile: string }> {
  // Named `ssh` so git treats it as OpenSSH (git picks the option syntax, -p for a port, by the name).
  const script = path.join(dir, 'ssh');
  const argsFile = path.join(dir, 'ssh-args.txt');
  await writeFile(
    script,
    [
      '#!/bin/sh',
      `for arg in "$@"; do printf '%s\\n' "$arg"; done >> '${argsFile}'`,
      'for last in "$@"; do :; done',
      'exec sh -c "$last"',
      '',
    ].join('\n'),
  );
  await chmod(script, 0o755);
  return { command: script, argsFile };
}
