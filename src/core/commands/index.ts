/**
 * The command table: every SMP group and command, one entry per (group, id, op).
 * `commands.os.echo`, `commands.image.upload`, ...; `allCommands` lists them all.
 */
import type { Command } from './command.ts';
import { os } from './os.ts';
import { image } from './image.ts';
import { stat } from './stat.ts';
import { settings } from './settings.ts';
import { fs } from './fs.ts';
import { shell } from './shell.ts';
import { enumeration } from './enumeration.ts';
import { zephyrBasic } from './zephyr-basic.ts';

export * from './command.ts';
export { taskStat, memPoolStat } from './os.ts';
export { imageSlotState, slotInfoEntry } from './image.ts';

export const commands = { os, image, stat, settings, fs, shell, enum: enumeration, zephyrBasic } as const;

export const allCommands: readonly Command[] = Object.values(commands).flatMap((g) => Object.values(g) as Command[]);

/** Finds the table entry for a (group, id, op), if the table has one. */
export function findCommand(group: number, id: number, op: 'read' | 'write'): Command | undefined {
  return allCommands.find((c) => c.group === group && c.id === id && c.op === op);
}
