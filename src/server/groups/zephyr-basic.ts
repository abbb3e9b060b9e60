/**
 * Group 63, Zephyr basic (smp-spec.md §3.9): erase the storage partition. On the emulated device
 * the storage partition holds the settings and the file system, so both are wiped; an open file
 * transfer is closed. Running settings values stay in RAM until the next reboot, as on a device.
 */
import { rm } from 'node:fs/promises';
import { commands } from '../../core/commands/index.ts';
import { Group, GROUP_NAMES } from '../../core/commands/command.ts';
import { BasicMgmtErr } from '../../core/error-codes.ts';
import { createDeviceServices, type DeviceServices } from '../device.ts';
import { MgmtError } from '../errors.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
import type { SmpServer } from '../server.ts';

export function createZephyrBasicGroup(server: SmpServer, device: DeviceServices = createDeviceServices(server)): MgmtGroup {
  const dev = device;
  return defineGroup(Group.ZEPHYR_BASIC, GROUP_NAMES[Group.ZEPHYR_BASIC]!, [
    handle(commands.zephyrBasic.eraseStorage, async () => {
      try {
        for (const hook of dev.onStorageErase) await hook();
        await dev.settings.erase();
        await rm(dev.fsRoot.storageDir, { recursive: true, force: true });
        await dev.fsRoot.ensureMounts();
      } catch {
        throw MgmtError.group(Group.ZEPHYR_BASIC, BasicMgmtErr.FLASH_ERASE_FAILED);
      }
      return {};
    }),
  ]);
}
