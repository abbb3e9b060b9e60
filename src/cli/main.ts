/**
 * The `mcumgr` command line. Accepts the Go mcumgr CLI's syntax (global `--conntype`,
 * `--connstring`, `-t`, `-r` anywhere on the line) and adds `--udp HOST:PORT`, `--json` and
 * `serve`. Each command family lives in its own file under commands/.
 */
import { Command, CommanderError } from 'commander';
import { createContext, extractGlobals } from './context.ts';
import { registerOsCommands } from './commands/os.ts';
import { registerServeCommand } from './commands/serve.ts';
import { registerNetCommands } from './commands/net.ts';
import { registerImageCommands } from './commands/image.ts';
import { registerSystemCommands } from './commands/system.ts';
import { registerStatCommands } from './commands/stat.ts';
import { registerSettingsCommands } from './commands/settings.ts';
import { registerFsCommands } from './commands/fs.ts';
import { registerShellCommands } from './commands/shell.ts';
import { registerEnumCommands } from './commands/enum.ts';
import { registerStorageCommands } from './commands/storage.ts';
import { registerRawCommands } from './commands/raw.ts';
import { ExitCode } from './output.ts';
// Registers --conntype serial, --serial, and serve --serial / --pty into the hooks above.
import './serial.ts';

export async function main(argv: readonly string[]): Promise<void> {
  // A closed pipe (`mcumgr ... | head -1`) ends the output quietly, as with other CLI tools.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const { globals, rest } = extractGlobals(argv);
  const ctx = createContext(globals);
  const program = new Command('mcumgr')
    .description('Manage Zephyr devices over SMP (MCUmgr), or emulate one')
    .usage('[--conntype udp --connstring HOST:PORT | --udp HOST:PORT] [-t SECONDS] [-r TRIES] [--json] <command> [args]')
    .addHelpText(
      'after',
      `
Global options (anywhere on the line):
  --conntype <type>        connection type: udp or serial
  --connstring <string>    connection string, e.g. 127.0.0.1:1337 or [::1]:1337
  --udp <host:port>        short for --conntype udp --connstring <host:port>
  --serial <dev>           short for --conntype serial --connstring <dev> (dev=PATH,baud=N,mtu=N also)
  --mtu <bytes>            largest UDP datagram (default 1500; also mtu=N in the UDP connstring)
  -t, --timeout <seconds>  time to wait for each try (default 3; a transfer's adaptive timeout stays below it)
  -r, --tries <n>          tries per request on timeout (default 3)
  --json                   print one JSON document instead of text
  -v, --verbose            dump packets to stderr (also -l debug)
  --smp-v1                 speak SMP v1 instead of v2

Examples:
  mcumgr serve                                   # emulator on 127.0.0.1:1337
  mcumgr serve --pty                             # emulator on a new pseudo-terminal (prints its path)
  mcumgr --conntype serial --connstring dev=/dev/ttyACM0,baud=115200,mtu=256 echo hello
  mcumgr --conntype udp --connstring 127.0.0.1:1337 echo hello
  mcumgr --udp 127.0.0.1:1337 --json info a`,
    )
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerServeCommand(program, ctx);
  registerOsCommands(program, ctx);
  registerNetCommands(program, ctx);
  registerImageCommands(program, ctx);
  registerSystemCommands(program, ctx);
  registerStatCommands(program, ctx);
  registerSettingsCommands(program, ctx);
  registerFsCommands(program, ctx);
  registerShellCommands(program, ctx);
  registerEnumCommands(program, ctx);
  registerStorageCommands(program, ctx);
  registerRawCommands(program, ctx);
  try {
    await program.parseAsync([...rest], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : ExitCode.USAGE;
      return;
    }
    throw e;
  }
}

await main(process.argv.slice(2));
