/** Zephyr basic (group 63): `storage-erase` wipes the device's storage partition. */
import type { Command } from 'commander';
import { commands } from '../../core/commands/index.ts';
import type { CliContext } from '../context.ts';

export function registerStorageCommands(program: Command, ctx: CliContext): void {
  program
    .command('storage-erase')
    .description("erase the device's storage partition (settings and file system)")
    .action(() =>
      ctx.withClient(async (client, out) => {
        await client.request(commands.zephyrBasic.eraseStorage, {});
        out.result({ erased: true }, () => 'Done');
      }),
    );
}
