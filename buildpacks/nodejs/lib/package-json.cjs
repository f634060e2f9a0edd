#!/usr/bin/env node
// Reads package.json for the bash scripts, which have no JSON parser.
//
//   node package-json.cjs FILE check          exit 1 with a message if FILE is not a JSON object
//   node package-json.cjs FILE get a.b.c      prints the string value at a.b.c (nothing if absent)
//   node package-json.cjs FILE has-script NAME exit 0 if scripts.NAME is a non-empty string
'use strict';
const fs = require('node:fs');

const [file, command, arg] = process.argv.slice(2);

let pkg;
try {
  pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (err) {
  const why = err instanceof SyntaxError ? `is not valid JSON (${err.message})` : 'cannot be read';
  console.error(`package.json ${why}: fix it and push again`);
  process.exit(1);
}
if (pkg === null || typeof pkg !== 'object' || Array.isArray(pkg)) {
  console.error('package.json must hold a JSON object: fix it and push again');
  process.exit(1);
}

function lookup(dotted) {
  let value = pkg;
  for (const key of dotted.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
    value = value[key];
  }
  return value;
}

switch (command) {
  case 'check':
    break;
  case 'get': {
    const value = lookup(arg);
    if (typeof value === 'string' || typeof value === 'number') process.stdout.write(String(value));
    break;
  }
  case 'has-script': {
    const value = lookup(`scripts.${arg}`);
    process.exit(typeof value === 'string' && value.trim() !== '' ? 0 : 1);
    break;
  }
  default:
    console.error('usage: package-json.cjs FILE check|get PATH|has-script NAME');
    process.exit(2);
}
