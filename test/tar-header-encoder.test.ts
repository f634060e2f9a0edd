/**
 * The slug writer's header encoder gives node-tar's bytes for every entry:
 * the template fast path for plain names, node-tar itself (pax headers, the
 * prefix field) for the rest. GNU tar reads what it writes.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type EntryData, HeaderEncoder, headerBlocks, type PinnedFields } from '../shared/tar/header-encoder.js';
import { DEFAULT_MTIME, entryFields } from '../shared/tar/pack.js';
import { removeTempDirs, tempDir } from './helpers/cli.js';

function entries(): EntryData[] {
  const out: EntryData[] = [];
  const name = (n: number) => 'a/b-'.padEnd(n, 'x');
  for (let n = 1; n <= 110; n++) {
    out.push({ path: name(n), type: 'File', mode: 0o644, size: n * 37 });
    out.push({ path: `${name(n)}/`, type: 'Directory', mode: 0o755, size: 0 });
    out.push({ path: name(n), type: 'SymbolicLink', mode: 0o777, size: 0, linkpath: `../${'t'.repeat(n)}` });
  }
  for (const size of [0, 1, 511, 512, 0o7777777777, 0o77777777777, 0o77777777777 + 1, 2 ** 40])
    out.push({ path: './node_modules/x/index.js', type: 'File', mode: 0o755, size });
  for (const p of ['./naïve.txt', './日本/語.js', './tab\there', './a b/c', `./${'d/'.repeat(60)}deep.js`])
    out.push({ path: p, type: 'File', mode: 0o644, size: 3 });
  out.push({ path: './link', type: 'SymbolicLink', mode: 0o777, size: 0, linkpath: 'café' });
  out.push({ path: './link', type: 'SymbolicLink', mode: 0o777, size: 0, linkpath: '' });
  return out;
}

const fieldSets: Array<{ label: string; pinned: PinnedFields; modes: ReturnType<typeof entryFields> }> = [
  { label: 'the slug (root, 1980)', pinned: entryFields({}).base, modes: entryFields({}) },
  {
    label: 'an image layer (1000:1000, group-writable, SOURCE_DATE_EPOCH)',
    pinned: entryFields({ uid: 1000, gid: 1000, mtime: new Date(1_700_000_000_000) }).base,
    modes: entryFields({ groupWritable: true }),
  },
  {
    label: 'a far mtime (pax for every entry)',
    pinned: { ...entryFields({}).base, mtime: new Date(2 ** 34 * 1000) },
    modes: entryFields({}),
  },
];

/** The mode packTree gives such an entry. */
function modeOf(entry: EntryData, modes: ReturnType<typeof entryFields>): number {
  if (entry.type === 'Directory') return modes.dirMode;
  if (entry.type === 'SymbolicLink') return 0o777;
  return entry.mode & 0o111 ? modes.execMode : modes.fileMode;
}

describe('tar header encoder', () => {
  after(removeTempDirs);

  for (const { label, pinned, modes } of fieldSets) {
    it(`gives node-tar's bytes for every entry: ${label}`, () => {
      const encoder = new HeaderEncoder(pinned);
      let checked = 0;
      for (const entry of entries()) {
        const data = { ...entry, mode: modeOf(entry, modes) };
        const ours = Buffer.concat(encoder.blocks(data));
        const theirs = Buffer.concat(headerBlocks({ ...pinned, ...data }));
        expect(ours.equals(theirs), `${data.type} ${JSON.stringify(data.path)} size ${data.size}`).to.equal(true);
        checked += 1;
      }
      expect(checked).to.be.greaterThan(330);
    });
  }

  it('writes headers GNU tar lists with their names, sizes, links and modes', async () => {
    const dir = await tempDir();
    const encoder = new HeaderEncoder({ ...entryFields({}).base, mtime: DEFAULT_MTIME });
    const body = Buffer.from('hello\n');
    const pad = Buffer.alloc(512 - body.length);
    const blocks: Buffer[] = [];
    const add = (data: EntryData) => blocks.push(Buffer.from(Buffer.concat(encoder.blocks(data))));
    add({ path: './app/', type: 'Directory', mode: 0o755, size: 0 });
    add({ path: './app/hello.txt', type: 'File', mode: 0o644, size: body.length });
    blocks.push(body, pad);
    add({ path: './app/run', type: 'SymbolicLink', mode: 0o777, size: 0, linkpath: 'hello.txt' });
    const long = `./app/${'n'.repeat(120)}.txt`;
    add({ path: long, type: 'File', mode: 0o755, size: body.length });
    blocks.push(body, pad, Buffer.alloc(1024));
    const file = path.join(dir, 'a.tar');
    await writeFile(file, Buffer.concat(blocks));
    const listed = (await execa('tar', ['--numeric-owner', '-tvf', file], { env: { TZ: 'UTC' } })).stdout.split('\n');
    expect(listed).to.have.length(4);
    expect(listed[0]).to.match(/^drwxr-xr-x 0\/0 +0 1980-01-01 00:00 \.\/app\/$/);
    expect(listed[1]).to.match(/^-rw-r--r-- 0\/0 +6 1980-01-01 00:00 \.\/app\/hello\.txt$/);
    expect(listed[2]).to.match(/^lrwxrwxrwx 0\/0 +0 1980-01-01 00:00 \.\/app\/run -> hello\.txt$/);
    expect(listed[3]).to.match(/^-rwxr-xr-x 0\/0 +6 1980-01-01 00:00 /);
    expect(listed[3].endsWith(` ${long}`)).to.equal(true);
  });
});
