/** shared/app/buildpack-api.ts: the versions slugkit speaks and each per-version rule, by name. */
import { expect } from 'chai';
import {
  apiAtLeast,
  execsProcessesDirectly,
  hasExecEnv,
  honoursWorkingDir,
  isSupportedApi,
  SUPPORTED_APIS,
  sourcesLayerProfiles,
  userArgsReplaceArgs,
  usesTargets,
} from '../shared/app/buildpack-api.js';

describe('the Buildpack API (shared/app/buildpack-api.ts)', () => {
  it('supports 0.7 to 0.12, and nothing else', () => {
    expect([...SUPPORTED_APIS]).to.deep.equal(['0.7', '0.8', '0.9', '0.10', '0.11', '0.12']);
    expect(isSupportedApi('0.10')).to.equal(true);
    expect(isSupportedApi('0.6')).to.equal(false);
    expect(isSupportedApi('0.13')).to.equal(false);
  });

  it('compares minor versions as numbers, and a major version above all 0.x', () => {
    expect(apiAtLeast('0.10', '0.9')).to.equal(true);
    expect(apiAtLeast('0.9', '0.10')).to.equal(false);
    expect(apiAtLeast('1', '0.12')).to.equal(true);
  });

  it('names each rule at the version it changes', () => {
    const at = (rule: (api: string) => boolean) => SUPPORTED_APIS.filter((v) => rule(v));
    expect(at(honoursWorkingDir)).to.deep.equal(['0.8', '0.9', '0.10', '0.11', '0.12']);
    expect(at(execsProcessesDirectly)).to.deep.equal(['0.9', '0.10', '0.11', '0.12']);
    expect(at(userArgsReplaceArgs)).to.deep.equal(['0.9', '0.10', '0.11', '0.12']);
    expect(at(sourcesLayerProfiles)).to.deep.equal(['0.7', '0.8']);
    expect(at(usesTargets)).to.deep.equal(['0.10', '0.11', '0.12']);
    expect(at(hasExecEnv)).to.deep.equal(['0.12']);
  });
});
