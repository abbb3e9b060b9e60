/**
 * The services of one emulated device that several groups share: statistics, settings, the
 * shell and the file system root. {@link createDeviceServices} builds them for a server, and each
 * group that needs them gets them when it is created (`createOsGroup(server, device)`);
 * createEmulator does this for every group and exposes them as `emulator.device`.
 */
import { join } from 'node:path';
import { FileSystemRoot, FS_DEFAULT_MOUNTS } from './fs-root.ts';
import type { SmpServer } from './server.ts';
import { createKeyValueSettingsHandler, KeyBudget, SettingsErrno, SettingsSubsystem, type KeyValueSettingsHandler } from './settings.ts';
import { registerHostCommands, ShellRegistry, type HostCommandOptions } from './shell.ts';
import { StatsRegistry, type StatGroupView } from './stats.ts';
import { createDeviceNetwork, registerNetShellCommands, type DeviceNetwork } from './net-shell.ts';

/** MCUboot modes as the bootloader information command reports them (`enum mcuboot_mode`). */
export const McubootMode = {
  UNKNOWN: -1,
  SINGLE_SLOT: 0,
  SWAP_USING_SCRATCH: 1,
  UPGRADE_ONLY: 2,
  SWAP_USING_MOVE: 3,
  DIRECT_XIP: 4,
  DIRECT_XIP_WITH_REVERT: 5,
  RAM_LOAD: 6,
  FIRMWARE_LOADER: 7,
  SINGLE_SLOT_RAM_LOAD: 8,
  SWAP_USING_OFFSET: 9,
} as const;

/** Which taskstat columns Zephyr's os_mgmt.c writes (from Kconfig; see kconfig.ts). */
export interface TaskstatColumns {
  /** CONFIG_MCUMGR_GRP_OS_TASKSTAT_STACK_INFO: stksiz and stkuse. */
  stackInfo: boolean;
  /** CONFIG_SCHED_THREAD_USAGE: measured; otherwise 0 unless ONLY_SUPPORTED_STATS ('none'). */
  runtime: 'measured' | 'zero' | 'none';
  /** Not ONLY_SUPPORTED_STATS: cswcnt, last_checkin and next_checkin, all 0. */
  unsupported: boolean;
}

export interface DeviceOptions {
  /** Taskstat columns (default: whatever the thread source gives). */
  taskstat?: TaskstatColumns;
  /** fs hash/checksum types (default crc32 and sha256). */
  fsHashTypes?: ReadonlyArray<'crc32' | 'sha256'>;
  /** Mount points of the file system (default `['lfs']`, i.e. `/lfs/...`). */
  fsMounts?: readonly string[];
  /** Bytes the file system holds, content plus 256 per file (default 16 MiB); uploads past it fail as on a full LittleFS. */
  fsQuota?: number;
  /** Settings subtrees that accept any key (default `['app']`). */
  settingsSubtrees?: readonly string[];
  /** Runtime keys those subtrees hold together (default 256); a new key past it answers err 3/1, as a full settings backend. */
  settingsMaxKeys?: number;
  /** Settings names must be shorter than this many bytes, NUL included (CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN; default 32). */
  settingsNameLen?: number;
  /** The most a settings read returns (CONFIG_MCUMGR_GRP_SETTINGS_VALUE_LEN; default 32). */
  settingsValueLen?: number;
  /** Bytes of output a shell command may leave (the dummy backend buffer; default 2048, Zephyr's is 300). */
  shellOutputMax?: number;
  /** Opt-in host commands for the shell (`host <program>`); off unless given. */
  shellHostCommands?: HostCommandOptions;
  /** MCUboot mode reported by bootloader info (default 3, swap using move: the image group's model). */
  bootloaderMode?: number;
  /** Report `no-downgrade: true` in the mode query (MCUboot built with downgrade prevention). */
  bootloaderNoDowngrade?: boolean;
  /** Threads reported by task statistics instead of the process's own (an emulated firmware's). */
  threads?: () => Array<{ name: string; prio: number; state: number; stksiz?: number; stkuse?: number; runtime?: number }>;
  /** The device's network for `net iface` / `net events` (serve feeds it from the host); default: an empty registry. */
  network?: DeviceNetwork;
}

export interface DeviceServices {
  readonly options: DeviceOptions;
  readonly stats: StatsRegistry;
  readonly settings: SettingsSubsystem;
  /** The key-value handlers for the free-form subtrees, by subtree name. */
  readonly settingsStores: ReadonlyMap<string, KeyValueSettingsHandler>;
  readonly shell: ShellRegistry;
  readonly fsRoot: FileSystemRoot;
  /** Hooks run by erase storage (group 63) after the storage is wiped (fs closes its open file). */
  readonly onStorageErase: Array<() => Promise<void> | void>;
  /** net_mgmt instance, interface registry and event log the `net` shell commands show. */
  readonly network: DeviceNetwork;
}

/**
 * Builds a device's shared services (and registers their built-in shell commands and statistics).
 * Build them once per server and pass them to every group of that device.
 */
export function createDeviceServices(server: SmpServer, options: DeviceOptions = {}): DeviceServices {
  const stats = new StatsRegistry();
  const settings = new SettingsSubsystem(join(server.dataDir, 'settings'));
  const shell = new ShellRegistry();
  const fsRoot = new FileSystemRoot(server.dataDir, options.fsMounts ?? FS_DEFAULT_MOUNTS);
  const settingsStores = new Map<string, KeyValueSettingsHandler>();
  const keys = new KeyBudget(options.settingsMaxKeys);
  for (const subtree of options.settingsSubtrees ?? ['app']) {
    const h = createKeyValueSettingsHandler(subtree, { keys });
    settings.register(h);
    settingsStores.set(subtree, h);
  }
  // A read-only subtree with the device's identity: reads work, writes answer -ENOTSUP.
  settings.register({
    name: 'device',
    get(key) {
      const v = key === 'name' ? server.identity.nodeName : key === 'board' ? server.identity.hardwarePlatform : undefined;
      return v === undefined ? SettingsErrno.ENOENT : new TextEncoder().encode(v);
    },
  });
  const s: DeviceServices = { options, stats, settings, settingsStores, shell, fsRoot, onStorageErase: [], network: options.network ?? createDeviceNetwork() };
  registerBuiltins(server, s);
  return s;
}

function registerBuiltins(server: SmpServer, s: DeviceServices): void {
  // Statistics: the SMP traffic of each transport, live, and Zephyr's smp_svr sample group.
  s.stats.registerLive('smp_svr_stats', () => ({ ticks: Math.floor(server.uptimeMs() / 1000) }));
  s.stats.addProvider(() => {
    const out: StatGroupView[] = [];
    for (const [kind] of server.counters) {
      out.push({
        name: `smp_${kind}`.slice(0, 31),
        fields: () => {
          const c = server.counterFor(kind);
          return [
            ['requests', c.requests],
            ['responses', c.responses],
            ['errors', c.errors],
            ['bytes_in', c.bytesIn],
            ['bytes_out', c.bytesOut],
            ['dropped', c.dropped],
            ['undecodable', c.undecodable],
          ];
        },
      });
    }
    return out;
  });

  // Shell built-ins.
  const sh = s.shell;
  sh.register('kernel version', ({ println }) => void println(`Zephyr version ${server.identity.kernelVersion}`), 'Kernel version');
  sh.register('kernel uptime', ({ println }) => void println(`Uptime: ${server.uptimeMs()} ms`), 'Kernel uptime');
  sh.describe('kernel', 'Kernel commands');
  sh.register(
    'settings list',
    async ({ argv, println }) => {
      const subtree = argv[1];
      for (const [name] of await s.settings.stored()) {
        if (subtree === undefined || name === subtree || name.startsWith(subtree + '/')) println(name);
      }
    },
    'List stored settings [subtree]',
  );
  sh.describe('settings', 'Settings commands');
  sh.register('stats list', ({ println }) => void s.stats.list().forEach((n) => println(n)), 'List statistics groups');
  sh.register(
    'stats show',
    ({ argv, println }) => {
      const names = argv.length > 1 ? argv.slice(1) : s.stats.list();
      for (const n of names) {
        const g = s.stats.find(n);
        if (!g) {
          println(`stats: no group ${n}`);
          return -2;
        }
        println(`${g.name}:`);
        for (const [k, v] of g.fields()) println(`  ${k}: ${v}`);
      }
      return 0;
    },
    'Show statistics groups [name...]',
  );
  sh.describe('stats', 'Statistics commands');
  registerNetShellCommands(sh, s.network, { hostname: () => server.identity.nodeName });
  sh.register(
    'help',
    ({ println }) => {
      println('Available commands:');
      for (const c of sh.list()) println(`  ${c.word.padEnd(10)}: ${c.help}`);
    },
    'List commands',
  );
  if (s.options.shellHostCommands && s.options.shellHostCommands.allow.length > 0) registerHostCommands(sh, s.options.shellHostCommands);
}
