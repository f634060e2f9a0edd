/**
 * `slugbuilder manifests`: Kubernetes YAML on stdout, for an app from a
 * build's --summary, or (`manifests build`) for a build as a Job. The command
 * only renders: applying is kubectl's (docs/kubernetes.md).
 */
import { parseCommand } from '../../shared/command.js';
import { UsageError } from '../../shared/errors.js';
import { isHttpUrl } from '../../shared/http.js';
import { parseDuration } from '../../shared/units.js';
import { renderAppManifests } from '../manifests/app.js';
import { renderBuildJob } from '../manifests/build-job.js';
import { checkKubeAppName, checkNamespace, checkSecretName } from '../manifests/names.js';
import { readSummary } from '../manifests/summary-source.js';
import { toYamlStream } from '../manifests/yaml.js';

export const DEFAULT_RUNNER_IMAGE = 'slugrunner:latest';
export const DEFAULT_BUILDER_IMAGE = 'slugbuilder:latest';

export const MANIFESTS_USAGE = `Usage: slugbuilder manifests --summary FILE|URL --app NAME [options] > app.yaml
       slugbuilder manifests build --app NAME --tar-url URL (--put-url URL | --image REF --run-image REF --registry-secret NAME) [options] > build.yaml

An app (from a build's --summary): a Deployment per process type, a Service for web,
the release phase as a Job to apply and wait for first (label slugkit.dev/stage=release).
  --namespace NS           put every object in NS
  --replicas T=N,...       replicas per process type (default web=1, others 0, as on Heroku)
  --image REPO[@DIGEST]    where the build's image was pushed (default: the summary's image)
  --runner-image REF       without an image: the slugrunner image (default ${DEFAULT_RUNNER_IMAGE})
  --slug-url URL           without an image: where the runner fetches the slug (env SLUG_URL)
  --config-secret NAME     the Secret holding the config vars (default NAME-config)
  --port N                 PORT for web (default 5000)
  --grace DURATION         slugrunner's stop grace (default 30s); the Pod's is 5s longer
  --release-timeout DURATION  longest release phase (default 30m)
A build (the slugbuilder image as a Job):
  --tar-url URL            the source tarball (env TAR_URL)
  --put-url URL            where the slug goes (env PUT_URL), or:
  --image REF --run-image REF --registry-secret NAME
                           push an image (docker://HOST/NAME:TAG) with the credentials of a
                           kubernetes.io/dockerconfigjson Secret, mounted only into the push step
  --summary-url URL        where the Job PUTs its --summary, for manifests --summary URL (env SUMMARY_URL)
  --cache-url URL          the build cache in object storage (env CACHE_URL); --cache-put-url URL
  --buildpack URL          repeatable; --builder-image REF (default ${DEFAULT_BUILDER_IMAGE})
  --config-secret NAME     config vars for the build's ENV_DIR (default NAME-config)
  --source-version REV     SOURCE_VERSION; --deadline DURATION (default 30m)
`;

const OPTIONS = {
  summary: { type: 'string' },
  app: { type: 'string' },
  namespace: { type: 'string' },
  replicas: { type: 'string' },
  image: { type: 'string' },
  'runner-image': { type: 'string' },
  'slug-url': { type: 'string' },
  'config-secret': { type: 'string' },
  port: { type: 'string' },
  grace: { type: 'string' },
  'release-timeout': { type: 'string' },
  'tar-url': { type: 'string' },
  'put-url': { type: 'string' },
  'summary-url': { type: 'string' },
  'run-image': { type: 'string' },
  'registry-secret': { type: 'string' },
  'cache-url': { type: 'string' },
  'cache-put-url': { type: 'string' },
  buildpack: { type: 'string', multiple: true },
  'builder-image': { type: 'string' },
  'source-version': { type: 'string' },
  deadline: { type: 'string' },
} as const;

const MANIFESTS = {
  name: 'slugbuilder manifests',
  usage: MANIFESTS_USAGE,
  options: OPTIONS,
  positionals: { known: ['build'], max: 1 },
} as const;

const APP_ONLY = ['summary', 'replicas', 'runner-image', 'slug-url', 'port', 'grace', 'release-timeout'] as const;
const BUILD_ONLY = [
  'tar-url',
  'put-url',
  'summary-url',
  'run-image',
  'registry-secret',
  'cache-url',
  'cache-put-url',
  'buildpack',
  'builder-image',
  'source-version',
  'deadline',
] as const;

function seconds(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value, flag);
  if (ms < 1000) throw new UsageError(`${flag} must be at least 1s`);
  return Math.ceil(ms / 1000);
}

function httpUrl(value: string | undefined, flag: string): string | undefined {
  // Never echoed: presigned URLs carry their signature in the query.
  if (value !== undefined && !isHttpUrl(value)) throw new UsageError(`${flag} is not an http(s) URL`);
  return value;
}

function parseReplicas(spec: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (spec === undefined) return out;
  for (const item of spec.split(',')) {
    const m = /^([^=\s]+)=(\d{1,6})$/.exec(item.trim());
    if (!m) throw new UsageError(`--replicas expects TYPE=N,... (e.g. web=2,worker=1), got "${item}"`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}

export async function manifestsCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand(MANIFESTS, argv);
  if (!parsed) return 0;
  const { values: v, positionals } = parsed;
  const buildMode = positionals[0] === 'build';
  const misplaced = (buildMode ? APP_ONLY : BUILD_ONLY).find((name) => v[name] !== undefined);
  if (misplaced)
    throw new UsageError(
      `--${misplaced} goes with ${buildMode ? 'an app\'s manifests (without "build")' : '"manifests build"'} (see slugbuilder manifests --help)`,
    );
  if (!v.app) throw new UsageError('manifests needs --app NAME: it names every object');
  const app = checkKubeAppName(v.app, '--app');
  const namespace = v.namespace === undefined ? undefined : checkNamespace(v.namespace);
  const configSecret = checkSecretName(v['config-secret'] ?? `${app}-config`, '--config-secret');
  const env = process.env;

  let objects: object[];
  if (buildMode) {
    const tarUrl = httpUrl(v['tar-url'] ?? (env.TAR_URL || undefined), '--tar-url (or TAR_URL)');
    if (!tarUrl) throw new UsageError('manifests build needs --tar-url URL (or TAR_URL): where the Job fetches the source');
    const putUrl = httpUrl(v['put-url'] ?? (env.PUT_URL || undefined), '--put-url (or PUT_URL)');
    const summaryUrl = httpUrl(v['summary-url'] ?? (env.SUMMARY_URL || undefined), '--summary-url (or SUMMARY_URL)');
    const cacheUrl = httpUrl(v['cache-url'] ?? (env.CACHE_URL || undefined), '--cache-url (or CACHE_URL)');
    const cachePutUrl = httpUrl(v['cache-put-url'] ?? (env.CACHE_PUT_URL || undefined), '--cache-put-url (or CACHE_PUT_URL)');
    if (cachePutUrl && !cacheUrl) throw new UsageError('--cache-put-url needs --cache-url, where the cache is fetched from');
    if (putUrl && v.image) throw new UsageError('manifests build takes --put-url (a slug) or --image (an image), not both');
    if (!putUrl && !v.image)
      throw new UsageError('manifests build needs --put-url URL (a slug) or --image REF (an image): where the build goes');
    let image;
    if (v.image) {
      if (!/^docker:\/\/[^/]+\/./.test(v.image))
        throw new UsageError(`--image ${v.image} is not a registry reference: use docker://HOST/NAME:TAG`);
      if (!v['run-image']) throw new UsageError('--image needs --run-image REF: the base the app layer goes on');
      if (!v['registry-secret'])
        throw new UsageError('--image needs --registry-secret NAME: a kubernetes.io/dockerconfigjson Secret that may push there');
      image = { target: v.image, runImage: v['run-image'], registrySecret: checkSecretName(v['registry-secret'], '--registry-secret') };
    } else if (v['run-image'] || v['registry-secret']) {
      throw new UsageError('--run-image and --registry-secret go with --image');
    }
    objects = renderBuildJob({
      app,
      namespace,
      builderImage: v['builder-image'] ?? DEFAULT_BUILDER_IMAGE,
      tarUrl,
      putUrl,
      summaryUrl,
      image,
      cacheUrl,
      cachePutUrl,
      buildpacks: v.buildpack ?? [],
      configSecret,
      sourceVersion: v['source-version'],
      deadlineSeconds: seconds(v.deadline, '--deadline', 1800),
    });
  } else {
    if (!v.summary) throw new UsageError('manifests needs --summary FILE|URL: the JSON a build wrote with slugbuilder --summary');
    const port = v.port === undefined ? 5000 : Number(v.port);
    if (!/^\d+$/.test(v.port ?? '5000') || port < 1 || port > 65535)
      throw new UsageError(`--port expects a port number (1 to 65535), got "${v.port}"`);
    objects = renderAppManifests({
      app,
      namespace,
      summary: await readSummary(v.summary),
      replicas: parseReplicas(v.replicas),
      imageRepository: v.image,
      runnerImage: v['runner-image'] ?? DEFAULT_RUNNER_IMAGE,
      slugUrl: httpUrl(v['slug-url'] ?? (env.SLUG_URL || undefined), '--slug-url (or SLUG_URL)'),
      configSecret,
      port,
      graceSeconds: seconds(v.grace, '--grace', 30),
      releaseTimeoutSeconds: seconds(v['release-timeout'], '--release-timeout', 1800),
    });
  }
  process.stdout.write(toYamlStream(objects));
  return 0;
}
