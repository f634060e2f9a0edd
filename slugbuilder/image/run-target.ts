/**
 * The CNB target a build describes is the run image's, as the lifecycle
 * takes it: the config's os/architecture/variant, the distro from the labels
 * io.buildpacks.base.distro.name/version, else from the image's own
 * os-release (read from its layers, top down, only for an image on this
 * machine: a registry image's layers are not downloaded just for this).
 */
import type { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { log } from '../../shared/log.js';
import type { BuildTarget } from '../buildpacks/cnb/detect.js';
import { parseOsRelease } from '../buildpacks/cnb/detect.js';
import type { SourceImage } from './image-source.js';

export const DISTRO_NAME_LABEL = 'io.buildpacks.base.distro.name';
export const DISTRO_VERSION_LABEL = 'io.buildpacks.base.distro.version';

const OS_RELEASE = ['etc/os-release', 'usr/lib/os-release'];
/** os-release is a few hundred bytes; anything bigger is not one. */
const MAX_OS_RELEASE = 64 * 1024;

/** The first regular os-release file in one layer blob (gzip or not), etc/ before usr/lib/. */
async function osReleaseIn(blob: Readable): Promise<string | undefined> {
  const found = new Map<string, string>();
  const parser = new Parser({
    onReadEntry: (e: ReadEntry) => {
      const name = e.path.replace(/^\.?\//, '');
      if (e.type !== 'File' || !OS_RELEASE.includes(name) || (e.size ?? 0) > MAX_OS_RELEASE) {
        e.resume();
        return;
      }
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () => found.set(name, Buffer.concat(chunks).toString('utf8')));
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    blob.on('error', reject);
    blob.pipe(parser);
  });
  return OS_RELEASE.map((n) => found.get(n)).find((t) => t !== undefined);
}

async function distroFromLayers(run: SourceImage): Promise<BuildTarget['distro']> {
  if (run.registry) return undefined;
  for (const layer of [...run.manifest.layers].reverse()) {
    const text = await osReleaseIn(await run.openBlob(layer));
    if (text !== undefined) return parseOsRelease(text);
  }
  return undefined;
}

/** The target to build for: the run image's, with its distro when the labels or its os-release say. */
export async function runImageTarget(run: SourceImage): Promise<Partial<BuildTarget>> {
  const labels = run.config.config?.Labels ?? {};
  const name = labels[DISTRO_NAME_LABEL];
  let distro: BuildTarget['distro'] = name ? { name, version: labels[DISTRO_VERSION_LABEL] ?? '' } : undefined;
  let from = 'labels';
  if (!distro) {
    distro = await distroFromLayers(run).catch(() => undefined);
    from = 'os-release';
  }
  const target = { os: run.config.os, arch: run.config.architecture, variant: run.config.variant, distro };
  const shown = `${target.os}/${target.arch}${target.variant ? `/${target.variant}` : ''}`;
  log.info(
    `Target: ${shown}${distro ? ` (${[distro.name, distro.version].filter(Boolean).join(' ')}, from its ${from})` : ', no distro known'}`,
  );
  return target;
}
