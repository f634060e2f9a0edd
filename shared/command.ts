/**
 * The one argument parser of every command of both CLIs (slugbuilder, its
 * rebase/cache/manifests, slugrunner): options parsed from a table, -h/--help
 * printing the usage on stdout (exit 0), --version in one format, and every
 * mistake one UsageError line for runCli (shared/cli-run.ts) to print: an
 * unknown option names the closest real one, a stray word says what to do.
 */
import { UsageError } from './errors.js';
import { slugkitVersion } from './package.js';

/** The stack builds get when nothing names one: shown by both programs' --version. */
export const DEFAULT_STACK = 'heroku-24';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Repeatable: the values are collected in order. Otherwise a second use is an error. */
  multiple?: boolean;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export type Values<O extends OptionSpecs> = {
  -readonly [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : O[K]['multiple'] extends true ? string[] : string;
};

export interface CommandSpec<O extends OptionSpecs> {
  /** As typed: "slugbuilder", "slugbuilder rebase". Named in every error line. */
  name: string;
  usage: string;
  options: O;
  /** Prints versionText(program) on --version; the option is added when set. */
  version?: 'slugbuilder' | 'slugrunner';
  /** Words that are not options. Default: none allowed. */
  positionals?: {
    /** Most words allowed (default unlimited once positionals is given). */
    max?: number;
    /** Words that may come first (subcommands): a near miss is named. */
    known?: readonly string[];
    /** True for a word after which everything is taken as it is (`slugrunner run CMD ...`). */
    stopAt?: (word: string, index: number) => boolean;
  };
  /** What a stray word means when no positionals are allowed ("use --source ."). */
  strayHint?: (word: string) => string;
}

export interface ParsedCommand<O extends OptionSpecs> {
  values: Values<O>;
  positionals: string[];
  /** What followed the stopAt word, untouched. */
  rest: string[];
  /** What followed a `--` (once positionals were seen, or when positionals are not allowed). */
  extra: string[];
  /** Option names in the order given, with how each was written: for messages about a later conflict. */
  given: Array<{ name: string; raw: string }>;
}

/** First line `slugbuilder 0.1.0 (slugkit)`, then Node and the default stack: one format for both programs. */
export function versionText(program: 'slugbuilder' | 'slugrunner'): string {
  return `${program} ${slugkitVersion()} (slugkit)\nnode ${process.version}\ndefault stack ${DEFAULT_STACK}\n`;
}

/** Edit distance with transpositions (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The candidate closest to `word`, when it is close enough to be a typo of it (or `word` is a prefix of exactly one). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const dist = distance(word, c);
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  if (best !== undefined && bestDistance <= Math.max(1, Math.min(3, Math.floor(word.length / 3)))) return best;
  const prefixed = word.length >= 3 ? candidates.filter((c) => c.startsWith(word)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/**
 * Parses `argv` for `spec`. Returns undefined when it printed the usage or the
 * version (the command then exits 0); throws UsageError for anything wrong.
 */
export function parseCommand<O extends OptionSpecs>(spec: CommandSpec<O>, argv: readonly string[]): ParsedCommand<O> | undefined {
  const options: Record<string, OptionSpec> = { ...spec.options, help: { type: 'boolean', short: 'h' } };
  if (spec.version) options.version = { type: 'boolean' };
  const see = `(see ${spec.name} --help)`;
  const shortName = (letter: string) => Object.keys(options).find((n) => options[n].short === letter);
  const values: Record<string, string | boolean | string[]> = {};
  const positionals: string[] = [];
  const given: ParsedCommand<O>['given'] = [];
  let rest: string[] = [];
  let extra: string[] = [];
  const errors: string[] = [];
  const fail = (message: string) => errors.push(message);

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      const after = argv.slice(i + 1);
      if (!spec.positionals || positionals.length === 0) positionals.push(...after);
      else extra = after;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (spec.positionals?.stopAt?.(arg, positionals.length)) {
        positionals.push(arg);
        rest = argv.slice(i + 1);
        break;
      }
      positionals.push(arg);
      continue;
    }
    const long = arg.startsWith('--');
    const eq = long ? arg.indexOf('=') : -1;
    const raw = eq > 0 ? arg.slice(0, eq) : long ? arg : arg.slice(0, 2);
    const name = long ? raw.slice(2) : shortName(arg[1]);
    const opt = name === undefined ? undefined : options[name];
    if (name === undefined || !opt || !Object.hasOwn(options, name)) {
      const names = Object.keys(options).map((n) => `--${n}`);
      const near = long ? closest(raw, names) : undefined;
      fail(`unknown option ${raw}${near ? `: did you mean ${near}?` : ''} ${see}`);
      continue;
    }
    // -eNAME=VALUE: a short option's value may follow the letter directly.
    const inline = long ? (eq > 0 ? arg.slice(eq + 1) : undefined) : arg.length > 2 ? arg.slice(2) : undefined;
    const shown = raw === `--${name}` ? raw : `${raw} (--${name})`;
    given.push({ name, raw });
    if (opt.type === 'boolean') {
      if (inline !== undefined) fail(`${shown} takes no value ${see}`);
      else if (values[name] !== undefined && !opt.multiple) fail(`${shown} was given more than once: give it once ${see}`);
      values[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      // A value may start with a dash ("-" for stdin, "-5s"), but not be another option.
      const isOption = next !== undefined && (next.startsWith('--') || (/^-[A-Za-z]$/.test(next) && shortName(next[1]) !== undefined));
      if (next !== undefined && !isOption) {
        value = next;
        i++;
      }
    }
    if (value === undefined || value === '') {
      fail(`${shown} needs a value ${see}`);
      continue;
    }
    if (opt.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), value];
    else if (values[name] !== undefined) fail(`${shown} was given more than once: give it once ${see}`);
    else values[name] = value;
  }

  // Asking for help beats any mistake made beside it.
  if (values.help) {
    process.stdout.write(spec.usage);
    return undefined;
  }
  if (errors.length > 0) throw new UsageError(errors[0]);
  if (spec.version && values.version) {
    process.stdout.write(versionText(spec.version));
    return undefined;
  }
  checkPositionals(spec, positionals, see);
  delete values.help;
  delete values.version;
  return { values: values as Values<O>, positionals, rest, extra, given };
}

function checkPositionals<O extends OptionSpecs>(spec: CommandSpec<O>, positionals: string[], see: string): void {
  const allowed = spec.positionals;
  if (!allowed) {
    if (positionals.length === 0) return;
    const word = positionals[0];
    const hint = spec.strayHint?.(word);
    throw new UsageError(`${spec.name} takes no argument "${word}"${hint ? `: ${hint}` : ''} ${see}`);
  }
  const first = positionals[0];
  if (first !== undefined && allowed.known && !allowed.known.includes(first)) {
    const near = closest(first, allowed.known);
    throw new UsageError(
      `${spec.name}: unknown command "${first}"${near ? `: did you mean ${near}?` : `: use ${allowed.known.join(', ')}`} ${see}`,
    );
  }
  if (allowed.max !== undefined && positionals.length > allowed.max)
    throw new UsageError(
      `${spec.name} takes ${allowed.max === 0 ? 'no arguments' : `at most ${allowed.max}`}, got "${positionals.join(' ')}" ${see}`,
    );
}

/** A flag whose value must be an http(s) URL. The URL is never repeated: it usually carries a signature. */
export function checkHttpUrl(url: string, flag: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) throw new UsageError(`${flag} is not an http(s) URL`);
  return url;
}
