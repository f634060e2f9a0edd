/**
 * `slugbuilder rebase IMAGE --run-image NEW [--image OUT]`: the command-line
 * side of image/rebase.ts. Errors and exit codes are shared/cli-run's, like
 * the build's.
 */
import { parseCommand } from '../../shared/command.js';
import { UsageError } from '../../shared/errors.js';
import { parsePlatform } from '../image/platform.js';
import { rebaseImage } from '../image/rebase.js';
import { parseReference } from '../image/reference.js';
import { parseMirror } from '../image/registry.js';

export const REBASE_USAGE = `Usage: slugbuilder rebase IMAGE --run-image NEW [--image OUT] [--platform OS/ARCH] [--insecure-registry HOST]... [--registry-mirror HOST]...
  IMAGE and NEW: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, docker://HOST/NAME:TAG or a Docker name (heroku/heroku:24)
  OUT defaults to IMAGE. The new image digest is printed on stdout.
`;

const REBASE = {
  name: 'slugbuilder rebase',
  usage: REBASE_USAGE,
  options: {
    'run-image': { type: 'string' },
    image: { type: 'string' },
    platform: { type: 'string' },
    'insecure-registry': { type: 'string', multiple: true },
    'registry-mirror': { type: 'string', multiple: true },
  },
  positionals: {},
} as const;

/** argv after the word "rebase"; returns the exit code, throws UserError for runCli to print. */
export async function rebaseCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(REBASE, args);
  if (!parsed) return 0;
  const { values: v, positionals } = parsed;
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0 ? 'rebase needs the IMAGE to rebase' : `rebase takes one IMAGE, got ${positionals.join(' ')}`,
    );
  if (!v['run-image']) throw new UsageError('rebase needs --run-image NEW');
  for (const mirror of v['registry-mirror'] ?? []) parseMirror(mirror);
  const result = await rebaseImage({
    image: parseReference(positionals[0]),
    runImage: parseReference(v['run-image']),
    output: v.image ? parseReference(v.image) : undefined,
    platform: v.platform ? parsePlatform(v.platform) : undefined,
    insecureRegistries: v['insecure-registry'] ?? [],
    registryMirrors: v['registry-mirror'] ?? [],
  });
  process.stdout.write(result.digest + '\n');
  return 0;
}
