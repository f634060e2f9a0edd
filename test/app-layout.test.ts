/**
 * shared/app/layout.ts: every path of a built app, said once in TypeScript
 * and again only where bash must spell it (bin/dyno.bash, bin/slugrunner);
 * and the import graph that keeps the two programs apart (the built app is
 * the only thing they share).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import {
  BUILDER_OWNED,
  buildpackLayersDir,
  LAUNCH_METADATA,
  LAUNCH_PLAN,
  LAYERS,
  layersDirName,
  PLAN_STAMPED,
  PROCFILE,
  RELEASE,
} from '../shared/app/layout.js';
import { ROOT } from './helpers/cli.js';

/** Every .ts file under `dir` of the repo, relative to the repo. */
async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(path.join(ROOT, dir), { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)))
    .sort();
}

/** The repo-relative files a source imports (static and dynamic), resolved from its specifiers. */
async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(path.join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]);
  return specs.map((s) => path.normalize(path.join(path.dirname(file), s)));
}

describe('the built app: layout (shared/app/layout.ts)', () => {
  it('names each file of an app dir relative to it', () => {
    expect([RELEASE, PROCFILE, LAYERS, LAUNCH_METADATA, LAUNCH_PLAN]).to.deep.equal([
      '.release',
      'Procfile',
      '.layers',
      '.layers/config/metadata.toml',
      '.slugkit-launch',
    ]);
    expect(PLAN_STAMPED).to.deep.equal(['.release', 'Procfile', '.layers/config/metadata.toml']);
    expect(BUILDER_OWNED).to.deep.equal(['.release', '.slugkit-launch', '.layers']);
  });

  it("puts a buildpack's layers under .layers/ with / in its id as _", () => {
    expect(layersDirName('heroku/nodejs-engine')).to.equal('heroku_nodejs-engine');
    expect(buildpackLayersDir('/app', 'a/b/c')).to.equal('/app/.layers/a_b_c');
  });

  it('bin/dyno.bash and bin/slugrunner spell the plan, its magic and its stamped files as layout.ts does', async () => {
    const dyno = await readFile(path.join(ROOT, 'bin/dyno.bash'), 'utf8');
    const stampCase = dyno.match(/case \$name in ([^)]+)\)/);
    expect(stampCase, 'the stamped-file case in dyno.bash').to.not.equal(null);
    expect(stampCase![1].split('|').map((s) => s.trim())).to.deep.equal([...PLAN_STAMPED]);
    const plan = await readFile(path.join(ROOT, 'shared/app/launch-plan.ts'), 'utf8');
    const magic = dyno.match(/__dyno_magic='([^']+)'/)?.[1];
    expect(plan).to.include(`const MAGIC = '${magic}';`);
    const runner = await readFile(path.join(ROOT, 'bin/slugrunner'), 'utf8');
    expect(runner).to.include(`plan_file=$app/${LAUNCH_PLAN}\n`);
  });
});

describe('the import graph: two programs and what they share', () => {
  it('slugbuilder/ never imports slugrunner/, slugrunner/ never imports slugbuilder/, shared/ imports neither', async () => {
    const crossings: string[] = [];
    for (const [dir, forbidden] of [
      ['slugbuilder', ['slugrunner']],
      ['slugrunner', ['slugbuilder']],
      ['shared', ['slugbuilder', 'slugrunner']],
    ] as const) {
      const files = await sources(dir);
      expect(files.length, dir).to.be.greaterThan(0);
      for (const file of files) {
        for (const target of await importsOf(file)) {
          if (forbidden.some((f) => target.startsWith(`${f}/`))) crossings.push(`${file} -> ${target}`);
        }
      }
    }
    expect(crossings).to.deep.equal([]);
  });
});
