/**
 * Group 3, settings (smp-spec.md §3.4), over the device's {@link SettingsSubsystem}; follows
 * Zephyr's settings_mgmt.c (read from the source):
 *
 * - read/write/delete: `name` is required and non-empty (else rc 3); a name of 32 bytes or more
 *   (CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN) answers err{3,2} KEY_TOO_LONG. Read returns at most
 *   `max_size` bytes, capped at 32 (CONFIG_MCUMGR_GRP_SETTINGS_VALUE_LEN); a larger request is
 *   capped and the response then says `max_size: 32`.
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
import { Group, GROUP_NAMES } from '../../core/commands/command.ts';
import { MgmtErr, SettingsMgmtErr } from '../../core/error-codes.ts';
import { deviceServices } from '../device.ts';
import { MgmtError } from '../errors.ts';
import type { HookEvents } from '../hooks.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
import type { SmpServer } from '../server.ts';
import { SettingsErrno } from '../settings.ts';

/** CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN: names must be shorter (NUL included). */
export const SETTINGS_NAME_LEN = 32;
/** CONFIG_MCUMGR_GRP_SETTINGS_VALUE_LEN: the most a read returns. */
export const SETTINGS_VALUE_LEN = 32;

const E = SettingsMgmtErr as Record<string, number>;

function errnoToGroupError(rc: number, notSupported: 'READ_NOT_SUPPORTED' | 'WRITE_NOT_SUPPORTED' | 'DELETE_NOT_SUPPORTED'): MgmtError {
  const code = rc === SettingsErrno.EINVAL ? E['ROOT_KEY_NOT_FOUND']! : rc === SettingsErrno.ENOENT ? E['KEY_NOT_FOUND']! : rc === SettingsErrno.ENOTSUP ? E[notSupported]! : E['UNKNOWN']!;
  return MgmtError.group(Group.SETTINGS, code);
}

export function createSettingsGroup(server: SmpServer): MgmtGroup {
  const dev = deviceServices(server);
  const settings = dev.settings;

  const checkName = (name: string): void => {
    if (name.length === 0) throw MgmtError.rc(MgmtErr.EINVAL, 'empty name');
    if (new TextEncoder().encode(name).length >= SETTINGS_NAME_LEN) throw MgmtError.group(Group.SETTINGS, E['KEY_TOO_LONG']!);
  };
  const access = async (data: HookEvents['settings_access']): Promise<void> => {
    const r = await server.hooks.notify('settings_access', data);
    if (r) throw 'group' in r ? MgmtError.group(r.group, r.rc) : MgmtError.rc(r.rc);
  };

  server.onBoot(async () => {
    for (const h of dev.settingsStores.values()) h.reset();
    await settings.load();
  });
  server.onClose(() => settings.close());

  return defineGroup(Group.SETTINGS, GROUP_NAMES[Group.SETTINGS]!, [
    handle(commands.settings.read, async ({ body }) => {
      checkName(body.name);
      let maxSize = body.max_size ?? SETTINGS_VALUE_LEN;
      let limited = false;
      if (maxSize > SETTINGS_VALUE_LEN) {
        maxSize = SETTINGS_VALUE_LEN;
        limited = true;
      }
      await access({ access: 'read', name: body.name, value: undefined });
      const r = settings.runtimeGet(body.name, maxSize);
      if (typeof r === 'number') throw errnoToGroupError(r, 'READ_NOT_SUPPORTED');
      return limited ? { val: r.slice(), max_size: SETTINGS_VALUE_LEN } : { val: r.slice() };
    }),
    handle(commands.settings.write, async ({ body }) => {
      checkName(body.name);
      await access({ access: 'write', name: body.name, value: body.val });
      const rc = settings.runtimeSet(body.name, body.val);
      if (rc < 0) throw errnoToGroupError(rc, 'WRITE_NOT_SUPPORTED');
      return {};
    }),
    handle(commands.settings.delete, async ({ body }) => {
      checkName(body.name);
      await access({ access: 'delete', name: body.name, value: undefined });
      const rc = await settings.delete(body.name);
      if (rc < 0) throw errnoToGroupError(rc, 'DELETE_NOT_SUPPORTED');
      return {};
    }),
    handle(commands.settings.commit, async () => {
      await access({ access: 'commit', name: undefined, value: undefined });
      settings.commit();
      return {};
    }),
    handle(commands.settings.load, async () => {
      await access({ access: 'load', name: undefined, value: undefined });
      await settings.load();
      return {};
    }),
    handle(commands.settings.save, async ({ body }) => {
      await access({ access: 'save', name: body.name, value: undefined });
      try {
        await settings.save(body.name);
      } catch {
        throw MgmtError.group(Group.SETTINGS, E['UNKNOWN']!);
      }
      return {};
    }),
  ]);
}
