/**
 * Warnings, once the app is built, about an image that will not start as
 * built: a process whose program is neither on the run image's PATH nor in
 * the app, and Cloud Native Buildpacks that ran at a dir other than /app
 * (the image's app dir), whose recorded absolute paths then point nowhere.
 * Cheap by design: the first word of each command, looked up in the run
 * image's file list (run-image-files.ts) and the app's usual bin dirs.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { LAYERS } from '../../shared/app/layout.js';
import type { AppProcess } from '../../shared/app/processes.js';
import { log } from '../../shared/log.js';
import type { BuildResult } from '../build.js';
import { IMAGE_APP_DIR } from './app-layers.js';
import type { ExportPlan } from './export.js';
import { hasFile, onRunImagePath, type RunImageFiles } from './run-image-files.js';

/** Bin dirs of the app a process's PATH usually gets (buildpacks' .profile.d and launch layers). */
const APP_BIN_DIRS = ['bin', '.heroku/node/bin', '.heroku/python/bin', 'node_modules/.bin', 'vendor/bundle/bin', '.apt/usr/bin'];

/** Words a shell line may start with that are no program to find. */
const SHELL_WORDS = new Set([
  'exec',
  'cd',
  'source',
  '.',
  'export',
  'set',
  'eval',
  'if',
  'for',
  'while',
  'test',
  '[',
  'true',
  'false',
  'echo',
  'printf',
  'trap',
  'ulimit',
  'umask',
  'command',
  'env',
]);

/** The program a process runs first, when it can be told without running anything. */
function firstProgram(proc: AppProcess): string | undefined {
  if ('argv' in proc.start) return proc.start.argv[0];
  for (const word of proc.start.shell.trim().split(/\s+/)) {
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(word)) continue;
    if (!word || /[$`"'(){};&|<>\\*?]/.test(word) || SHELL_WORDS.has(word)) return undefined;
    return word;
  }
  return undefined;
}

function launchLayerBins(appDir: string): string[] {
  const out: string[] = [];
  const layers = path.join(appDir, LAYERS);
  for (const bp of existsSync(layers) ? readdirSync(layers) : []) {
    const dir = path.join(layers, bp);
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const layer of names) out.push(path.join(LAYERS, bp, layer, 'bin'));
  }
  return out;
}

/** existsSync, or with --slug the same answer for the dependency trees that went straight into layers. */
type Exists = (file: string) => boolean;

function inApp(appDir: string, name: string, exists: Exists): boolean {
  return [...APP_BIN_DIRS, ...launchLayerBins(appDir)].some((dir) => exists(path.join(appDir, dir, name)));
}

function found(proc: AppProcess, program: string, appDir: string, img: RunImageFiles, exists: Exists): boolean {
  if (!program.includes('/')) return onRunImagePath(img, program) || inApp(appDir, program, exists);
  const abs = path.posix.resolve(proc.cwd, program);
  if (abs === appDir || abs.startsWith(`${appDir}/`)) return exists(abs);
  if (abs === IMAGE_APP_DIR || abs.startsWith(`${IMAGE_APP_DIR}/`))
    return exists(path.join(appDir, path.posix.relative(IMAGE_APP_DIR, abs)));
  return hasFile(img, abs);
}

/** One warning line per process the image cannot start, and one when CNBs ran away from /app. */
export function warnMissingCommands(result: BuildResult, plan: ExportPlan): void {
  const { appDir } = result;
  if (appDir !== IMAGE_APP_DIR && existsSync(path.join(appDir, LAYERS, 'config', 'metadata.toml')))
    log.warn(
      `Warning: the Cloud Native Buildpacks ran at ${appDir} but the image runs the app at ${IMAGE_APP_DIR}: absolute paths they recorded point to ${appDir}; build with --app-dir ${IMAGE_APP_DIR}`,
    );
  const img = plan.runFiles;
  if (!img) return;
  const exists = result.slugLayers?.exists ?? existsSync;
  for (const proc of Object.values(result.processes.byType)) {
    const program = firstProgram(proc);
    if (program && !found(proc, program, appDir, img, exists))
      log.warn(
        `Warning: process ${proc.type} runs ${program}, which is neither on the run image's PATH nor in the app: the image cannot start it`,
      );
  }
}
