/** Group 0, OS (smp-spec.md §3.1). */
import { bool, int, object, optional, oneOf, record, text, uint, unknownValue, empty } from '../schema.ts';
import { Group, command } from './command.ts';

const G = Group.OS;

export const taskStat = object({
  prio: int(),
  tid: uint(),
  state: uint(),
  stksiz: optional(uint()),
  stkuse: optional(uint()),
  runtime: optional(uint()),
  cswcnt: optional(uint()),
  last_checkin: optional(uint()),
  next_checkin: optional(uint()),
});

export const memPoolStat = object({
  blksiz: optional(uint()),
  nblks: uint(),
  nfree: uint(),
  min: optional(uint()),
});

export const os = {
  echo: command({ group: G, id: 0, op: 'write', name: 'os.echo', summary: 'Echo a string', request: object({ d: text() }), response: object({ r: text() }) }),
  echoRead: command({ group: G, id: 0, op: 'read', name: 'os.echo.read', summary: 'Echo a string (read op)', request: object({ d: text() }), response: object({ r: text() }) }),
  consoleEcho: command({ group: G, id: 1, op: 'write', name: 'os.console-echo', summary: 'Console echo control (not implemented by Zephyr: rc 8)', request: object({ echo: uint() }), response: empty() }),
  taskStats: command({ group: G, id: 2, op: 'read', name: 'os.taskstat', summary: 'Task (thread) statistics', request: empty(), response: object({ tasks: record(taskStat) }) }),
  memPoolStats: command({
    group: G, id: 3, op: 'read', name: 'os.mpstat', summary: 'Memory pool (heap) statistics',
    request: empty(),
    // Zephyr's own test reads the heaps under "tasks"; mynewt and other clients use "mpools".
    response: object({ tasks: optional(record(memPoolStat)), mpools: optional(record(memPoolStat)) }),
  }),
  datetimeGet: command({ group: G, id: 4, op: 'read', name: 'os.datetime.get', summary: 'Read the date-time', request: empty(), response: object({ datetime: text() }) }),
  datetimeSet: command({ group: G, id: 4, op: 'write', name: 'os.datetime.set', summary: 'Set the date-time', request: object({ datetime: text() }), response: empty() }),
  reset: command({ group: G, id: 5, op: 'write', name: 'os.reset', summary: 'Reset the device', request: object({ force: optional(bool()), boot_mode: optional(uint(255)) }), response: empty() }),
  params: command({ group: G, id: 6, op: 'read', name: 'os.params', summary: 'MCUmgr buffer parameters', request: empty(), response: object({ buf_size: uint(), buf_count: uint() }) }),
  info: command({ group: G, id: 7, op: 'read', name: 'os.info', summary: 'OS/application info (uname-like)', request: object({ format: optional(text()) }), response: object({ output: text() }) }),
  bootloaderInfo: command({
    group: G, id: 8, op: 'read', name: 'os.bootloader-info', summary: 'Bootloader information',
    request: object({ query: optional(text()) }),
    response: object({ bootloader: optional(text()), mode: optional(int()), 'no-downgrade': optional(bool()), active: optional(oneOf(uint(), bool())), extra: optional(unknownValue()) }),
  }),
} as const;
