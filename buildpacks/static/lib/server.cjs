#!/usr/bin/env node
// Static file server for the static buildpack, copied into the app as
// .heroku/static/server.cjs. No dependencies: it runs on the runner image's node.
//
//   node server.cjs           serve the app's static root on $PORT (default 5000)
//   node server.cjs --check   validate static.json and print the settings (build time)
//
// Guarantees: only files under the root are served; "..", encoded or not,
// hidden files (.git, .env, ...) and symlinks that resolve outside the root
// all get the same 404 as a missing file. Directories serve their index.html.
// (.cjs: the app's own package.json may say "type": "module".)
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const APP_DIR = path.resolve(__dirname, '..', '..');

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.wav': 'audio/wav',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
};

function contentType(file) {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream';
}

class ConfigError extends Error {}

/** Settings from static.json, checked; the default root is where index.html is. */
function loadConfig() {
  let config = {};
  const file = path.join(APP_DIR, 'static.json');
  const dangling = !fs.existsSync(file) && isLink(file);
  if (fs.existsSync(file) || dangling) {
    // The app's links may not lead this read out of the app (a source is hostile data);
    // in the build sandbox a link out of the app dangles.
    if (dangling || !within(fs.realpathSync(APP_DIR), fs.realpathSync(file))) {
      throw new ConfigError('static.json is a link to a path outside the app; refusing to read it');
    }
    try {
      config = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`static.json is not valid JSON (${err.message}): fix it and push again`);
    }
    if (config === null || typeof config !== 'object' || Array.isArray(config)) {
      throw new ConfigError('static.json must hold a JSON object, e.g. {"root": "dist"}');
    }
  }
  for (const key of ['root', 'error_page']) {
    if (config[key] !== undefined && typeof config[key] !== 'string') {
      throw new ConfigError(`static.json "${key}" must be a string path`);
    }
  }
  if (config.clean_urls !== undefined && typeof config.clean_urls !== 'boolean') {
    throw new ConfigError('static.json "clean_urls" must be true or false');
  }

  let root = config.root;
  if (root === undefined) {
    const hasRootIndex = fs.existsSync(path.join(APP_DIR, 'index.html'));
    root = !hasRootIndex && fs.existsSync(path.join(APP_DIR, 'public', 'index.html')) ? 'public' : '.';
  }
  const rootDir = path.resolve(APP_DIR, root);
  let rootReal;
  try {
    rootReal = fs.realpathSync(rootDir);
  } catch {
    throw new ConfigError(`static.json root "${root}" does not exist in the app: create it or fix "root"`);
  }
  const appReal = fs.realpathSync(APP_DIR);
  if (!within(appReal, rootReal) || !fs.statSync(rootReal).isDirectory()) {
    throw new ConfigError(`static.json root "${root}" must be a directory inside the app`);
  }

  let errorPage = null;
  if (config.error_page !== undefined) {
    errorPage = resolveInside(rootReal, config.error_page.split('/'));
    if (!errorPage || !fs.statSync(errorPage).isFile()) {
      throw new ConfigError(`static.json error_page "${config.error_page}" is not a file under the root "${root}"`);
    }
  }
  return { root, rootReal, cleanUrls: config.clean_urls === true, errorPage };
}

function isLink(file) {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

function within(parent, child) {
  return child === parent || child.startsWith(parent + path.sep);
}

/**
 * The real path of root/segments if it exists and stays inside the root after
 * every symlink is resolved; null otherwise. Segments are already decoded.
 */
function resolveInside(rootReal, segments) {
  for (const s of segments) {
    if (s === '..' || s.includes('/') || s.includes('\\') || s.includes('\0')) return null;
    // Hidden files stay private (.env, .git, the buildpack's own .heroku),
    // except the well-known URIs of RFC 8615.
    if (s.startsWith('.') && s !== '.well-known') return null;
  }
  let real;
  try {
    real = fs.realpathSync(path.join(rootReal, ...segments));
  } catch {
    return null;
  }
  return within(rootReal, real) ? real : null;
}

/** URL path -> decoded segments, or null when it cannot be decoded. */
function segmentsOf(urlPath) {
  const segments = [];
  for (const raw of urlPath.split('/')) {
    if (raw === '') continue;
    try {
      segments.push(decodeURIComponent(raw));
    } catch {
      return null;
    }
  }
  return segments;
}

function serve(config) {
  const notFoundBody = config.errorPage
    ? fs.readFileSync(config.errorPage)
    : Buffer.from('<!doctype html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n');

  function send(req, res, status, headers, body) {
    res.writeHead(status, { 'X-Content-Type-Options': 'nosniff', ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
    log(req, status);
  }

  function notFound(req, res) {
    send(req, res, 404, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': notFoundBody.length }, notFoundBody);
  }

  function sendFile(req, res, file, stat) {
    res.writeHead(200, {
      'Content-Type': contentType(file),
      'Content-Length': stat.size,
      'Last-Modified': stat.mtime.toUTCString(),
      'X-Content-Type-Options': 'nosniff',
    });
    log(req, 200);
    if (req.method === 'HEAD') return res.end();
    fs.createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  }

  function handle(req, res) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(req, res, 405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }, 'Method Not Allowed\n');
    }
    const rawPath = (req.url || '/').split('?')[0];
    const segments = rawPath.startsWith('/') ? segmentsOf(rawPath) : null;
    if (!segments) return send(req, res, 400, { 'Content-Type': 'text/plain; charset=utf-8' }, 'Bad Request\n');

    let file = resolveInside(config.rootReal, segments);
    if (!file && config.cleanUrls && segments.length > 0) {
      const withHtml = [...segments.slice(0, -1), `${segments[segments.length - 1]}.html`];
      file = resolveInside(config.rootReal, withHtml);
    }
    if (!file) return notFound(req, res);

    let stat = fs.statSync(file);
    if (stat.isDirectory()) {
      if (!rawPath.endsWith('/')) {
        const query = req.url.slice(rawPath.length);
        return send(req, res, 301, { Location: `${rawPath}/${query}`, 'Content-Type': 'text/plain; charset=utf-8' }, 'Moved Permanently\n');
      }
      file = resolveInside(config.rootReal, [...segments, 'index.html']);
      if (!file) return notFound(req, res);
      stat = fs.statSync(file);
    }
    if (!stat.isFile()) return notFound(req, res);
    sendFile(req, res, file, stat);
  }

  return http.createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      // e.g. a file removed between lookup and stat: one request fails, not the server.
      process.stderr.write(`static: ${req.method} ${req.url}: ${err.message}\n`);
      if (!res.headersSent) send(req, res, 500, { 'Content-Type': 'text/plain; charset=utf-8' }, 'Internal Server Error\n');
      else res.destroy();
    }
  });
}

function log(req, status) {
  process.stdout.write(`${req.method} ${req.url} ${status}\n`);
}

function main() {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  if (process.argv.includes('--check')) {
    process.stdout.write(`root: ${config.root}\n`);
    process.stdout.write(`clean_urls: ${config.cleanUrls}\n`);
    if (config.errorPage) process.stdout.write(`error_page: ${path.relative(config.rootReal, config.errorPage)}\n`);
    return;
  }
  const port = Number(process.env.PORT || 5000);
  const server = serve(config);
  server.listen(port, () => process.stdout.write(`static: serving ${config.root} on port ${port}\n`));
  // On a dyno stop, finish in-flight requests and exit cleanly.
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      server.close(() => process.exit(0));
      server.closeAllConnections();
    });
  }
}

main();
