/**
 * Loaded by mocha before any suite (.mocharc.json `require`): slugkit's own
 * caches (fetched buildpacks, the default build cache, the image layer cache)
 * go to a temp dir of this run, never to the user's ~/.cache. A suite that
 * tests where the defaults are sets its own SLUGBUILDER_CACHE_DIR or HOME.
 * The bundled nodejs buildpack installs Node from NODEJS_ORG_MIRROR: one
 * mirror on 127.0.0.1 made from this Node serves the whole run (nodejs.org
 * may be unreachable). The caller's proxy variables are dropped: slugkit
 * proxies loopback hosts as curl does, and every test server is on
 * 127.0.0.1; test/proxy.test.ts sets its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type NodeMirror, startNodeMirror } from '../../scripts/node-mirror.js';
import { bwrapWorks } from './tools.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'slugkit-test-cache-'));
process.env.SLUGBUILDER_CACHE_DIR = root;
// Builds are sandboxed where bwrap can be and unsandboxed elsewhere, without
// `auto`'s warning line, so a build's log is the same on every machine;
// test/sandbox.test.ts checks `auto` itself.
process.env.SLUGKIT_SANDBOX ??= bwrapWorks() ? 'on' : 'off';
for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY']) {
  delete process.env[name];
  delete process.env[name.toLowerCase()];
}
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

let mirror: NodeMirror | undefined;
export const mochaHooks = {
  async beforeAll() {
    if (process.env.NODEJS_ORG_MIRROR || mirror) return;
    mirror = await startNodeMirror();
    process.env.NODEJS_ORG_MIRROR = mirror.url;
  },
};
