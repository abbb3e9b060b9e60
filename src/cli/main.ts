/**
 * The `mcumgr` command line. Accepts the Go mcumgr CLI's syntax (global `--conntype`,
 * `--connstring`, `-c`, `-t`, `-r` anywhere on the line: they are commander program options, which
 * commander takes before and after the subcommand) and adds `--udp HOST:PORT`, `--json` and
 * `serve`. Each command family lives in its own file under commands/ and is loaded only when its
 * command runs (or for the full help), which keeps a one-shot command's start-up short.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { createContext, type CliContext } from './context.ts';
import { ConntypeRegistry, udpConntype } from './conntypes.ts';
import { serialConntype } from './serial.ts';
import { bleConntype } from './ble.ts';
import { ExitCode } from './output.ts';

type Register = (program: Command, ctx: CliContext) => unknown;

/** Command families: the top-level commands each registers, and how to load it. */
const FAMILIES: ReadonlyArray<{ commands: readonly string[]; load: () => Promise<Register> }> = [
  { commands: ['serve'], load: async () => (await import('./commands/serve.ts')).registerServeCommand },
  { commands: ['echo', 'params', 'info', 'reset'], load: async () => (await import('./commands/os.ts')).registerOsCommands },
  { commands: ['net'], load: async () => (await import('./commands/net.ts')).registerNetCommands },
  { commands: ['image', 'upgrade'], load: async () => (await import('./commands/image.ts')).registerImageCommands },
  { commands: ['taskstat', 'mpstat', 'datetime', 'bootloader'], load: async () => (await import('./commands/system.ts')).registerSystemCommands },
  { commands: ['stat'], load: async () => (await import('./commands/stat.ts')).registerStatCommands },
  { commands: ['config', 'settings'], load: async () => (await import('./commands/settings.ts')).registerSettingsCommands },
  { commands: ['fs'], load: async () => (await import('./commands/fs.ts')).registerFsCommands },
  { commands: ['shell'], load: async () => (await import('./commands/shell.ts')).registerShellCommands },
  { commands: ['enum'], load: async () => (await import('./commands/enum.ts')).registerEnumCommands },
  { commands: ['storage-erase'], load: async () => (await import('./commands/storage.ts')).registerStorageCommands },
  { commands: ['raw'], load: async () => (await import('./commands/raw.ts')).registerRawCommands },
  { commands: ['conn'], load: async () => (await import('./commands/conn.ts')).registerConnCommands },
  { commands: ['ble'], load: async () => (await import('./ble.ts')).registerBleCommands },
  { commands: ['fleet'], load: async () => (await import('./commands/fleet.ts')).registerFleetCommands },
  { commands: ['gateway'], load: async () => (await import('./commands/fleet.ts')).registerGatewayCommand },
  { commands: ['dashboard'], load: async () => (await import('./commands/dashboard.ts')).registerDashboardCommand },
];

/** This package's version (package.json sits two levels up from both src/cli and dist/cli). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The global options: Go mcumgr's, ours, and those each conntype adds. */
function addGlobalOptions(program: Command, conntypes: ConntypeRegistry): Command {
  program
    .option('--conntype <type>', `connection type: ${conntypes.names().join(' or ')}`)
    .option('--connstring <string>', 'connection string, e.g. 127.0.0.1:1337, [::1]:1337 or dev=/dev/ttyACM0,baud=115200,mtu=256')
    .option('--connextra <string>', 'more connection string keys, appended to --connstring')
    .option('-c, --conn <profile>', 'connection profile to use (see `conn add`; the Go mcumgr profile file)')
    .option('-t, --timeout <seconds>', "time to wait for each try (default 3); a transfer's adaptive chunk timeout stays below it")
    .option('-r, --tries <n>', 'tries per request on timeout (default 3)')
    .option('-l, --loglevel <level>', 'Go mcumgr log level; debug dumps packets as -v does')
    .option('--json', 'print one JSON document instead of text')
    .option('-v, --verbose', 'dump packets to stderr')
    .option('--smp-v1', 'speak SMP v1 instead of v2');
  for (const c of conntypes.all()) for (const option of c.options ?? []) program.addOption(option);
  return program;
}

/** The top-level command a command line names (global options, wherever they stand, skipped). */
function commandNamed(argv: readonly string[], conntypes: ConntypeRegistry): string | undefined {
  const scanner = addGlobalOptions(new Command(), conntypes);
  return scanner.parseOptions([...argv]).operands[0];
}

export async function main(argv: readonly string[]): Promise<void> {
  // A closed pipe (`mcumgr ... | head -1`) ends the output quietly, as with other CLI tools.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  // Link kinds, registered explicitly: each adds its global options and opens its own transport.
  const conntypes = new ConntypeRegistry().register(udpConntype).register(serialConntype).register(bleConntype);
  const ctx = createContext(conntypes);
  const program = addGlobalOptions(new Command('mcumgr'), conntypes)
    .description('Manage Zephyr devices over SMP (MCUmgr), or emulate one')
    .usage('[global options] <command> [args]   (global options may stand anywhere on the line)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .configureHelp({ showGlobalOptions: true })
    .addHelpText(
      'after',
      `
Examples:
  mcumgr serve                                   # emulator on 127.0.0.1:1337
  mcumgr serve --pty                             # emulator on a new pseudo-terminal (prints its path)
  mcumgr --conntype serial --connstring dev=/dev/ttyACM0,baud=115200,mtu=256 echo hello
  mcumgr --conntype udp --connstring 127.0.0.1:1337 echo hello
  mcumgr --conntype ble --connstring peer_name=Zephyr image list
  mcumgr ble scan --timeout 3                    # devices advertising the SMP service
  mcumgr serve --ble Gateway                     # SMP over Bluetooth LE through BlueZ
  mcumgr conn add emu type=udp connstring=127.0.0.1:1337 && mcumgr -c emu image list
  mcumgr --udp 127.0.0.1:1337 --json info a`,
    )
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .hook('preAction', () => ctx.setGlobals(program.opts()));
  program
    .command('version')
    .description('print the version')
    .action(() => ctx.run(async (out) => out.result({ version: packageVersion() }, () => `mcumgr ${packageVersion()}`)));

  // Only the family of the command that runs is loaded; all of them for help or an unknown command.
  const name = commandNamed(argv, conntypes);
  const family = FAMILIES.find((f) => name !== undefined && f.commands.includes(name));
  // `version` and `--version`/`-V` with no command load none (commander prints the version and stops).
  const versionOnly = name === 'version' || (name === undefined && argv.some((a) => a === '--version' || a === '-V') && !argv.some((a) => a === '--help' || a === '-h'));
  const families = family ? [family] : versionOnly ? [] : FAMILIES;
  // (Subcommands inherit the program's exit override, output and help settings.)
  for (const register of await Promise.all(families.map((f) => f.load()))) register(program, ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : ExitCode.USAGE;
      return;
    }
    throw e;
  }
}

await main(process.argv.slice(2));
