import { expect } from 'chai';
import { appOwner } from '../slugbuilder/image/config.js';

describe('app layer owner', () => {
  it('takes the flags, else the run image numeric User, else 1000:1000', () => {
    expect(appOwner('1500:0', 42, 43)).to.include({ uid: 42, gid: 43, source: '--app-uid/--app-gid' });
    expect(appOwner('1500:0', undefined, undefined)).to.include({ uid: 1500, gid: 0 });
    expect(appOwner('1500', undefined, 7)).to.include({ uid: 1500, gid: 7 });
    expect(appOwner('1500', undefined, undefined)).to.include({ uid: 1500, gid: 0 });
    expect(appOwner(undefined, undefined, undefined)).to.deep.equal({ uid: 1000, gid: 1000, source: 'the default' });
    expect(appOwner('0:0', undefined, undefined)).to.deep.equal({ uid: 1000, gid: 1000, source: 'the default' });
    expect(appOwner('root', undefined, undefined)).to.deep.equal({ uid: 1000, gid: 1000, source: 'the default' });
    expect(appOwner('slugkit', undefined, undefined).warning).to.equal(
      'run image User "slugkit" is a name: /app is owned by 1000:1000; pass --app-uid and --app-gid to match it',
    );
  });
});
