/**
 * Group 0, OS (smp-spec.md §3.1): echo, task and memory pool statistics, date-time, reset,
 * MCUmgr parameters, OS/application info and bootloader information.
 * Console echo control (0/1) is not implemented by Zephyr and answers rc 8, as here.
 *
 * Memory pool statistics put the heaps under `"tasks"`: Zephyr's own test
 * (tests/subsys/mgmt/mcumgr/os_mgmt_mpstat, read from the source) decodes that key and asserts it
 * is the only one, so the firmware it passes against emits `"tasks"`; mynewt and some clients use
 * `"mpools"` (the client accepts both).
 */
import { commands } from '../../core/commands/index.ts';
import { Group, GROUP_NAMES, type BodyOf } from '../../core/commands/command.ts';
import { MgmtErr, OsMgmtErr } from '../../core/error-codes.ts';
import { MgmtError } from '../errors.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
import type { SmpServer } from '../server.ts';
import { createDeviceServices, McubootMode, type DeviceServices } from '../device.ts';
import type { HookEvents } from '../hooks.ts';
import { DeviceClock, formatDeviceDatetime, parseDeviceDatetime } from '../device-clock.ts';
import { heapStats, processThreads } from '../process-stats.ts';
import { imageModelOf } from './image.ts';

/** Zephyr's CONFIG_MCUMGR_GRP_OS_INFO_MAX_RESPONSE_SIZE, NUL included. */
const INFO_MAX_RESPONSE_SIZE = 256;

/** The uname-like output of OS info for a format string (0/7). */
export async function osInfoOutput(server: SmpServer, format: string | undefined): Promise<string> {
  const fmt = format === undefined || format === '' ? 's' : format;
  const id = server.identity;
  const fields: Array<[string, string | undefined]> = [
    ['s', id.kernelName],
    ['n', id.nodeName],
    ['r', id.kernelRelease],
    ['v', id.kernelVersion],
    ['b', id.buildDateTime],
    ['m', id.machine],
    ['p', id.processor],
    ['i', id.hardwarePlatform],
    ['o', id.operatingSystem],
  ];
  const known = new Set(fields.filter(([, v]) => v !== undefined).map(([c]) => c));
  const claimed = new Set<string>();
  await server.hooks.notify('os_info_check', { format: fmt, claimed });
  const all = fmt.includes('a');
  for (const ch of fmt) {
    if (ch !== 'a' && !known.has(ch) && !claimed.has(ch)) throw MgmtError.group(Group.OS, OsMgmtErr.INVALID_FORMAT);
  }
  const out: string[] = [];
  for (const [c, v] of fields) if (v !== undefined && (all || fmt.includes(c))) out.push(v);
  await server.hooks.notify('os_info_append', { format: fmt, output: out });
  const text = out.join(' ');
  if (new TextEncoder().encode(text).length + 1 > INFO_MAX_RESPONSE_SIZE) throw MgmtError.rc(MgmtErr.EMSGSIZE);
  return text;
}

/** Runs a hook; an error result becomes the command's error (rc or group error). */
async function notifyOrThrow<E extends 'os_datetime_get' | 'os_datetime_set' | 'os_bootloader_info'>(server: SmpServer, event: E, data: HookEvents[E]): Promise<void> {
  const r = await server.hooks.notify(event, data);
  if (r) throw 'group' in r ? MgmtError.group(r.group, r.rc) : MgmtError.rc(r.rc);
}

/** What the os commands work with. */
interface OsContext {
  readonly server: SmpServer;
  readonly device: DeviceServices;
  readonly clock: DeviceClock;
}

type Body<C extends keyof typeof commands.os> = BodyOf<(typeof commands.os)[C]>;

/** The OS group (0) of a device; the date-time lives in the server's data directory. */
export function createOsGroup(server: SmpServer, device: DeviceServices = createDeviceServices(server)): MgmtGroup {
  const ctx: OsContext = { server, device, clock: new DeviceClock(server.dataDir) };
  return defineGroup(Group.OS, GROUP_NAMES[Group.OS]!, [
    handle(commands.os.echo, ({ body }) => ({ r: body.d })),
    handle(commands.os.echoRead, ({ body }) => ({ r: body.d })),
    handle(commands.os.params, () => ({ buf_size: server.bufSize, buf_count: server.bufCount })),
    handle(commands.os.info, async ({ body }) => ({ output: await osInfoOutput(server, body.format) })),
    handle(commands.os.taskStats, () => osTaskStats(ctx)),
    handle(commands.os.memPoolStats, () => ({ tasks: heapStats() })),
    handle(commands.os.datetimeGet, () => osDatetimeGet(ctx)),
    handle(commands.os.datetimeSet, ({ body }) => osDatetimeSet(ctx, body)),
    handle(commands.os.bootloaderInfo, ({ body }) => osBootloaderInfo(ctx, body)),
    handle(commands.os.reset, ({ body }) => osReset(ctx, body)),
  ]);
}

type TaskStat = { prio: number; tid: number; state: number; stksiz?: number; stkuse?: number; runtime?: number; cswcnt?: number; last_checkin?: number; next_checkin?: number };

/** 0/2: the emulated firmware's threads (DeviceOptions.threads) or the process's own. */
async function osTaskStats({ device }: OsContext): Promise<{ tasks: Record<string, TaskStat> }> {
  const threads = device.options.threads ? device.options.threads() : await processThreads();
  const tasks: Record<string, TaskStat> = {};
  threads.forEach((t, tid) => {
    // Names are map keys: make repeats unique (a JS map cannot hold duplicate keys).
    let name = t.name.slice(0, 32);
    for (let n = 2; Object.hasOwn(tasks, name); n++) name = `${t.name.slice(0, 28)}#${n}`;
    const entry: TaskStat = { prio: t.prio, tid, state: t.state };
    const cols = device.options.taskstat;
    if (cols) {
      // The columns the firmware's Kconfig asks for (os_mgmt_taskstat_encode_one).
      if (cols.stackInfo) Object.assign(entry, { stksiz: t.stksiz ?? 0, stkuse: t.stkuse ?? 0 });
      if (cols.runtime !== 'none') entry.runtime = cols.runtime === 'measured' ? (t.runtime ?? 0) : 0;
      if (cols.unsupported) Object.assign(entry, { cswcnt: 0, last_checkin: 0, next_checkin: 0 });
    } else {
      if (t.stksiz !== undefined) entry.stksiz = t.stksiz;
      if (t.stkuse !== undefined) entry.stkuse = t.stkuse;
      if (t.runtime !== undefined) entry.runtime = t.runtime;
    }
    tasks[name] = entry;
  });
  return { tasks };
}

/** 0/4 read: the device clock (RTC_NOT_SET until set). */
async function osDatetimeGet({ server, clock }: OsContext): Promise<{ datetime: string }> {
  await notifyOrThrow(server, 'os_datetime_get', {});
  const now = await clock.now();
  if (now === undefined) throw MgmtError.group(Group.OS, OsMgmtErr.RTC_NOT_SET);
  return { datetime: formatDeviceDatetime(now) };
}

/** 0/4 write: sets the device clock (Zephyr's parser: see device-clock.ts). */
async function osDatetimeSet({ server, clock }: OsContext, body: Body<'datetimeSet'>): Promise<Record<string, never>> {
  const parsed = parseDeviceDatetime(body.datetime);
  if (!parsed.ok && parsed.reason === 'invalid') throw MgmtError.rc(MgmtErr.EINVAL, 'invalid datetime');
  await notifyOrThrow(server, 'os_datetime_set', { datetime: body.datetime });
  if (!parsed.ok) throw MgmtError.group(Group.OS, OsMgmtErr.RTC_COMMAND_FAILED);
  try {
    await clock.set(parsed.ms);
  } catch {
    throw MgmtError.group(Group.OS, OsMgmtErr.RTC_COMMAND_FAILED);
  }
  return {};
}

/** 0/8: the bootloader's name, or its mode for `query: "mode"`; a hook may answer instead. */
async function osBootloaderInfo({ server, device }: OsContext, body: Body<'bootloaderInfo'>): Promise<Record<string, unknown>> {
  const response: Record<string, unknown> = {};
  const hook = { query: body.query, response, handled: false };
  await notifyOrThrow(server, 'os_bootloader_info', hook);
  if (hook.handled) return response;
  if (body.query === undefined) return { bootloader: 'MCUboot' };
  if (body.query === 'mode') {
    // The mode of the image group's MCUboot model unless the device options say otherwise.
    const model = imageModelOf(server);
    const rsp: { mode: number; 'no-downgrade'?: boolean } = { mode: device.options.bootloaderMode ?? model?.modeNumber ?? McubootMode.SWAP_USING_MOVE };
    if (device.options.bootloaderNoDowngrade ?? model?.noDowngrade) rsp['no-downgrade'] = true;
    return rsp;
  }
  throw MgmtError.group(Group.OS, OsMgmtErr.QUERY_YIELDS_NO_ANSWER);
}

/** 0/5: schedules a reset unless the reset hook refuses. Decoded leniently (the table's `decode`): a `force` that is not a bool reads as false. */
async function osReset({ server }: OsContext, body: Body<'reset'>): Promise<Record<string, never>> {
  if (body.boot_mode !== undefined && body.boot_mode > 255) throw MgmtError.rc(MgmtErr.EINVAL, 'boot_mode out of range');
  const refused = await server.hooks.notify('os_reset', { force: body.force, bootMode: body.boot_mode });
  if (refused) throw 'group' in refused ? MgmtError.group(refused.group, refused.rc) : MgmtError.rc(refused.rc);
  server.scheduleReset(body.boot_mode);
  return {};
}
