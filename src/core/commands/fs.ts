/** Group 8, file system (smp-spec.md §3.5). */
import { bytes, object, oneOf, optional, record, text, uint, empty, int } from '../schema.ts';
import { Group, command } from './command.ts';

const G = Group.FS;

export const fs = {
  download: command({ group: G, id: 0, op: 'read', name: 'fs.download', summary: 'Read a file chunk', request: object({ name: text(), off: uint() }), response: object({ off: uint(), data: bytes(), len: optional(uint()), rc: optional(int()) }) }),
  upload: command({ group: G, id: 0, op: 'write', name: 'fs.upload', summary: 'Write a file chunk', request: object({ name: text(), off: uint(), data: bytes(), len: optional(uint()) }), response: object({ off: uint(), rc: optional(int()) }) }),
  status: command({ group: G, id: 1, op: 'read', name: 'fs.status', summary: 'File size', request: object({ name: text() }), response: object({ len: uint(), rc: optional(int()) }) }),
  hash: command({
    group: G, id: 2, op: 'read', name: 'fs.hash', summary: 'Hash or checksum of a file',
    request: object({ name: text(), type: optional(text()), off: optional(uint()), len: optional(uint()) }),
    response: object({ type: text(), off: optional(uint()), len: uint(), output: oneOf(uint(), bytes()) }),
  }),
  hashTypes: command({ group: G, id: 3, op: 'read', name: 'fs.hash-types', summary: 'Supported hash and checksum types', request: empty(), response: object({ types: record(object({ format: uint(), size: uint() })) }) }),
  close: command({ group: G, id: 4, op: 'write', name: 'fs.close', summary: 'Close the open file', request: empty(), response: empty() }),
} as const;
