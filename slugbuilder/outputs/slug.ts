/**
 * Where a finished slug goes: `-o FILE`, stdout, or a streamed PUT. Each kind
 * reads its flags and checks its target before the build; its Output
 * (deliver.ts) is staged after it, and committed once every output staged.
 */
import { createReadStream } from 'node:fs';
import { checkHttpUrl } from '../../shared/command.js';
import { errnoCode, UsageError, UserError } from '../../shared/errors.js';
import { checkWritableTarget, copyToStdout, stageCopy, stageFile } from '../../shared/fs.js';
import { displayUrl, upload } from '../../shared/http.js';
import { log } from '../../shared/log.js';
import type { SlugInfo } from '../slug-parts.js';
import type { Output, OutputKind, ParseContext } from './deliver.js';

export const SLUG_OPTIONS = {
  output: { type: 'string', short: 'o' },
  'put-url': { type: 'string' },
} as const;

export const SLUG_USAGE = `  -o, --output FILE        write the slug to FILE
  --put-url URL            upload the slug with HTTP PUT (env PUT_URL)
`;

interface SlugValues {
  output?: string;
  'put-url'?: string;
  /** --image takes the slug's place as the build's product: no stdout then. */
  image?: string;
}

/** --put-url, else PUT_URL: read here only. */
export const putUrlOf = (v: SlugValues, env: NodeJS.ProcessEnv) => v['put-url'] ?? (env.PUT_URL || undefined);
const noCheck = async () => undefined;

/** `--put-url URL` (or PUT_URL). */
export const putKind: OutputKind<SlugValues> = {
  parse(v, { env }) {
    const url = putUrlOf(v, env);
    if (!url) return undefined;
    checkHttpUrl(url, '--put-url (or PUT_URL)');
    return { flag: '--put-url', check: noCheck, outputs: () => [putOutput(url)] };
  },
};

/** stdout: the slug's default place, when no other output takes the slug (--layer alone does not). */
export const stdoutKind: OutputKind<SlugValues> = {
  parse(v, ctx: ParseContext) {
    if (ctx.fromSlug || v.output || putUrlOf(v, ctx.env) || v.image) return undefined;
    if (process.stdout.isTTY) throw new UsageError('refusing to write a slug to a terminal: redirect stdout or use -o FILE');
    return { flag: 'stdout', check: noCheck, outputs: () => [stdoutOutput()] };
  },
};

/** `-o FILE`: a regular file replaced by rename, or a device, FIFO or socket written into. */
export const fileKind: OutputKind<SlugValues> = {
  parse(v) {
    const named = v.output;
    if (named === undefined) return undefined;
    return {
      flag: '-o',
      check: async () => void (await checkWritableTarget(named, '-o')),
      outputs: () => [fileOutput(named)],
    };
  },
};

export const slugEntry = (slug: SlugInfo, path: string | null) => ({ slug: { path, size: slug.size, sha256: slug.sha256 } });

/** `-o FILE`: the slug, put in place by rename (or written into a device or FIFO). */
export function fileOutput(named: string): Output {
  return async ({ slug }) => {
    const staged = await stageFile(named, 'the slug');
    try {
      await stageCopy(slug.path, staged);
    } catch (err) {
      await staged.discard();
      throw new UserError(`cannot write the slug to ${named}: ${errnoCode(err) ?? err}`);
    }
    return { summary: slugEntry(slug, staged.target), irreversible: staged.inPlace, commit: staged.commit, discard: staged.discard };
  };
}

export function stdoutOutput(): Output {
  return async ({ slug }) => ({
    summary: slugEntry(slug, null),
    irreversible: true,
    commit: () => copyToStdout(slug.path),
    discard: async () => undefined,
  });
}

export function putOutput(url: string): Output {
  return async ({ slug }) => ({
    summary: slugEntry(slug, null),
    irreversible: true,
    commit: async () => {
      log.step(`Uploading slug to ${displayUrl(url)}`);
      await upload(url, () => createReadStream(slug.path), slug.size, 'PUT_URL');
      log.info('Upload complete');
    },
    discard: async () => undefined,
  });
}
