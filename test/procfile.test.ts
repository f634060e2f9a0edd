import { expect } from 'chai';
import { parseProcfile } from '../shared/procfile.js';

describe('Procfile parsing', () => {
  it('reads type: command lines', () => {
    expect(parseProcfile('web: node server.js\nworker: node worker.js\n')).to.deep.equal({
      web: 'node server.js',
      worker: 'node worker.js',
    });
  });

  it('keeps everything after the first colon, colons and all', () => {
    expect(parseProcfile('web: bundle exec puma -b tcp://0.0.0.0:$PORT\n')).to.deep.equal({
      web: 'bundle exec puma -b tcp://0.0.0.0:$PORT',
    });
  });

  it('skips comments, blank lines and lines without a colon (merge-conflict markers)', () => {
    const text = '# the web process\n\n<<<<<<< HEAD\nweb: one\n=======\n>>>>>>> branch\n  # indented comment\n';
    expect(parseProcfile(text)).to.deep.equal({ web: 'one' });
  });

  it('lets the first definition of a type win', () => {
    expect(parseProcfile('web: first\nweb: second\n')).to.deep.equal({ web: 'first' });
  });

  it('accepts letters, digits, dash and underscore in type names and rejects others', () => {
    expect(parseProcfile('web-2_x: a\nbad name: b\nbad.dot: c\n')).to.deep.equal({ 'web-2_x': 'a' });
  });

  it('handles CRLF line endings and surrounding spaces', () => {
    expect(parseProcfile('web:   node s.js  \r\nclock:ruby c.rb\r\n')).to.deep.equal({ web: 'node s.js', clock: 'ruby c.rb' });
  });

  it('ignores a type with an empty command', () => {
    expect(parseProcfile('web:\nworker: run\n')).to.deep.equal({ worker: 'run' });
  });

  it('keeps # inside a command (bash treats it as a comment at run time)', () => {
    expect(parseProcfile('web: node s.js # the server\n')).to.deep.equal({ web: 'node s.js # the server' });
  });

  it('returns nothing for an empty file', () => {
    expect(parseProcfile('')).to.deep.equal({});
  });
});
