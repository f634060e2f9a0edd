/**
 * Kubernetes names and labels for an app's objects. Object names are
 * DNS-1123 labels (a Job's name becomes its pods' `job-name` label, at most
 * 63 characters), so the app name leaves room for the longest suffix,
 * `-release-<10 hex>`.
 */
import { UsageError, UserError } from '../../shared/errors.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_APP_NAME = 40;

export function checkKubeAppName(name: string, flag: string): string {
  if (name.length > MAX_APP_NAME || !DNS_LABEL.test(name)) {
    throw new UsageError(
      `${flag} "${name}" cannot name Kubernetes objects: use at most ${MAX_APP_NAME} lowercase letters, digits and -, starting and ending with a letter or digit`,
    );
  }
  return name;
}

export function checkNamespace(name: string): string {
  if (name.length > 63 || !DNS_LABEL.test(name))
    throw new UsageError(`--namespace "${name}" is not a namespace name: use lowercase letters, digits and -`);
  return name;
}

/** A Secret name the operator gives: a DNS subdomain. */
export function checkSecretName(name: string, flag: string): string {
  if (name.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name))
    throw new UsageError(`${flag} "${name}" is not a Secret name: use lowercase letters, digits, - and .`);
  return name;
}

/** A process type as part of an object and container name; Procfile allows `_` and capitals, Kubernetes does not. */
export function processTypeName(app: string, type: string): string {
  if (!DNS_LABEL.test(type) || app.length + 1 + type.length > 63) {
    throw new UserError(
      `process type "${type}" cannot name a Kubernetes Deployment: rename it in the Procfile to lowercase letters, digits and - (at most ${62 - app.length} characters)`,
    );
  }
  return type;
}

/** The recommended labels, plus the stage that `kubectl apply -l` selects on. */
export function appLabels(app: string, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': app,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/managed-by': 'slugkit',
  };
}

/** Objects to apply, and wait for, before the Deployments change: the release Job and what it reads. */
export const STAGE_LABEL = 'slugkit.dev/stage';
