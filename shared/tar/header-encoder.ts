/**
 * Tar headers for entries whose owner, mtime and modes are pinned (pack.ts):
 * node-tar's Header encodes every field through strings and padding, about
 * 12 µs a header, a tenth of the slug writer's own CPU on a tree of small
 * files (docs/BENCHMARKS.md, P1). Here node-tar encodes one template block
 * per entry type and mode; an entry whose path and link target fit the ustar
 * fields as they are (ASCII, under 100 bytes) and whose size fits 11 octal
 * digits gets a copy of it with those three fields and the checksum written
 * in: the same bytes node-tar gives (test/tar-header-encoder.test.ts). Any
 * other entry, one that needs a pax header or the prefix field, goes through
 * node-tar whole.
 */
import { Header, type HeaderData, Pax } from 'tar';

const BLOCK = 512;
/** Largest size written as 11 octal digits (node-tar's limit for the field). */
const MAX_OCTAL_SIZE = 0o77777777777;
const NAME_FIELD = 100;
const SIZE_AT = 124;
const CHECKSUM_AT = 148;
const LINK_AT = 157;

/** What differs from entry to entry. */
export interface EntryData {
  path: string;
  type: 'File' | 'Directory' | 'SymbolicLink';
  mode: number;
  size: number;
  linkpath?: string;
}

/** The fields every entry shares. */
export type PinnedFields = Pick<HeaderData, 'uid' | 'gid' | 'mtime' | 'uname' | 'gname'>;

/** One entry's header blocks as node-tar writes them: a pax header first when a field does not fit ustar. */
export function headerBlocks(data: HeaderData): Buffer[] {
  const header = new Header(data);
  const needPax = header.encode();
  const blocks: Buffer[] = [];
  if (needPax) {
    blocks.push(
      new Pax({ path: data.path, linkpath: data.linkpath, size: data.size, mtime: data.mtime, uid: data.uid, gid: data.gid }).encode(),
    );
  }
  blocks.push(header.block as Buffer);
  return blocks;
}

/** node-tar's octal field: zero-padded digits, a space, a NUL (no space when the digits fill the field). */
function octal(value: number, size: number): string {
  const digits = value.toString(8);
  return digits.length === size - 1 ? `${digits}\0` : `${digits.padStart(size - 2, '0')} \0`;
}

/** Only 7-bit characters: each is one byte, the same in node-tar's utf8 and in latin1. */
function plain(text: string, limit: number): boolean {
  if (text.length >= limit) return false;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

export class HeaderEncoder {
  /** Template blocks by type and mode; null when the pinned fields themselves need pax. */
  private readonly templates = new Map<string, Buffer | null>();
  /** Filled again by every call: the caller copies it before the next. */
  private readonly block = Buffer.alloc(BLOCK);

  constructor(private readonly pinned: PinnedFields) {}

  /** The entry's header blocks; the buffers may be reused by the next call. */
  blocks(data: EntryData): Buffer[] {
    const template = this.template(data.type, data.mode);
    if (
      template === null ||
      !plain(data.path, NAME_FIELD) ||
      (data.linkpath !== undefined && !plain(data.linkpath, NAME_FIELD)) ||
      !(data.size >= 0 && data.size <= MAX_OCTAL_SIZE)
    ) {
      return headerBlocks({ ...this.pinned, ...data });
    }
    const block = this.block;
    template.copy(block);
    block.write(data.path, 0, 'latin1');
    block.write(octal(data.size, 12), SIZE_AT, 'latin1');
    if (data.linkpath !== undefined) block.write(data.linkpath, LINK_AT, 'latin1');
    // The checksum counts its own field as eight spaces.
    let sum = 8 * 0x20;
    for (let i = 0; i < CHECKSUM_AT; i++) sum += block[i];
    for (let i = CHECKSUM_AT + 8; i < BLOCK; i++) sum += block[i];
    block.write(octal(sum, 8), CHECKSUM_AT, 'latin1');
    return [block];
  }

  private template(type: EntryData['type'], mode: number): Buffer | null {
    const key = `${type} ${mode}`;
    let template = this.templates.get(key);
    if (template === undefined) {
      // An empty name, size 0 and no link leave those fields zero.
      const header = new Header({ ...this.pinned, path: '', type, mode, size: 0 });
      template = header.encode() ? null : Buffer.from(header.block as Buffer);
      this.templates.set(key, template);
    }
    return template;
  }
}
