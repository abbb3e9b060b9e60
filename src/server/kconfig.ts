/**
 * The emulator configured from a Zephyr build's `.config` (`build/zephyr/.config`): what the
 * handlers' `#if defined(CONFIG_...)` decide in Zephyr (os_mgmt.c, img_mgmt.c, fs_mgmt.c,
 * enum_mgmt.c, zephyr_basic; read 2026-07) becomes emulator options. A `.config` writes every
 * visible option: `CONFIG_X=y`, `CONFIG_X=123`, `CONFIG_X="text"`, or `# CONFIG_X is not set`;
 * an option absent from the file is off, as in the build. Options this module does not know are
 * ignored; {@link KconfigResult.read} lists the ones it used and what each did (`serve --kconfig F
 * --print-config`).
 *
 * | Kconfig | emulator |
 * |---|---|
 * | CONFIG_MCUMGR_GRP_OS, _IMG, _STAT, _SETTINGS, _FS, _SHELL, _ENUM, _ZBASIC | which groups exist |
 * | CONFIG_MCUMGR_GRP_OS_ECHO, _TASKSTAT, _MPSTAT, _DATETIME, _MCUMGR_PARAMS, _INFO, _BOOTLOADER_INFO, CONFIG_REBOOT | which OS commands exist (others answer rc 8) |
 * | CONFIG_MCUMGR_GRP_IMG_SLOT_INFO | image slot info (1/6) |
 * | CONFIG_MCUMGR_GRP_FS_FILE_STATUS, _CHECKSUM_HASH, _CHECKSUM_HASH_SUPPORTED_CMD; _CHECKSUM_IEEE_CRC32, _HASH_SHA256 | fs commands; hash types |
 * | CONFIG_MCUMGR_GRP_ENUM_DETAILS, CONFIG_MCUMGR_GRP_ZBASIC_STORAGE_ERASE | enum details, storage erase |
 * | CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE / _COUNT | `buf_size`, `buf_count` |
 * | CONFIG_MCUMGR_TRANSPORT_UDP_MTU, CONFIG_MCUMGR_TRANSPORT_UART_MTU | UDP datagram and serial packet limits |
 * | CONFIG_MCUMGR_GRP_OS_INFO_BUILD_DATE_TIME | os info `b` (the .config's time stands for the build time) |
 * | CONFIG_BOARD, CONFIG_BOARD_REVISION, CONFIG_ARCH, CONFIG_NET_HOSTNAME(_ENABLE), CONFIG_BT_DEVICE_NAME | os info `i`, `m`, `n` |
 * | CONFIG_MCUMGR_GRP_OS_TASKSTAT_STACK_INFO, _ONLY_SUPPORTED_STATS, CONFIG_SCHED_THREAD_USAGE | taskstat columns |
 * | CONFIG_MCUBOOT_BOOTLOADER_MODE_*, CONFIG_MCUBOOT_BOOTLOADER_NO_DOWNGRADE | MCUboot mode, downgrade prevention |
 * | CONFIG_MCUMGR_GRP_IMG_UPDATABLE_IMAGE_NUMBER, _FRUGAL_LIST, _ALLOW_ERASE_PENDING, _ALLOW_CONFIRM_NON_ACTIVE_IMAGE_*, _TOO_LARGE_SYSBUILD, CONFIG_IMG_ENABLE_IMAGE_CHECK | image group options |
 * | CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN, _VALUE_LEN | longest settings name, most a settings read returns |
 * | CONFIG_SHELL_BACKEND_DUMMY_BUF_SIZE | shell output kept per command (the buffer the shell group captures output in) |
 * | CONFIG_FILE_SYSTEM_LITTLEFS | the file system is mounted at `/lfs` (Zephyr's samples; the real mount point lives in the devicetree / application, not in .config) |
 */
import { UsageError } from '../core/errors.ts';
import { Group } from '../core/commands/command.ts';
import type { McubootModeName } from './mcuboot/modes.ts';
import type { ImageGroupOptions } from './groups/image.ts';
import type { DeviceOptions, TaskstatColumns } from './device.ts';
import type { DeviceIdentity } from './server.ts';
import { EMULATOR_GROUPS, type EmulatorOptions, type GroupFactory } from './emulator.ts';

export type KconfigValue = boolean | number | string;

/** Parses `.config` text. Malformed lines are skipped (Kconfig never writes them). */
export function parseKconfig(text: string): Map<string, KconfigValue> {
  const out = new Map<string, KconfigValue>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset) {
      out.set(unset[1]!, false);
      continue;
    }
    const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2]!;
    if (v === 'y' || v === 'm') out.set(m[1]!, true);
    else if (v === 'n') out.set(m[1]!, false);
    else if (/^"(.*)"$/.test(v)) out.set(m[1]!, v.slice(1, -1).replace(/\\(["\\])/g, '$1'));
    else if (/^-?\d+$/.test(v) || /^0x[0-9a-f]+$/i.test(v)) out.set(m[1]!, Number(v));
  }
  return out;
}

/** One option the emulator used. */
export interface KconfigSetting {
  option: string;
  value: KconfigValue | undefined;
  effect: string;
}

/** Commands a group keeps (by command id); groups absent here keep all theirs. */
export type CommandFilter = ReadonlyMap<number, ReadonlySet<number>>;

export interface KconfigResult {
  /** The groups that exist (group ids). */
  groups: ReadonlySet<number>;
  /** Per group, the command ids that exist. */
  commands: CommandFilter;
  bufSize: number | undefined;
  bufCount: number | undefined;
  udpMtu: number | undefined;
  serialMtu: number | undefined;
  identity: Partial<DeviceIdentity>;
  image: ImageGroupOptions;
  device: DeviceOptions;
  /** Every option read, with what it did. */
  read: KconfigSetting[];
}

const MODES: Array<[string, McubootModeName]> = [
  ['CONFIG_MCUBOOT_BOOTLOADER_MODE_SINGLE_APP', 'single-slot'],
  ['CONFIG_MCUBOOT_BOOTLOADER_MODE_SWAP_SCRATCH', 'swap-scratch'],
  ['CONFIG_MCUBOOT_BOOTLOADER_MODE_SWAP_WITHOUT_SCRATCH', 'swap-move'],
  ['CONFIG_MCUBOOT_BOOTLOADER_MODE_SWAP_USING_MOVE', 'swap-move'],
  ['CONFIG_MCUBOOT_BOOTLOADER_MODE_SWAP_USING_OFFSET', 'swap-offset'],
  ['CONFIG_MCUBOOT_BOOTLOADER_MODE_OVERWRITE_ONLY', 'overwrite-only'],
  ['CONFIG_MCUBOOT_BOOTLOADER_MODE_DIRECT_XIP', 'direct-xip'],
  ['CONFIG_MCUBOOT_BOOTLOADER_MODE_DIRECT_XIP_WITH_REVERT', 'direct-xip-revert'],
  ['CONFIG_MCUBOOT_BOOTLOADER_MODE_RAM_LOAD', 'ram-load'],
  ['CONFIG_MCUBOOT_BOOTLOADER_MODE_FIRMWARE_UPDATER', 'single-slot'],
];

const GROUPS: Array<[string, number, string]> = [
  ['CONFIG_MCUMGR_GRP_OS', Group.OS, 'OS group'],
  ['CONFIG_MCUMGR_GRP_IMG', Group.IMAGE, 'image group'],
  ['CONFIG_MCUMGR_GRP_STAT', Group.STAT, 'statistics group'],
  ['CONFIG_MCUMGR_GRP_SETTINGS', Group.SETTINGS, 'settings group'],
  ['CONFIG_MCUMGR_GRP_FS', Group.FS, 'file system group'],
  ['CONFIG_MCUMGR_GRP_SHELL', Group.SHELL, 'shell group'],
  ['CONFIG_MCUMGR_GRP_ENUM', Group.ENUM, 'enumeration group'],
  ['CONFIG_MCUMGR_GRP_ZBASIC', Group.ZEPHYR_BASIC, 'Zephyr basic group'],
];

/** Commands gated by their own option, per group: [option, command id, name]. */
const COMMANDS: Array<[number, string, number, string]> = [
  [Group.OS, 'CONFIG_MCUMGR_GRP_OS_ECHO', 0, 'echo'],
  [Group.OS, 'CONFIG_MCUMGR_GRP_OS_TASKSTAT', 2, 'taskstat'],
  [Group.OS, 'CONFIG_MCUMGR_GRP_OS_MPSTAT', 3, 'mpstat'],
  [Group.OS, 'CONFIG_MCUMGR_GRP_OS_DATETIME', 4, 'datetime'],
  [Group.OS, 'CONFIG_REBOOT', 5, 'reset'],
  [Group.OS, 'CONFIG_MCUMGR_GRP_OS_MCUMGR_PARAMS', 6, 'MCUmgr parameters'],
  [Group.OS, 'CONFIG_MCUMGR_GRP_OS_INFO', 7, 'OS/application info'],
  [Group.OS, 'CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO', 8, 'bootloader info'],
  [Group.IMAGE, '', 0, 'state'],
  [Group.IMAGE, '', 1, 'upload'],
  [Group.IMAGE, '', 5, 'erase'],
  [Group.IMAGE, 'CONFIG_MCUMGR_GRP_IMG_SLOT_INFO', 6, 'slot info'],
  [Group.FS, '', 0, 'file'],
  [Group.FS, 'CONFIG_MCUMGR_GRP_FS_FILE_STATUS', 1, 'file status'],
  [Group.FS, 'CONFIG_MCUMGR_GRP_FS_CHECKSUM_HASH', 2, 'hash/checksum'],
  [Group.FS, 'CONFIG_MCUMGR_GRP_FS_CHECKSUM_HASH_SUPPORTED_CMD', 3, 'supported hashes'],
  [Group.FS, '', 4, 'close'],
  [Group.ENUM, '', 0, 'count'],
  [Group.ENUM, '', 1, 'list'],
  [Group.ENUM, '', 2, 'single'],
  [Group.ENUM, 'CONFIG_MCUMGR_GRP_ENUM_DETAILS', 3, 'details'],
  [Group.ZEPHYR_BASIC, 'CONFIG_MCUMGR_GRP_ZBASIC_STORAGE_ERASE', 0, 'storage erase'],
];

/** Turns a parsed `.config` into emulator options. `configTime` stands for the build time (os info `b`). */
export function kconfigOptions(cfg: ReadonlyMap<string, KconfigValue>, configTime: Date = new Date()): KconfigResult {
  const read: KconfigSetting[] = [];
  const on = (k: string): boolean => cfg.get(k) === true;
  const note = (option: string, effect: string): void => void read.push({ option, value: cfg.get(option), effect });
  const num = (k: string, effect: string, min = 1): number | undefined => {
    const v = cfg.get(k);
    if (typeof v !== 'number') return undefined;
    if (!Number.isInteger(v) || v < min) throw new UsageError(`${k}=${v} is not usable (needs an integer >= ${min})`);
    note(k, effect.replace('%', String(v)));
    return v;
  };

  const groups = new Set<number>();
  for (const [k, id, name] of GROUPS) {
    if (on(k)) groups.add(id);
    note(k, on(k) ? `${name} present` : `${name} absent`);
  }
  const commands = new Map<number, Set<number>>();
  for (const [group, k, id, name] of COMMANDS) {
    if (!groups.has(group)) continue;
    const keep = k === '' || on(k);
    if (!commands.has(group)) commands.set(group, new Set());
    if (keep) commands.get(group)!.add(id);
    if (k !== '') note(k, `${name} ${keep ? 'present' : 'absent (rc 8)'}`);
  }

  const bufSize = num('CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE', 'buf_size %', 32);
  const bufCount = num('CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT', 'buf_count %');
  const udpMtu = num('CONFIG_MCUMGR_TRANSPORT_UDP_MTU', 'largest UDP datagram % bytes', 64);
  const serialMtu = num('CONFIG_MCUMGR_TRANSPORT_UART_MTU', 'largest serial SMP packet % bytes', 64);

  const identity: Partial<DeviceIdentity> = {};
  const buildDate = on('CONFIG_MCUMGR_GRP_OS_INFO_BUILD_DATE_TIME');
  if (groups.has(Group.OS)) {
    // MCUMGR_GRP_OS_INFO_BUILD_DATE_TIME: "%Y-%m-%dT%H:%M:%S" of the build, in os info `b`.
    identity.buildDateTime = buildDate ? configTime.toISOString().slice(0, 19) : undefined;
    note('CONFIG_MCUMGR_GRP_OS_INFO_BUILD_DATE_TIME', buildDate ? `os info b: ${identity.buildDateTime}` : 'os info b refused (invalid format)');
  }
  const board = cfg.get('CONFIG_BOARD');
  if (typeof board === 'string') {
    const rev = cfg.get('CONFIG_BOARD_REVISION');
    identity.hardwarePlatform = typeof rev === 'string' && rev !== '' ? `${board}@${rev}` : board;
    note('CONFIG_BOARD', `os info i: ${identity.hardwarePlatform}`);
  }
  const arch = cfg.get('CONFIG_ARCH');
  if (typeof arch === 'string') {
    identity.machine = arch;
    note('CONFIG_ARCH', `os info m: ${arch}`);
  }
  const hostname = cfg.get('CONFIG_NET_HOSTNAME');
  const btName = cfg.get('CONFIG_BT_DEVICE_NAME');
  if (on('CONFIG_NET_HOSTNAME_ENABLE') && typeof hostname === 'string') {
    identity.nodeName = hostname;
    note('CONFIG_NET_HOSTNAME', `os info n: ${hostname}`);
  } else if (on('CONFIG_BT') && typeof btName === 'string') {
    identity.nodeName = btName;
    note('CONFIG_BT_DEVICE_NAME', `os info n: ${btName}`);
  } else if (groups.has(Group.OS)) {
    identity.nodeName = 'unknown';
    read.push({ option: 'CONFIG_NET_HOSTNAME_ENABLE', value: cfg.get('CONFIG_NET_HOSTNAME_ENABLE'), effect: 'os info n: unknown (no hostname, no Bluetooth name)' });
  }

  const device: DeviceOptions = {};
  if (groups.has(Group.OS) && commands.get(Group.OS)?.has(2)) {
    const onlySupported = on('CONFIG_MCUMGR_GRP_OS_TASKSTAT_ONLY_SUPPORTED_STATS');
    const columns: TaskstatColumns = {
      stackInfo: on('CONFIG_MCUMGR_GRP_OS_TASKSTAT_STACK_INFO'),
      runtime: on('CONFIG_SCHED_THREAD_USAGE') ? 'measured' : onlySupported ? 'none' : 'zero',
      unsupported: !onlySupported,
    };
    device.taskstat = columns;
    note('CONFIG_MCUMGR_GRP_OS_TASKSTAT_STACK_INFO', columns.stackInfo ? 'taskstat stksiz, stkuse' : 'taskstat without stack columns');
    note('CONFIG_SCHED_THREAD_USAGE', `taskstat runtime: ${columns.runtime}`);
    note('CONFIG_MCUMGR_GRP_OS_TASKSTAT_ONLY_SUPPORTED_STATS', columns.unsupported ? 'taskstat cswcnt, last_checkin, next_checkin (0)' : 'taskstat without unsupported columns');
  }
  if (groups.has(Group.FS)) {
    const hashes: Array<'crc32' | 'sha256'> = [];
    if (on('CONFIG_MCUMGR_GRP_FS_CHECKSUM_IEEE_CRC32')) hashes.push('crc32');
    if (on('CONFIG_MCUMGR_GRP_FS_HASH_SHA256')) hashes.push('sha256');
    device.fsHashTypes = hashes;
    note('CONFIG_MCUMGR_GRP_FS_CHECKSUM_IEEE_CRC32', hashes.includes('crc32') ? 'fs hash type crc32' : 'no crc32');
    note('CONFIG_MCUMGR_GRP_FS_HASH_SHA256', hashes.includes('sha256') ? 'fs hash type sha256' : 'no sha256');
    if (on('CONFIG_FILE_SYSTEM_LITTLEFS')) {
      device.fsMounts = ['lfs'];
      note('CONFIG_FILE_SYSTEM_LITTLEFS', 'file system mounted at /lfs');
    }
  }

  if (groups.has(Group.SETTINGS)) {
    // settings_mgmt.c: `char name[CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN]`, values read into VALUE_LEN bytes.
    const nameLen = num('CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN', 'settings names shorter than % bytes (NUL included)', 2);
    if (nameLen !== undefined) device.settingsNameLen = nameLen;
    const valueLen = num('CONFIG_MCUMGR_GRP_SETTINGS_VALUE_LEN', 'settings reads return at most % bytes');
    if (valueLen !== undefined) device.settingsValueLen = valueLen;
  }
  if (groups.has(Group.SHELL)) {
    // shell_mgmt.c returns what the dummy backend captured: at most its buffer.
    const output = num('CONFIG_SHELL_BACKEND_DUMMY_BUF_SIZE', 'shell output kept per command: % bytes');
    if (output !== undefined) device.shellOutputMax = output;
  }

  const image: ImageGroupOptions = {};
  const mode = MODES.find(([k]) => on(k));
  if (mode) {
    image.mode = mode[1];
    note(mode[0], `MCUboot mode ${mode[1]}`);
  }
  if (on('CONFIG_MCUBOOT_BOOTLOADER_NO_DOWNGRADE')) {
    image.downgradePrevention = true;
    note('CONFIG_MCUBOOT_BOOTLOADER_NO_DOWNGRADE', 'MCUboot downgrade prevention (bootloader info no-downgrade)');
  }
  if (groups.has(Group.IMAGE)) {
    const images = num('CONFIG_MCUMGR_GRP_IMG_UPDATABLE_IMAGE_NUMBER', '% updatable images');
    if (images !== undefined) image.images = images;
    image.frugalList = on('CONFIG_MCUMGR_GRP_IMG_FRUGAL_LIST');
    note('CONFIG_MCUMGR_GRP_IMG_FRUGAL_LIST', image.frugalList ? 'image list without false flags' : 'image list with every flag');
    image.imageCheck = on('CONFIG_IMG_ENABLE_IMAGE_CHECK');
    note('CONFIG_IMG_ENABLE_IMAGE_CHECK', image.imageCheck ? 'upload match check' : 'no upload match check');
    image.allowErasePending = on('CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING');
    note('CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING', image.allowErasePending ? 'pending slots may be erased' : 'pending slots are in use');
    image.allowConfirmNonActiveImage = on('CONFIG_MCUMGR_GRP_IMG_ALLOW_CONFIRM_NON_ACTIVE_IMAGE_ANY') ? 'any' : on('CONFIG_MCUMGR_GRP_IMG_ALLOW_CONFIRM_NON_ACTIVE_IMAGE_SECONDARY') ? 'secondary' : 'none';
    note('CONFIG_MCUMGR_GRP_IMG_ALLOW_CONFIRM_NON_ACTIVE_IMAGE_ANY', `confirm of non-active images: ${image.allowConfirmNonActiveImage}`);
    image.reportMaxImageSize = on('CONFIG_MCUMGR_GRP_IMG_TOO_LARGE_SYSBUILD');
    note('CONFIG_MCUMGR_GRP_IMG_TOO_LARGE_SYSBUILD', image.reportMaxImageSize ? 'slot info max_image_size' : 'no max_image_size');
  }
  return { groups, commands, bufSize, bufCount, udpMtu, serialMtu, identity, image, device, read };
}

/** The `--print-config` listing: one line per option read. */
export function formatKconfigSettings(read: readonly KconfigSetting[]): string {
  const width = Math.max(...read.map((r) => r.option.length));
  return read.map((r) => `${r.option.padEnd(width)}  ${r.value === undefined ? '(unset)' : r.value === true ? 'y' : r.value === false ? 'n' : JSON.stringify(r.value)}  ${r.effect}`).join('\n');
}

/** The group each entry of {@link EMULATOR_GROUPS} builds, in its order. */
const EMULATOR_GROUP_IDS = [Group.OS, Group.IMAGE, Group.STAT, Group.SETTINGS, Group.FS, Group.SHELL, Group.ENUM, Group.ZEPHYR_BASIC];

/**
 * The emulator's group factories for a configuration: only the groups present, each without the
 * commands its options leave out (those then answer rc 8, as an unregistered handler does).
 */
export function kconfigGroupFactories(k: Pick<KconfigResult, 'groups' | 'commands'>): GroupFactory[] {
  if (EMULATOR_GROUPS.length !== EMULATOR_GROUP_IDS.length) throw new Error('EMULATOR_GROUPS changed: update EMULATOR_GROUP_IDS in kconfig.ts');
  const out: GroupFactory[] = [];
  EMULATOR_GROUPS.forEach((factory, i) => {
    const id = EMULATOR_GROUP_IDS[i]!;
    if (!k.groups.has(id)) return;
    out.push(async (server, device, options) => {
      const group = await factory(server, device, options);
      if (group.id !== id) throw new Error(`EMULATOR_GROUPS[${i}] builds group ${group.id}, not ${id}: update EMULATOR_GROUP_IDS in kconfig.ts`);
      const keep = k.commands.get(id);
      if (keep) group.handlers.forEach((_, cmd) => void (keep.has(cmd) || (group.handlers[cmd] = undefined)));
      return group;
    });
  });
  return out;
}

/** What {@link withKconfig} needs from the agent's options. */
export interface KconfigSource {
  /** The `.config` text. */
  text: string;
  /** Stands for the build time (os info `b`); default now. */
  time?: Date;
}

/**
 * Agent options with a `.config` applied underneath: every option given explicitly wins over the
 * configuration's value.
 */
export function withKconfig<T extends EmulatorOptions & { udp?: { mtu?: number }; serial?: { mtu?: number } }>(options: T, source: KconfigSource): T {
  const k = kconfigOptions(parseKconfig(source.text), source.time);
  const bufSize = options.bufSize ?? k.bufSize;
  const bufCount = options.bufCount ?? k.bufCount;
  return {
    ...options,
    ...(bufSize !== undefined ? { bufSize } : {}),
    ...(bufCount !== undefined ? { bufCount } : {}),
    groups: options.groups ?? kconfigGroupFactories(k),
    identity: { ...k.identity, ...options.identity },
    image: { ...k.image, ...options.image },
    device: { ...k.device, ...options.device },
    ...(options.udp && options.udp.mtu === undefined && k.udpMtu !== undefined ? { udp: { ...options.udp, mtu: k.udpMtu } } : {}),
    ...(options.serial && options.serial.mtu === undefined && k.serialMtu !== undefined ? { serial: { ...options.serial, mtu: k.serialMtu } } : {}),
  };
}
