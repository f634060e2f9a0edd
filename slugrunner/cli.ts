#!/usr/bin/env node
/**
 * slugrunner: unpack a slug and run one of its processes as a dyno would.
 *   slugrunner start web < slug.tgz
 *   SLUG_URL=https://store/app/v42.tgz slugrunner start web
 *   slugrunner run 'bash -c "rake db:migrate"'
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runCli } from '../shared/cli-run.js';
import { UsageError, UserError } from '../shared/errors.js';
import { log } from '../shared/log.js';
import { isProcessTypeName } from '../shared/procfile.js';
import { parseCount, parseDuration, parseSize } from '../shared/units.js';
import { dynoEnvironment, readAppInfo } from './environment.js';
import { intakeSlug } from './intake.js';
import { commandFromWords, launch } from './launcher.js';

const USAGE = `Usage: slugrunner [options] start [TYPE]     run a process type (default web)
       slugrunner [options] run CMD [ARG...]   run a one-off command
       slugrunner [options] types              list the process types

The slug comes from --slug FILE, SLUG_URL, or stdin; an app dir that is
already populated is used as it is.

Options:
  --app-dir DIR        where the app lives (default /app)
  --slug FILE          unpack this slug
  --grace DURATION     time between SIGTERM and SIGKILL on stop (default 30s)
  --max-slug-size SIZE largest unpacked slug (default 2G)
  --max-files N        most entries in the slug (default 200000)
  -q, --quiet          no unpack messages
  -h, --help           show this help
`;

const OPTIONS = {
  'app-dir': { type: 'string' },
  slug: { type: 'string' },
  grace: { type: 'string' },
  'max-slug-size': { type: 'string' },
  'max-files': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * Split argv at the subcommand: everything after `run` is the command itself,
 * so `slugrunner run bash -c 'rake db:migrate'` needs no `--`.
 */
function splitAtRun(argv: string[]): { options: string[]; runWords?: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return { options: argv };
    if (arg.startsWith('-')) {
      const name = arg.replace(/^--?/, '').split('=')[0];
      const takesValue = Object.entries(OPTIONS).some(([long, o]) => o.type === 'string' && long === name);
      if (takesValue && !arg.includes('=')) i += 1;
      continue;
    }
    if (arg !== 'run') return { options: argv };
    const words = argv.slice(i + 1);
    return { options: argv.slice(0, i + 1), runWords: words[0] === '--' ? words.slice(1) : words };
  }
  return { options: argv };
}

async function main(argv: string[]): Promise<number> {
  const { options, runWords } = splitAtRun(argv);
  let parsed;
  try {
    parsed = parseArgs({ args: options, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} (see slugrunner --help)`);
  }
  const v = parsed.values;
  const [command, ...positionals] = parsed.positionals;
  const rest = runWords ?? positionals;
  if (v.help || !command) {
    process.stderr.write(USAGE);
    return v.help ? 0 : 2;
  }
  if (!['start', 'run', 'types'].includes(command)) throw new UsageError(`unknown command "${command}": use start, run or types`);
  if (command === 'run' && rest.length === 0) throw new UsageError('run needs a command, e.g. slugrunner run "rake db:migrate"');
  if (command === 'start' && rest.length > 1) throw new UsageError('start takes one process type, e.g. slugrunner start web');

  const appDir = path.resolve(v['app-dir'] ?? '/app');
  const graceMs = v.grace ? parseDuration(v.grace, '--grace') : 30_000;
  await intakeSlug({
    appDir,
    slugFile: v.slug,
    slugUrl: process.env.SLUG_URL || undefined,
    stdin: process.stdin,
    limits: {
      maxBytes: v['max-slug-size'] ? parseSize(v['max-slug-size'], '--max-slug-size') : 2 * 1024 ** 3,
      maxFiles: v['max-files'] ? parseCount(v['max-files'], '--max-files') : 200_000,
    },
    quiet: Boolean(v.quiet),
  });
  const app = await readAppInfo(appDir);
  const known = Object.keys(app.processTypes).sort();

  if (command === 'types') {
    for (const name of known) process.stdout.write(`${name}: ${app.processTypes[name]}\n`);
    return 0;
  }

  let processCommand: string;
  let dyno: string;
  if (command === 'start') {
    const type = rest[0] ?? 'web';
    if (!isProcessTypeName(type) || !(type in app.processTypes)) {
      throw new UserError(`unknown process type "${type}": this app has ${known.length ? known.join(', ') : 'no process types (add a Procfile)'}`);
    }
    processCommand = app.processTypes[type];
    dyno = `${type}.1`;
  } else {
    processCommand = commandFromWords(rest);
    dyno = 'run.1';
  }
  if (!v.quiet) log.step(`Starting ${dyno}: ${processCommand}`);
  return launch({ command: processCommand, appDir, env: dynoEnvironment(process.env, appDir, dyno, app.release), graceMs });
}

await runCli(() => main(process.argv.slice(2)));
