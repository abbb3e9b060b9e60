/**
 * MCUboot's modes of operation as the emulator models them, with the number Zephyr's OS
 * bootloader-info command reports for each (`enum mcuboot_mode`, MCUboot boot_status.h; Zephyr
 * os_mgmt.c maps CONFIG_MCUBOOT_BOOTLOADER_MODE_* onto it).
 *
 * | mode | MCUboot config | which slot boots | test / confirm (img_mgmt) |
 * |---|---|---|---|
 * | swap-scratch, swap-move, swap-offset | MCUBOOT_SWAP_USING_* | primary; a pending secondary is swapped in (TEST reverts unless confirmed) | test, confirm, revert |
 * | overwrite-only | MCUBOOT_OVERWRITE_ONLY | primary; a pending secondary is copied over it (no revert: a test is as permanent) | test = confirm |
 * | direct-xip | MCUBOOT_DIRECT_XIP | the valid slot with the highest version | state write not registered: rc 8 |
 * | direct-xip-revert | MCUBOOT_DIRECT_XIP + _REVERT | highest version among slots whose trailer says "boot me"; an unconfirmed tried slot is erased | test, confirm |
 * | ram-load | MCUBOOT_RAM_LOAD | highest valid version, copied to RAM | as direct-xip (inferred: Zephyr has no RAM-load img_mgmt variant) |
 * | single-slot | MCUBOOT_SINGLE_APPLICATION_SLOT + serial recovery | slot 0 only; the SMP server is the serial recovery (upload straight into slot 0) | rc 8 (boot_serial.c without MCUBOOT_SERIAL_IMG_GRP_IMAGE_STATE) |
 *
 * The swap modes share one crash-safe swap here (a journal like swap-scratch's status area); what
 * differs between them for a client is the largest image: swap-move and swap-offset need one
 * spare sector (MCUboot docs/design.md), swap-scratch does not.
 */
import { McubootMode } from '../device.ts';

export const MCUBOOT_MODE_NAMES = ['swap-scratch', 'swap-move', 'swap-offset', 'overwrite-only', 'direct-xip', 'direct-xip-revert', 'ram-load', 'single-slot'] as const;
export type McubootModeName = (typeof MCUBOOT_MODE_NAMES)[number];

/** The number bootloader info reports (`query: mode`) for each mode. */
export const MCUBOOT_MODE_NUMBER: Readonly<Record<McubootModeName, number>> = {
  'swap-scratch': McubootMode.SWAP_USING_SCRATCH,
  'swap-move': McubootMode.SWAP_USING_MOVE,
  'swap-offset': McubootMode.SWAP_USING_OFFSET,
  'overwrite-only': McubootMode.UPGRADE_ONLY,
  'direct-xip': McubootMode.DIRECT_XIP,
  'direct-xip-revert': McubootMode.DIRECT_XIP_WITH_REVERT,
  'ram-load': McubootMode.RAM_LOAD,
  'single-slot': McubootMode.SINGLE_SLOT,
};

export function isMcubootModeName(s: string): s is McubootModeName {
  return (MCUBOOT_MODE_NAMES as readonly string[]).includes(s);
}

/** Swap modes: the primary runs, a secondary is swapped in and may revert. */
export function isSwapMode(m: McubootModeName): boolean {
  return m === 'swap-scratch' || m === 'swap-move' || m === 'swap-offset';
}

/** Modes where both slots are equal and the newest valid image boots (no copy). */
export function isEquivalentSlotMode(m: McubootModeName): boolean {
  return m === 'direct-xip' || m === 'direct-xip-revert' || m === 'ram-load';
}
