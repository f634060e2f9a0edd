/**
 * `slugbuilder rebase IMAGE --run-image NEW [--image OUT]`: the command-line
 * side of image/rebase.ts. Errors and exit codes are shared/cli-run's, like
 * the build's.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../../shared/errors.js';
import { parsePlatform } from '../image/platform.js';
import { rebaseImage } from '../image/rebase.js';
import { parseReference } from '../image/reference.js';
import { parseMirror } from '../image/registry.js';

export const REBASE_USAGE = `usage: slugbuilder rebase IMAGE --run-image NEW [--image OUT] [--platform OS/ARCH] [--insecure-registry HOST]... [--registry-mirror HOST]...
  IMAGE and NEW: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, docker://HOST/NAME:TAG or a Docker name (heroku/heroku:24)
  OUT defaults to IMAGE. The new image digest is printed on stdout.
`;

/** argv after the word "rebase"; returns the exit code, throws UserError for runCli to print. */
export async function rebaseCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        'run-image': { type: 'string' },
        image: { type: 'string' },
        platform: { type: 'string' },
        'insecure-registry': { type: 'string', multiple: true },
        'registry-mirror': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} (see slugbuilder rebase --help)`);
  }
  const v = parsed.values;
  if (v.help) {
    process.stderr.write(REBASE_USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1)
    throw new UsageError(
      parsed.positionals.length === 0 ? 'rebase needs the IMAGE to rebase' : `rebase takes one IMAGE, got ${parsed.positionals.join(' ')}`,
    );
  if (!v['run-image']) throw new UsageError('rebase needs --run-image NEW');
  for (const mirror of v['registry-mirror'] ?? []) parseMirror(mirror);
  const result = await rebaseImage({
    image: parseReference(parsed.positionals[0]),
    runImage: parseReference(v['run-image']),
    output: v.image ? parseReference(v.image) : undefined,
    platform: v.platform ? parsePlatform(v.platform) : undefined,
    insecureRegistries: v['insecure-registry'] ?? [],
    registryMirrors: v['registry-mirror'] ?? [],
  });
  process.stdout.write(result.digest + '\n');
  return 0;
}
