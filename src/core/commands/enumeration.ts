/** Group 10, enumeration (smp-spec.md §3.7). */
import { array, bool, object, optional, text, uint, empty } from '../schema.ts';
import { Group, command } from './command.ts';

const G = Group.ENUM;

export const enumeration = {
  count: command({ group: G, id: 0, op: 'read', name: 'enum.count', summary: 'Number of groups', request: empty(), response: object({ count: uint() }) }),
  list: command({ group: G, id: 1, op: 'read', name: 'enum.list', summary: 'Group ids', request: empty(), response: object({ groups: array(uint()) }) }),
  single: command({ group: G, id: 2, op: 'read', name: 'enum.single', summary: 'Group id at an index', request: object({ index: optional(uint()) }), response: object({ group: uint(), end: optional(bool()) }) }),
  details: command({
    group: G, id: 3, op: 'read', name: 'enum.details', summary: 'Group names and handler counts',
    request: object({ groups: optional(array(uint())) }),
    response: object({ groups: array(object({ group: uint(), name: optional(text()), handlers: optional(uint()) })) }),
  }),
} as const;
