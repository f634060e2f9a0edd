/**
 * Path stability end to end: a real bash CNB records absolute paths into its
 * launch layer (the process command, an env file, a symlink), slugbuilder
 * builds the app in place at --app-dir and removes what it made there, and
 * slugrunner unpacks the slug at the same --app-dir and runs the process from
 * those paths, through the Node runner and through the fast start.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { makeApp, removeTempDirs, runBuilder, runRunner, tarOf, tempDir } from './helpers/cli.js';
import { writeCnb } from './helpers/cnb.js';

// What the buildpack writes: everything by the absolute path of its layers dir ($1).
const BUILD = String.raw`
layer="$1/tools"
mkdir -p "$layer/bin" "$layer/env.launch" "$layer/share"
printf 'hello from the layer\n' > "$layer/share/greeting"
ln -s "$layer/share/greeting" "$layer/bin/greeting"
cat > "$layer/bin/serve" <<'SH'
#!/usr/bin/env bash
printf 'serve=%s greeting=%s tools=%s args=%s\n' "$0" "$(cat "$GREETING_FILE")" "$TOOLS_HOME" "$*"
SH
chmod +x "$layer/bin/serve"
printf '%s' "$layer/bin/greeting" > "$layer/env.launch/GREETING_FILE"
printf '%s' "$layer" > "$layer/env.launch/TOOLS_HOME.default"
printf '[types]\nlaunch = true\n' > "$1/tools.toml"
cat > "$1/launch.toml" <<TOML
[[processes]]
type = "web"
command = ["$layer/bin/serve"]
args = ["--from-launch-toml"]
default = true
TOML
`;

/** Builds a one-file app with the CNB above, in place at a fresh --app-dir; returns that dir and the slug. */
async function buildWithTools(): Promise<{ appDir: string; out: string }> {
  const bp = await writeCnb(path.join(await tempDir('slugkit-cnb-'), 'tools'), { id: 'example/tools', api: '0.10', build: BUILD });
  const appDir = path.join(await tempDir(), 'app');
  const out = path.join(await tempDir(), 'slug.tgz');
  const input = await tarOf(await makeApp({ 'index.txt': 'app\n' }));
  const built = await runBuilder(['--app-dir', appDir, '--buildpack', bp, '--cache-dir', path.join(await tempDir(), 'cache'), '-o', out], {
    input,
  });
  expect(built.exitCode, built.stderr).to.equal(0);
  return { appDir, out };
}

describe('CNB path stability: built in place, run at the same --app-dir', function () {
  this.timeout(120_000);
  after(removeTempDirs);

  it('runs a process whose command, env file and symlink are absolute paths into its layer', async () => {
    const { appDir, out } = await buildWithTools();
    // The build removed what it made in the app dir: the runner finds it empty and unpacks the slug there.
    expect(await readdir(appDir).catch(() => [])).to.deep.equal([]);

    const layer = path.join(appDir, '.layers/example_tools/tools');
    const expected = `serve=${layer}/bin/serve greeting=hello from the layer tools=${layer} args=--from-launch-toml\n`;
    const first = await runRunner(['--app-dir', appDir, '--slug', out, '-q', 'start']);
    expect(first.stderr).to.equal('');
    expect(first.exitCode).to.equal(0);
    expect(String(first.stdout)).to.equal(expected);

    // The app dir is populated now: the next start takes the fast path, from the same paths.
    const again = await runRunner(['--app-dir', appDir, '-q', 'start', 'web'], { env: { ...process.env, SLUGKIT_DEBUG_START: '1' } });
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(again.stderr).to.equal('slugrunner: fast start\n');
    expect(String(again.stdout)).to.equal(expected);

    // User arguments replace the process's args (API 0.9+).
    const withArgs = await runRunner(['--app-dir', appDir, '-q', 'start', 'web', '--', 'a', 'b c']);
    expect(withArgs.exitCode, withArgs.stderr).to.equal(0);
    expect(String(withArgs.stdout)).to.equal(expected.replace('args=--from-launch-toml', 'args=a b c'));
  });

  it('fails with one line when the slug is run at another --app-dir, naming the cause', async () => {
    const { appDir, out } = await buildWithTools();
    const elsewhere = path.join(await tempDir(), 'elsewhere');
    const res = await runRunner(['--app-dir', elsewhere, '--slug', out, '-q', 'start', 'web']);
    expect(res.exitCode).to.equal(127);
    const lines = res.stderr.split('\n').filter((l) => l.startsWith(' !     '));
    expect(lines, res.stderr).to.have.length(1);
    expect(lines[0]).to.include(`cannot run ${appDir}/.layers/example_tools/tools/bin/serve: not found`);
    expect(lines[0]).to.include('--app-dir is the dir the app was built in');
  });
});
