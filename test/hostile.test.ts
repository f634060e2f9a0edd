/**
 * Every hostile archive of the corpus (test/fixtures/hostile/corpus.ts) goes
 * through the real CLIs: slugbuilder reading it from stdin and from
 * `--source FILE` (and, for broken archives, from an http URL), and
 * slugrunner reading it as `--slug FILE` and from stdin. Each run happens in a fresh directory with a
 * sentinel directory beside the target; after it:
 *  - nothing outside the target was created, changed or removed (snapshot),
 *    and no `pwned-<nonce>` file appeared in /tmp or /;
 *  - the case was rejected (exit 1, exactly one ` !     ` line naming the
 *    cause, no slug written, nothing on stdout, no temp dir left), or it was
 *    unpacked safely (no device, fifo or setuid/setgid/sticky bit in the
 *    target), as the corpus says it should be.
 */

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type HostileCase, hostileCorpus, INSPECT_COMPILE, newNonce } from './fixtures/hostile/corpus.js';
import { dangerousEntries, diffSnapshots, snapshotTree } from './fixtures/hostile/snapshot.js';
import { BUILDER, RUNNER, writeBuildpack } from './helpers/cli.js';
import { serveFiles, startHttpServer, type TestHttpServer } from './helpers/http-server.js';

const ERROR_LINE = /^ ! {5}/;

const MAX_BYTES = 1024 * 1024;
const MAX_FILES = 1000;
const LIMIT_FLAGS = ['--max-source-size', '1M', '--max-files', String(MAX_FILES)];

type Channel = 'builder-stdin' | 'builder-file' | 'builder-url' | 'runner-slug' | 'runner-stdin';
const CHANNELS: Channel[] = ['builder-stdin', 'builder-file', 'builder-url', 'runner-slug', 'runner-stdin'];

/**
 * Depth from each target to the case dir: the builder unpacks into
 * $TMPDIR/slugbuilder-XXXX/app (three levels below the case dir), the runner
 * into <case>/app.
 */
const DEPTH: Record<'builder' | 'runner', number> = { builder: 3, runner: 1 };

interface Outcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => ERROR_LINE.test(l));
}

/** What the case must do on this channel, where a channel lacks a limit or sees input differently. */
function expectationFor(c: HostileCase, channel: Channel): { expect: 'reject' | 'safe'; message?: RegExp } {
  const runner = channel.startsWith('runner');
  // slugrunner has no entry-count limit: many small files are a valid slug there.
  if (runner && c.group === 'limits') return { expect: 'safe' };
  // An empty stdin is "no slug" for the runner, which then looks at the app dir.
  if (channel === 'runner-stdin' && c.bytes.length === 0) return { expect: 'reject', message: /no slug/ };
  return { expect: c.expect, message: c.message };
}

describe('hostile archives through slugbuilder and slugrunner', function () {
  this.timeout(120_000);
  let root: string;
  let inspectBuildpack: string;
  let server: TestHttpServer;
  const served = new Map<string, Buffer>();

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'slugkit-hostile-'));
    inspectBuildpack = await writeBuildpack(path.join(root, 'inspect-buildpack'), { compile: INSPECT_COMPILE });
    server = await startHttpServer((req, res) => {
      const body = served.get((req.url ?? '').split('?')[0]);
      if (!body) return serveFiles({})(req, res);
      return serveFiles({ [(req.url ?? '').split('?')[0]]: body })(req, res);
    });
  });

  after(async () => {
    await server?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  // The corpus shape (names, expectations) does not depend on paths, so it can name the tests.
  const shape = hostileCorpus({
    outside: '/nowhere/sentinel',
    keepFile: 'keep.txt',
    nonce: 'x',
    depth: 1,
    maxBytes: MAX_BYTES,
    maxFiles: MAX_FILES,
  });

  it('has at least 30 cases covering paths, links, special entries and broken archives', () => {
    expect(shape.length).to.be.at.least(30);
    for (const group of ['paths', 'links', 'special', 'broken'])
      expect(
        shape.some((c) => c.group === group),
        group,
      ).to.equal(true);
  });

  shape.forEach((shapeCase, index) => {
    it(`${shapeCase.group}: ${shapeCase.name} (${shapeCase.expect})`, async () => {
      // The URL channel only changes how bytes arrive: it runs for the broken archives, where streaming matters.
      const channels = CHANNELS.filter((ch) => ch !== 'builder-url' || shapeCase.group === 'broken');
      const results = await Promise.all(channels.map((channel) => runCase(index, channel)));
      const failures = results.filter(Boolean);
      expect(failures, failures.join('\n\n')).to.deep.equal([]);
    });
  });

  /** Runs one case on one channel in its own directory; returns a description of what went wrong, or ''. */
  async function runCase(index: number, channel: Channel): Promise<string> {
    const caseDir = await mkdtemp(path.join(root, `case-${index}-${channel}-`));
    const sentinel = path.join(caseDir, 'sentinel');
    await mkdir(path.join(sentinel, 'sub'), { recursive: true });
    await writeFile(path.join(sentinel, 'keep.txt'), 'the operator keeps this\n');
    await writeFile(path.join(sentinel, 'sub', 'config'), 'secret=1\n');
    for (const d of ['tmp', 'out', 'app', 'cache']) await mkdir(path.join(caseDir, d));

    const builder = channel.startsWith('builder');
    const nonce = newNonce();
    const c = hostileCorpus({
      outside: sentinel,
      keepFile: 'keep.txt',
      nonce,
      depth: DEPTH[builder ? 'builder' : 'runner'],
      maxBytes: MAX_BYTES,
      maxFiles: MAX_FILES,
    })[index];
    const input = path.join(caseDir, 'input.tar');
    await writeFile(input, c.bytes);
    // The target (app, or the builder's TMPDIR), its outputs and the build cache may change; nothing else may.
    const before = snapshotTree(caseDir, ['tmp', 'out', 'app', 'cache']);

    let outcome: Outcome;
    const slugOut = path.join(caseDir, 'out', 'slug.tgz');
    const report = path.join(caseDir, 'out', 'report.txt');
    if (builder) {
      const args = [
        BUILDER,
        '--buildpack',
        inspectBuildpack,
        '--pass-env',
        'HOSTILE_REPORT',
        '--cache-dir',
        path.join(caseDir, 'cache'),
        ...LIMIT_FLAGS,
        '-o',
        slugOut,
      ];
      // Unsandboxed: the inspecting buildpack writes its report outside the build.
      const env = {
        TMPDIR: path.join(caseDir, 'tmp'),
        HOSTILE_REPORT: report,
        TAR_URL: '',
        PUT_URL: '',
        BUILDPACK_URL: '',
        SLUGKIT_SANDBOX: 'off',
      };
      let stdinFile: string | undefined;
      if (channel === 'builder-file') args.push('--source', input);
      else if (channel === 'builder-url') {
        served.set(`/${nonce}.tgz`, c.bytes);
        args.push('--source', `${server.origin}/${nonce}.tgz`);
      } else stdinFile = input;
      outcome = await run('node', args, env, stdinFile);
    } else {
      const args = ['--app-dir', path.join(caseDir, 'app'), '--max-slug-size', '1M', '-q'];
      if (channel === 'runner-slug') args.push('--slug', input);
      outcome = await run(RUNNER, [...args, 'types'], { SLUG_URL: '' }, channel === 'runner-stdin' ? input : undefined);
    }

    const problems: string[] = [];
    const after = snapshotTree(caseDir, ['tmp', 'out', 'app', 'cache']);
    problems.push(...diffSnapshots(before, after).map((p) => `outside the target: ${p}`));
    for (const escaped of [`/tmp/pwned-${nonce}`, `/pwned-${nonce}`, path.join(root, 'pwned')]) {
      if (existsSync(escaped)) problems.push(`escaped to ${escaped}`);
    }
    const leftovers = await readdir(path.join(caseDir, 'tmp'));
    if (leftovers.length > 0) problems.push(`temp dirs left behind: ${leftovers.join(', ')}`);

    const want = expectationFor(c, channel);
    const errors = errorLines(outcome.stderr);
    if (want.expect === 'reject') {
      if (outcome.exitCode !== 1) problems.push(`exit ${outcome.exitCode}, expected 1`);
      if (errors.length !== 1) problems.push(`${errors.length} error lines, expected exactly one`);
      else if (want.message && !want.message.test(errors[0])) problems.push(`error line does not match ${want.message}: ${errors[0]}`);
      if (existsSync(slugOut)) problems.push('a slug was written for a rejected source');
      if (!builder && (await readdir(path.join(caseDir, 'app'))).length > 0) problems.push('a rejected slug left files in the app dir');
    } else {
      if (outcome.exitCode !== 0) problems.push(`exit ${outcome.exitCode}, expected a safe unpack; error lines: ${errors.join(' | ')}`);
      const listing = builder
        ? await readFile(report, 'utf8').catch(() => '')
        : (await execa('find', [path.join(caseDir, 'app'), '-mindepth', '1', '-printf', '%y %m %P\\n'])).stdout;
      if (outcome.exitCode === 0 && builder && !existsSync(report)) problems.push('the inspecting buildpack did not run');
      const dangerous = dangerousEntries(listing);
      if (dangerous.length > 0) problems.push(`dangerous entries in the target: ${dangerous.join(', ')}`);
    }
    if (builder && outcome.stdout !== '') problems.push(`stdout is not empty: ${JSON.stringify(outcome.stdout.slice(0, 200))}`);

    if (problems.length === 0) {
      await rm(caseDir, { recursive: true, force: true });
      return '';
    }
    return `[${channel}] ${c.name}:\n  ${problems.join('\n  ')}\n  stderr: ${outcome.stderr.trim().split('\n').join('\n          ')}`;
  }
});

async function run(file: string, args: string[], env: Record<string, string>, stdinFile?: string): Promise<Outcome> {
  const result = await execa(file, args, {
    env,
    reject: false,
    timeout: 60_000,
    ...(stdinFile ? { inputFile: stdinFile } : { stdin: 'ignore' as const }),
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}
