/**
 * Errors shown by name, with what to do about them. Every error the page shows goes through
 * {@link explainError}: the stable code or device error name, the message, and advice.
 */
import { DeviceError, McuMgrError } from '../../src/core/errors.ts';

export interface ExplainedError {
  /** Stable name: a device error's name (IMG_MGMT_ERR_...) or an McuMgrError code. */
  name: string;
  message: string;
  advice: string;
}

const DEVICE_ADVICE: Record<string, string> = {
  MGMT_ERR_ENOTSUP: 'The firmware does not include this command: enable its MCUmgr group in the device configuration (Kconfig).',
  MGMT_ERR_EINVAL: 'The device rejected a value in the request: check the fields you entered.',
  MGMT_ERR_ENOENT: 'No such file, setting or entry on the device: check the name or path.',
  MGMT_ERR_EBADSTATE: 'The device is in a state that disallows this: finish or reset what is in progress, then try again.',
  MGMT_ERR_EMSGSIZE: 'The answer does not fit the device buffer: ask for less (a smaller read) or raise the MCUmgr buffer size.',
  MGMT_ERR_EBUSY: 'The device is busy with another command (another client?): wait and try again.',
  MGMT_ERR_EACCESSDENIED: 'The device refused access: this command may be locked by the application.',
  MGMT_ERR_ENOMEM: 'The device ran out of memory: try a smaller request.',
  IMG_MGMT_ERR_IMAGE_ALREADY_PENDING: 'Another image is already marked for the next boot: reset the device (to run or revert it) or confirm first.',
  IMG_MGMT_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED: 'The running image cannot be marked for test: confirm it instead.',
  IMG_MGMT_ERR_IMAGE_CONFIRMATION_DENIED: 'The device allows confirming the running image only: reset into the new image first.',
  IMG_MGMT_ERR_NO_FREE_SLOT: 'That slot is in use (running, pending or the revert target): reset or confirm before erasing.',
  IMG_MGMT_ERR_HASH_NOT_FOUND: 'No slot holds an image with that hash: refresh the slot list.',
  IMG_MGMT_ERR_INVALID_IMAGE_TOO_LARGE: 'The image is larger than the slot: build a smaller image or use a device with larger slots.',
  IMG_MGMT_ERR_CURRENT_VERSION_IS_NEWER: 'The device refuses a downgrade: build a newer version, or upload without the upgrade-only option.',
  FS_MGMT_ERR_FILE_NOT_FOUND: 'No such file: check the path (it starts with the mount point, e.g. /lfs/).',
  FS_MGMT_ERR_MOUNT_POINT_NOT_FOUND: 'The path is outside any mounted file system: start it with the mount point (e.g. /lfs/).',
  FS_MGMT_ERR_FILE_IS_DIRECTORY: 'That path is a directory: name a file inside it.',
  SETTINGS_MGMT_ERR_KEY_NOT_FOUND: 'No such setting: check the name (subtree/key).',
  SETTINGS_MGMT_ERR_WRITE_NOT_SUPPORTED: 'This setting is read-only on the device.',
  STAT_MGMT_ERR_INVALID_GROUP: 'No such statistics group: refresh the list.',
  SHELL_MGMT_ERR_COMMAND_TOO_LONG: 'The command line is longer than the device shell takes: shorten it.',
};

const CODE_ADVICE: Record<string, string> = {
  TRANSPORT_TIMEOUT: 'The device did not answer in time: check that it is powered and connected (and that `mcumgr dashboard` still runs for a bridge link), then try again.',
  TRANSPORT_CLOSED: 'The link to the device closed: reconnect it from the sidebar.',
  TRANSPORT_IO: 'The link failed: check the device is connected and the connection string is right; for a bridge link, open the page from the address `mcumgr dashboard` printed.',
  TRANSPORT_TOO_LARGE: 'The request does not fit the link MTU: use a smaller value.',
  TRANSPORT_ABORTED: 'Cancelled.',
  PROTOCOL_BAD_RESPONSE: 'The device answered with something unexpected: see the SMP log for the exchange and report it.',
  PROTOCOL_BAD_IMAGE: 'The file is not a valid MCUboot image: build it with imgtool (or `mcumgr image build`).',
  UPGRADE_REVERTED: 'The bootloader did not keep the new image (bad signature or hash, or it reverted): check the image is signed with a key the bootloader trusts.',
  VERIFY_FAILED: 'The device has different bytes than were sent: try the transfer again.',
  USAGE: 'Check the values entered.',
  UNSUPPORTED: 'This browser or device does not support it.',
};

export function explainError(e: unknown): ExplainedError {
  if (e instanceof DeviceError) {
    return { name: e.errorName, message: e.message, advice: DEVICE_ADVICE[e.errorName] ?? 'The device refused the command: see its name and the SMP log.' };
  }
  if (e instanceof McuMgrError) {
    return { name: e.code, message: e.message, advice: CODE_ADVICE[e.code] ?? 'See the SMP log for details.' };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { name: e instanceof Error ? e.name : 'Error', message, advice: 'Unexpected error: see the SMP log, and report it with the exported log.' };
}
