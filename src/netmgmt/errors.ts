/** Errors of the net_mgmt module. */
import { McuMgrError, type McuMgrErrorOptions, type NetMgmtErrorCode } from '../core/errors.ts';

/**
 * A net_mgmt failure with a stable code:
 * - `NETMGMT_TIMEOUT`: an event wait ran out of time (Zephyr returns -ETIMEDOUT).
 * - `NETMGMT_ABORTED`: an event wait was cancelled through its AbortSignal (`cause` = the reason).
 * - `NETMGMT_NO_HANDLER`: `request()` of a code no handler was registered for (in Zephyr a link
 *   error; here a run-time one).
 */
export class NetMgmtError extends McuMgrError {
  declare readonly code: NetMgmtErrorCode;
  constructor(code: NetMgmtErrorCode, message: string, options?: McuMgrErrorOptions) {
    super(code, message, options);
  }
}

export function isNetMgmtError(e: unknown): e is NetMgmtError {
  return e instanceof NetMgmtError;
}
