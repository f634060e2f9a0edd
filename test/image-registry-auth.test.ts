import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { UserError } from '../shared/errors.js';
import { isLoopbackHost } from '../slugbuilder/image/registry.js';
import { findCredentials, parseChallenge } from '../slugbuilder/image/registry-auth.js';

describe('registry auth pieces', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'slugkit-auth-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('parses Bearer challenges whose quoted values hold commas', () => {
    const c = parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull,push"');
    expect(c).to.deep.equal({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:team/app:pull,push' },
    });
    expect(parseChallenge('Basic realm="x"')).to.deep.equal({ scheme: 'basic', params: { realm: 'x' } });
    expect(parseChallenge('Negotiate abc')).to.equal(undefined);
  });

  it('reads credentials from DOCKER_CONFIG auths, matching the host whatever the key style', async () => {
    const auth = Buffer.from('deploy:s3cret:with:colons').toString('base64');
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ auths: { 'https://127.0.0.1:5999/v1/': { auth } } }));
    const creds = await findCredentials('127.0.0.1:5999', { DOCKER_CONFIG: dir });
    expect(creds).to.include({ username: 'deploy', password: 's3cret:with:colons' });
    expect(await findCredentials('127.0.0.1:6000', { DOCKER_CONFIG: dir })).to.equal(undefined);
    // The environment wins over the file.
    expect(
      await findCredentials('127.0.0.1:5999', { DOCKER_CONFIG: dir, REGISTRY_USERNAME: 'ci', REGISTRY_PASSWORD: 'pw-from-env' }),
    ).to.include({ username: 'ci', source: 'REGISTRY_USERNAME/REGISTRY_PASSWORD' });
  });

  it('says which file is broken when config.json is not JSON', async () => {
    await writeFile(path.join(dir, 'config.json'), '{not json');
    const err = await findCredentials('127.0.0.1:5999', { DOCKER_CONFIG: dir }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(UserError);
    expect((err as Error).message).to.include(`${path.join(dir, 'config.json')} is not valid JSON`);
  });

  it('treats only loopback hosts as plain-HTTP by default', () => {
    expect(isLoopbackHost('127.0.0.1:5000')).to.equal(true);
    expect(isLoopbackHost('localhost:5000')).to.equal(true);
    expect(isLoopbackHost('[::1]:5000')).to.equal(true);
    expect(isLoopbackHost('registry.example.com')).to.equal(false);
    expect(isLoopbackHost('10.0.0.1:5000')).to.equal(false);
  });
});
