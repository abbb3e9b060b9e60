/**
 * Group 0, OS (smp-spec.md §3.1): echo, MCUmgr parameters, OS/application info and reset.
 * Console echo control (0/1) is not implemented by Zephyr and answers rc 8, as here.
 */
import { commands } from '../../core/commands/index.ts';
import { Group, GROUP_NAMES } from '../../core/commands/command.ts';
import { MgmtErr, OsMgmtErr } from '../../core/error-codes.ts';
import { isCborMap } from '../../core/cbor.ts';
import { MgmtError } from '../errors.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
import type { SmpServer } from '../server.ts';

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
    if (ch !== 'a' && !known.has(ch) && !claimed.has(ch)) throw MgmtError.group(Group.OS, OsMgmtErr['INVALID_FORMAT']!);
  }
  const out: string[] = [];
  for (const [c, v] of fields) if (v !== undefined && (all || fmt.includes(c))) out.push(v);
  await server.hooks.notify('os_info_append', { format: fmt, output: out });
  const text = out.join(' ');
  if (new TextEncoder().encode(text).length + 1 > INFO_MAX_RESPONSE_SIZE) throw MgmtError.rc(MgmtErr.EMSGSIZE);
  return text;
}

export function createOsGroup(server: SmpServer): MgmtGroup {
  const group = defineGroup(Group.OS, GROUP_NAMES[Group.OS]!, [
    handle(commands.os.echo, ({ body }) => ({ r: body.d })),
    handle(commands.os.echoRead, ({ body }) => ({ r: body.d })),
    handle(commands.os.params, () => ({ buf_size: server.bufSize, buf_count: server.bufCount })),
    handle(commands.os.info, async ({ body }) => ({ output: await osInfoOutput(server, body.format) })),
  ]);
  // Reset decodes its parameters leniently: Zephyr ignores decode errors and uses the defaults
  // (force false, no boot mode), so `force: 1` from older clients reads as false.
  group.handlers[commands.os.reset.id] = {
    ...group.handlers[commands.os.reset.id],
    write: {
      fn: async ({ body }) => {
        const b = isCborMap(body) ? body : {};
        const force = b['force'] === true;
        let bootMode: number | undefined;
        if (typeof b['boot_mode'] === 'number' && Number.isInteger(b['boot_mode'])) {
          if (b['boot_mode'] < 0 || b['boot_mode'] > 255) throw MgmtError.rc(MgmtErr.EINVAL, 'boot_mode out of range');
          bootMode = b['boot_mode'];
        }
        const refused = await server.hooks.notify('os_reset', { force, bootMode });
        if (refused) throw 'group' in refused ? MgmtError.group(refused.group, refused.rc) : MgmtError.rc(refused.rc);
        server.scheduleReset(bootMode);
        return {};
      },
    },
  };
  return group;
}
