#!/usr/bin/env node
// Installs the Node.js release the app asks for into BUILD_DIR/.heroku/node,
// from a mirror laid out like https://nodejs.org/dist (index.json,
// vX.Y.Z/SHASUMS256.txt, vX.Y.Z/node-vX.Y.Z-linux-ARCH.tar.{xz,gz}).
//
//   node install-node.cjs BUILD_DIR CACHE_DIR FACTS_FILE
//
// Run by the stack's node before the app's own is there. It checks
// package.json first, and ends by checking that the installed node runs and
// writing inspect.cjs's answers for it to FACTS_FILE. Progress goes to
// stdout as indented log lines; a failure is one " !     " line on stderr and
// exit 1. The verified tarball is kept in CACHE_DIR/node/ by version, so a
// rebuild of the same version downloads nothing; when the mirror cannot be
// reached, a cached release that satisfies the range is used. It is kept
// uncompressed: a warm rebuild then unpacks it without inflating ~110 MB
// again, which cost several times the plain tar read (and the builder's copy
// of the bigger file costs far less than that).
'use strict';
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { appFacts, encodeFacts, readNpmPackage, withVersions } = require('./inspect.cjs');
const { readPackageJson, getText } = require('./package-json.cjs');
const { satisfies } = require('./semver.cjs');

const DEFAULT_MIRROR = 'https://nodejs.org/dist';
const RANGE_HELP = 'use forms like 20, 20.x, ^20.1, ~20.1.2, >=18 <21';
// Enough for a slow link; a stalled transfer still ends the build.
const STALL_MS = Number(process.env.SLUGKIT_NET_TIMEOUT || 60) * 1000;

class UserError extends Error {}

const info = (line) => process.stdout.write(`       ${line}\n`);

/** The mirror as the user gave it, without credentials (for log lines). */
function shown(url) {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.href.replace(/\/$/, '');
  } catch {
    return '(an invalid URL)';
  }
}

/** What the app asks for: { range, from } where range may be 'lts', 'lts/NAME' or 'latest'. */
function wanted(buildDir) {
  const { pkg } = readPackageJson(path.join(buildDir, 'package.json'));
  const engines = pkg ? getText(pkg, 'engines.node').trim() : '';
  if (engines !== '') return { range: engines, from: `engines.node "${engines}"` };
  for (const file of ['.nvmrc', '.node-version']) {
    let text;
    try {
      text = fs.readFileSync(path.join(buildDir, file), 'utf8');
    } catch {
      continue;
    }
    // The first line, without comments (nvm allows them).
    const line = text.split('\n')[0].replace(/#.*/, '').trim();
    if (line === '') continue;
    const lower = line.toLowerCase();
    const from = `${file} "${line}"`;
    if (lower === 'lts/*' || lower === 'lts') return { range: 'lts', from };
    if (lower.startsWith('lts/')) return { range: lower, from };
    if (['node', 'latest', 'current', 'stable'].includes(lower)) return { range: 'latest', from };
    return { range: line, from };
  }
  return { range: 'lts', from: 'the current LTS (no engines.node, .nvmrc or .node-version)' };
}

const versionParts = (v) => v.replace(/^v/, '').split('.').map(Number);
function newer(a, b) {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] > y[i];
  return false;
}

/** The newest release in `versions` ({version, lts}) matching the wanted range, or null. */
function pick(versions, range) {
  let best = null;
  for (const r of versions) {
    const v = r.version.replace(/^v/, '');
    let ok;
    if (range === 'latest') ok = true;
    else if (range === 'lts') ok = Boolean(r.lts);
    else if (range.startsWith('lts/')) ok = typeof r.lts === 'string' && r.lts.toLowerCase() === range.slice(4);
    else ok = satisfies(v, range) === true;
    if (ok && (best === null || newer(v, best))) best = v;
  }
  return best;
}

/** fetch with credentials from the URL moved to a header, and an abort when the transfer stalls. */
async function get(url) {
  const u = new URL(url);
  const headers = {};
  if (u.username || u.password) {
    const auth = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
    headers.authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), STALL_MS);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(), STALL_MS);
  };
  try {
    const res = await fetch(u, { headers, signal: controller.signal });
    return { res, touch, done: () => clearTimeout(timer) };
  } catch (err) {
    clearTimeout(timer);
    throw err;
  }
}

function why(err) {
  const cause = err?.cause;
  if (err?.name === 'AbortError') return `no data for ${STALL_MS / 1000} s`;
  return cause?.code || cause?.message || err?.message || String(err);
}

async function fetchText(url) {
  const { res, done } = await get(url);
  try {
    if (!res.ok) return { status: res.status };
    return { status: res.status, text: await res.text() };
  } finally {
    done();
  }
}

/** Streams url into file, returning its sha256. */
async function download(url, file) {
  const { res, touch, done } = await get(url);
  try {
    if (!res.ok) throw new UserError(`HTTP ${res.status}`);
    const hash = crypto.createHash('sha256');
    const out = fs.createWriteStream(file);
    for await (const chunk of res.body) {
      touch();
      hash.update(chunk);
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
    }
    await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
    return hash.digest('hex');
  } finally {
    done();
  }
}

function hasXz() {
  try {
    execFileSync('xz', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Cached tarballs: { version, file } for each CACHE_DIR/node/node-vX.Y.Z-linux-ARCH.tar[.xz|.gz] (older builds kept them compressed). */
function cached(cacheDir, arch) {
  const dir = path.join(cacheDir, 'node');
  let names = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const re = new RegExp(`^node-v(\\d+\\.\\d+\\.\\d+)-linux-${arch}\\.tar(\\.xz|\\.gz)?$`);
  return names.flatMap((name) => {
    const m = re.exec(name);
    return m ? [{ version: m[1], file: path.join(dir, name) }] : [];
  });
}

async function main(buildDir, cacheDir, factsFile) {
  // package.json and the lockfile are checked before anything is fetched.
  const facts = appFacts(buildDir);
  if (facts.status === 'error') throw new UserError(facts.message);
  const mirror = (process.env.NODEJS_ORG_MIRROR || DEFAULT_MIRROR).trim().replace(/\/+$/, '');
  const where = shown(mirror);
  if (!/^https?:\/\//i.test(mirror))
    throw new UserError(`NODEJS_ORG_MIRROR "${where}" is not an http(s) URL: set it to a mirror laid out like ${DEFAULT_MIRROR}`);
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  if (!arch) throw new UserError(`Node.js releases for linux-${process.arch} are not supported by this buildpack`);
  const { range, from } = wanted(buildDir);
  if (!['lts', 'latest'].includes(range) && !range.startsWith('lts/') && satisfies('0.0.0', range) === null) {
    throw new UserError(`${from} is not a version range slugkit understands (${RANGE_HELP}): fix it and push again`);
  }

  // Resolve against the mirror; without it, against what the cache holds.
  const inCache = cached(cacheDir, arch);
  let version;
  let index;
  try {
    const r = await fetchText(`${mirror}/index.json`);
    if (r.text === undefined) throw new UserError(`HTTP ${r.status}`);
    index = JSON.parse(r.text);
    if (!Array.isArray(index)) throw new UserError('index.json is not a list of releases');
  } catch (err) {
    const reason = err instanceof UserError || err instanceof SyntaxError ? err.message : why(err);
    const lts = range === 'lts' || range.startsWith('lts/');
    version = lts ? null : pick(inCache, range);
    if (!version) {
      throw new UserError(
        `could not read ${where}/index.json (${reason}) and no cached Node.js matches ${from}: set NODEJS_ORG_MIRROR to a reachable Node.js mirror, or try again`,
      );
    }
    process.stdout.write(
      ` !     could not read ${where}/index.json (${reason}): using the cached node ${version}, which matches ${from}\n`,
    );
  }
  if (index) {
    const builds = index.filter((r) => r && typeof r.version === 'string' && Array.isArray(r.files) && r.files.includes(`linux-${arch}`));
    version = pick(builds, range);
    if (!version) {
      throw new UserError(
        `${where} has no Node.js release for linux-${arch} that matches ${from}: change the range, or set NODEJS_ORG_MIRROR to a mirror that has one`,
      );
    }
    info(`${from} resolves to node ${version} (${where})`);
  }

  const hit = inCache.find((c) => c.version === version);
  let tarball;
  if (hit) {
    tarball = hit.file;
    info(`node ${version} from the cache`);
  } else {
    const sums = await fetchText(`${mirror}/v${version}/SHASUMS256.txt`).catch((err) => {
      throw new UserError(`could not read ${where}/v${version}/SHASUMS256.txt (${why(err)}) for ${from}: try again`);
    });
    if (sums.text === undefined)
      throw new UserError(`${where}/v${version}/SHASUMS256.txt answered HTTP ${sums.status} for ${from}: the mirror is incomplete`);
    const listed = new Map();
    for (const line of sums.text.split('\n')) {
      const m = /^([0-9a-f]{64})\s+\*?(\S+)$/.exec(line.trim());
      if (m) listed.set(m[2], m[1]);
    }
    const base = `node-v${version}-linux-${arch}`;
    const ext = hasXz() && listed.has(`${base}.tar.xz`) ? 'tar.xz' : 'tar.gz';
    const name = `${base}.${ext}`;
    const expected = listed.get(name);
    if (!expected) throw new UserError(`${where}/v${version}/SHASUMS256.txt lists no ${name} for ${from}: the mirror is incomplete`);
    info(`downloading ${name}`);
    const dir = path.join(cacheDir, 'node');
    fs.mkdirSync(dir, { recursive: true });
    const partial = path.join(dir, `.${name}.partial`);
    let actual;
    try {
      actual = await download(`${mirror}/v${version}/${name}`, partial);
    } catch (err) {
      fs.rmSync(partial, { force: true });
      const reason = err instanceof UserError ? err.message : why(err);
      throw new UserError(`could not download ${where}/v${version}/${name} (${reason}) for ${from}: try again`);
    }
    if (actual !== expected) {
      fs.rmSync(partial, { force: true });
      throw new UserError(
        `${where}/v${version}/${name} does not match its sha256 in SHASUMS256.txt (got ${actual}): the mirror or the network is corrupting it; nothing was installed`,
      );
    }
    info('sha256 matches SHASUMS256.txt');
    // Only the release in use is kept: the builder copies CACHE_DIR for every build.
    for (const old of inCache) fs.rmSync(old.file, { force: true });
    tarball = path.join(dir, name);
    fs.renameSync(partial, tarball);
  }

  const target = path.join(buildDir, '.heroku', 'node');
  fs.rmSync(target, { recursive: true, force: true });
  fs.mkdirSync(target, { recursive: true });
  try {
    tarball = uncompressed(tarball);
    execFileSync('tar', ['-xf', tarball, '-C', target, '--strip-components=1', '--no-same-owner'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (err) {
    fs.rmSync(tarball, { force: true });
    throw new UserError(
      `the Node.js ${version} tarball could not be unpacked (${
        String(err.stderr || err.message)
          .trim()
          .split('\n')[0]
      }): build again to download it anew`,
    );
  }
  info(`node ${version} installed into .heroku/node`);
  // bin/compile's answers for the installed runtime, from this process: no node start of their own.
  const node = runningVersion(path.join(target, 'bin', 'node'), version);
  const npm = readNpmPackage(path.join(target, 'lib', 'node_modules', 'npm', 'package.json')) ?? '';
  fs.writeFileSync(factsFile, encodeFacts(withVersions(facts, node, npm)));
}

/** The version the installed node says it is: it must start on this machine (`--version` answers before V8 starts, so this is no second node start). */
function runningVersion(node, version) {
  try {
    const said = execFileSync(node, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    return said.replace(/^v/, '');
  } catch (err) {
    throw new UserError(`the installed node ${version} does not run on this stack (${why(err)}): the tarball is not for this machine`);
  }
}

/** The kept tarball as a plain .tar beside it (the compressed one removed); a plain one as it is. */
function uncompressed(file) {
  const m = /\.(xz|gz)$/.exec(file);
  if (!m) return file;
  const plain = file.slice(0, -m[0].length);
  const partial = path.join(path.dirname(plain), `.${path.basename(plain)}.partial`);
  // wx: a name left in the cache (a link an earlier build made) is replaced, never written through.
  fs.rmSync(partial, { force: true });
  const fd = fs.openSync(partial, 'wx');
  try {
    execFileSync(m[1] === 'xz' ? 'xz' : 'gzip', ['-dc', file], { stdio: ['ignore', fd, 'pipe'] });
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw err;
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(partial, plain);
  fs.rmSync(file, { force: true });
  return plain;
}

const [buildDir, cacheDir, factsFile] = process.argv.slice(2);
if (!buildDir || !cacheDir || !factsFile) {
  console.error('usage: install-node.cjs BUILD_DIR CACHE_DIR FACTS_FILE');
  process.exit(2);
}
main(buildDir, cacheDir, factsFile).catch((err) => {
  const line = err instanceof UserError ? err.message : `installing Node.js failed: ${why(err)}: this is a bug in the nodejs buildpack`;
  process.stderr.write(` !     ${line.replace(/\s+/g, ' ')}\n`);
  process.exit(1);
});
