import { expect } from 'chai';
import { UsageError } from '../shared/errors.js';
import { repoTagFor } from '../slugbuilder/image/archive.js';
import { parseReference } from '../slugbuilder/image/reference.js';

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
    expect(() => parseReference('myapp:v1')).to.throw(UsageError, /unknown image reference "myapp:v1": use oci:DIR/);
    expect(() => parseReference('docker://myapp:v1')).to.throw(UsageError, /names no registry host: write docker:\/\/HOST/);
    expect(() => parseReference('docker://127.0.0.1:5000/MyApp:v1')).to.throw(UsageError, /not a valid repository name/);
    expect(() => parseReference('docker://127.0.0.1:5000/app:bad tag')).to.throw(UsageError, /not a valid tag/);
    expect(() => parseReference('docker://127.0.0.1:5000/app@sha256:abc')).to.throw(UsageError, /not a sha256 digest/);
    expect(() => parseReference('oci:')).to.throw(UsageError, /has no path/);
  });

  it('names docker-load tags after the file unless a name is given', () => {
    expect(repoTagFor('/x/myapp.tar', undefined)).to.equal('myapp:latest');
    expect(repoTagFor('/x/My App.tar', 'v42')).to.equal('my-app:v42');
    expect(repoTagFor('/x/a.tar', 'myapp:v42')).to.equal('myapp:v42');
    expect(repoTagFor('/x/a.tar', '127.0.0.1:5000/team/app:1')).to.equal('127.0.0.1:5000/team/app:1');
  });
});
