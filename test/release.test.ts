import { expect } from 'chai';
import { UserError } from '../shared/errors.js';
import { parseRelease } from '../shared/release.js';

/** The error a parse rejects with (the test fails if it resolves). */
async function rejection(text: string, origin: string): Promise<Error> {
  try {
    await parseRelease(text, origin);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

describe('release YAML parsing', () => {
  const empty = { addons: [], config_vars: {}, default_process_types: {} };

  for (const [label, text] of [
    ['empty output', ''],
    ['a bare ---', '---\n'],
    ['--- {}', '--- {}\n'],
  ] as const) {
    it(`accepts ${label}`, async () => {
      expect(await parseRelease(text, 'bin/release')).to.deep.equal(empty);
    });
  }

  it('reads a full release', async () => {
    const text =
      '---\naddons:\n  - heroku-postgresql\nconfig_vars:\n  LANG: en_US.UTF-8\n  WORKERS: 4\ndefault_process_types:\n  web: bin/server\n';
    expect(await parseRelease(text, 'bin/release')).to.deep.equal({
      addons: ['heroku-postgresql'],
      config_vars: { LANG: 'en_US.UTF-8', WORKERS: '4' },
      default_process_types: { web: 'bin/server' },
    });
  });

  it('rejects invalid YAML with one line naming the origin', async () => {
    const err = await rejection('default_process_types: [web: {', 'bin/release of buildpack x');
    expect(err).to.be.instanceOf(UserError);
    expect(err.message).to.match(/^bin\/release of buildpack x printed invalid YAML: /);
    expect(err.message).to.not.include('\n');
  });

  it('rejects a document that is not a mapping', async () => {
    const err = await rejection('- a\n- b\n', 'bin/release');
    expect(err).to.be.instanceOf(UserError);
    expect(err.message).to.match(/not a mapping/);
  });

  it('rejects default_process_types that is not a mapping', async () => {
    const err = await rejection('default_process_types: web\n', 'bin/release');
    expect(err).to.be.instanceOf(UserError);
    expect(err.message).to.match(/default_process_types must be a mapping/);
  });
});
