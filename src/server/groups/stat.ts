/**
 * Group 2, statistics (smp-spec.md §3.3), over the device's {@link StatsRegistry}.
 *
 * Faithful to Zephyr's stat_mgmt.c (read from the source):
 * - show: `name` must be 1..31 bytes (else rc 3); the response is `{name, fields}` with uint32
 *   values; an unknown group answers `err{63, 3}` — Zephyr raises STAT_MGMT_ERR_INVALID_STAT_NAME
 *   under ZEPHYR_MGMT_GRP_BASIC (63), not group 2, and a v1 request then gets group 63's
 *   translation (rc 0). Clients should accept both groups.
 * - list: `{rc: 0, stat_list: [...]}` — `rc: 0` is always present.
 */
import { commands } from '../../core/commands/index.ts';
import { Group, GROUP_NAMES } from '../../core/commands/command.ts';
import { MgmtErr, StatMgmtErr } from '../../core/error-codes.ts';
import { createDeviceServices, type DeviceServices } from '../device.ts';
import { MgmtError } from '../errors.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
import type { SmpServer } from '../server.ts';
import { STAT_MAX_NAME_LEN } from '../stats.ts';

export function createStatGroup(server: SmpServer, device: DeviceServices = createDeviceServices(server)): MgmtGroup {
  const { stats } = device;
  const group = defineGroup(Group.STAT, GROUP_NAMES[Group.STAT]!, [
    handle(commands.stat.show, ({ body }) => {
      const len = new TextEncoder().encode(body.name).length;
      if (len === 0 || len >= STAT_MAX_NAME_LEN) throw MgmtError.rc(MgmtErr.EINVAL, 'stat name length');
      const g = stats.find(body.name);
      if (!g) throw MgmtError.group(Group.ZEPHYR_BASIC, StatMgmtErr.INVALID_STAT_NAME);
      const fields: Record<string, number> = {};
      for (const [k, v] of g.fields()) fields[k] = Number(BigInt.asUintN(32, BigInt(Math.trunc(v))));
      return { name: body.name, fields };
    }),
    handle(commands.stat.list, () => ({ rc: 0, stat_list: stats.list() })),
  ]);
  return group;
}
