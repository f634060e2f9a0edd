/**
 * An app's Kubernetes objects, from a build's --summary: one Deployment per
 * process type, a Service for `web`, and the release phase as a Job that is
 * applied (and waited for) before the Deployments change, as Heroku runs its
 * release phase before a new release takes traffic. Plain data in, plain
 * objects out, in a fixed order: the same input gives the same bytes.
 */
import { createHash } from 'node:crypto';
import type { IDeployment } from 'kubernetes-models/apps/v1';
import type { IJob } from 'kubernetes-models/batch/v1';
import type { IContainer, IEnvVar, IPodSpec, IProbe, ISecret, IService } from 'kubernetes-models/v1';
import { UsageError } from '../../shared/errors.js';
import type { ProcessTypes } from '../../shared/procfile.js';
import { appLabels, processTypeName, STAGE_LABEL } from './names.js';
import { POD_SECURITY, restrictedContainer, type Scratch, scratchMounts, scratchVolumes } from './pod-security.js';

/** The parts of slugbuilder's --summary JSON the manifests use. */
export interface BuildSummary {
  slug: { sha256: string };
  process_types: ProcessTypes;
  source_version?: string | null;
  image?: { reference: string; digest: string };
}

export interface AppManifestOptions {
  app: string;
  namespace?: string;
  summary: BuildSummary;
  /** Replicas per process type; unnamed types get Heroku's defaults (web 1, others 0). */
  replicas: Record<string, number>;
  /** `--image`: the repository the image was pushed to (the summary's digest is used), or REPOSITORY@DIGEST. */
  imageRepository?: string;
  runnerImage: string;
  /** Where the runner fetches the slug when the build pushed no image. */
  slugUrl?: string;
  configSecret: string;
  port: number;
  /** slugrunner's --grace; the Pod's grace is a little longer so the runner itself can exit. */
  graceSeconds: number;
  releaseTimeoutSeconds: number;
}

export type KubeObject = ISecret | IJob | IDeployment | IService;

/** Time the runner needs after its process is killed to report and exit. */
const RUNNER_EXIT_SECONDS = 5;
/** Finished release Jobs stay a day for `kubectl logs`, then go. */
const FINISHED_JOB_TTL = 86_400;

/** `docker://host/name:tag` or `host/name@sha256:...` -> `host/name`. */
export function repositoryOf(reference: string): string {
  const bare = reference.replace(/^docker:\/\//, '').replace(/@.*$/, '');
  const slash = bare.lastIndexOf('/');
  const colon = bare.lastIndexOf(':');
  return colon > slash ? bare.slice(0, colon) : bare;
}

function appImage(opts: AppManifestOptions): { image: string; id: string } | undefined {
  const given = opts.imageRepository?.replace(/^docker:\/\//, '');
  const idOf = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 10);
  if (given?.includes('@')) return { image: given, id: idOf(given.slice(given.indexOf('@') + 1)) };
  const built = opts.summary.image;
  if (!built) {
    if (given) throw new UsageError(`--image ${given} has no digest and the build made no image: give --image REPOSITORY@sha256:...`);
    return undefined;
  }
  if (!given && !/^docker:\/\//.test(built.reference)) {
    throw new UsageError(
      `the build wrote its image to ${built.reference}, not to a registry: pass --image REPOSITORY (or REPOSITORY@DIGEST), where it was pushed`,
    );
  }
  return { image: `${repositoryOf(given ?? built.reference)}@${built.digest}`, id: idOf(built.digest) };
}

/** What every object of one release shares. */
interface Release {
  opts: AppManifestOptions;
  /** The process types, sorted. */
  types: string[];
  /** The pushed image, if the build made one. */
  built?: { image: string; id: string };
  /** The release's short id: the image's digest, else the slug's sha256. */
  id: string;
  /** The Secret holding SLUG_URL, when the runner fetches a slug. */
  slugSecret?: string;
  /** Writable dirs of the read-only container. */
  scratch: Scratch[];
  annotations: Record<string, string>;
}

export function renderAppManifests(opts: AppManifestOptions): KubeObject[] {
  const release = releaseOf(opts);
  return [
    ...slugSecret(release),
    ...releaseJob(release),
    ...release.types.filter((t) => t !== 'release').map((type) => deployment(release, type)),
    ...webService(release),
  ];
}

/** Checks the options against the build and settles what every object shares. */
function releaseOf(opts: AppManifestOptions): Release {
  const types = Object.keys(opts.summary.process_types).sort();
  for (const type of types) processTypeName(opts.app, type);
  for (const type of Object.keys(opts.replicas)) {
    if (!types.includes(type) || type === 'release') {
      throw new UsageError(
        `--replicas names "${type}", which is not a process type of this build: it has ${types.filter((t) => t !== 'release').join(', ') || 'none'}`,
      );
    }
  }
  const built = appImage(opts);
  if (!built && !opts.slugUrl)
    throw new UsageError('the build pushed no image: pass --slug-url URL (or SLUG_URL), where the runner fetches the slug');
  const id = built?.id ?? opts.summary.slug.sha256.slice(0, 10);
  return {
    opts,
    types,
    built,
    id,
    ...(built ? {} : { slugSecret: `${opts.app}-slug-${id}` }),
    // The runner unpacks the slug into /app at start when there is no image; an image holds /app read-only.
    scratch: [...(built ? [] : [{ name: 'app', mountPath: '/app' }]), { name: 'tmp', mountPath: '/tmp' }],
    annotations: {
      'slugkit.dev/release': id,
      ...(opts.summary.source_version ? { 'slugkit.dev/source-version': opts.summary.source_version } : {}),
    },
  };
}

function meta(r: Release, name: string, labels: Record<string, string>) {
  return { name, ...(r.opts.namespace ? { namespace: r.opts.namespace } : {}), labels };
}

/** The slug URL may be presigned: it is read from a Secret, never shown in a pod spec. */
function slugSecret(r: Release): ISecret[] {
  if (!r.slugSecret) return [];
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta(r, r.slugSecret, { ...appLabels(r.opts.app, 'slug'), [STAGE_LABEL]: 'release' }),
      type: 'Opaque',
      stringData: { SLUG_URL: r.opts.slugUrl! },
    },
  ];
}

/** The runner's container for one process type. */
function container(r: Release, type: string, extra: Partial<IContainer> = {}): IContainer {
  const env: IEnvVar[] = r.slugSecret ? [{ name: 'SLUG_URL', valueFrom: { secretKeyRef: { name: r.slugSecret, key: 'SLUG_URL' } } }] : [];
  return restrictedContainer({
    name: type,
    image: r.built?.image ?? r.opts.runnerImage,
    args: ['--grace', `${r.opts.graceSeconds}s`, 'start', type],
    envFrom: [{ secretRef: { name: r.opts.configSecret, optional: true } }],
    env: [...env, ...(extra.env ?? [])],
    ...(extra.ports ? { ports: extra.ports } : {}),
    ...(extra.startupProbe
      ? { startupProbe: extra.startupProbe, readinessProbe: extra.readinessProbe, livenessProbe: extra.livenessProbe }
      : {}),
    volumeMounts: scratchMounts(r.scratch),
  });
}

function podSpec(r: Release, c: IContainer, restartPolicy?: 'Never'): IPodSpec {
  return {
    ...(restartPolicy ? { restartPolicy } : {}),
    // The app needs no Kubernetes API token, nor docker-link-style *_SERVICE_HOST variables beside its config vars.
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: r.opts.graceSeconds + RUNNER_EXIT_SECONDS,
    securityContext: POD_SECURITY,
    containers: [c],
    volumes: scratchVolumes(r.scratch),
  };
}

/** The release phase, run once to completion before the Deployments change. */
function releaseJob(r: Release): IJob[] {
  if (!r.types.includes('release')) return [];
  const { app } = r.opts;
  const labels = { ...appLabels(app, 'release'), [STAGE_LABEL]: 'release' };
  return [
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { ...meta(r, `${app}-release-${r.id}`, labels), annotations: r.annotations },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: r.opts.releaseTimeoutSeconds,
        ttlSecondsAfterFinished: FINISHED_JOB_TTL,
        template: {
          metadata: { labels: appLabels(app, 'release'), annotations: r.annotations },
          spec: podSpec(r, container(r, 'release'), 'Never'),
        },
      },
    },
  ];
}

function tcp(period: number, failures: number): IProbe {
  return { tcpSocket: { port: 'http' }, periodSeconds: period, failureThreshold: failures };
}

function deployment(r: Release, type: string): IDeployment {
  const { app, port } = r.opts;
  const labels = appLabels(app, type);
  const web = type === 'web';
  const c = web
    ? container(r, type, {
        env: [{ name: 'PORT', value: String(port) }],
        ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
        // Up to two minutes to fetch and unpack the slug and boot; then it must keep accepting connections.
        startupProbe: tcp(2, 60),
        readinessProbe: tcp(5, 1),
        livenessProbe: tcp(10, 3),
      })
    : container(r, type);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(r, `${app}-${type}`, labels),
    spec: {
      replicas: r.opts.replicas[type] ?? (web ? 1 : 0),
      selector: { matchLabels: { 'app.kubernetes.io/name': app, 'app.kubernetes.io/component': type } },
      template: { metadata: { labels, annotations: r.annotations }, spec: podSpec(r, c) },
    },
  };
}

function webService(r: Release): IService[] {
  if (!r.types.includes('web')) return [];
  const { app } = r.opts;
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(r, `${app}-web`, appLabels(app, 'web')),
      spec: {
        type: 'ClusterIP',
        selector: { 'app.kubernetes.io/name': app, 'app.kubernetes.io/component': 'web' },
        ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
      },
    },
  ];
}

/** A short, stable id for a value (a Job's name from its source URL). */
export function shortHash(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 10);
}
