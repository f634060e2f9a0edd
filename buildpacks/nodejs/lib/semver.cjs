#!/usr/bin/env node
// Checks a version against an npm-style range, without any npm package (the
// buildpack must run on a bare stack image).
//
//   node semver.cjs VERSION RANGE   exit 0: satisfies, 1: does not, 2: range not understood
//   require('./semver.cjs').satisfies(VERSION, RANGE)   true, false, or null (not understood)
//
// Understood: exact and partial versions (20, 20.1, 20.x, *), comparators
// (>= > <= < =), caret (^), tilde (~ and ~>), hyphen ranges (1.2 - 3),
// space-separated AND and "||" OR. Prerelease and build tags are ignored:
// stack images ship release builds.
'use strict';

/** "v20.1" -> [20, 1, null]; wildcards become null; null for garbage. */
function parsePartial(text) {
  const clean = text
    .trim()
    .replace(/^v/i, '')
    .replace(/[-+].*$/, '');
  const parts = clean.split('.');
  if (parts.length > 3 || clean === '') return null;
  const out = [null, null, null];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p === 'x' || p === 'X' || p === '*') break;
    if (!/^\d+$/.test(p)) return null;
    out[i] = Number(p);
  }
  return out;
}

function cmp(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

const fill = (p) => p.map((n) => n ?? 0);

/** The version just past a partial one: 20 -> 21.0.0, 20.1 -> 20.2.0. */
function nextAfter(p) {
  if (p[1] === null) return [p[0] + 1, 0, 0];
  if (p[2] === null) return [p[0], p[1] + 1, 0];
  return [p[0], p[1], p[2] + 1];
}

/** One comparator ("^1.2", ">=3", "1.x") as a list of [op, fullVersion] tests. */
function expand(op, p) {
  if (p[0] === null) return op === '<' || op === '>' ? [['<', [0, 0, 0]]] : [];
  const full = p[2] !== null;
  switch (op) {
    case '':
    case '=':
      return full
        ? [['=', p]]
        : [
            ['>=', fill(p)],
            ['<', nextAfter(p)],
          ];
    case '>=':
      return [['>=', fill(p)]];
    case '>':
      return full ? [['>', p]] : [['>=', nextAfter(p)]];
    case '<':
      return [['<', fill(p)]];
    case '<=':
      return full ? [['<=', p]] : [['<', nextAfter(p)]];
    case '~':
    case '~>':
      return [
        ['>=', fill(p)],
        ['<', p[1] === null ? [p[0] + 1, 0, 0] : [p[0], p[1] + 1, 0]],
      ];
    case '^': {
      let upper;
      if (p[0] > 0 || p[1] === null) upper = [p[0] + 1, 0, 0];
      else if (p[1] > 0 || p[2] === null) upper = [0, p[1] + 1, 0];
      else upper = [0, 0, p[2] + 1];
      return [
        ['>=', fill(p)],
        ['<', upper],
      ];
    }
    default:
      return null;
  }
}

/** A range as OR-ed lists of AND-ed tests, or null when it is not understood. */
function parseRange(range) {
  const alternatives = [];
  for (const alt of range.split('||')) {
    const tests = [];
    const hyphen = alt.match(/^\s*(\S+)\s+-\s+(\S+)\s*$/);
    if (hyphen) {
      const lo = parsePartial(hyphen[1]);
      const hi = parsePartial(hyphen[2]);
      if (!lo || !hi) return null;
      tests.push(...expand('>=', lo), ...expand('<=', hi));
    } else {
      // ">= 1.2" is allowed: glue an operator to the version after it.
      const tokens = alt
        .trim()
        .replace(/(>=|<=|~>|[<>=^~])\s+/g, '$1')
        .split(/\s+/)
        .filter(Boolean);
      for (const token of tokens) {
        const m = token.match(/^(>=|<=|~>|[<>=^~])?(.*)$/);
        const p = parsePartial(m[2]);
        const expanded = p && expand(m[1] ?? '', p);
        if (!expanded) return null;
        tests.push(...expanded);
      }
    }
    alternatives.push(tests);
  }
  return alternatives;
}

function holds(version, [op, bound]) {
  const c = cmp(version, bound);
  return { '=': c === 0, '>=': c >= 0, '>': c > 0, '<=': c <= 0, '<': c < 0 }[op];
}

function satisfies(versionText, range) {
  const v = parsePartial(versionText);
  const alternatives = parseRange(range);
  if (!v || v.includes(null) || !alternatives) return null;
  return alternatives.some((tests) => tests.every((t) => holds(v, t)));
}

module.exports = { satisfies };

if (require.main === module) {
  const [version, range] = process.argv.slice(2);
  if (version === undefined || range === undefined) {
    console.error('usage: semver.cjs VERSION RANGE');
    process.exit(2);
  }
  const result = satisfies(version, range);
  process.exit(result === null ? 2 : result ? 0 : 1);
}
