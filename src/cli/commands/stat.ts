/** Statistics: `stat list`, `stat NAME` (the Go mcumgr names). */
import type { Command } from 'commander';
import { commands } from '../../core/commands/index.ts';
import { DeviceError } from '../../core/errors.ts';
import { Group } from '../../core/commands/command.ts';
import { StatMgmtErr } from '../../core/error-codes.ts';
import type { CliContext } from '../context.ts';

export function registerStatCommands(program: Command, ctx: CliContext): void {
  program
    .command('stat')
    .description('statistics: "stat list" lists the groups, "stat NAME" reads one')
    .argument('<name>', 'group name, or "list"')
    .action((name: string) =>
      ctx.withClient(async (client, out) => {
        if (name === 'list') {
          const rsp = await client.request(commands.stat.list, {});
          out.result({ stat_list: rsp.stat_list }, () => rsp.stat_list.join('\n'));
          return;
        }
        try {
          const rsp = await client.request(commands.stat.show, { name });
          out.result({ name: rsp.name, fields: rsp.fields }, () => {
            const w = Math.max(0, ...Object.keys(rsp.fields).map((k) => k.length));
            return [`stat group: ${rsp.name}`, ...Object.entries(rsp.fields).map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n');
          });
        } catch (e) {
          // Zephyr raises "no such group" as STAT_MGMT_ERR_INVALID_STAT_NAME under group 63.
          if (e instanceof DeviceError && (e.group === Group.ZEPHYR_BASIC || e.group === Group.STAT) && (e.rc === StatMgmtErr.INVALID_STAT_NAME || e.rc === StatMgmtErr.INVALID_GROUP)) {
            throw new DeviceError(e.rc, Group.STAT, `no statistics group ${JSON.stringify(name)}`, e.body);
          }
          throw e;
        }
      }),
    );
}
