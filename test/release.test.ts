import { expect } from 'chai';
import { UserError } from '../shared/errors.js';
import { parseRelease } from '../shared/release.js';

describe('release YAML parsing', () => {
  const empty = { addons: [], config_vars: {}, default_process_types: {} };

  for (const [label, text] of [
    ['empty output', ''],
    ['a bare ---', '---\n'],
    ['--- {}', '--- {}\n'],
  ] as const) {
    it(`accepts ${label}`, () => {
      expect(parseRelease(text, 'bin/release')).to.deep.equal(empty);
    });
  }

  it('reads a full release', () => {
    const text = '---\naddons:\n  - heroku-postgresql\nconfig_vars:\n  LANG: en_US.UTF-8\n  WORKERS: 4\ndefault_process_types:\n  web: bin/server\n';
    expect(parseRelease(text, 'bin/release')).to.deep.equal({
      addons: ['heroku-postgresql'],
      config_vars: { LANG: 'en_US.UTF-8', WORKERS: '4' },
      default_process_types: { web: 'bin/server' },
    });
  });

  it('rejects invalid YAML with one line naming the origin', () => {
    expect(() => parseRelease('default_process_types: [web: {', 'bin/release of buildpack x'))
      .to.throw(UserError, /^bin\/release of buildpack x printed invalid YAML: /)
      .with.property('message').that.does.not.include('\n');
  });

  it('rejects a document that is not a mapping', () => {
    expect(() => parseRelease('- a\n- b\n', 'bin/release')).to.throw(UserError, /not a mapping/);
  });

  it('rejects default_process_types that is not a mapping', () => {
    expect(() => parseRelease('default_process_types: web\n', 'bin/release')).to.throw(UserError, /default_process_types must be a mapping/);
  });
});
