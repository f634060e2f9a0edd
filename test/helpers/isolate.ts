/**
 * Loaded by mocha before any suite (.mocharc.json `require`): slugkit's own
 * caches (fetched buildpacks, the default build cache, the image layer cache)
 * go to a temp dir of this run, never to the user's ~/.cache. A suite that
 * tests where the defaults are sets its own SLUGBUILDER_CACHE_DIR or HOME.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bwrapWorks } from './tools.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'slugkit-test-cache-'));
process.env.SLUGBUILDER_CACHE_DIR = root;
// Builds are sandboxed where bwrap can be and unsandboxed elsewhere, without
// `auto`'s warning line, so a build's log is the same on every machine;
// test/sandbox.test.ts checks `auto` itself.
process.env.SLUGKIT_SANDBOX ??= bwrapWorks() ? 'on' : 'off';
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

export const mochaHooks = {};
