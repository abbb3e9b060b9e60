/**
 * What a device-side handler throws to answer with an error. The dispatcher turns it into the
 * wire form the request's version calls for (smp-spec.md §1.6, §2):
 *
 * - {@link MgmtError.rc}: an SMP-level error, `{rc, rsn?}` in v1 and v2.
 * - {@link MgmtError.group}: a group error, `{err: {group, rc}, ...extra}` in v2, translated to the
 *   group's legacy `{rc}` for a v1 request.
 */
import { McuMgrError } from '../core/errors.ts';

export class MgmtError extends McuMgrError {
  readonly rc: number;
  readonly group: number | undefined;
  readonly rsn: string | undefined;
  /** Extra response fields sent next to a v2 `err` (fs upload adds `len`). */
  readonly extra: Readonly<Record<string, unknown>>;

  private constructor(rc: number, group: number | undefined, rsn: string | undefined, extra: Record<string, unknown>) {
    super('DEVICE_ERROR', group === undefined ? `rc ${rc}${rsn ? `: ${rsn}` : ''}` : `err ${group}/${rc}`);
    this.rc = rc;
    this.group = group;
    this.rsn = rsn;
    this.extra = extra;
  }

  /** An SMP-level error (MGMT_ERR_*), with an optional reason text. */
  static rc(rc: number, rsn?: string): MgmtError {
    return new MgmtError(rc, undefined, rsn, {});
  }

  /** A group error; `extra` fields go into the v2 response beside `err`. */
  static group(group: number, rc: number, extra: Record<string, unknown> = {}): MgmtError {
    return new MgmtError(rc, group, undefined, extra);
  }
}
