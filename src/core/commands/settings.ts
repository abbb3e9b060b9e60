/** Group 3, settings (config) (smp-spec.md §3.4). */
import { bytes, object, optional, text, uint, empty } from '../schema.ts';
import { Group, command } from './command.ts';

const G = Group.SETTINGS;

export const settings = {
  read: command({ group: G, id: 0, op: 'read', name: 'settings.read', summary: 'Read a setting', request: object({ name: text(), max_size: optional(uint()) }), response: object({ val: bytes(), max_size: optional(uint()) }) }),
  write: command({ group: G, id: 0, op: 'write', name: 'settings.write', summary: 'Write a setting (runtime)', request: object({ name: text(), val: bytes() }), response: empty() }),
  delete: command({ group: G, id: 1, op: 'write', name: 'settings.delete', summary: 'Delete a setting', request: object({ name: text() }), response: empty() }),
  commit: command({ group: G, id: 2, op: 'write', name: 'settings.commit', summary: 'Commit settings', request: empty(), response: empty() }),
  load: command({ group: G, id: 3, op: 'read', name: 'settings.load', summary: 'Load settings from storage', request: empty(), response: empty() }),
  save: command({ group: G, id: 3, op: 'write', name: 'settings.save', summary: 'Save settings to storage', request: object({ name: optional(text()) }), response: empty() }),
} as const;
