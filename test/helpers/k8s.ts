/**
 * Checks for rendered Kubernetes manifests, since no API server runs here:
 *  - the Kubernetes OpenAPI schema, through kubernetes-models' validators
 *    (generated from a current release's schema);
 *  - the "restricted" Pod Security Standard, written out below from
 *    https://kubernetes.io/docs/concepts/security/pod-security-standards/,
 *    plus the read-only root filesystem slugkit adds;
 *  - and, for the Docker proof, the `docker run` flags that run a container
 *    the way its Pod spec does.
 */
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { type IContainer, type IPodSpec, Secret, Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';

// biome-ignore lint/suspicious/noExplicitAny: rendered YAML is walked by path in the checks; the product code types it
export type Obj = any;

export function parseStream(text: string): Obj[] {
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length) throw new Error(`bad YAML: ${d.errors[0].message}`);
    return d.toJS();
  });
}

const MODELS: Record<string, new (data: Obj) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'v1/Secret': Secret,
  'v1/Service': Service,
};

/** Throws with the schema's message when `obj` does not match the Kubernetes OpenAPI schema of its kind. */
export function validateSchema(obj: Obj): void {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

export function podSpecOf(obj: Obj): IPodSpec | undefined {
  return obj.spec?.template?.spec;
}

const ALLOWED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

/** The restricted profile's rules (and readOnlyRootFilesystem); returns what breaks them, empty when none. */
export function restrictedViolations(spec: IPodSpec): string[] {
  const out: string[] = [];
  const pod = spec.securityContext ?? {};
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) out.push('host namespaces');
  for (const v of spec.volumes ?? []) {
    const kinds = Object.keys(v).filter((k) => k !== 'name');
    if (!kinds.every((k) => ALLOWED_VOLUMES.includes(k))) out.push(`volume ${v.name}: ${kinds.join(',')}`);
  }
  if (pod.runAsUser === 0) out.push('pod runAsUser 0');
  if (pod.seccompProfile && !['RuntimeDefault', 'Localhost'].includes(pod.seccompProfile.type)) out.push('pod seccomp');
  if ((pod.sysctls ?? []).length) out.push('sysctls');
  for (const c of [...(spec.initContainers ?? []), ...spec.containers] as IContainer[]) {
    const s = c.securityContext ?? {};
    const where = `container ${c.name}`;
    if (s.privileged) out.push(`${where}: privileged`);
    if (s.allowPrivilegeEscalation !== false) out.push(`${where}: allowPrivilegeEscalation is not false`);
    if ((s.runAsNonRoot ?? pod.runAsNonRoot) !== true) out.push(`${where}: runAsNonRoot is not true`);
    if ((s.runAsUser ?? pod.runAsUser) === 0) out.push(`${where}: runAsUser 0`);
    const seccomp = (s.seccompProfile ?? pod.seccompProfile)?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(`${where}: seccompProfile not RuntimeDefault/Localhost`);
    const drop = s.capabilities?.drop ?? [];
    if (!drop.includes('ALL')) out.push(`${where}: capabilities do not drop ALL`);
    const add = s.capabilities?.add ?? [];
    if (add.some((cap) => cap !== 'NET_BIND_SERVICE')) out.push(`${where}: adds ${add.join(',')}`);
    if ((c.ports ?? []).some((p) => p.hostPort)) out.push(`${where}: hostPort`);
    if (s.readOnlyRootFilesystem !== true) out.push(`${where}: root filesystem not read-only`);
    if (s.procMount && s.procMount !== 'Default') out.push(`${where}: procMount`);
  }
  return out;
}

export interface DockerRunPlan {
  args: string[];
  /** Mount paths of the emptyDir volumes, as tmpfs. */
  tmpfs: string[];
}

/**
 * `docker run` flags for one container of a Pod spec, as a kubelet with the
 * restricted profile runs it: read-only root, each emptyDir mounted as a
 * tmpfs (world-writable and exec-able, as an emptyDir is), all capabilities
 * dropped, no new privileges, the runtime's default seccomp profile, a UID
 * the image does not know in group 0, the container's env (Secret references
 * resolved from `secrets`) and its args after the image's entrypoint. The
 * network is the host's: Docker's containers reach a server on 127.0.0.1 only so.
 */
export function dockerRunFor(
  spec: IPodSpec,
  name: string,
  image: string,
  uid: number,
  secrets: Record<string, Record<string, string>>,
  extraEnv: Record<string, string> = {},
): DockerRunPlan {
  const c = [...(spec.initContainers ?? []), ...spec.containers].find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name}`);
  const args = ['--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', `${uid}:0`, '--network', 'host'];
  const tmpfs: string[] = [];
  for (const m of c.volumeMounts ?? []) {
    const vol = spec.volumes?.find((v) => v.name === m.name);
    if (vol?.emptyDir) {
      tmpfs.push(m.mountPath);
      args.push('--tmpfs', `${m.mountPath}:rw,exec,mode=1777`);
    } else if (vol?.secret?.optional && !secrets[vol.secret.secretName ?? '']) {
      // An optional Secret that does not exist is mounted as an empty dir.
      args.push('--tmpfs', `${m.mountPath}:ro`);
    } else if (vol) {
      throw new Error(`volume ${vol.name}: only emptyDir and absent optional Secrets are emulated`);
    }
  }
  for (const from of c.envFrom ?? []) {
    const s = from.secretRef?.name ? secrets[from.secretRef.name] : undefined;
    if (s) for (const [k, v] of Object.entries(s)) args.push('-e', `${k}=${v}`);
    else if (!from.secretRef?.optional) throw new Error(`secret ${from.secretRef?.name} missing`);
  }
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    const value = ref?.name ? secrets[ref.name]?.[ref.key] : e.value;
    if (value === undefined) throw new Error(`env ${e.name}: no value`);
    args.push('-e', `${e.name}=${value}`);
  }
  for (const [k, v] of Object.entries(extraEnv)) args.push('-e', `${k}=${v}`);
  return { args: [...args, image, ...(c.command ?? []), ...(c.args ?? [])], tmpfs };
}
