/**
 * What every Pod slugkit renders shares: the "restricted" Pod Security
 * Standard (non-root with whatever UID the cluster assigns, no privilege
 * escalation, no capabilities, the runtime's seccomp profile) and a read-only
 * root filesystem with an emptyDir exactly where the tools write.
 */
import type { IContainer, IPodSecurityContext, ISecurityContext, IVolume, IVolumeMount } from 'kubernetes-models/v1';

/** runAsNonRoot without runAsUser: the image's numeric USER, or the UID the cluster (OpenShift) picks. */
export const POD_SECURITY: IPodSecurityContext = {
  runAsNonRoot: true,
  seccompProfile: { type: 'RuntimeDefault' },
};

export const CONTAINER_SECURITY: ISecurityContext = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  seccompProfile: { type: 'RuntimeDefault' },
};

/** A writable scratch dir: its volume name and where it is mounted. */
export interface Scratch {
  name: string;
  mountPath: string;
  /** A size cap, e.g. "1Gi": an emptyDir counts against the node's disk. */
  sizeLimit?: string;
}

export function scratchVolumes(dirs: Scratch[]): IVolume[] {
  return dirs.map((d) => ({ name: d.name, emptyDir: d.sizeLimit ? { sizeLimit: d.sizeLimit } : {} }));
}

export function scratchMounts(dirs: Scratch[]): IVolumeMount[] {
  return dirs.map((d) => ({ name: d.name, mountPath: d.mountPath }));
}

/** A container with the restricted security context; fields in a fixed order for stable output. */
export function restrictedContainer(c: Omit<IContainer, 'securityContext'>): IContainer {
  return { ...c, securityContext: CONTAINER_SECURITY };
}
