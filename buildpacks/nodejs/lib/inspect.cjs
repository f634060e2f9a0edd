#!/usr/bin/env node
// Everything bin/compile needs to know about the app and the runtime, from
// one node process: each node start costs about 0.1 s, and compile used to
// start ten of them (package.json questions, semver checks, npm --version).
//
//   node inspect.cjs APP_DIR
//
// install-node.cjs asks the same questions in its own process (appFacts()
// before it installs, withVersions() for the runtime it installed).
//
// Prints NUL-terminated KEY VALUE pairs, so no string from package.json is
// ever read as shell (bash: mapfile -d ''). The first pair is "status ok", or
// "status error" followed by "message <one line for the user>". Keys:
//
//   node_version, npm_version        the stack's versions ("20.20.2"), or the installed runtime's when
//                                    install-node.cjs asks; npm_version is "" if unknown
//   engines_node, engines_npm        the ranges package.json asks for ("" when absent)
//   engines_node_check, ..._npm_check  "" (no range), satisfied, mismatch, or invalid (not understood)
//   script:NAME                      yes/no for heroku-prebuild, heroku-postbuild, build, heroku-cleanup
//   lockfile                         npm-shrinkwrap.json, package-lock.json (npm's order), or ""
//   lockfile_sha256                  of the lockfile's bytes
//   lockfile_dev                     yes: some package is "dev" or "devOptional"; no: none is
//                                    (lockfileVersion 2 or 3); unknown: older or unreadable lockfile
//   deps_sha256                      of package.json's fields that npm ci checks the lockfile against
'use strict';
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { readPackageJson, getText, hasScript, insideApp, outsideMessage } = require('./package-json.cjs');
const { satisfies } = require('./semver.cjs');

const SCRIPTS = ['heroku-prebuild', 'heroku-postbuild', 'build', 'heroku-cleanup'];
// What npm ci builds its tree from besides the lockfile: when these change and
// the lockfile does not, the two are out of sync and npm ci must say so.
const DEPENDENCY_FIELDS = [
  'dependencies',
  'devDependencies',
  'optionalDependencies',
  'peerDependencies',
  'peerDependenciesMeta',
  'bundleDependencies',
  'bundledDependencies',
  'overrides',
  'workspaces',
];

/**
 * The version of the npm that bash would run: the first executable `npm` on
 * PATH, followed through its symlinks to npm's own package.json. Only when
 * that fails (a wrapper script, say) is `npm --version` asked, which costs a
 * second node start.
 */
function npmVersion() {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'npm');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (!fs.statSync(candidate).isFile()) continue;
    } catch {
      continue;
    }
    try {
      // /usr/bin/npm -> /usr/lib/node_modules/npm/bin/npm-cli.js: npm's package.json is one or two levels up.
      let dir = path.dirname(fs.realpathSync(candidate));
      for (let up = 0; up < 2; up++, dir = path.dirname(dir)) {
        const found = readNpmPackage(path.join(dir, 'package.json'));
        if (found) return found;
      }
    } catch {
      // fall through to asking npm
    }
    break;
  }
  try {
    return execFileSync('npm', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function readNpmPackage(file) {
  try {
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
    return pkg && pkg.name === 'npm' && typeof pkg.version === 'string' ? pkg.version : null;
  } catch {
    return null;
  }
}

function engineCheck(range, version) {
  if (range === '') return '';
  const result = satisfies(version, range);
  return result === null ? 'invalid' : result ? 'satisfied' : 'mismatch';
}

/** The lockfile npm ci would use, its hash, and whether it lists any devDependency. */
function lockfileFacts(appDir) {
  for (const name of ['npm-shrinkwrap.json', 'package-lock.json']) {
    if (!insideApp(path.join(appDir, name))) return { error: outsideMessage(name) };
    let bytes;
    try {
      bytes = fs.readFileSync(path.join(appDir, name));
    } catch {
      continue;
    }
    const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
    let dev = 'unknown';
    try {
      const lock = JSON.parse(bytes.toString('utf8'));
      // lockfileVersion 2 and 3 flag every package in `packages`; version 1 has no such map.
      if ([2, 3].includes(lock.lockfileVersion) && lock.packages && typeof lock.packages === 'object') {
        const entries = Object.values(lock.packages);
        dev = entries.some((p) => p && (p.dev === true || p.devOptional === true)) ? 'yes' : 'no';
      }
    } catch {
      // npm ci reports a broken lockfile better than we could
    }
    return { lockfile: name, lockfile_sha256: sha256, lockfile_dev: dev };
  }
  return { lockfile: '', lockfile_sha256: '', lockfile_dev: 'unknown' };
}

/** The answers about the app alone (package.json, the lockfile), without the versions of node and npm. */
function appFacts(appDir) {
  const { pkg, error } = readPackageJson(path.join(appDir, 'package.json'));
  if (error) return { status: 'error', message: error };
  const facts = { status: 'ok' };
  for (const name of ['node', 'npm']) facts[`engines_${name}`] = getText(pkg, `engines.${name}`);
  for (const name of SCRIPTS) facts[`script:${name}`] = hasScript(pkg, name) ? 'yes' : 'no';
  const lock = lockfileFacts(appDir);
  if (lock.error) return { status: 'error', message: lock.error };
  const deps = DEPENDENCY_FIELDS.map((field) => [field, pkg[field] ?? null]);
  facts.deps_sha256 = crypto.createHash('sha256').update(JSON.stringify(deps)).digest('hex');
  return { ...facts, ...lock };
}

/** appFacts' answers completed for the node and npm that will run the app, and how they meet engines. */
function withVersions(facts, node, npm) {
  if (facts.status !== 'ok') return facts;
  const out = { ...facts, node_version: node, npm_version: npm };
  for (const name of ['node', 'npm']) out[`engines_${name}_check`] = engineCheck(facts[`engines_${name}`], out[`${name}_version`]);
  return out;
}

/** Every answer, for this process's node and the npm on PATH. */
function inspect(appDir) {
  const facts = appFacts(appDir);
  return facts.status === 'ok' ? withVersions(facts, process.version.replace(/^v/, ''), npmVersion()) : facts;
}

/** The facts as NUL-terminated KEY VALUE pairs. A package.json string may hold "\u0000": dropped, so the pairs stay aligned. */
function encodeFacts(facts) {
  return Object.entries(facts)
    .map(([k, v]) => `${k}\0${String(v).replaceAll('\0', '')}\0`)
    .join('');
}

module.exports = { appFacts, withVersions, encodeFacts, readNpmPackage };

if (require.main === module) {
  const [appDir] = process.argv.slice(2);
  if (appDir === undefined) {
    console.error('usage: inspect.cjs APP_DIR');
    process.exit(2);
  }
  process.stdout.write(encodeFacts(inspect(appDir)));
}
