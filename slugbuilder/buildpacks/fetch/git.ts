/**
 * Fetching a buildpack from a git repository with the `git` on PATH.
 *
 * The cache keeps a bare repository per URL and ref. We never `git clone`:
 * the URL is passed on the command line of each `git fetch`, so credentials in
 * it are never written into a git config on disk. Fetches are shallow
 * (`--depth 1`); a commit that is not a branch tip is fetched by its id
 * (protocol v2 servers allow it), and only if the server refuses do we fall
 * back to fetching all branches and tags in full and looking for it there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { UserError } from '../../../shared/errors.js';
import { log } from '../../../shared/log.js';
import { type BuildpackSpec, describe, isCommitSha } from './spec.js';

/**
 * Environment for every git we run: never prompt (there is no one to answer),
 * never read stdin. git reads the proxy variables itself, through libcurl,
 * except an upper-case HTTP_PROXY (curl ignores it for http:// URLs): it gets
 * it as http_proxy, so git's traffic takes the proxy slugkit's own does.
 */
function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '', SSH_ASKPASS: '' };
  if (!env.http_proxy && env.HTTP_PROXY) env.http_proxy = env.HTTP_PROXY;
  return env;
}

/**
 * For ssh URLs: ssh would ask for a password or a host-key confirmation on
 * the terminal, and a build would hang. BatchMode makes it fail instead, but
 * only when the user has not chosen an ssh command of their own (env or
 * core.sshCommand), which the environment variable would override.
 */
async function sshEnv(spec: BuildpackSpec): Promise<NodeJS.ProcessEnv> {
  const env = gitEnv();
  const overSsh = /^(ssh|git\+ssh|ssh\+git):\/\//i.test(spec.fetchUrl) || !/^[a-z][a-z0-9+.-]*:\/\//i.test(spec.fetchUrl);
  if (!overSsh || env.GIT_SSH_COMMAND || env.GIT_SSH) return env;
  const configured = await execa('git', ['config', '--get', 'core.sshCommand'], { env, extendEnv: false, stdin: 'ignore', reject: false });
  if (configured.exitCode !== 0 || !String(configured.stdout).trim()) env.GIT_SSH_COMMAND = 'ssh -o BatchMode=yes';
  return env;
}

interface GitResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

async function git(args: string[], env: NodeJS.ProcessEnv = gitEnv()): Promise<GitResult> {
  const result = await execa('git', args, { env, extendEnv: false, stdin: 'ignore', reject: false, encoding: 'utf8' });
  if (result.failed && result.exitCode === undefined) {
    const reason = (result as { code?: string }).code === 'ENOENT' ? 'git is not installed (not on PATH)' : result.shortMessage;
    throw new UserError(`Cannot fetch git buildpacks: ${reason}; install git or use a tarball URL or a local directory`);
  }
  return { ok: result.exitCode === 0, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
}

/**
 * Run in the cache's bare repository. safe.directory: the cache may be a
 * volume created by another user (a builder container's uid), and git would
 * otherwise refuse a repository it does not own.
 */
function inRepo(repo: string): string[] {
  return ['-c', `safe.directory=${repo}`, '-C', repo];
}

/** `git fetch` into the entry's bare repository; the caller turns a failure into one line. */
async function fetchInto(repo: string, spec: BuildpackSpec, refspecs: string[], shallow: boolean): Promise<GitResult> {
  const args = [...inRepo(repo), 'fetch', '--quiet', '--no-tags', '--no-recurse-submodules'];
  if (shallow) args.push('--depth', '1');
  // Earlier shallow fetches cut history off; a full search needs all of it.
  else if ((await git([...inRepo(repo), 'rev-parse', '--is-shallow-repository'])).stdout.trim() === 'true') args.push('--unshallow');
  args.push('--end-of-options', spec.fetchUrl, ...refspecs);
  return git(args, await sshEnv(spec));
}

export interface GitCheckout {
  commit: string;
  /** True when the ref was a commit id, so the content can never change. */
  pinned: boolean;
}

/**
 * Fetch `spec` into the bare repository `repo` (created when missing) and
 * return the commit its ref points at now.
 */
export async function fetchCommit(repo: string, spec: BuildpackSpec): Promise<GitCheckout> {
  const init = await git(['-c', `safe.directory=${repo}`, 'init', '--quiet', '--bare', repo]);
  if (!init.ok) throw new UserError(`Cannot create the buildpack cache at ${repo}: ${gitReason(init.stderr)}`);

  let wanted = spec.ref ?? 'HEAD';
  let first = await fetchInto(repo, spec, [wanted], true);
  if (!first.ok && spec.ref === undefined && classify(first.stderr, spec).kind === 'unknown-ref') {
    // HEAD names a branch nobody pushed (`git init --bare` says master, the user pushed main).
    wanted = await defaultBranch(spec);
    first = await fetchInto(repo, spec, [`refs/heads/${wanted}`], true);
  }
  if (first.ok) {
    const commit = await revParse(repo, 'FETCH_HEAD^{commit}');
    if (commit) {
      await keep(repo, commit);
      return { commit, pinned: isCommitSha(spec.ref) || (spec.ref !== undefined && commit.startsWith(spec.ref.toLowerCase())) };
    }
  }
  const failure = classify(first.stderr, spec);
  // Only "no such ref" can be fixed by looking harder; host and repository errors are final.
  if (failure.kind !== 'unknown-ref' || spec.ref === undefined || !/^[0-9a-f]{4,64}$/i.test(spec.ref)) throw failure.error;

  // A commit the server will not hand out by id, or an abbreviated id: fetch all
  // branches and tags in full and look for it there.
  const full = await fetchInto(repo, spec, ['+refs/heads/*:refs/slugkit/heads/*', '+refs/tags/*:refs/slugkit/tags/*'], false);
  if (!full.ok) throw classify(full.stderr, spec).error;
  const commit = await revParse(repo, `${spec.ref}^{commit}`);
  if (!commit?.startsWith(spec.ref.toLowerCase())) throw failure.error;
  await keep(repo, commit);
  return { commit, pinned: true };
}

/**
 * The branch to use when the remote's HEAD points at no branch: its only
 * branch, or `main`/`master` when just one of them exists; otherwise the
 * user has to choose, and the error lists what there is.
 */
async function defaultBranch(spec: BuildpackSpec): Promise<string> {
  const listed = await git(['ls-remote', '--heads', '--end-of-options', spec.fetchUrl], await sshEnv(spec));
  if (!listed.ok) throw classify(listed.stderr, spec).error;
  const branches = listed.stdout
    .split('\n')
    .map((line) => /\trefs\/heads\/(.+)$/.exec(line)?.[1])
    .filter((b): b is string => Boolean(b));
  const where = `Buildpack ${describe(spec)}`;
  if (branches.length === 0) throw new UserError(`${where}: the repository has no branches; push one, or name a tag or commit with #REF`);
  const usual = branches.filter((b) => b === 'main' || b === 'master');
  const chosen = branches.length === 1 ? branches[0] : usual.length === 1 ? usual[0] : undefined;
  if (!chosen) {
    const shown = branches.slice(0, 10).join(', ') + (branches.length > 10 ? ', ...' : '');
    throw new UserError(`${where}: the repository's HEAD names no existing branch; add #BRANCH to the URL (branches: ${shown})`);
  }
  log.info(`The repository's HEAD names no existing branch; using ${chosen}`);
  return chosen;
}

/** Write the files of `commit` into the empty directory `target` (no .git inside). */
export async function checkoutTree(repo: string, commit: string, target: string): Promise<void> {
  // A private index file: the bare repository's own index is never touched, so
  // two checkouts (even of different commits) cannot disturb each other.
  const indexDir = await mkdtemp(path.join(path.dirname(target), 'tmp-index-'));
  try {
    const result = await execa(
      'git',
      ['-c', `safe.directory=${repo}`, '--git-dir', repo, '--work-tree', target, 'read-tree', '--reset', '-u', commit],
      {
        env: { ...gitEnv(), GIT_INDEX_FILE: path.join(indexDir, 'index') },
        extendEnv: false,
        stdin: 'ignore',
        reject: false,
      },
    );
    if (result.exitCode !== 0) throw new UserError(`Cannot check out buildpack commit ${commit}: ${gitReason(String(result.stderr))}`);
  } finally {
    await rm(indexDir, { recursive: true, force: true });
  }
}

async function revParse(repo: string, rev: string): Promise<string | undefined> {
  const result = await git([...inRepo(repo), 'rev-parse', '--verify', '--quiet', '--end-of-options', rev]);
  return result.ok ? result.stdout.trim() : undefined;
}

/** A ref on the fetched commit, so `git gc` never prunes what the cache relies on. */
async function keep(repo: string, commit: string): Promise<void> {
  await git([...inRepo(repo), 'update-ref', 'refs/slugkit/fetched', commit]);
}

/**
 * The line of git's stderr that says what went wrong: the first `fatal:` or
 * `error:` that is not git's generic "Could not read from remote repository"
 * (which comes with two lines of advice after it), else the first line.
 */
function gitReason(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const generic = /could not read from remote repository/i;
  const line = lines.find((l) => /^(fatal|error):/i.test(l) && !generic.test(l)) ?? lines.find((l) => !generic.test(l)) ?? lines[0];
  return line ? line.replace(/^(fatal|error):\s*/i, '') : 'unknown error';
}

type FailureKind = 'unreachable' | 'not-found' | 'unknown-ref' | 'auth' | 'other';

/**
 * Turn git's stderr into one line that names the cause and what to do. Git's
 * own text may echo the URL with credentials, so it is scrubbed of the
 * URL's user-info before any of it is quoted.
 */
function classify(stderr: string, spec: BuildpackSpec): { kind: FailureKind; error: UserError } {
  const where = `Buildpack ${describe(spec)}`;
  const text = stderr.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1');
  let kind: FailureKind = 'other';
  let message: string;
  if (
    /could not resolve host|unable to look up|name or service not known|temporary failure in name resolution|could not resolve hostname/i.test(
      text,
    )
  ) {
    kind = 'unreachable';
    message = `${where}: cannot reach the host (name not found); check the URL and the network`;
  } else if (
    /connection refused|failed to connect|unable to connect|connection timed out|network is unreachable|no route to host|couldn't connect|connection reset/i.test(
      text,
    )
  ) {
    kind = 'unreachable';
    message = `${where}: cannot reach the host (connection failed); check the URL and that the server is up`;
  } else if (/couldn't find remote ref|not our ref|unadvertised object|no such remote ref|remote ref .* not found/i.test(text)) {
    kind = 'unknown-ref';
    message = `${where}: ref '${spec.ref ?? 'HEAD'}' does not exist in the repository; use an existing branch, tag or full commit sha`;
  } else if (
    /authentication failed|could not read username|could not read password|terminal prompts disabled|permission denied|returned error: 40[13]|host key verification failed/i.test(
      text,
    )
  ) {
    kind = 'auth';
    message = `${where}: access denied; put credentials in the URL (https://USER:TOKEN@host/...) or configure an ssh key`;
  } else if (
    /not found|does not appear to be a git repository|not a git repository|returned error: 404|no such file or directory|repository .* does not exist|access denied|not exported/i.test(
      text,
    )
  ) {
    kind = 'not-found';
    message = `${where}: not a git repository, or it does not exist; check the URL`;
  } else {
    message = `${where}: git fetch failed: ${gitReason(text)}`;
  }
  return { kind, error: new UserError(message) };
}
