/**
 * Group 10, enumeration (smp-spec.md §3.7): the registered groups in registration order, their
 * names and handler counts, with the `enum_details` hook adding fields per group.
 */
import { commands } from '../../core/commands/index.ts';
import { Group, GROUP_NAMES } from '../../core/commands/command.ts';
import { EnumMgmtErr, MgmtErr } from '../../core/error-codes.ts';
import { MgmtError } from '../errors.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
import type { SmpServer } from '../server.ts';

/** Zephyr's CONFIG_MCUMGR_GRP_ENUM_DETAILS_BUFFER_TYPE_STACK limit on the filter list. */
export const ENUM_DETAILS_MAX_FILTER = 16;

export function createEnumGroup(server: SmpServer): MgmtGroup {
  const groups = (): MgmtGroup[] => server.registry.list();
  return defineGroup(Group.ENUM, GROUP_NAMES[Group.ENUM]!, [
    handle(commands.enum.count, () => ({ count: groups().length })),
    handle(commands.enum.list, () => ({ groups: groups().map((g) => g.id) })),
    handle(commands.enum.single, ({ body }) => {
      const index = body.index ?? 0;
      if (index > 0xffff) throw MgmtError.rc(MgmtErr.EINVAL, 'index above 65535');
      const all = groups();
      const g = all[index];
      if (!g) throw MgmtError.group(Group.ENUM, EnumMgmtErr.INDEX_TOO_LARGE);
      return index === all.length - 1 ? { group: g.id, end: true } : { group: g.id };
    }),
    handle(commands.enum.details, async ({ body }) => {
      const filter = body.groups ?? [];
      if (filter.length > ENUM_DETAILS_MAX_FILTER) throw MgmtError.group(Group.ENUM, EnumMgmtErr.TOO_MANY_GROUP_ENTRIES);
      const out: Array<Record<string, unknown>> = [];
      for (const g of groups()) {
        if (filter.length > 0 && !filter.includes(g.id)) continue;
        const entry: Record<string, unknown> = { group: g.id, name: g.name, handlers: g.handlers.length };
        const r = await server.hooks.notify('enum_details', { group: g.id, entry });
        if (r) throw 'group' in r ? MgmtError.group(r.group, r.rc) : MgmtError.rc(r.rc);
        out.push(entry);
      }
      return { groups: out as Array<{ group: number; name?: string; handlers?: number }> };
    }),
  ]);
}
