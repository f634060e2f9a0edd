/**
 * The CNB detect side on real bash buildpacks: bin/detect's inputs and exit
 * codes per Buildpack API family, build plans with alternatives and unmet
 * requires, composites with optional members, orders whose first group
 * fails, mixed classic/CNB groups, and stack and target checks.
 */

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { UserError } from '../shared/errors.js';
import { type GroupMember, readBuildpackDescriptor } from '../slugbuilder/buildpacks/cnb/descriptor.js';
import {
  type BuildTarget,
  buildTarget,
  type DetectContext,
  detectCnb,
  parseOsRelease,
  platformMismatch,
} from '../slugbuilder/buildpacks/cnb/detect.js';
import { detectOrder, type OrderBuildpack, selectGroup } from '../slugbuilder/buildpacks/cnb/order.js';
import { buildpackPlanToml, parseBuildPlan } from '../slugbuilder/buildpacks/cnb/plan.js';
import { makeBuildpack, removeTempDirs, tempDir } from './helpers/cli.js';
import { type CnbSpec, detectWithPlan, writeCnb, writeComposite } from './helpers/cnb.js';

const AMD64_UBUNTU: BuildTarget = { os: 'linux', arch: 'amd64', distro: { name: 'ubuntu', version: '24.04' } };

interface World {
  root: string;
  ctx: DetectContext;
  dirs: Map<string, string>;
  cnb(spec: Omit<CnbSpec, 'api'> & { api?: string }): Promise<string>;
  classic(name: string, detect: string): Promise<string>;
  lookup(m: GroupMember): Promise<OrderBuildpack>;
}

async function world(target: BuildTarget = AMD64_UBUNTU, stack = 'heroku-24'): Promise<World> {
  const root = await tempDir('slugkit-cnb-detect-');
  for (const sub of ['app', 'platform/env', 'scratch', 'bps']) await mkdir(path.join(root, sub), { recursive: true });
  const dirs = new Map<string, string>();
  const w: World = {
    root,
    dirs,
    ctx: {
      appDir: path.join(root, 'app'),
      platformDir: path.join(root, 'platform'),
      scratchDir: path.join(root, 'scratch'),
      env: { PATH: process.env.PATH, HOME: root },
      platform: { stack, target },
    },
    async cnb(spec) {
      const dir = await writeCnb(path.join(root, 'bps', spec.id.replace(/\//g, '_')), { api: '0.10', ...spec });
      dirs.set(spec.id, dir);
      return dir;
    },
    async classic(name, detect) {
      const dir = await makeBuildpack({ detect, compile: 'exit 0' }, name);
      dirs.set(name, dir);
      return dir;
    },
    async lookup(m) {
      const dir = dirs.get(m.id);
      if (!dir) throw new UserError(`unknown buildpack ${m.id}`);
      const descriptor = await readBuildpackDescriptor(dir);
      return { id: descriptor?.id ?? m.id, version: descriptor?.version, dir, descriptor };
    },
  };
  return w;
}

const member = (id: string, optional = false): GroupMember => ({ id, optional });

async function detectOne(w: World, dir: string) {
  const d = await readBuildpackDescriptor(dir);
  return detectCnb(d!, w.ctx);
}

describe('CNB detect', function () {
  this.timeout(30_000);
  after(removeTempDirs);

  describe('bin/detect exit codes', () => {
    it('passes on 0 with the plan it wrote, fails on 100, and is an error naming the buildpack on any other code', async () => {
      const w = await world();
      const pass = await detectOne(w, await w.cnb({ id: 't/pass', detect: detectWithPlan('[[provides]]\nname = "node"') }));
      expect(pass.status).to.equal('pass');
      expect(pass.status === 'pass' && pass.plan.provides).to.deep.equal([{ name: 'node' }]);

      const fail = await detectOne(w, await w.cnb({ id: 't/fail', detect: 'exit 100' }));
      expect(fail.status).to.equal('fail');

      const broken = await detectOne(w, await w.cnb({ id: 't/broken', version: '1.2.0', detect: 'exit 3' }));
      expect(broken).to.include({ status: 'error', message: 'buildpack t/broken@1.2.0: bin/detect failed (exit 3)' });

      const one = await detectOne(w, await w.cnb({ id: 't/one', detect: 'exit 1' }));
      expect(one.status).to.equal('error');
    });

    it('bad plan TOML is one line naming the buildpack and the line', async () => {
      const w = await world();
      const r = await detectOne(w, await w.cnb({ id: 't/badplan', detect: detectWithPlan('[[provides]]\nname = "node"\nname = ') }));
      expect(r.status).to.equal('error');
      const message = r.status === 'error' ? r.message : '';
      expect(message).to.match(/^buildpack t\/badplan@0\.0\.1: build plan from bin\/detect: invalid TOML at line 3: /);
      expect(message).to.not.include('\n');
    });

    it('a plan entry without a name is an error naming the buildpack', async () => {
      const w = await world();
      const r = await detectOne(w, await w.cnb({ id: 't/noname', detect: detectWithPlan('[[requires]]\nversion = "1"') }));
      expect(r).to.include({
        status: 'error',
        message: 'buildpack t/noname@0.0.1: build plan from bin/detect: [[requires]] entry 1 has no name',
      });
    });
  });

  describe('bin/detect inputs', () => {
    const probe = [
      'test -f "$2" && test ! -s "$2" && echo "plan-empty=yes" >> inputs',
      'echo "pwd=$PWD" >> inputs',
      'echo "arg1=$1" >> inputs',
      'echo "arg2=$2" >> inputs',
      'env | grep -E "^(CNB_|GREETING=)" | sort >> inputs',
    ].join('\n');

    async function inputs(w: World, api: string, extraToml = ''): Promise<Record<string, string>> {
      const dir = await w.cnb({ id: `t/probe-${api}`, api, detect: probe, extraToml });
      await writeFile(path.join(w.ctx.platformDir, 'env', 'GREETING'), 'hello');
      const r = await detectOne(w, dir);
      expect(r.status).to.equal('pass');
      const text = await readFile(path.join(w.ctx.appDir, 'inputs'), 'utf8');
      await writeFile(path.join(w.ctx.appDir, 'inputs'), '');
      return Object.fromEntries(
        text
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    }

    it('API 0.8: platform dir and plan path as $1/$2 and CNB_* variables, config vars from <platform>/env, no target variables', async () => {
      const w = await world();
      const got = await inputs(w, '0.8');
      expect(got['plan-empty']).to.equal('yes');
      expect(got.pwd).to.equal(w.ctx.appDir);
      expect(got.arg1).to.equal(w.ctx.platformDir);
      expect(got.CNB_PLATFORM_DIR).to.equal(w.ctx.platformDir);
      expect(got.CNB_BUILD_PLAN_PATH).to.equal(got.arg2);
      expect(got.arg2.startsWith(w.ctx.scratchDir + path.sep)).to.equal(true);
      expect(got.CNB_BUILDPACK_DIR).to.equal(w.dirs.get('t/probe-0.8'));
      expect(got.CNB_STACK_ID).to.equal('heroku-24');
      expect(got.GREETING).to.equal('hello');
      expect(got).to.not.have.property('CNB_TARGET_OS');
    });

    it('API 0.10: CNB_TARGET_* from the build target, no CNB_EXEC_ENV', async () => {
      const w = await world();
      const got = await inputs(w, '0.10');
      expect(got).to.include({
        CNB_TARGET_OS: 'linux',
        CNB_TARGET_ARCH: 'amd64',
        CNB_TARGET_DISTRO_NAME: 'ubuntu',
        CNB_TARGET_DISTRO_VERSION: '24.04',
      });
      expect(got).to.not.have.property('CNB_EXEC_ENV');
    });

    it('API 0.12: CNB_EXEC_ENV is production', async () => {
      const w = await world();
      expect(await inputs(w, '0.12')).to.include({ CNB_EXEC_ENV: 'production', CNB_TARGET_OS: 'linux' });
    });

    it('clear-env keeps the config vars out', async () => {
      const w = await world();
      const got = await inputs(w, '0.10', '');
      expect(got.GREETING).to.equal('hello');
      const dir = await w.cnb({ id: 't/clear', detect: probe });
      const toml = await readFile(path.join(dir, 'buildpack.toml'), 'utf8');
      await writeFile(path.join(dir, 'buildpack.toml'), toml.replace('[buildpack]\n', '[buildpack]\nclear-env = true\n'));
      await detectOne(w, dir);
      const text = await readFile(path.join(w.ctx.appDir, 'inputs'), 'utf8');
      expect(text).to.include('CNB_PLATFORM_DIR=');
      expect(text).to.not.include('GREETING');
    });
  });

  describe('build plan resolution', () => {
    it("gives the provider the requirers' entries with their metadata, in the lifecycle's [[entries]] format", async () => {
      const w = await world();
      await w.cnb({ id: 't/node', detect: detectWithPlan('[[provides]]\nname = "node"') });
      await w.cnb({ id: 't/app', detect: detectWithPlan('[[requires]]\nname = "node"\n[requires.metadata]\nversion = "20"') });
      const group = await selectGroup([[member('t/node'), member('t/app')]], { ...w.ctx, lookup: w.lookup });
      expect(group.map((m) => m.buildpack.id)).to.deep.equal(['t/node', 't/app']);
      expect(group[0].plan).to.deep.equal([{ name: 'node', metadata: { version: '20' } }]);
      expect(group[1].plan).to.deep.equal([]);
      expect(parseBuildPlan(buildpackPlanToml(group[0].plan).replaceAll('entries', 'requires'), 'x').requires).to.deep.equal(group[0].plan);
    });

    it('tries [[or]] alternatives in order', async () => {
      const w = await world();
      await w.cnb({ id: 't/node', detect: detectWithPlan('[[provides]]\nname = "node"') });
      const plan = '[[requires]]\nname = "ruby"\n\n[[or]]\n[[or.requires]]\nname = "node"\n[or.requires.metadata]\nfrom = "alternative"';
      await w.cnb({ id: 't/app', detect: detectWithPlan(plan) });
      const group = await selectGroup([[member('t/node'), member('t/app')]], { ...w.ctx, lookup: w.lookup });
      expect(group[0].plan).to.deep.equal([{ name: 'node', metadata: { from: 'alternative' } }]);
    });

    it('an unmet require fails the group with the name; a require is only met by a provider at or before it', async () => {
      const w = await world();
      await w.cnb({ id: 't/node', detect: detectWithPlan('[[provides]]\nname = "node"') });
      await w.cnb({ id: 't/app', detect: detectWithPlan('[[requires]]\nname = "node"') });
      const r = await detectOrder([[member('t/app')], [member('t/app'), member('t/node')]], { ...w.ctx, lookup: w.lookup });
      expect(r.group).to.equal(undefined);
      expect(r.tried).to.deep.equal([
        "group 1: plan unresolved: nothing at or before t/app@0.0.1 provides 'node'",
        "group 2: plan unresolved: nothing at or before t/app@0.0.1 provides 'node'",
      ]);
    });

    it('a provide nobody requires fails the group', async () => {
      const w = await world();
      await w.cnb({ id: 't/node', detect: detectWithPlan('[[provides]]\nname = "node"') });
      const r = await detectOrder([[member('t/node')]], { ...w.ctx, lookup: w.lookup });
      expect(r.tried).to.deep.equal(["group 1: plan unresolved: t/node@0.0.1 provides 'node' but nothing at or after it requires it"]);
    });

    it('drops an optional member to make the plan resolve', async () => {
      const w = await world();
      await w.cnb({ id: 't/node', detect: detectWithPlan('[[provides]]\nname = "node"') });
      await w.cnb({ id: 't/plain' });
      const group = await selectGroup([[member('t/node', true), member('t/plain')]], { ...w.ctx, lookup: w.lookup });
      expect(group.map((m) => m.buildpack.id)).to.deep.equal(['t/plain']);
    });
  });

  describe('orders and composites', () => {
    it('the first group that passes wins; the failed ones are reported', async () => {
      const w = await world();
      await w.cnb({ id: 't/ruby', detect: 'exit 100' });
      await w.cnb({ id: 't/static' });
      const r = await detectOrder([[member('t/ruby')], [member('t/static')]], { ...w.ctx, lookup: w.lookup });
      expect(r.group?.map((m) => m.buildpack.id)).to.deep.equal(['t/static']);
      expect(r.tried).to.deep.equal(['group 1: t/ruby@0.0.1 failed detect']);
    });

    it('expands a composite depth first with its optional member dropped when it fails detect', async () => {
      const w = await world();
      await w.cnb({ id: 't/a' });
      await w.cnb({ id: 't/b', detect: 'exit 100' });
      await w.cnb({ id: 't/c' });
      const meta = await writeComposite(path.join(w.root, 'bps', 't_meta'), {
        id: 't/meta',
        api: '0.10',
        order: [[{ id: 't/a' }, { id: 't/b', optional: true }]],
      });
      w.dirs.set('t/meta', meta);
      const group = await selectGroup([[member('t/meta'), member('t/c')]], { ...w.ctx, lookup: w.lookup });
      expect(group.map((m) => m.buildpack.id)).to.deep.equal(['t/a', 't/c']);
    });

    it('an optional composite whose groups all fail is skipped, the rest of the group still builds', async () => {
      const w = await world();
      await w.cnb({ id: 't/no', detect: 'exit 100' });
      await w.cnb({ id: 't/c' });
      w.dirs.set(
        't/meta',
        await writeComposite(path.join(w.root, 'bps', 't_meta'), { id: 't/meta', api: '0.10', order: [[{ id: 't/no' }]] }),
      );
      const group = await selectGroup([[member('t/meta', true), member('t/c')]], { ...w.ctx, lookup: w.lookup });
      expect(group.map((m) => m.buildpack.id)).to.deep.equal(['t/c']);
    });

    it("runs each buildpack's detect once even when several groups name it", async () => {
      const w = await world();
      const counter = path.join(w.root, 'count');
      await w.cnb({ id: 't/count', detect: `echo run >> ${JSON.stringify(counter)}` });
      await w.cnb({ id: 't/no', detect: 'exit 100' });
      const group = await selectGroup([[member('t/count'), member('t/no')], [member('t/count')]], { ...w.ctx, lookup: w.lookup });
      expect(group.map((m) => m.buildpack.id)).to.deep.equal(['t/count']);
      expect(await readFile(counter, 'utf8')).to.equal('run\n');
    });

    it('mixes classic and CNB members: a classic one passes or fails but takes no part in the plan', async () => {
      const w = await world();
      await w.classic('legacy', 'echo Legacy');
      await w.classic('nope', 'exit 1');
      await w.cnb({ id: 't/cnb' });
      const r = await detectOrder(
        [
          [member('nope'), member('t/cnb')],
          [member('legacy'), member('t/cnb')],
        ],
        { ...w.ctx, lookup: w.lookup },
      );
      expect(r.tried).to.deep.equal(['group 1: nope failed detect']);
      expect(r.group?.map((m) => [m.buildpack.id, m.buildpack.descriptor?.kind, m.plan])).to.deep.equal([
        ['legacy', undefined, []],
        ['t/cnb', 'component', []],
      ]);
    });

    it('no group passing is one line listing every group tried, detect errors with their exit code', async () => {
      const w = await world();
      await w.cnb({ id: 't/ruby', version: '1.0.0', detect: 'exit 100' });
      await w.cnb({ id: 't/crash', version: '2.0.0', detect: 'exit 7' });
      const err = await selectGroup([[member('t/ruby')], [member('t/crash')]], { ...w.ctx, lookup: w.lookup }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).to.be.instanceOf(UserError);
      expect(err!.message).to.equal(
        'no buildpack group passed detection (group 1: t/ruby@1.0.0 failed detect; group 2: buildpack t/crash@2.0.0: bin/detect failed (exit 7)): ' +
          'check the app has what one of these buildpacks looks for, or choose buildpacks with --buildpack',
      );
    });

    it('reports a detect error even when a later group passes', async () => {
      const w = await world();
      await w.cnb({ id: 't/crash', detect: 'echo about to crash; exit 2' });
      await w.cnb({ id: 't/ok' });
      const r = await detectOrder([[member('t/crash')], [member('t/ok')]], { ...w.ctx, lookup: w.lookup });
      expect(r.group?.map((m) => m.buildpack.id)).to.deep.equal(['t/ok']);
      expect(r.errors).to.deep.equal([
        {
          buildpack: 't/crash@0.0.1',
          message: 'buildpack t/crash@0.0.1: bin/detect failed (exit 2)',
          output: 'about to crash',
          required: true,
        },
      ]);
    });
  });

  describe('stacks and targets', () => {
    it('API 0.8: [[stacks]] must name the stack or "*"', async () => {
      const w = await world();
      const only22 = await w.cnb({ id: 't/old', api: '0.8', extraToml: '[[stacks]]\nid = "heroku-22"' });
      await w.cnb({ id: 't/any', api: '0.8', extraToml: '[[stacks]]\nid = "*"' });
      await w.cnb({ id: 't/this', api: '0.8', extraToml: '[[stacks]]\nid = "heroku-20"\n\n[[stacks]]\nid = "heroku-24"' });
      await w.cnb({ id: 't/none', api: '0.8' });
      expect(platformMismatch((await readBuildpackDescriptor(only22))!, w.ctx.platform)).to.equal(
        'buildpack t/old@0.0.1 supports stacks heroku-22; this build is heroku-24',
      );
      const r = await detectOrder([[member('t/old')], [member('t/any'), member('t/this'), member('t/none')]], {
        ...w.ctx,
        lookup: w.lookup,
      });
      expect(r.tried).to.deep.equal(['group 1: buildpack t/old@0.0.1 supports stacks heroku-22; this build is heroku-24']);
      expect(r.group?.map((m) => m.buildpack.id)).to.deep.equal(['t/any', 't/this', 't/none']);
    });

    it('API 0.10: [[targets]] must match os/arch and, when it lists distros, the distro; [[stacks]] no longer counts', async () => {
      const w = await world();
      const arm = await w.cnb({ id: 't/arm', extraToml: '[[targets]]\nos = "linux"\narch = "arm64"' });
      const jammy = await w.cnb({
        id: 't/jammy',
        extraToml: '[[targets]]\nos = "linux"\narch = "amd64"\n[[targets.distros]]\nname = "ubuntu"\nversion = "22.04"',
      });
      await w.cnb({ id: 't/noble', extraToml: '[[targets]]\nos = "linux"\n[[targets.distros]]\nname = "ubuntu"\nversion = "24.04"' });
      await w.cnb({ id: 't/amd', extraToml: '[[targets]]\nos = "linux"\narch = "amd64"\n\n[[stacks]]\nid = "heroku-18"' });
      expect(platformMismatch((await readBuildpackDescriptor(arm))!, w.ctx.platform)).to.equal(
        'buildpack t/arm@0.0.1 supports targets linux/arm64; this build is linux/amd64 (ubuntu 24.04)',
      );
      expect(platformMismatch((await readBuildpackDescriptor(jammy))!, w.ctx.platform)).to.equal(
        'buildpack t/jammy@0.0.1 supports targets linux/amd64 (ubuntu 22.04); this build is linux/amd64 (ubuntu 24.04)',
      );
      const group = await selectGroup([[member('t/arm', true), member('t/noble'), member('t/amd')]], { ...w.ctx, lookup: w.lookup });
      expect(group.map((m) => m.buildpack.id)).to.deep.equal(['t/noble', 't/amd']);
    });

    it('a target listing distros does not match a build whose distro is unknown', async () => {
      const w = await world({ os: 'linux', arch: 'amd64' });
      const noble = await w.cnb({ id: 't/noble', extraToml: '[[targets]]\nos = "linux"\n[[targets.distros]]\nname = "ubuntu"' });
      expect(platformMismatch((await readBuildpackDescriptor(noble))!, w.ctx.platform)).to.equal(
        'buildpack t/noble@0.0.1 supports targets linux/* (ubuntu); this build is linux/amd64',
      );
    });

    it('the build target: linux, the OCI name of the arch, the distro from os-release', async () => {
      const root = await tempDir();
      const osRelease = path.join(root, 'os-release');
      await writeFile(osRelease, 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="24.04"\n');
      const t = await buildTarget({}, osRelease);
      expect(t.os).to.equal('linux');
      expect(t.arch).to.equal({ x64: 'amd64', arm64: 'arm64' }[process.arch as string] ?? t.arch);
      expect(t.distro).to.deep.equal({ name: 'ubuntu', version: '24.04' });
      expect((await buildTarget({ distro: { name: 'debian', version: '12' } }, osRelease)).distro).to.deep.equal({
        name: 'debian',
        version: '12',
      });
      expect(parseOsRelease("ID='alpine'\nVERSION_ID=3.20.1\n")).to.deep.equal({ name: 'alpine', version: '3.20.1' });
    });
  });
});
