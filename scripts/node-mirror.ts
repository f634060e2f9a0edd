/**
 * A Node.js distribution mirror on 127.0.0.1, laid out like
 * https://nodejs.org/dist, made from the Node running this process: its
 * binary and npm are packed as node-vX.Y.Z-linux-ARCH.tar.gz, listed in
 * index.json and SHASUMS256.txt. The bundled nodejs buildpack installs the
 * app's Node from such a mirror (NODEJS_ORG_MIRROR); `npm run demo` and the
 * tests use this one because nodejs.org may be unreachable.
 *
 * Extra `releases` serve the same tarball under another version number (a
 * re-labelled binary: it still reports the running version), enough to test
 * how a range resolves; `cannotRun` ones hold a node that does not start.
 * Each tarball is packed once per process, on first use.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface MirrorRelease {
  /** "18.20.4" */
  version: string;
  /** The LTS codename, or false. */
  lts: string | false;
}

export interface NodeMirror {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Paths requested, in order. */
  requests: string[];
  /** Requests for paths ending with `suffix`. */
  count(suffix: string): number;
  close(): Promise<void>;
}

export interface NodeMirrorOptions {
  /** Served besides the running version (which is LTS when `runningLts` is set). */
  releases?: MirrorRelease[];
  /** The running version's LTS codename; default "Iron" for 20.x (as nodejs.org says), else false. */
  runningLts?: string | false;
  /** Versions whose SHASUMS256.txt lists a wrong sha256. */
  badChecksum?: string[];
  /** Versions whose tarball (listed with its right sha256) holds a bin/node that cannot start: a binary for another machine. */
  cannotRun?: string[];
}

export const RUNNING_VERSION = process.version.slice(1);
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const packed = new Map<boolean, { bytes: Buffer; sha256: string }>();

/**
 * node, npm and npx of the running Node, as nodejs.org packs them (without
 * docs, and of the headers only node_version.h); `cannotRun`: bin/node cut to
 * its first 64 bytes, an ELF header the kernel refuses to run.
 */
function pack(cannotRun = false): { bytes: Buffer; sha256: string } {
  const done = packed.get(cannotRun);
  if (done) return done;
  const work = mkdtempSync(path.join(os.tmpdir(), 'slugkit-node-mirror-'));
  try {
    const prefix = path.dirname(path.dirname(process.execPath));
    const top = `node-v${RUNNING_VERSION}-linux-${ARCH}`;
    const dir = path.join(work, top);
    mkdirSync(path.join(dir, 'bin'), { recursive: true });
    mkdirSync(path.join(dir, 'lib', 'node_modules'), { recursive: true });
    execFileSync('cp', [process.execPath, path.join(dir, 'bin', 'node')]);
    if (cannotRun) execFileSync('truncate', ['-s', '64', path.join(dir, 'bin', 'node')]);
    execFileSync('cp', ['-R', path.join(prefix, 'lib', 'node_modules', 'npm'), path.join(dir, 'lib', 'node_modules', 'npm')]);
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(dir, 'bin', 'npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(dir, 'bin', 'npx'));
    // nodejs.org's tarballs carry the headers; node_version.h alone says which release it is.
    const [major, minor, patch] = RUNNING_VERSION.split('.');
    mkdirSync(path.join(dir, 'include', 'node'), { recursive: true });
    writeFileSync(
      path.join(dir, 'include', 'node', 'node_version.h'),
      `#define NODE_MAJOR_VERSION ${major}\n#define NODE_MINOR_VERSION ${minor}\n#define NODE_PATCH_VERSION ${patch}\n`,
    );
    const file = path.join(work, `${top}.tar.gz`);
    execFileSync('tar', ['-I', 'gzip -1', '-cf', file, '-C', work, top]);
    const bytes = readFileSync(file);
    const made = { bytes, sha256: crypto.createHash('sha256').update(bytes).digest('hex') };
    packed.set(cannotRun, made);
    return made;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function startNodeMirror(opts: NodeMirrorOptions = {}): Promise<NodeMirror> {
  const runningLts = opts.runningLts ?? (RUNNING_VERSION.startsWith('20.') ? 'Iron' : false);
  const releases: MirrorRelease[] = [{ version: RUNNING_VERSION, lts: runningLts }, ...(opts.releases ?? [])];
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const pathname = (req.url ?? '/').split('?')[0];
    requests.push(pathname);
    const send = (status: number, body: string | Buffer, type = 'application/octet-stream') => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (pathname === '/index.json') {
      const index = releases.map((r) => ({ version: `v${r.version}`, files: [`linux-${ARCH}`, 'src'], lts: r.lts }));
      return send(200, JSON.stringify(index), 'application/json');
    }
    const m = /^\/v(\d+\.\d+\.\d+)\/(.+)$/.exec(pathname);
    const release = m && releases.find((r) => r.version === m[1]);
    if (!m || !release) return send(404, 'not found\n', 'text/plain');
    const name = `node-v${release.version}-linux-${ARCH}.tar.gz`;
    const broken = opts.cannotRun?.includes(release.version) ?? false;
    if (m[2] === 'SHASUMS256.txt') {
      const sha = opts.badChecksum?.includes(release.version) ? '0'.repeat(64) : pack(broken).sha256;
      return send(200, `${sha}  ${name}\n`, 'text/plain');
    }
    if (m[2] === name) return send(200, pack(broken).bytes);
    return send(404, 'not found\n', 'text/plain');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    count: (suffix) => requests.filter((p) => p.endsWith(suffix)).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
