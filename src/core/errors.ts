/**
 * Errors. One base class, {@link McuMgrError}, with a stable string `code` that callers match on
 * (messages may change, codes do not). Three families are kept apart:
 *
 * - {@link TransportError}: the link failed (timeout, closed, packet too large, I/O).
 * - {@link ProtocolError}: bytes arrived but make no sense (bad header, bad CBOR, bad CRC, a
 *   response of the wrong shape).
 * - {@link DeviceError}: the device answered with an SMP error, v1 `rc` or v2 `err{group, rc}`,
 *   always shown by name (`image: hash not found (err 1/8)`).
 *
 * Plus {@link UsageError} for bad arguments handed to the library or the CLI.
 */
import { describeDeviceError, type DeviceErrorInfo } from './error-codes.ts';

export type TransportErrorCode =
  | 'TRANSPORT_TIMEOUT'
  | 'TRANSPORT_CLOSED'
  | 'TRANSPORT_TOO_LARGE'
  | 'TRANSPORT_IO'
  | 'TRANSPORT_ABORTED';

export type ProtocolErrorCode =
  | 'PROTOCOL_BAD_HEADER'
  | 'PROTOCOL_BAD_LENGTH'
  | 'PROTOCOL_BAD_CBOR'
  | 'PROTOCOL_CBOR_LIMIT'
  | 'PROTOCOL_BAD_CRC'
  | 'PROTOCOL_BAD_FRAME'
  | 'PROTOCOL_BAD_RESPONSE'
  | 'PROTOCOL_BAD_FIELD'
  | 'PROTOCOL_BAD_IMAGE';

/** net_mgmt (src/netmgmt): a wait that timed out or was aborted, a request with no handler. */
export type NetMgmtErrorCode = 'NETMGMT_TIMEOUT' | 'NETMGMT_ABORTED' | 'NETMGMT_NO_HANDLER';

export type ErrorCode =
  | TransportErrorCode
  | ProtocolErrorCode
  | NetMgmtErrorCode
  | 'DEVICE_ERROR'
  | 'USAGE'
  | 'NOT_FOUND'
  | 'BUSY'
  | 'UNSUPPORTED'
  /** The emulated device's stored state is unusable (slot file of the wrong size, corrupt swap journal, short I/O). */
  | 'DEVICE_STATE'
  /** A transfer finished but the device's hash or checksum of the file differs from the local data. */
  | 'VERIFY_FAILED'
  /** An upgrade's new image did not come up: the device runs another image after the reset. */
  | 'UPGRADE_REVERTED'
  /** An upgrade's image needs another image (DEPENDENCY TLV) that the device would not run. */
  | 'UPGRADE_DEPENDENCY'
  /** The new image runs in test but the device refuses to confirm it (it reverts at the next reset). */
  | 'UPGRADE_NOT_CONFIRMED'
  /** Another live emulator holds the data directory (its lock file names the pid). */
  | 'DATA_DIR_LOCKED'
  /** Fleet (src/fleet): a device id not in the inventory. */
  | 'FLEET_UNKNOWN_DEVICE'
  /** Fleet: a file given to `fleet images add` or a rollout that is not a sound MCUboot image. */
  | 'FLEET_BAD_IMAGE'
  /** Fleet: a rollout selector that matches no device. */
  | 'FLEET_NO_MATCH'
  /** Fleet: a gateway that jobs are addressed to did not show up in time. */
  | 'FLEET_GATEWAY_TIMEOUT'
  /** Fleet: a rollout id not in the store, or a rollout in a state that forbids the request. */
  | 'FLEET_ROLLOUT'
  /** Fleet: a rollout stopped because its failures exceeded the budget (the message names the devices). */
  | 'FLEET_HALTED'
  /** Fleet: the NATS server could not be reached or refused a request. */
  | 'FLEET_NATS'
  /** Fleet: a file for `fleet fs upload` is not in the store's file area (by SHA-256). */
  | 'FLEET_FILE';

export interface McuMgrErrorOptions {
  cause?: unknown;
}

export class McuMgrError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: McuMgrErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
  }
}

export class TransportError extends McuMgrError {
  declare readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, message: string, options?: McuMgrErrorOptions) {
    super(code, message, options);
  }
}

export class ProtocolError extends McuMgrError {
  declare readonly code: ProtocolErrorCode;
  constructor(code: ProtocolErrorCode, message: string, options?: McuMgrErrorOptions) {
    super(code, message, options);
  }
}

/**
 * An error the device reported. `group` is undefined for an SMP-level error (`{rc, rsn}`, v1 and
 * v2) and set for a v2 group error (`{err: {group, rc}}`).
 */
export class DeviceError extends McuMgrError {
  declare readonly code: 'DEVICE_ERROR';
  /** The SMP-level `rc` (MGMT_ERR_*) or, with `group` set, the group's own error number. */
  readonly rc: number;
  /** The group that raised a v2 group error; undefined for SMP-level `rc` errors. */
  readonly group: number | undefined;
  /** Reason text (`rsn`) when the device was built with verbose error responses. */
  readonly rsn: string | undefined;
  /** Stable symbolic name, e.g. `MGMT_ERR_ENOTSUP` or `IMG_MGMT_ERR_HASH_NOT_FOUND`. */
  readonly errorName: string;
  /** The other fields of the response that carried the error (fs upload adds `len`). */
  readonly body: Readonly<Record<string, unknown>>;

  constructor(rc: number, group?: number, rsn?: string, body: Readonly<Record<string, unknown>> = {}) {
    const info: DeviceErrorInfo = describeDeviceError(rc, group);
    const where = group === undefined ? `(rc ${rc})` : `(err ${group}/${rc})`;
    const reason = rsn ? `: ${rsn}` : '';
    super('DEVICE_ERROR', `${info.groupName ? info.groupName + ': ' : ''}${info.message}${reason} ${where}`);
    this.rc = rc;
    this.group = group;
    this.rsn = rsn;
    this.errorName = info.name;
    this.body = body;
  }
}

export class UsageError extends McuMgrError {
  constructor(message: string, options?: McuMgrErrorOptions) {
    super('USAGE', message, options);
  }
}

export function isMcuMgrError(e: unknown): e is McuMgrError {
  return e instanceof McuMgrError;
}
export function isTransportError(e: unknown): e is TransportError {
  return e instanceof TransportError;
}
export function isProtocolError(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError;
}
export function isDeviceError(e: unknown): e is DeviceError {
  return e instanceof DeviceError;
}
