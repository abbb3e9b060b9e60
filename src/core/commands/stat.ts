/** Group 2, statistics (smp-spec.md §3.3). */
import { array, int, object, optional, record, text, uint, empty } from '../schema.ts';
import { Group, command } from './command.ts';

const G = Group.STAT;

export const stat = {
  show: command({ group: G, id: 0, op: 'read', name: 'stat.show', summary: 'Read one statistics group', request: object({ name: text() }), response: object({ name: text(), fields: record(uint()), rc: optional(int()) }) }),
  list: command({ group: G, id: 1, op: 'read', name: 'stat.list', summary: 'List statistics groups', request: empty(), response: object({ stat_list: array(text()), rc: optional(int()) }) }),
} as const;
