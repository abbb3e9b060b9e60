/** Enumeration (group 10): `enum count|list|single|details`. */
import type { Command } from 'commander';
import { commands } from '../../core/commands/index.ts';
import { UsageError } from '../../core/errors.ts';
import { groupNameOf } from '../../core/error-codes.ts';
import type { CliContext } from '../context.ts';

function uintArg(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new UsageError(`${name} must be an integer 0..65535, got ${JSON.stringify(v)}`);
  return n;
}

export function registerEnumCommands(program: Command, ctx: CliContext): void {
  const en = program.command('enum').description('enumerate the management groups the device supports');
  en.command('count')
    .description('number of groups')
    .action(() =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.enum.count, {});
        out.result(rsp, () => String(rsp.count));
      }),
    );
  en.command('list')
    .description('group ids')
    .action(() =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.enum.list, {});
        out.result(rsp, () => rsp.groups.map((g) => `${g}  ${groupNameOf(g)}`).join('\n'));
      }),
    );
  en.command('single')
    .description('the group id at an index')
    .argument('[index]', 'index (default 0)')
    .action((index: string | undefined) =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.enum.single, index === undefined ? {} : { index: uintArg('index', index) });
        out.result(rsp, () => `${rsp.group}${rsp.end ? ' (last)' : ''}`);
      }),
    );
  en.command('details')
    .description('group names and handler counts (optionally only some groups)')
    .argument('[groups...]', 'group ids')
    .action((groups: string[]) =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.enum.details, groups.length === 0 ? {} : { groups: groups.map((g) => uintArg('group', g)) });
        out.result(rsp, () => rsp.groups.map((g) => `${String(g.group).padStart(3)}  ${(g.name ?? '').padEnd(20)} ${g.handlers ?? ''}`).join('\n'));
      }),
    );
}
