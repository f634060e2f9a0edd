/**
 * P9 of issue 25: what a user waits for, `git push` to serving. A real push of
 * a code-only change of examples/node-express into the example pipeline
 * (examples/git-push, the hook installed as in test/helpers/git-push.ts, the
 * nodejs buildpack, a warm build cache), until the new release answers HTTP
 * 200 with the changed text; against the same steps done by hand in a shell.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { installCommands, installHook } from '../test/helpers/git-push.js';
import { hasCommand } from '../test/helpers/tools.js';
import { freePort, fresh, type Row, ratioText, type Setup } from './cases.js';
import { megabytes, seconds } from './measure.js';

const IDENTITY = ['-c', 'user.name=slugkit bench', '-c', 'user.email=bench@slugkit.invalid'];

/** Prints bash's clock (microseconds since the epoch): a step timed where it runs, not by the process that started it. */
const STAMP = 'printf "%s\\n" "${EPOCHREALTIME//[!0-9]/}"';
const STAMPED = /^\d{15,17}$/;

/** A STAMP line as a `performance.now()` time. */
function fromStamp(line: string): number {
  return Number(line) / 1000 - performance.timeOrigin;
}

/** Poll until GET / answers 200 with `marker` in its body; ms since `start`. */
async function until200(port: number, marker: string, start: number, limitMs: number): Promise<number> {
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      async (r) => r.status === 200 && (await r.text()).includes(marker),
      () => false,
    );
    if (ok) return performance.now() - start;
    if (performance.now() - start > limitMs) throw new Error(`no HTTP 200 with "${marker}" on 127.0.0.1:${port} after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function stopPid(file: string): Promise<void> {
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8').trim());
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}

function findFile(dir: string, name: string): string | undefined {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === name) return p;
    if (e.isDirectory()) {
      const f = findFile(p, name);
      if (f) return f;
    }
  }
  return undefined;
}

type LogLine = { ms: number; text: string };

/** ms at which the first log line matching `re` arrived. */
function at(lines: LogLine[], re: RegExp): number | undefined {
  return lines.find((l) => re.test(l.text))?.ms;
}

/** Milestones of the push log, each with the time its line arrived. */
function timeline(lines: LogLine[]): string {
  const marks: Array<[string, RegExp]> = [
    ['hook says "Building"', /^-----> Building \S+ from/],
    ["slugbuilder's first line", /^-----> (Reading|Receiving|Fetching|Using|Claim|Source|App)/],
    ['buildpack detected', /^-----> .*(app detected|Node\.js)/],
    ['slug compressed', /Compiled slug size is/],
    ['build steps line', /Build steps took/],
    ['restart', /^-----> Restarting/],
  ];
  const out: string[] = [];
  for (const [name, re] of marks) {
    const ms = at(lines, re);
    if (ms !== undefined) out.push(`${name} ${Math.round(ms)}`);
  }
  out.push(`last line ${Math.round(lines.at(-1)?.ms ?? 0)}`);
  return out.join(', ');
}

/** P9: `git push` of a code-only change until the new release serves, against its parts by hand. */
export async function p9PushToServing(s: Setup): Promise<Row> {
  const what = '`git push` to HTTP 200 of the new release, code-only change of examples/node-express, warm cache';
  const goal = '≤ 1.2× of the parts by hand';
  const missing = ['git', 'bwrap', 'flock', 'setpriv', 'npm'].filter((t) => !hasCommand(t));
  if (missing.length)
    return {
      id: 'P9',
      what,
      slugkit: '—',
      baseline: '—',
      ratio: '—',
      goal,
      met: 'skipped',
      notes: [`skipped: needs ${missing.join(', ')}`],
    };
  // Outside the checkout: the hook will not show the slugkit install to its sandbox when it holds the slug store.
  const work = mkdtempSync(path.join(tmpdir(), 'slugkit-bench-p9-'));
  const bin = await installCommands(path.join(work, 'bin'));
  const bare = path.join(work, 'app.git');
  const clone = path.join(work, 'clone');
  const store = path.join(work, 'slugs');
  const cacheRoot = path.join(work, 'cache');
  const pidFile = path.join(work, 'web.pid');
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    SLUG_STORE: store,
    SLUGBUILDER_CACHE_DIR: cacheRoot,
    BUILDPACK_URL: path.join(s.repo, 'buildpacks', 'nodejs'),
  };
  await execa('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  await installHook(bare);
  // The restart an operator would write: stop the old web process, start the new release's in the background.
  const restart = [
    // A zombie counts as gone: the old process is reparented to PID 1 when this command exits, and
    // some inits (this machine's among them) reap only every second or two.
    `alive() { local st; st=$(cat "/proc/$1/stat" 2>/dev/null) && [[ \${st##*) } != Z* ]]; }`,
    `if [ -f '${pidFile}' ]; then old=$(cat '${pidFile}'); kill "$old" 2>/dev/null || true; while alive "$old"; do sleep 0.02; done; fi`,
    // After a push the hook hands over the new release's app, unpacked: taken, it is started as it is.
    `dir='${work}/app-'"$SLUGKIT_RELEASE"`,
    `if [ -n "\${SLUGKIT_APP_TREE:-}" ] && mv -T "$SLUGKIT_APP_TREE" "$dir"; then from=(); else from=(--slug "$SLUG"); fi`,
    `PORT=${port} setsid slugrunner -q "\${from[@]}" --app-dir "$dir" start web > '${work}/web.log' 2>&1 < /dev/null &`,
    `echo $! > '${pidFile}'`,
  ].join('\n');
  await execa('git', ['config', 'slugkit.restart', restart], { cwd: bare });
  cpSync(path.join(s.repo, 'examples', 'node-express'), clone, { recursive: true });
  const git = (args: string[]) => execa('git', [...IDENTITY, ...args], { cwd: clone, env });
  await git(['init', '-q', '-b', 'main']);
  await git(['remote', 'add', 'origin', bare]);
  const server = path.join(clone, 'server.js');
  const change = async (n: number) => {
    writeFileSync(server, readFileSync(server, 'utf8').replace(/Hello from Express[^(]*\(/, `Hello from Express, change ${n} (`));
    await git(['commit', '-qam', `change ${n}`]);
    return `change ${n}`;
  };
  const push = async (marker: string) => {
    const spawned = performance.now();
    const proc = execa('bash', ['-c', `${STAMP}; exec git push -q origin main`], { cwd: clone, env, all: true, reject: false });
    // When each line of the hook's log reached the client: where the push's time goes.
    const arrivals: Array<{ at: number; text: string }> = [];
    let begun: number | undefined;
    let partial = '';
    proc.all?.on('data', (chunk: Buffer) => {
      const at = performance.now();
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts) {
        if (begun === undefined && STAMPED.test(text)) begun = fromStamp(text);
        else arrivals.push({ at, text: text.replace(/^remote: /, '').trim() });
      }
    });
    const r = await proc;
    const start = begun ?? spawned;
    const pushed = performance.now() - start;
    if (r.exitCode !== 0) throw new Error(`git push failed:\n${r.all}`);
    const served = await until200(port, marker, start, 120_000);
    const lines: LogLine[] = arrivals.map((a) => ({ ms: a.at - start, text: a.text }));
    // Progress goes to stderr: the whole log with arrival times, for finding where a push's time goes.
    for (const l of lines) process.stderr.write(`  P9 ${String(Math.round(l.ms)).padStart(6)} ms  ${l.text}\n`);
    process.stderr.write(
      `  P9 ${String(Math.round(pushed)).padStart(6)} ms  (git push returned)\n  P9 ${String(Math.round(served)).padStart(6)} ms  (first HTTP 200)\n`,
    );
    return { pushed, served, log: String(r.all), lines };
  };
  try {
    // The first push fills the build cache (npm cache, node_modules, node); not timed.
    await git(['add', '-A']);
    await git(['commit', '-qm', 'first']);
    const first = await push('Hello from Express').catch((e: Error) => e);
    if (first instanceof Error) {
      // Needs the npm registry (Express) and a working sandbox: say why, keep the other rows.
      const why =
        first.message
          .split('\n')
          .filter((l) => l.includes(' !     '))
          .pop()
          ?.trim() ?? first.message.split('\n')[0];
      return {
        id: 'P9',
        what,
        slugkit: '—',
        baseline: '—',
        ratio: '—',
        goal,
        met: 'skipped',
        notes: [`skipped: the first, untimed push failed: ${why}`],
      };
    }
    // The parts by hand start from the npm cache the pipeline saved.
    const npmTar = findFile(cacheRoot, 'npm.tar');
    const npmCache = fresh(path.join(work, 'npm-cache'));
    if (npmTar) await execa('tar', ['-xf', npmTar, '-C', npmCache]);
    const handRound = async (n: number) => {
      const byHand = fresh(path.join(work, `by-hand-${n}`));
      const marker = await change(n);
      const handSha = (await git(['rev-parse', 'HEAD'])).stdout.trim();
      const parts = [
        `git -C '${clone}' archive ${handSha} | tar -x -C '${byHand}/build'`,
        `cd '${byHand}/build' && NPM_CONFIG_CACHE='${npmCache}' npm ci --no-audit --prefer-offline --include=dev --no-fund > /dev/null 2>&1`,
        `tar -czf '${byHand}/slug.tgz' -C '${byHand}/build' .`,
        `tar -xzf '${byHand}/slug.tgz' -C '${byHand}/app'`,
      ];
      // One bash runs every step and then the app, stamping each step's end with its own
      // clock: steps this bench process started and awaited one by one read ~0.5 s slower after P8.
      const script = [
        'set -euo pipefail',
        STAMP,
        `mkdir -p '${byHand}/build' '${byHand}/app'`,
        ...parts.map((p) => `(${p}); ${STAMP}`),
        `cd '${byHand}/app' && exec env -i PATH="$PATH" PORT=${port} NODE_ENV=production node server.js`,
      ].join('\n');
      const web = execa('bash', ['-c', script], { stdin: 'ignore', stdout: 'pipe', stderr: 'ignore', reject: false });
      const stamps: number[] = [];
      const started = new Promise<void>((resolve, reject) => {
        createInterface({ input: web.stdout as NodeJS.ReadableStream }).on('line', (line) => {
          if (STAMPED.test(line)) stamps.push(fromStamp(line));
          if (stamps.length === parts.length + 1) resolve();
        });
        web.then(
          (r) => reject(new Error(`the parts by hand stopped (exit ${r.exitCode}) after ${stamps.length - 1} of ${parts.length} steps`)),
          reject,
        );
      });
      try {
        await started;
        const served = await until200(port, marker, stamps[parts.length], 60_000);
        const stepMs = [...stamps.slice(1).map((t, i) => t - stamps[i]), served];
        return { handMs: stamps[parts.length] + served - stamps[0], stepMs, slugBytes: statSync(path.join(byHand, 'slug.tgz')).size };
      } finally {
        web.kill('SIGTERM');
        await web;
      }
    };
    // Rounds of one push and one run by hand, alternating, so a slow spell of the machine falls on both.
    const pushes: Awaited<ReturnType<typeof push>>[] = [];
    const hands: Awaited<ReturnType<typeof handRound>>[] = [];
    for (let i = 0; i < s.times.p9; i++) {
      pushes.push(await push(await change(2 * i + 1)));
      await stopPid(pidFile);
      hands.push(await handRound(2 * i + 2));
    }
    const sha = (await git(['rev-parse', 'HEAD'])).stdout.trim();
    const byServed = [...pushes].sort((a, b) => a.served - b.served);
    const ours = byServed[Math.floor(byServed.length / 2)];
    const { handMs, stepMs, slugBytes } = [...hands].sort((a, b) => a.handMs - b.handMs)[Math.floor(hands.length / 2)];
    const steps = /Build steps took: (.*)/.exec(ours.log)?.[1]?.trim() ?? '(no step line in the push log)';
    const ratio = ours.served / handMs;
    // The same two tar steps on the bytes the pipeline shipped (the buildpack's Node included): the parts
    // by hand pack the app alone, so this says how much of the gap is the runtime the slug carries.
    const shipped = path.join(store, 'app', 'current');
    const same = fresh(path.join(work, 'same-bytes'));
    const tx = performance.now();
    await execa('tar', ['-xzf', shipped, '-C', same]);
    const sameUnpack = performance.now() - tx;
    const tc = performance.now();
    await execa('tar', ['-czf', path.join(work, 'same-bytes.tgz'), '-C', same, '.']);
    const samePack = performance.now() - tc;
    const handSame = handMs - stepMs[2] - stepMs[3] + samePack + sameUnpack;
    const names = ['git archive | tar -x', 'npm ci (warm npm cache, --prefer-offline)', 'tar -cz', 'tar -xz', 'node server.js to 200'];
    return {
      id: 'P9',
      what,
      slugkit: `${seconds(ours.served)} (push returned at ${seconds(ours.pushed)})`,
      baseline: `parts by hand ${seconds(handMs)}`,
      ratio: ratioText(ratio),
      goal,
      met: ratio <= 1.2 ? 'yes' : 'no',
      notes: [
        `${s.times.p9} rounds of a push and the parts by hand, alternating, after an untimed first push that warmed the cache (last commit ${sha.slice(0, 12)}); medians, and the median push's log below (each push, in ms to the first 200: ${pushes.map((p) => Math.round(p.served)).join(', ')}; each run by hand: ${hands.map((h) => Math.round(h.handMs)).join(', ')}); the hook's build runs sandboxed (bwrap); restart: kill the old web process, take the unpacked app the hook hands over (SLUGKIT_APP_TREE, made by \`slugbuilder --app-out\`) and \`slugrunner --app-dir DIR start web\` in the background (\`--slug $SLUG\` when there is none); timed until GET / on 127.0.0.1 answers 200 with the changed text`,
        `the pipeline's own step line: ${steps}; ${/Compiled slug size is (.*)/.exec(ours.log)?.[1]?.trim() ?? '?'} compiled slug (it holds the buildpack's Node), by hand ${megabytes(slugBytes)} (system node)`,
        `after git push returned: ${seconds(ours.served - ours.pushed)} to the first 200 (the restart: the old process stopped, the new one started from the handed-over app)`,
        `the push's log as it reached the client (ms from \`git push\`): ${timeline(ours.lines)}`,
        npmTar
          ? `by hand, npm's cache is the pipeline's own (${path.relative(work, npmTar)}, unpacked beforehand, not timed)`
          : `by hand, npm ci started from an EMPTY npm cache: no npm.tar under the pipeline's cache root (${cacheRoot})`,
        `the parts by hand with the pipeline's own slug tree for the two tar steps (\`tar -czf\` ${seconds(samePack)}, \`tar -xzf\` ${seconds(sameUnpack)} of ${megabytes(statSync(shipped).size)}, the buildpack's Node in it): ${seconds(handSame)}, ratio ${ratioText(ours.served / handSame)}`,
        `parts by hand: ${names.map((n, i) => `${n} ${seconds(stepMs[i])}`).join(', ')}; system node, not the buildpack's; the buildpack on a warm cache restores node_modules from its cache instead of running npm ci`,
      ],
    };
  } finally {
    await stopPid(pidFile);
    rmSync(work, { recursive: true, force: true });
  }
}
