/** Shell (group 9): `shell exec WORD...` runs a command on the device and prints its output. */
import type { Command } from 'commander';
import { commands } from '../../core/commands/index.ts';
import { UsageError } from '../../core/errors.ts';
import type { CliContext } from '../context.ts';

export function registerShellCommands(program: Command, ctx: CliContext): void {
  const shell = program.command('shell').description('device shell');
  shell
    .command('exec')
    .description('run a shell command on the device (words are sent as argv; a quoted argument with spaces is split as the device would)')
    .argument('<words...>')
    .allowUnknownOption()
    .action((words: string[]) =>
      ctx.withClient(async (client, out) => {
        const argv = words.flatMap((w) => w.split(/\s+/)).filter((w) => w !== '');
        if (argv.length === 0) throw new UsageError('no command to run');
        const rsp = await client.request(commands.shell.exec, { argv });
        const ret = rsp.ret ?? rsp.rc ?? 0;
        out.result({ o: rsp.o, ret }, () => rsp.o.replace(/\n$/, '') + (ret !== 0 ? `\n(returned ${ret})` : ''));
        // The command's return code is the exit code (one that does not fit an exit code: 1).
        if (ret !== 0) process.exitCode = Number.isInteger(ret) && ret > 0 && ret < 256 ? ret : 1;
      }),
    );
}
