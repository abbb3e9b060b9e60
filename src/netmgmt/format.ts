/** Presenting events: one JSON object per event, or one line of text. */
import { describeNetEvent, netEventName } from './events.ts';
import { formatNetMgmtCode } from './codes.ts';
import type { NetIf } from './net-if.ts';

/** The JSON form of an event: `{"event": "NET_EVENT_IPV4_ADDR_ADD", "code": 3758358529, "iface": "eth0", "info": {...}}`. */
export interface NetEventRecord {
  /** NET_EVENT_* name, or the hex code for an unnamed one. */
  event: string;
  /** The 32-bit code, unsigned. */
  code: number;
  /** Interface name, or null for events without one. */
  iface: string | null;
  /** The info object; byte info as lower-case hex; null without info. */
  info: unknown;
}

function jsonInfo(info: unknown): unknown {
  if (info === undefined || info === null) return null;
  if (info instanceof Uint8Array) return Array.from(info, (b) => b.toString(16).padStart(2, '0')).join('');
  return info;
}

export function netEventRecord(event: number, iface: NetIf | null, info: unknown): NetEventRecord {
  return { event: netEventName(event) ?? formatNetMgmtCode(event), code: event >>> 0, iface: iface?.name ?? null, info: jsonInfo(info) };
}

/** One line of text: `NET_EVENT_IPV4_ADDR_ADD 0xE0040001 eth0 {"addr":"10.0.0.1"}`. */
export function formatNetEventLine(event: number, iface: NetIf | null, info: unknown): string {
  const i = jsonInfo(info);
  return `${describeNetEvent(event)} ${formatNetMgmtCode(event)} ${iface ? iface.name : '-'}${i === null ? '' : ' ' + JSON.stringify(i)}`;
}
