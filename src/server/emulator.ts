/**
 * The emulated device: an SmpServer with every implemented group registered, booted, and
 * listening on the given transports. `mcumgr serve` is a thin wrapper around this.
 */
import { mkdir } from 'node:fs/promises';
import { createOsGroup } from './groups/os.ts';
import { createImageGroup, type ImageGroupOptions } from './groups/image.ts';
import { createStatGroup } from './groups/stat.ts';
import { createSettingsGroup } from './groups/settings.ts';
import { createFsGroup } from './groups/fs.ts';
import { createShellGroup } from './groups/shell.ts';
import { createEnumGroup } from './groups/enum.ts';
import { createZephyrBasicGroup } from './groups/zephyr-basic.ts';
import { createDeviceServices, type DeviceOptions, type DeviceServices } from './device.ts';
import type { MgmtGroup } from './registry.ts';
import { SmpServer, type SmpServerOptions } from './server.ts';
import type { ServerTransport } from '../transport/types.ts';
import { lockDataDir } from './data-lock.ts';

/**
 * Builds one group for a server, with the device's shared services and the emulator's options;
 * may register boot and close tasks on the server.
 */
export type GroupFactory = (server: SmpServer, device: DeviceServices, options: EmulatorOptions) => MgmtGroup | Promise<MgmtGroup>;

/** The groups an emulator registers, in registration (= enumeration) order. */
export const EMULATOR_GROUPS: readonly GroupFactory[] = [
  createOsGroup,
  (server, _device, options) => createImageGroup(server, options.image),
  createStatGroup,
  createSettingsGroup,
  (server, device) => createFsGroup(server, device),
  createShellGroup,
  createEnumGroup,
  createZephyrBasicGroup,
];

/** A running emulated device: its server, with the services its groups share. */
export interface Emulator extends SmpServer {
  /** Statistics, settings, shell, file system root, network: register your own entries here. */
  readonly device: DeviceServices;
}

export interface EmulatorOptions extends SmpServerOptions {
  /** Groups to register instead of {@link EMULATOR_GROUPS}. */
  groups?: GroupFactory[];
  transports?: ServerTransport[];
  /** Options of the emulated device's shared services (file system mounts, settings subtrees, shell host commands, bootloader mode). */
  device?: DeviceOptions;
  /** The image group and its MCUboot model: images, slot size, trusted signing keys, ... */
  image?: ImageGroupOptions;
  /**
   * Lock the data directory (default true): a second emulator on the same directory, in this
   * process or another, is refused with DATA_DIR_LOCKED naming the holder's pid; a stale lock of
   * a killed process is taken over. Released when the server closes.
   */
  lockDataDir?: boolean;
}

export async function createEmulator(options: EmulatorOptions): Promise<Emulator> {
  await mkdir(options.dataDir, { recursive: true });
  const lock = options.lockDataDir === false ? undefined : await lockDataDir(options.dataDir);
  const server = new SmpServer(options);
  try {
    const device = createDeviceServices(server, options.device);
    for (const factory of options.groups ?? EMULATOR_GROUPS) server.registerGroup(await factory(server, device, options));
    // Registered after the groups' close tasks: the lock goes once every store is closed.
    if (lock) server.onClose(() => lock.release());
    await server.boot();
    for (const t of options.transports ?? []) await server.listen(t);
    return Object.assign(server, { device });
  } catch (e) {
    await server.close().catch(() => {});
    await lock?.release();
    throw e;
  }
}
