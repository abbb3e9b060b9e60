/** Group 63, Zephyr basic (smp-spec.md §3.9). */
import { empty } from '../schema.ts';
import { Group, command } from './command.ts';

export const zephyrBasic = {
  eraseStorage: command({ group: Group.ZEPHYR_BASIC, id: 0, op: 'write', name: 'zephyr-basic.erase-storage', summary: 'Erase the storage partition', request: empty(), response: empty() }),
} as const;
