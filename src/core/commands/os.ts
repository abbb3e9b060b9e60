/** Group 0, OS (smp-spec.md §3.1). */
import { bool, int, lenient, object, optional, oneOf, record, text, uint, unknownValue, empty } from '../schema.ts';
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

/**
 * Echo decodes `d` with zcbor_map_decode_bulk into a zeroed string (os_mgmt.c): a missing `d`
 * echoes the empty string, a `d` that is not text is rc 3.
 */
const echoDecode = lenient({ d: text() }, { defaults: { d: '' } });

/**
 * Reset decodes `force` (zcbor_bool_decode; `boot_mode` with CONFIG_MCUMGR_GRP_OS_RESET_BOOT_MODE)
 * and ignores the decode's result (os_mgmt.c: "if we fail to decode the data, ignore the error and
 * continue with the default parameter of force being false"): `force: 0` or `force: 1` (an int, as
 * the Python smp library sends) reads as not forced, and keys after it in the map are not decoded.
 * An empty payload resets too. `boot_mode` is decoded as a uint32 and range-checked by the handler.
 */
const resetDecode = lenient({ force: bool(), boot_mode: uint(0xffffffff) }, { defaults: { force: false }, ignoreErrors: true });

export const os = {
  echo: command({ group: G, id: 0, op: 'write', name: 'os.echo', summary: 'Echo a string', request: object({ d: text() }), decode: echoDecode, response: object({ r: text() }) }),
  echoRead: command({ group: G, id: 0, op: 'read', name: 'os.echo.read', summary: 'Echo a string (read op)', request: object({ d: text() }), decode: echoDecode, response: object({ r: text() }) }),
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
  reset: command({ group: G, id: 5, op: 'write', name: 'os.reset', summary: 'Reset the device', request: object({ force: optional(bool()), boot_mode: optional(uint(255)) }), decode: resetDecode, response: empty() }),
  params: command({ group: G, id: 6, op: 'read', name: 'os.params', summary: 'MCUmgr buffer parameters', request: empty(), response: object({ buf_size: uint(), buf_count: uint() }) }),
  info: command({ group: G, id: 7, op: 'read', name: 'os.info', summary: 'OS/application info (uname-like)', request: object({ format: optional(text()) }), response: object({ output: text() }) }),
  bootloaderInfo: command({
    group: G, id: 8, op: 'read', name: 'os.bootloader-info', summary: 'Bootloader information',
    request: object({ query: optional(text()) }),
    response: object({ bootloader: optional(text()), mode: optional(int()), 'no-downgrade': optional(bool()), active: optional(oneOf(uint(), bool())), extra: optional(unknownValue()) }),
  }),
} as const;
