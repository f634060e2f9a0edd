/**
 * Platforms (`--platform OS/ARCH[/VARIANT]`) and picking one manifest out of
 * an image index. Without a flag an index resolves to linux/amd64.
 */
import { UsageError, UserError } from '../../shared/errors.js';
import type { Descriptor, ImageConfig, Platform } from './blobs.js';

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new UsageError(`--platform ${text} is not OS/ARCH[/VARIANT] (e.g. linux/amd64 or linux/arm64/v8)`);
  }
  return { os: parts[0], architecture: parts[1], variant: parts[2] };
}

export function formatPlatform(p: { os?: string; architecture?: string; variant?: string }): string {
  return [p.os ?? '?', p.architecture ?? '?', p.variant].filter(Boolean).join('/');
}

function matches(candidate: Partial<Platform> | undefined, wanted: Platform): boolean {
  if (!candidate) return false;
  if (candidate.os !== wanted.os || candidate.architecture !== wanted.architecture) return false;
  // No variant asked for: any variant of the architecture will do.
  return !wanted.variant || candidate.variant === wanted.variant;
}

/** The index entry for `wanted`, or a clear error listing what the index has. */
export function selectManifest(manifests: Descriptor[], wanted: Platform, what: string): Descriptor {
  const hit = manifests.find((m) => matches(m.platform, wanted));
  if (hit) return hit;
  const offered = manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ');
  throw new UserError(`${what} has no ${formatPlatform(wanted)} image (it has: ${offered || 'nothing'}): choose one with --platform`);
}

/** A single-platform image must match an explicit --platform. */
export function checkConfigPlatform(config: ImageConfig, wanted: Platform | undefined, what: string): void {
  if (!wanted) return;
  if (!matches(config, wanted)) {
    throw new UserError(
      `${what} is ${formatPlatform(config)}, not ${formatPlatform(wanted)}: pick a run image for that platform or drop --platform`,
    );
  }
}
