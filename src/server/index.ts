/** The device side: server, registry, hooks, errors for handlers, the emulator. */
export * from './server.ts';
export * from './registry.ts';
export * from './hooks.ts';
export * from './errors.ts';
export * from './emulator.ts';
export { writeFileAtomic } from './storage.ts';
export { createOsGroup, osInfoOutput } from './groups/os.ts';
export * from './agent.ts';
export { DelayClock, DeviceActivity, installDeviceTiming, DEFAULT_FLASH_TIMING, DEFAULT_PROCESSING_US, ZEPHYR_RX_LINE_BUFFERS, type FlashTiming, type DeviceTimingOptions } from './device-timing.ts';
export { createDeviceNetwork, registerNetShellCommands, type DeviceNetwork, type DeviceNetworkOptions, type NetShellOptions } from './net-shell.ts';
export { TransportSwitch, type TransportSwitchOptions } from './transport-switch.ts';
export type { ImageGroupOptions } from './groups/image.ts';
export { createDeviceServices, McubootMode, type DeviceOptions, type DeviceServices } from './device.ts';
export { createImageGroup, imageGroupFactory, type ImageGroup } from './groups/image.ts';
export { createFsGroup, type FsGroupOptions } from './groups/fs.ts';
