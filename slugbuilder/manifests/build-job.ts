/**
 * A build as a Kubernetes Job running the slugbuilder image: the source from
 * TAR_URL, the slug to PUT_URL, or an image to a registry, and its --summary
 * to SUMMARY_URL. The URLs are presigned, so they live in a Secret the Job
 * reads, never in the pod spec.
 *
 * An image build runs in two steps: `build` (an init container) runs the
 * buildpacks, which run the app's own code, and writes the image to an OCI
 * layout in a shared emptyDir; `push` copies it to the registry. Only `push`
 * mounts the registry credentials, so nothing a buildpack runs can read them.
 */
import type { IJob } from 'kubernetes-models/batch/v1';
import type { IContainer, IEnvVar, ISecret } from 'kubernetes-models/v1';
import { shortHash } from './app.js';
import { appLabels } from './names.js';
import { POD_SECURITY, restrictedContainer, type Scratch, scratchMounts, scratchVolumes } from './pod-security.js';

export interface BuildJobOptions {
  app: string;
  namespace?: string;
  builderImage: string;
  tarUrl: string;
  /** Slug mode: where the slug is PUT. */
  putUrl?: string;
  /** Where the build PUTs its --summary (read back by `manifests --summary URL`). */
  summaryUrl?: string;
  /** Image mode: the registry target, its run image and the dockerconfigjson Secret that may push there. */
  image?: { target: string; runImage: string; registrySecret: string };
  cacheUrl?: string;
  cachePutUrl?: string;
  buildpacks: string[];
  configSecret: string;
  sourceVersion?: string;
  deadlineSeconds: number;
}

/** Where the image build leaves its OCI layout for the push step. */
export const WORKSPACE = '/workspace';
/** Where the config-vars Secret is mounted: one file per variable, which is an ENV_DIR. */
export const CONFIG_VARS_DIR = '/etc/slugkit/config-vars';
/** Where the push step finds the registry credentials (DOCKER_CONFIG). */
export const REGISTRY_CONFIG_DIR = '/etc/slugkit/registry';
const FINISHED_JOB_TTL = 86_400;

export function renderBuildJob(opts: BuildJobOptions): [ISecret, IJob] {
  // A Job's name is fixed once created: one per source, so each build is its own Job.
  const name = `${opts.app}-build-${shortHash(opts.tarUrl)}`;
  const meta = (labels: Record<string, string>) => ({ name, ...(opts.namespace ? { namespace: opts.namespace } : {}), labels });
  const labels = appLabels(opts.app, 'build');

  const urls: Record<string, string> = { TAR_URL: opts.tarUrl };
  if (opts.putUrl) urls.PUT_URL = opts.putUrl;
  if (opts.summaryUrl) urls.SUMMARY_URL = opts.summaryUrl;
  if (opts.cacheUrl) urls.CACHE_URL = opts.cacheUrl;
  if (opts.cachePutUrl) urls.CACHE_PUT_URL = opts.cachePutUrl;
  const secret: ISecret = { apiVersion: 'v1', kind: 'Secret', metadata: meta(labels), type: 'Opaque', stringData: urls };

  const env: IEnvVar[] = [
    ...Object.keys(urls).map((key) => ({ name: key, valueFrom: { secretKeyRef: { name, key } } })),
    { name: 'ENV_DIR', value: CONFIG_VARS_DIR },
    ...(opts.sourceVersion ? [{ name: 'SOURCE_VERSION', value: opts.sourceVersion }] : []),
  ];
  const buildArgs = [
    '--app',
    opts.app,
    ...opts.buildpacks.flatMap((bp) => ['--buildpack', bp]),
    // Kubernetes expands $(SUMMARY_URL) from the container's env: the presigned URL stays out of the pod spec.
    ...(opts.summaryUrl ? ['--summary', '$(SUMMARY_URL)'] : []),
  ];
  const buildScratch: Scratch[] = [
    { name: 'tmp', mountPath: '/tmp' },
    { name: 'cache', mountPath: '/cache' },
  ];
  const configMount = { name: 'config-vars', mountPath: CONFIG_VARS_DIR, readOnly: true };

  const containers: IContainer[] = [];
  const initContainers: IContainer[] = [];
  if (opts.image) {
    const layout = `oci:${WORKSPACE}/image`;
    initContainers.push(
      restrictedContainer({
        name: 'build',
        image: opts.builderImage,
        args: [...buildArgs, '--run-image', opts.image.runImage, '--image', layout],
        env,
        volumeMounts: [...scratchMounts(buildScratch), { name: 'workspace', mountPath: WORKSPACE }, configMount],
      }),
    );
    // Over the same run image, rebase copies the image as it is; the run image is read again with the push credentials.
    containers.push(
      restrictedContainer({
        name: 'push',
        image: opts.builderImage,
        args: ['rebase', layout, '--run-image', opts.image.runImage, '--image', opts.image.target],
        env: [{ name: 'DOCKER_CONFIG', value: REGISTRY_CONFIG_DIR }],
        volumeMounts: [
          { name: 'push-tmp', mountPath: '/tmp' },
          { name: 'workspace', mountPath: WORKSPACE, readOnly: true },
          { name: 'registry', mountPath: REGISTRY_CONFIG_DIR, readOnly: true },
        ],
      }),
    );
  } else {
    containers.push(
      restrictedContainer({
        name: 'build',
        image: opts.builderImage,
        args: buildArgs,
        env,
        volumeMounts: [...scratchMounts(buildScratch), configMount],
      }),
    );
  }

  const job: IJob = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(labels),
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: opts.deadlineSeconds,
      ttlSecondsAfterFinished: FINISHED_JOB_TTL,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: POD_SECURITY,
          ...(initContainers.length ? { initContainers } : {}),
          containers,
          volumes: [
            ...scratchVolumes(
              opts.image
                ? [...buildScratch, { name: 'workspace', mountPath: WORKSPACE }, { name: 'push-tmp', mountPath: '/tmp' }]
                : buildScratch,
            ),
            // Absent when the app has no config vars yet: the build runs with none.
            { name: 'config-vars', secret: { secretName: opts.configSecret, optional: true } },
            ...(opts.image
              ? [
                  {
                    name: 'registry',
                    secret: { secretName: opts.image.registrySecret, items: [{ key: '.dockerconfigjson', path: 'config.json' }] },
                  },
                ]
              : []),
          ],
        },
      },
    },
  };
  return [secret, job];
}
