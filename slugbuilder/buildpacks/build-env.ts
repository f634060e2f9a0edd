/**
 * The environment buildpacks and the app's hooks run in. As on Heroku it is a
 * fixed, documented set, never the operator's whole environment: buildpacks
 * are untrusted code (a host AWS_SECRET_ACCESS_KEY must not reach them), and
 * a host PATH (pyenv, nvm shims) must not change which tools a build uses.
 * Config vars reach buildpacks only through ENV_DIR.
 */
import path from 'node:path';
import { UsageError } from '../../shared/errors.js';
import { displayUrl } from '../../shared/http.js';

/** The stack's PATH; the directory of the node running slugbuilder is appended when it is not on it. */
export const STACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Taken from slugbuilder's own environment when set: what a build behind a
 * proxy or a private CA needs to reach its package registries, and
 * SOURCE_DATE_EPOCH for reproducible builds, and NODEJS_ORG_MIRROR.
 */
/** Variables naming CA files or dirs a build may need; the sandbox shows the files they name. */
export const CA_VARS = [
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
  'PIP_CERT',
  'GIT_SSL_CAINFO',
  'NPM_CONFIG_CAFILE',
  'npm_config_cafile',
];

export const NETWORK_VARS = [
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'all_proxy',
  ...CA_VARS,
  'SOURCE_DATE_EPOCH',
  // Where the nodejs buildpack downloads Node from (node-gyp's and nvm's name for it).
  'NODEJS_ORG_MIRROR',
] as const;

/** Set by slugbuilder for every build; --pass-env cannot replace them. */
const BUILD_VARS = new Set(['STACK', 'SOURCE_VERSION', 'REQUEST_ID', 'HOME', 'APP_DIR', 'BUILD_DIR', 'CACHE_DIR', 'ENV_DIR']);
/** Buildpacks are untrusted: the upload URL could overwrite stored slugs, the source URL carries credentials. */
const WITHHELD = new Set(['PUT_URL', 'TAR_URL']);

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks `--pass-env NAME` values (exit 2 on a bad one). */
export function checkPassEnv(names: string[]): string[] {
  for (const name of names) {
    if (!NAME.test(name)) throw new UsageError(`--pass-env expects a variable name, got "${name}"`);
    if (WITHHELD.has(name)) throw new UsageError(`--pass-env ${name}: buildpacks never get PUT_URL or TAR_URL (they are untrusted code)`);
    if (BUILD_VARS.has(name))
      throw new UsageError(`--pass-env ${name}: slugbuilder sets ${name} for buildpacks itself; set a config var with -e instead`);
  }
  return names;
}

export interface BuildEnvOptions {
  stack: string;
  sourceVersion?: string;
  requestId: string;
  home: string;
  tmpDir: string;
  appDir: string;
  /** Variables the operator passes by name (`--pass-env`). */
  passEnv: string[];
  /** slugbuilder's own environment. */
  host: NodeJS.ProcessEnv;
  /** The node running slugbuilder. */
  nodePath: string;
}

export function buildEnvironment(o: BuildEnvOptions): NodeJS.ProcessEnv {
  const stackPath = STACK_PATH.split(':');
  const nodeDir = path.dirname(o.nodePath);
  const env: NodeJS.ProcessEnv = {
    PATH: stackPath.includes(nodeDir) ? STACK_PATH : `${STACK_PATH}:${nodeDir}`,
    LANG: 'C.UTF-8',
    // A scratch TMPDIR inside the build's workspace, removed with it.
    TMPDIR: o.tmpDir,
  };
  for (const name of [...NETWORK_VARS, ...o.passEnv]) {
    const value = o.host[name];
    if (value === undefined) continue;
    // A proxy URL may carry a password: it is a secret from here on.
    if (/:\/\//.test(value)) displayUrl(value);
    env[name] = value;
  }
  Object.assign(env, {
    STACK: o.stack,
    REQUEST_ID: o.requestId,
    // A scratch HOME: tools that write to ~ must not pollute the slug or the operator's home.
    HOME: o.home,
    APP_DIR: o.appDir,
  });
  if (o.sourceVersion) env.SOURCE_VERSION = o.sourceVersion;
  return env;
}
