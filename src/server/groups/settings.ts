/**
 * Group 3, settings (smp-spec.md §3.4), over the device's {@link SettingsSubsystem}; follows
 * Zephyr's settings_mgmt.c (read from the source):
 *
 * - read/write/delete: `name` is required and non-empty (else rc 3); a name of 32 bytes or more
 *   (CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN, the device option `settingsNameLen`) answers err{3,2}
 *   KEY_TOO_LONG. Read returns at most `max_size` bytes, capped at 32
 *   (CONFIG_MCUMGR_GRP_SETTINGS_VALUE_LEN, `settingsValueLen`); a larger request is capped and
 *   the response then says `max_size: 32`.
 * - handler errno → group error: -EINVAL → ROOT_KEY_NOT_FOUND (no handler for the subtree),
 *   -ENOENT → KEY_NOT_FOUND, -ENOTSUP → READ/WRITE/DELETE_NOT_SUPPORTED, anything else UNKNOWN.
 * - the `settings_access` hook runs before each command (after the name checks) and may deny
 *   with an rc (e.g. 11 EACCESSDENIED) or a group error.
 * - write changes the running value only; save persists; load re-reads storage and commits.
 *
 * At boot the stored settings are loaded (settings_load in main), after every running value is
 * forgotten (a reboot clears RAM).
 */
import { commands } from '../../core/commands/index.ts';
import { Group, GROUP_NAMES, type BodyOf } from '../../core/commands/command.ts';
import { MgmtErr, SettingsMgmtErr } from '../../core/error-codes.ts';
import { createDeviceServices, type DeviceServices } from '../device.ts';
import { MgmtError } from '../errors.ts';
import type { HookEvents } from '../hooks.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
import type { SmpServer } from '../server.ts';
import { SettingsErrno, type SettingsSubsystem } from '../settings.ts';

/** CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN's default: names must be shorter (NUL included). */
export const SETTINGS_NAME_LEN = 32;
/** CONFIG_MCUMGR_GRP_SETTINGS_VALUE_LEN's default: the most a read returns. */
export const SETTINGS_VALUE_LEN = 32;

function errnoToGroupError(rc: number, notSupported: 'READ_NOT_SUPPORTED' | 'WRITE_NOT_SUPPORTED' | 'DELETE_NOT_SUPPORTED'): MgmtError {
  const code = rc === SettingsErrno.EINVAL ? SettingsMgmtErr.ROOT_KEY_NOT_FOUND : rc === SettingsErrno.ENOENT ? SettingsMgmtErr.KEY_NOT_FOUND : rc === SettingsErrno.ENOTSUP ? SettingsMgmtErr[notSupported] : SettingsMgmtErr.UNKNOWN;
  return MgmtError.group(Group.SETTINGS, code);
}

/** What the settings commands work with. */
interface SettingsContext {
  readonly server: SmpServer;
  readonly settings: SettingsSubsystem;
  readonly nameLen: number;
  readonly valueLen: number;
}

type Body<C extends keyof typeof commands.settings> = BodyOf<(typeof commands.settings)[C]>;
type Empty = Record<string, never>;

function checkName({ nameLen }: SettingsContext, name: string): void {
  if (name.length === 0) throw MgmtError.rc(MgmtErr.EINVAL, 'empty name');
  if (new TextEncoder().encode(name).length >= nameLen) throw MgmtError.group(Group.SETTINGS, SettingsMgmtErr.KEY_TOO_LONG);
}

/** Runs the settings access hook; an error result becomes the command's error. */
async function settingsAccess(server: SmpServer, data: HookEvents['settings_access']): Promise<void> {
  const r = await server.hooks.notify('settings_access', data);
  if (r) throw 'group' in r ? MgmtError.group(r.group, r.rc) : MgmtError.rc(r.rc);
}

/** The settings group (3) over a device's settings subsystem; settings load at every boot. */
export function createSettingsGroup(server: SmpServer, device: DeviceServices = createDeviceServices(server)): MgmtGroup {
  const ctx: SettingsContext = { server, settings: device.settings, nameLen: device.options.settingsNameLen ?? SETTINGS_NAME_LEN, valueLen: device.options.settingsValueLen ?? SETTINGS_VALUE_LEN };
  server.onBoot(async () => {
    for (const h of device.settingsStores.values()) h.reset();
    await device.settings.load();
  });
  server.onClose(() => device.settings.close());
  return defineGroup(Group.SETTINGS, GROUP_NAMES[Group.SETTINGS]!, [
    handle(commands.settings.read, ({ body }) => settingsRead(ctx, body)),
    handle(commands.settings.write, ({ body }) => settingsWrite(ctx, body)),
    handle(commands.settings.delete, ({ body }) => settingsDelete(ctx, body)),
    handle(commands.settings.commit, () => settingsCommit(ctx)),
    handle(commands.settings.load, () => settingsLoad(ctx)),
    handle(commands.settings.save, ({ body }) => settingsSave(ctx, body)),
  ]);
}

/** 3/0 read: a value, cut to `max_size` (at most the value length, reported when limited). */
async function settingsRead(ctx: SettingsContext, body: Body<'read'>): Promise<{ val: Uint8Array; max_size?: number }> {
  const { server, settings, valueLen } = ctx;
  checkName(ctx, body.name);
  let maxSize = body.max_size ?? valueLen;
  let limited = false;
  if (maxSize > valueLen) {
    maxSize = valueLen;
    limited = true;
  }
  await settingsAccess(server, { access: 'read', name: body.name, value: undefined });
  const r = settings.runtimeGet(body.name, maxSize);
  if (typeof r === 'number') throw errnoToGroupError(r, 'READ_NOT_SUPPORTED');
  return limited ? { val: r.slice(), max_size: valueLen } : { val: r.slice() };
}

/** 3/0 write: sets a running value (not saved). */
async function settingsWrite(ctx: SettingsContext, body: Body<'write'>): Promise<Empty> {
  const { server, settings } = ctx;
  checkName(ctx, body.name);
  await settingsAccess(server, { access: 'write', name: body.name, value: body.val });
  const rc = settings.runtimeSet(body.name, body.val);
  if (rc < 0) throw errnoToGroupError(rc, 'WRITE_NOT_SUPPORTED');
  return {};
}

/** 3/1: deletes a stored value. */
async function settingsDelete(ctx: SettingsContext, body: Body<'delete'>): Promise<Empty> {
  const { server, settings } = ctx;
  checkName(ctx, body.name);
  await settingsAccess(server, { access: 'delete', name: body.name, value: undefined });
  const rc = await settings.delete(body.name);
  if (rc < 0) throw errnoToGroupError(rc, 'DELETE_NOT_SUPPORTED');
  return {};
}

/** 3/2: commit. */
async function settingsCommit({ server, settings }: SettingsContext): Promise<Empty> {
  await settingsAccess(server, { access: 'commit', name: undefined, value: undefined });
  settings.commit();
  return {};
}

/** 3/3 read: load from storage. */
async function settingsLoad({ server, settings }: SettingsContext): Promise<Empty> {
  await settingsAccess(server, { access: 'load', name: undefined, value: undefined });
  await settings.load();
  return {};
}

/** 3/3 write: save (a subtree with `name`). */
async function settingsSave({ server, settings }: SettingsContext, body: Body<'save'>): Promise<Empty> {
  await settingsAccess(server, { access: 'save', name: body.name, value: undefined });
  try {
    await settings.save(body.name);
  } catch {
    throw MgmtError.group(Group.SETTINGS, SettingsMgmtErr.UNKNOWN);
  }
  return {};
}
