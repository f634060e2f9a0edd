/**
 * Docker's credential helpers: `docker-credential-NAME get` with the server
 * on stdin answers `{"ServerURL","Username","Secret"}` on stdout (the
 * protocol of docker-credential-helpers, which the ECR, GCR and ACR helpers
 * speak). The Secret is registered with redact() before anything else sees
 * it, and a helper's own output is never printed whole.
 */
import { spawn } from 'node:child_process';
import { UserError } from '../../shared/errors.js';
import { redact } from '../../shared/log.js';

export interface HelperCredentials {
  username: string;
  secret: string;
}

/** A helper name is a suffix of a command name, never a path. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** A helper answers a few hundred bytes; a cloud helper may take seconds to mint a token. */
const MAX_OUTPUT = 1024 * 1024;
const TIMEOUT_MS = 60_000;

/** What the helpers say when they hold nothing for that server (docker-credential-helpers' ErrCredentialsNotFound). */
const NOT_FOUND = /credentials not found/i;

/**
 * Ask `docker-credential-NAME` for the credentials of `server`. Undefined
 * when the helper holds none; a helper that is missing, fails or answers
 * nonsense is one UserError naming the helper and `registry`.
 */
export async function helperGet(
  name: string,
  server: string,
  registry: string,
  env: NodeJS.ProcessEnv,
): Promise<HelperCredentials | undefined> {
  const command = `docker-credential-${name}`;
  const fail = (why: string) => new UserError(`credential helper ${command} for registry ${registry}: ${why}`);
  if (!NAME.test(name)) throw fail(`"${name}" is not a helper name (set in credsStore or credHelpers of the Docker config)`);
  const { code, stdout, stderr, error } = await run(command, server, env);
  if (error === 'ENOENT') throw fail('not found on PATH: install it, or remove it from the Docker config');
  if (error === 'TIMEOUT') throw fail(`no answer in ${TIMEOUT_MS / 1000}s`);
  if (error) throw fail(`could not run it (${error})`);
  if (code !== 0) {
    if (NOT_FOUND.test(stdout) || NOT_FOUND.test(stderr)) return undefined;
    throw fail(`exited with ${code}${firstLine(stderr || stdout) ? `: ${firstLine(stderr || stdout)}` : ''}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw fail('answered something that is not JSON');
  }
  const { Username, Secret } = (doc && typeof doc === 'object' ? doc : {}) as Record<string, unknown>;
  if (typeof Secret !== 'string' || (Username !== undefined && typeof Username !== 'string'))
    throw fail('answered without a string Secret');
  redact(Secret);
  return { username: Username ?? '', secret: Secret };
}

/** A helper's message, short and on one line: it is printed, so it is cut and passed through redact by the log. */
function firstLine(text: string): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

function run(
  command: string,
  input: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, ['get'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let error: string | undefined;
    const timer = setTimeout(() => {
      error = 'TIMEOUT';
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_OUTPUT) {
        error ??= 'it wrote more than 1M';
        child.kill('SIGKILL');
        return;
      }
      into.push(chunk);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    child.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), error });
    });
  });
}
