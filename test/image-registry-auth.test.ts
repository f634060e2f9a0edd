import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { UserError } from '../shared/errors.js';
import { isLoopbackHost, RegistryClient } from '../slugbuilder/image/registry.js';
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

  it("sends a helper's <token> answer to the token realm as an OAuth2 refresh token, never as Basic", async () => {
    const bin = path.join(dir, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(
      path.join(bin, 'docker-credential-idtok'),
      '#!/bin/sh\nread -r server\nprintf \'{"ServerURL":"%s","Username":"<token>","Secret":"identity-tok-123456"}\' "$server"\n',
      { mode: 0o755 },
    );
    const seen: Array<{ method: string; url: string; auth?: string; body: string }> = [];
    const server = http.createServer(async (req, res) => {
      let body = '';
      for await (const c of req) body += c;
      seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body });
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      if (req.url === '/token' && req.method === 'POST') {
        const form = new URLSearchParams(body);
        if (form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === 'identity-tok-123456') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"granted-access-987654"}');
        } else res.writeHead(401).end();
        return;
      }
      if (req.headers.authorization !== 'Bearer granted-access-987654') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${origin}/token",service="test"` }).end();
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      await writeFile(path.join(dir, 'config.json'), JSON.stringify({ credHelpers: { [host]: 'idtok' } }));
      const client = new RegistryClient(host, { env: { DOCKER_CONFIG: dir, PATH: `${bin}:${process.env.PATH}` } });
      const err = await client.manifestGet('app', 'v1').catch((e: unknown) => e);
      expect((err as Error).message).to.equal(`image ${host}/app:v1 not found: check the name and tag`);
      const token = seen.find((r) => r.url === '/token');
      expect(token?.method).to.equal('POST');
      expect(token?.auth).to.equal(undefined);
      expect(Object.fromEntries(new URLSearchParams(token?.body))).to.include({
        grant_type: 'refresh_token',
        refresh_token: 'identity-tok-123456',
        service: 'test',
        scope: 'repository:app:pull',
      });
    } finally {
      server.close();
    }
  });

  it('treats only loopback hosts as plain-HTTP by default', () => {
    expect(isLoopbackHost('127.0.0.1:5000')).to.equal(true);
    expect(isLoopbackHost('localhost:5000')).to.equal(true);
    expect(isLoopbackHost('[::1]:5000')).to.equal(true);
    expect(isLoopbackHost('registry.example.com')).to.equal(false);
    expect(isLoopbackHost('10.0.0.1:5000')).to.equal(false);
  });
});
