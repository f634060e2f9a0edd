import { expect } from 'chai';
import { UsageError } from '../shared/errors.js';
import { repoTagFor } from '../slugbuilder/image/archive.js';
import { describeReference, fullName, parseReference } from '../slugbuilder/image/reference.js';

describe('image references', () => {
  it('parses the four transports', () => {
    expect(parseReference('oci:./runner-layout:24')).to.include({ kind: 'oci', dir: './runner-layout', tag: '24' });
    expect(parseReference('oci:/tmp/layout')).to.include({ kind: 'oci', dir: '/tmp/layout', tag: undefined });
    expect(parseReference('oci-archive:./myapp.tar')).to.include({ kind: 'oci-archive', file: './myapp.tar', ref: undefined });
    expect(parseReference('oci-archive:app.tar:myapp:v42')).to.include({ kind: 'oci-archive', file: 'app.tar', ref: 'myapp:v42' });
    expect(parseReference('docker-archive:saved.tar')).to.include({ kind: 'docker-archive', file: 'saved.tar' });
    expect(parseReference('docker://127.0.0.1:5000/runner:24')).to.include({
      kind: 'registry',
      host: '127.0.0.1:5000',
      repository: 'runner',
      tag: '24',
    });
    expect(parseReference('docker://registry.example.com/team/app')).to.include({ repository: 'team/app', tag: 'latest' });
    const digest = 'sha256:' + 'a'.repeat(64);
    expect(parseReference(`docker://localhost/app@${digest}`)).to.include({ host: 'localhost', repository: 'app', digest, tag: undefined });
  });

  it('refuses what it cannot use, with the forms it accepts', () => {
    expect(() => parseReference('./app.tar')).to.throw(UsageError, /unknown image reference ".\/app.tar": use oci:DIR/);
    expect(() => parseReference('MyApp:v1')).to.throw(UsageError, /unknown image reference "MyApp:v1": .* or a Docker name/);
    expect(() => parseReference('docker://127.0.0.1:5000/MyApp:v1')).to.throw(UsageError, /not a valid repository name/);
    expect(() => parseReference('docker://127.0.0.1:5000/app:bad tag')).to.throw(UsageError, /not a valid tag/);
    expect(() => parseReference('docker://127.0.0.1:5000/app@sha256:abc')).to.throw(UsageError, /not a sha256 digest/);
    expect(() => parseReference('oci:')).to.throw(UsageError, /has no path/);
  });

  it('reads Docker names as docker does: no host means Docker Hub, one component means library/', () => {
    const hub = (text: string) => {
      const ref = parseReference(text);
      return ref.kind === 'registry' ? fullName(ref) : ref.kind;
    };
    expect(hub('heroku/heroku:24')).to.equal('docker.io/heroku/heroku:24');
    expect(hub('debian:bookworm')).to.equal('docker.io/library/debian:bookworm');
    expect(hub('debian')).to.equal('docker.io/library/debian:latest');
    expect(hub('docker://debian:bookworm-slim')).to.equal('docker.io/library/debian:bookworm-slim');
    expect(hub('docker.io/paketobuildpacks/run-jammy-base')).to.equal('docker.io/paketobuildpacks/run-jammy-base:latest');
    expect(hub('index.docker.io/library/node:20')).to.equal('docker.io/library/node:20');
    expect(hub('ghcr.io/team/app:1')).to.equal('ghcr.io/team/app:1');
    expect(hub('localhost:5000/app')).to.equal('localhost:5000/app:latest');
    expect(hub('oci:debian:bookworm')).to.equal('oci');
    expect(describeReference(parseReference('debian:bookworm'))).to.equal('debian:bookworm (docker.io/library/debian:bookworm)');
    expect(describeReference(parseReference('docker://127.0.0.1:5000/app:v1'))).to.equal('docker://127.0.0.1:5000/app:v1');
  });

  it('names docker-load tags after the file unless a name is given', () => {
    expect(repoTagFor('/x/myapp.tar', undefined)).to.equal('myapp:latest');
    expect(repoTagFor('/x/My App.tar', 'v42')).to.equal('my-app:v42');
    expect(repoTagFor('/x/a.tar', 'myapp:v42')).to.equal('myapp:v42');
    expect(repoTagFor('/x/a.tar', '127.0.0.1:5000/team/app:1')).to.equal('127.0.0.1:5000/team/app:1');
  });
});
