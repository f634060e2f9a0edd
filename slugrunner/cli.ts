#!/usr/bin/env node
/**
 * slugrunner: unpack a slug and run one of its processes as a dyno would.
 *   slugrunner start web < slug.tgz
 *   slugrunner start web -- --port 8080   (a CNB process: replaces its args)
 *   SLUG_URL=https://store/app/v42.tgz slugrunner start web
 *   slugrunner run 'bash -c "rake db:migrate"'
 *   slugrunner types --json
 */
import path from 'node:path';
import { type BuiltApp, readApp } from '../shared/app/app.js';
import { type LaunchPlan, makeLaunchPlan, refreshLaunchPlan } from '../shared/app/launch-plan.js';
import { type AppProcesses, commandLines, type ProcessStart, resolveProcesses, startWithArgs } from '../shared/app/processes.js';
import { runCli } from '../shared/cli-run.js';
import { closest, parseCommand } from '../shared/command.js';
import { UsageError, UserError } from '../shared/errors.js';
import { isDir } from '../shared/fs.js';
import { stringEnv } from '../shared/layer-env.js';
import { log } from '../shared/log.js';
import { parseCount, parseDuration, parseSize } from '../shared/units.js';
import { removeRetiredTrees, treeId } from './app-dir.js';
import { basePort, dynoEnvironment } from './environment.js';
import { checkFormationPorts, parseFormation, planDynos, runFormation } from './formation.js';
import { intakeSlug } from './intake.js';
import { commandFromWords, launch } from './launcher.js';

const USAGE = `Usage: slugrunner [options] start [TYPE] [-- ARG...]  run a process type
       slugrunner [options] start TYPE TYPE...  run several side by side, as foreman does
       slugrunner [options] start --formation web=2,worker=1
       slugrunner [options] run CMD [ARG...]   run a one-off command (the words
                                               joined and run by bash)
       slugrunner [options] types [--json]     list the process types

start runs TYPE, by default the Cloud Native Buildpack process marked
default, else web, else the only process type. ARGs after -- replace a CNB process's args (for other
processes they are appended to the command line).

The slug comes from --slug FILE, --slug - (stdin) or SLUG_URL. Without one,
an app dir that holds an app is used as it is and stdin belongs to the
process; only an empty (or absent) app dir takes a slug piped on stdin, and
the process then gets an empty stdin.

Options:
  --app-dir DIR          where the app lives (default /app)
  --slug FILE            unpack this slug (- for stdin), replacing the app
  --formation SPEC       start: how many of each type, TYPE=COUNT[,...]
  --grace DURATION       time between SIGTERM and SIGKILL on stop (default 30s)
  --lock-timeout DURATION  longest wait for another runner unpacking into
                         the same app dir (default 5m)
  --max-slug-size SIZE   largest unpacked slug (default 2G)
  --max-files N          most entries in the slug (default 200000)
  --net-timeout DURATION   SLUG_URL: give up on a server that sends no byte for
                         this long, retried up to 4 times (default 60s;
                         env SLUGKIT_NET_TIMEOUT)
  --net-deadline DURATION  SLUG_URL: longest the download may take, retries
                         included (default 1h; env SLUGKIT_NET_DEADLINE)
  --json                 types: print a JSON object, type -> command
  -q, --quiet            no unpack messages
  -h, --help             show this help
  --version              show slugkit's and Node's versions and the default stack
`;

const RUNNER = {
  name: 'slugrunner',
  usage: USAGE,
  version: 'slugrunner',
  options: {
    'app-dir': { type: 'string' },
    slug: { type: 'string' },
    grace: { type: 'string' },
    formation: { type: 'string' },
    'lock-timeout': { type: 'string' },
    'max-slug-size': { type: 'string' },
    'max-files': { type: 'string' },
    'net-timeout': { type: 'string' },
    'net-deadline': { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  },
  // Options may come before or after the command, but everything after `run`
  // is the command itself, so `slugrunner run bash -c 'rake db:migrate'` needs no `--`.
  positionals: { stopAt: (word: string, index: number) => index === 0 && word === 'run' },
} as const;

const COMMANDS = ['start', 'run', 'types', 'help'];

async function main(argv: string[]): Promise<number> {
  // Set by bin/slugrunner for this process's own allocator only: the app runs with the environment it was given.
  if (process.env.SLUGKIT_RUNNER_TUNABLES) {
    delete process.env.GLIBC_TUNABLES;
    delete process.env.SLUGKIT_RUNNER_TUNABLES;
  }
  const parsedArgs = parseCommand(RUNNER, argv);
  if (!parsedArgs) return 0;
  const { values: v, extra } = parsedArgs;
  const [command, ...words] = parsedArgs.positionals;
  // What follows `run` is the command as given; a leading `--` is only a separator.
  const rest = command === 'run' ? (parsedArgs.rest[0] === '--' ? parsedArgs.rest.slice(1) : parsedArgs.rest) : words;
  if (command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!command) throw new UsageError('no command: use start, run or types (see slugrunner --help)');
  if (!COMMANDS.includes(command)) {
    const near = closest(command, COMMANDS);
    throw new UsageError(
      `unknown command "${command}": ${near ? `did you mean ${near}?` : 'use start, run or types'} (see slugrunner --help)`,
    );
  }
  if (command === 'run' && rest.length === 0) throw new UsageError('run needs a command, e.g. slugrunner run "rake db:migrate"');
  if (v.formation !== undefined && command !== 'start')
    throw new UsageError('--formation goes with start: slugrunner start --formation web=2,worker=1');
  const formation = command === 'start' && (rest.length > 1 || v.formation !== undefined) ? parseFormation(rest, v.formation) : undefined;
  if (formation && extra.length > 0) throw new UsageError('arguments after -- go with one process type, not a formation');
  if (command === 'types' && rest.length + extra.length > 0)
    throw new UsageError(`types takes no arguments, got "${[...rest, ...extra][0]}"`);
  if (v.json && command !== 'types') throw new UsageError('--json goes with types: slugrunner types --json');
  // A bad PORT is refused before a slug is unpacked or a process started.
  const port = command === 'start' ? basePort(process.env) : undefined;
  if (formation && port !== undefined) checkFormationPorts(formation, port);
  const str = (name: Exclude<keyof typeof v, 'json' | 'quiet'>) => v[name];
  const parsed = <T>(name: Exclude<keyof typeof v, 'json' | 'quiet'>, parse: (value: string, flag: string) => T, fallback: T): T => {
    const value = str(name);
    return value === undefined ? fallback : parse(value, `--${name}`);
  };

  const appDir = path.resolve(str('app-dir') ?? '/app');
  const graceMs = parsed('grace', parseDuration, 30_000);
  const { stdinTaken } = await intakeSlug({
    appDir,
    slugFile: str('slug'),
    slugUrl: process.env.SLUG_URL || undefined,
    stdin: process.stdin,
    limits: {
      maxBytes: parsed('max-slug-size', parseSize, 2 * 1024 ** 3),
      maxFiles: parsed('max-files', parseCount, 200_000),
    },
    lockTimeoutMs: parsed('lock-timeout', parseDuration, 5 * 60_000),
    // Checked here, applied by shared/http.ts only when a SLUG_URL is fetched (it is not loaded otherwise).
    net: { timeout: parsed('net-timeout', checkDuration, undefined), deadline: parsed('net-deadline', checkDuration, undefined) },
    quiet: Boolean(v.quiet),
  });
  const app = await readApp(appDir);
  const processes = resolveProcesses(app);
  const processTypes = commandLines(processes);

  if (command === 'types') {
    if (v.json) process.stdout.write(JSON.stringify(processTypes) + '\n');
    else for (const name of Object.keys(processTypes)) process.stdout.write(`${name}: ${processTypes[name]}\n`);
    return 0;
  }

  // The plan holds what bin/dyno.bash needs; kept on disk so the next start can skip Node.
  const plan = await makeLaunchPlan(app, processes);
  await refreshLaunchPlan(appDir, plan);

  const ready: ReadyApp = { app, processes, plan };
  const tree = await treeId(appDir);
  let code: number;
  if (formation) {
    const dynos = planDynos(formation, processTypes, port ?? basePort(process.env));
    code = await runFormation({
      dynos,
      appDir,
      graceMs,
      quiet: Boolean(v.quiet),
      prepare: (d, base) => prepare(ready, d.type, [], base, d.name),
    });
  } else {
    const type = command === 'start' ? (rest[0] ?? processes.defaultType) : undefined;
    const dyno = type !== undefined ? `${type}.1` : 'run.1';
    const p = await prepare(ready, type, command === 'start' ? extra : rest, process.env, dyno);
    if (!v.quiet) log.step(`Starting ${dyno}: ${p.display}`);
    code = await launch({ ...p, appDir, dyno, graceMs, stdin: stdinTaken ? 'ignore' : 'inherit' });
  }
  // Another runner swapped a new slug in while this one ran: the old tree is this runner's to remove.
  if ((await treeId(appDir)) !== tree) await removeRetiredTrees(appDir);
  return code;
}

/** The app read, its process types resolved and its plan made: what every process of this runner starts from. */
interface ReadyApp {
  app: BuiltApp;
  processes: AppProcesses;
  plan: LaunchPlan;
}

/** How a process type (or a one-off command, type undefined) starts, and in what environment. */
async function prepare(
  { app, processes, plan }: ReadyApp,
  type: string | undefined,
  args: string[],
  base: NodeJS.ProcessEnv,
  dyno: string,
) {
  const { appDir } = app;
  let how: ProcessStart;
  if (type !== undefined) {
    if (!Object.hasOwn(processes.byType, type)) {
      const known = Object.keys(processes.byType).sort();
      throw new UserError(
        `unknown process type "${type}": this app has ${known.length ? known.join(', ') : 'no process types (add a Procfile)'}`,
      );
    }
    how = startWithArgs(appDir, processes.byType[type], args);
  } else {
    const line = commandFromWords(args);
    how = { start: { shell: line }, display: line, cwd: appDir };
  }
  const { start, display, cwd } = how;
  if (cwd !== appDir && !(await isDir(cwd))) {
    throw new UserError(
      `process ${type}: working dir ${cwd} does not exist; check the buildpack's launch.toml and that --app-dir is the dir the app was built in`,
    );
  }
  // A plan bash cannot apply alone (exec.d, odd variable names): the environment is made here.
  let env: NodeJS.ProcessEnv = base;
  if (!plan.fast) {
    env = dynoEnvironment(base, appDir, dyno, app.release);
    if (app.cnb) {
      // Only an app built by Cloud Native Buildpacks loads their launch code.
      const { cnbEnvironment } = await import('./cnb-launch.js');
      env = await cnbEnvironment(stringEnv(env), app.cnb, type);
    }
  }
  return { start, display, cwd, type, env, envReady: !plan.fast, plan: plan.bytes };
}

function checkDuration(value: string, flag: string): string {
  parseDuration(value, flag);
  return value;
}

await runCli(() => main(process.argv.slice(2)));
