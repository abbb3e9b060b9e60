/** OS group commands: echo, params, info, reset. */
import type { Command } from 'commander';
import { commands } from '../../core/commands/index.ts';
import type { CliContext } from '../context.ts';

export function registerOsCommands(program: Command, ctx: CliContext): void {
  program
    .command('echo')
    .description('send a string to the device and print its echo')
    .argument('<text...>', 'text to echo (words are joined with spaces)')
    .action((words: string[]) =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.os.echo, { d: words.join(' ') });
        out.result(rsp, () => rsp.r);
      }),
    );

  program
    .command('params')
    .description("read the device's MCUmgr buffer size and count")
    .action(() =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.os.params, {});
        out.result(rsp, () => `buf_size=${rsp.buf_size} buf_count=${rsp.buf_count}`);
      }),
    );

  program
    .command('info')
    .description('OS/application info, uname-like: format letters s n r v b m p i o, or a for all')
    .argument('[format]', 'format letters (default: s)')
    .action((format: string | undefined) =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.os.info, format === undefined ? {} : { format });
        out.result(rsp, () => rsp.output);
      }),
    );

  program
    .command('reset')
    .description('reset the device')
    .option('-f, --force', 'ask the device to reset even if an application hook objects')
    .option('-b, --boot-mode <mode>', 'boot mode to reset into (0 normal, 1 bootloader)')
    .action((opts: { force?: boolean; bootMode?: string }) =>
      ctx.withClient(async (client, out) => {
        const body: { force?: boolean; boot_mode?: number } = {};
        if (opts.force) body.force = true;
        if (opts.bootMode !== undefined) body.boot_mode = Number(opts.bootMode);
        await client.request(commands.os.reset, body);
        out.result({ reset: true }, () => 'Done');
      }),
    );
}
