#!/usr/bin/env node
// Reads package.json for the bash scripts, which have no JSON parser.
//
//   node package-json.cjs FILE check          exit 1 with a message if FILE is not a JSON object
//   node package-json.cjs FILE get a.b.c      prints the string value at a.b.c (nothing if absent)
//   node package-json.cjs FILE has-script NAME exit 0 if scripts.NAME is a non-empty string
//
// bin/compile asks everything at once through inspect.cjs, which uses the
// functions exported here; bin/release asks one question with this CLI.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/**
 * Whether FILE, a file of the app dir it sits in, resolves inside that dir
 * (or does not exist, and is no dangling link): the app's links may not lead the buildpack's reads
 * out of the app, a source being hostile data.
 */
function insideApp(file) {
  let real;
  try {
    real = fs.realpathSync(file);
  } catch {
    // Absent is fine; a link that resolves nowhere is refused, since inside the
    // build sandbox a link out of the app is exactly that.
    try {
      return !fs.lstatSync(file).isSymbolicLink();
    } catch {
      return true;
    }
  }
  const app = fs.realpathSync(path.dirname(path.resolve(file)));
  return real === app || real.startsWith(app + path.sep);
}

/** The one-line refusal for a file that links out of the app. */
function outsideMessage(name) {
  return `${name} is a link to a path outside the app; refusing to read it`;
}

/** package.json as { pkg } or, when it is unusable, { error } with the one-line message for the user. */
function readPackageJson(file) {
  if (!insideApp(file)) return { error: outsideMessage('package.json') };
  let pkg;
  try {
    pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const why = err instanceof SyntaxError ? `is not valid JSON (${err.message})` : 'cannot be read';
    return { error: `package.json ${why}: fix it and push again` };
  }
  if (pkg === null || typeof pkg !== 'object' || Array.isArray(pkg)) {
    return { error: 'package.json must hold a JSON object: fix it and push again' };
  }
  return { pkg };
}

/** The value at a dotted path ("engines.node"), or undefined. */
function lookup(pkg, dotted) {
  let value = pkg;
  for (const key of dotted.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
    value = value[key];
  }
  return value;
}

/** A string or number at a dotted path as text; '' for anything else. */
function getText(pkg, dotted) {
  const value = lookup(pkg, dotted);
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}

/** npm runs scripts.NAME only when it is a non-empty command. */
function hasScript(pkg, name) {
  const value = lookup(pkg, `scripts.${name}`);
  return typeof value === 'string' && value.trim() !== '';
}

module.exports = { readPackageJson, getText, hasScript, insideApp, outsideMessage };

if (require.main === module) {
  const [file, command, arg] = process.argv.slice(2);
  const { pkg, error } = readPackageJson(file);
  if (error) {
    console.error(error);
    process.exit(1);
  }
  switch (command) {
    case 'check':
      break;
    case 'get':
      process.stdout.write(getText(pkg, arg));
      break;
    case 'has-script':
      process.exit(hasScript(pkg, arg) ? 0 : 1);
      break;
    default:
      console.error('usage: package-json.cjs FILE check|get PATH|has-script NAME');
      process.exit(2);
  }
}
