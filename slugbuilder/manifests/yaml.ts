/** Objects as one multi-document YAML stream: fixed key order (the objects'), no line folding, so the bytes are stable. */
import { stringify } from 'yaml';

export function toYamlStream(objects: object[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}
