/**
 * net_mgmt request and event codes: the 32-bit layout of Zephyr ≤ 4.0 (including 3.7), as in
 * `include/zephyr/net/net_mgmt.h`.
 *
 *   bit 31      event (1) or request (0)                     NET_MGMT_EVENT_MASK      0x80000000
 *   bit 30      the code concerns a network interface       NET_MGMT_ON_IFACE_MASK   0x40000000
 *   bits 29-28  layer: L2 = 1, L3 = 2, L4 = 3                NET_MGMT_LAYER_MASK      0x30000000
 *   bit 27      internal: marks a synchronous waiter         NET_MGMT_SYNC_EVENT_MASK 0x08000000
 *   bits 26-16  layer code (11 bits)                         NET_MGMT_LAYER_CODE_MASK 0x07FF0000
 *   bits 15-0   command, numbered 1, 2, 3, ...               NET_MGMT_COMMAND_MASK    0x0000FFFF
 *
 * Verified against the net_mgmt.h masks and macros in the Zephyr source (3.x tree): the values
 * above are the ones defined there. Zephyr 4.2 moved to 64-bit codes with one-hot commands; that
 * layout is not modelled here.
 *
 * Codes are plain `number`s kept unsigned (`>>> 0` after every bitwise OR).
 */
import { UsageError } from '../core/errors.ts';

export const NET_MGMT_EVENT_MASK = 0x80000000;
export const NET_MGMT_ON_IFACE_MASK = 0x40000000;
export const NET_MGMT_LAYER_MASK = 0x30000000;
export const NET_MGMT_SYNC_EVENT_MASK = 0x08000000;
export const NET_MGMT_LAYER_CODE_MASK = 0x07ff0000;
export const NET_MGMT_COMMAND_MASK = 0x0000ffff;

export const NET_MGMT_EVENT_BIT = 0x80000000;
export const NET_MGMT_IFACE_BIT = 0x40000000;
export const NET_MGMT_SYNC_EVENT_BIT = 0x08000000;

/** Layers (`NET_MGMT_LAYER_L2` ...). 0 is unused by Zephyr. */
export const NetMgmtLayer = { L2: 1, L3: 2, L4: 3 } as const;
export type NetMgmtLayerValue = 0 | 1 | 2 | 3;

/** Largest layer code (11 bits) and command (16 bits). */
export const NET_MGMT_MAX_LAYER_CODE = 0x7ff;
export const NET_MGMT_MAX_COMMAND = 0xffff;

/** `NET_MGMT_LAYER(l)`: the layer placed at bits 29-28. */
export function netMgmtLayer(layer: number): number {
  return ((layer & 0x3) << 28) >>> 0;
}

/** `NET_MGMT_LAYER_CODE(c)`: the layer code placed at bits 26-16. */
export function netMgmtLayerCode(code: number): number {
  return ((code & NET_MGMT_MAX_LAYER_CODE) << 16) >>> 0;
}

/** `NET_MGMT_EVENT(x)`: true when bit 31 is set. */
export function isNetMgmtEvent(code: number): boolean {
  return ((code & NET_MGMT_EVENT_MASK) >>> 0) !== 0;
}
/** `NET_MGMT_ON_IFACE(x)`: true when bit 30 is set. */
export function isNetMgmtOnIface(code: number): boolean {
  return (code & NET_MGMT_ON_IFACE_MASK) !== 0;
}
/** `NET_MGMT_EVENT_SYNCHRONOUS(x)`: true when bit 27 is set. */
export function isNetMgmtSynchronous(code: number): boolean {
  return (code & NET_MGMT_SYNC_EVENT_MASK) !== 0;
}
/** `NET_MGMT_GET_LAYER(x)`. */
export function netMgmtGetLayer(code: number): NetMgmtLayerValue {
  return ((code & NET_MGMT_LAYER_MASK) >>> 28) as NetMgmtLayerValue;
}
/** `NET_MGMT_GET_LAYER_CODE(x)`. */
export function netMgmtGetLayerCode(code: number): number {
  return (code & NET_MGMT_LAYER_CODE_MASK) >>> 16;
}
/** `NET_MGMT_GET_COMMAND(x)`. */
export function netMgmtGetCommand(code: number): number {
  return code & NET_MGMT_COMMAND_MASK;
}

/** A code taken apart into its fields. */
export interface NetMgmtCodeFields {
  /** Bit 31: an event (true) or a request (false). */
  event: boolean;
  /** Bit 30: the code concerns a network interface. */
  iface: boolean;
  /** Bits 29-28: 1 = L2, 2 = L3, 3 = L4 (0 unused). */
  layer: NetMgmtLayerValue;
  /** Bit 27: set only on the internal mask of a synchronous waiter. */
  sync: boolean;
  /** Bits 26-16. */
  layerCode: number;
  /** Bits 15-0. */
  command: number;
}

function checkField(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new UsageError(`net_mgmt ${name} must be an integer 0..${max}, got ${String(value)}`);
  }
}

/**
 * Builds a code from its fields (the `NET_MGMT_EVENT_BIT | NET_MGMT_IFACE_BIT | NET_MGMT_LAYER(l) |
 * NET_MGMT_LAYER_CODE(c) | cmd` idiom). Throws {@link UsageError} for a field out of range.
 */
export function buildNetMgmtCode(fields: Partial<Omit<NetMgmtCodeFields, 'layer'>> & { layer: number; layerCode: number; command: number }): number {
  checkField('layer', fields.layer, 3);
  checkField('layer code', fields.layerCode, NET_MGMT_MAX_LAYER_CODE);
  checkField('command', fields.command, NET_MGMT_MAX_COMMAND);
  return (
    ((fields.event ? NET_MGMT_EVENT_BIT : 0) |
      (fields.iface ? NET_MGMT_IFACE_BIT : 0) |
      netMgmtLayer(fields.layer) |
      (fields.sync ? NET_MGMT_SYNC_EVENT_BIT : 0) |
      netMgmtLayerCode(fields.layerCode) |
      fields.command) >>>
    0
  );
}

/** Takes a 32-bit code apart. Throws {@link UsageError} if `code` is not a uint32. */
export function parseNetMgmtCode(code: number): NetMgmtCodeFields {
  if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) {
    throw new UsageError(`net_mgmt code must be a uint32, got ${String(code)}`);
  }
  return {
    event: isNetMgmtEvent(code),
    iface: isNetMgmtOnIface(code),
    layer: netMgmtGetLayer(code),
    sync: isNetMgmtSynchronous(code),
    layerCode: netMgmtGetLayerCode(code),
    command: netMgmtGetCommand(code),
  };
}

/** True if `code` is an integer in 0..0xFFFFFFFF. */
export function isUint32(code: unknown): code is number {
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 0xffffffff;
}

/** True for a 32-bit code in either form: unsigned, or the signed result of a JS `|` (`A | B`). */
export function isNetMgmtCodeValue(code: unknown): code is number {
  return typeof code === 'number' && Number.isInteger(code) && code >= -0x80000000 && code <= 0xffffffff;
}

/**
 * Returns a code as an unsigned 32-bit number. Accepts the signed values JavaScript's bitwise
 * operators produce (`NET_EVENT_IF_UP | NET_EVENT_IF_DOWN` is negative); throws
 * {@link UsageError} for anything that is not a 32-bit integer.
 */
export function toNetMgmtCode(code: unknown, what = 'net_mgmt code'): number {
  if (!isNetMgmtCodeValue(code)) throw new UsageError(`${what} must be a 32-bit integer, got ${String(code)}`);
  return code >>> 0;
}

/**
 * Zephyr's per-callback match (`mgmt_run_slist_callbacks` / `mgmt_run_static_callbacks` in
 * subsys/net/ip/net_mgmt.c, read in the 3.6/3.7-era file): layer and layer code must be equal;
 * the command is a mask, so the callback runs when either command is 0 or they share a bit. The
 * event and iface bits are not compared. Commands are sequential numbers, so a mask of
 * IF_DOWN|IF_UP (1|2 = 3) also matches IF_ADMIN_DOWN (3): the documented false positive.
 */
export function netMgmtEventMatches(event: number, mask: number): boolean {
  if (netMgmtGetLayer(event) !== netMgmtGetLayer(mask)) return false;
  if (netMgmtGetLayerCode(event) !== netMgmtGetLayerCode(mask)) return false;
  const evCmd = netMgmtGetCommand(event);
  const maskCmd = netMgmtGetCommand(mask);
  if (evCmd !== 0 && maskCmd !== 0 && (evCmd & maskCmd) === 0) return false;
  return true;
}

/**
 * Zephyr's notify-time prefilter (`mgmt_is_event_handled`): every layer, layer-code and command bit
 * of the event must be present in the OR of all registered masks, or the event is dropped at the
 * source (never queued, never seen by a waiter that registers later).
 */
export function netMgmtGlobalMaskHandles(event: number, globalMask: number): boolean {
  const l = netMgmtGetLayer(event);
  const c = netMgmtGetLayerCode(event);
  const cmd = netMgmtGetCommand(event);
  return (l & netMgmtGetLayer(globalMask)) === l && (c & netMgmtGetLayerCode(globalMask)) === c && (cmd & netMgmtGetCommand(globalMask)) === cmd;
}

/** Formats a code as Zephyr prints it: `0x` and 8 upper-case hex digits. */
export function formatNetMgmtCode(code: number): string {
  return '0x' + (code >>> 0).toString(16).toUpperCase().padStart(8, '0');
}
