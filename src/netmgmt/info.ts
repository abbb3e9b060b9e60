/**
 * Event information (CONFIG_NET_MGMT_EVENT_INFO): the structures of net_event.h as plain objects,
 * and their C byte layout (little-endian, natural alignment: `struct in6_addr` is 4-aligned).
 *
 * | struct (net_event.h)           | events                                     | bytes |
 * |--------------------------------|--------------------------------------------|-------|
 * | `struct in_addr`               | IPV4_ADDR_ADD/DEL, MADDR_ADD/DEL, ROUTER_ADD/DEL, MCAST_JOIN/LEAVE, ACD_* | 4 |
 * | `net_event_ipv6_addr`          | IPV6_ADDR_ADD/DEL, MADDR_ADD/DEL, DAD_*, ADDR_DEPRECATED, MCAST_JOIN/LEAVE, ROUTER_ADD/DEL | 16 |
 * | `net_event_ipv6_nbr`           | IPV6_NBR_ADD/DEL (idx = -1 on delete)      | 20    |
 * | `net_event_ipv6_route`         | IPV6_ROUTE_ADD/DEL                         | 36 (33 + padding) |
 * | `net_event_ipv6_prefix`        | IPV6_PREFIX_ADD/DEL                        | 24    |
 * | `net_event_ipv6_pe_filter`     | IPV6_PE_FILTER_ADD/DEL                     | 20    |
 * | `net_event_ipv4_pmtu_info`     | IPV4_PMTU_CHANGED                          | 8     |
 * | `net_event_ipv6_pmtu_info`     | IPV6_PMTU_CHANGED                          | 20    |
 * | `net_event_l4_hostname`        | HOSTNAME_CHANGED (char[NET_HOSTNAME_SIZE]) | any   |
 *
 * The struct layouts are from net_event.h (read in the Zephyr source). Which events carry which
 * struct follows net_if.c/ipv6_nbr.c call sites as far as they were read; the ones not read
 * (IPv4 ROUTER/MCAST/ACD carrying an in_addr, IPv6 ROUTER/MCAST carrying an in6_addr) are the
 * obvious choice and marked here as unverified.
 */
import { ProtocolError, UsageError } from '../core/errors.ts';
import { formatIpv4, formatIpv6, tryParseIpv4, tryParseIpv6 } from './ip.ts';
import * as E from './events.ts';

/** `struct in_addr` carried by IPv4 address events. */
export interface NetEventIpv4Addr { addr: string }
/** `struct net_event_ipv6_addr`. */
export interface NetEventIpv6Addr { addr: string }
/** `struct net_event_ipv6_nbr`. `idx` is -1 on NBR_DEL. */
export interface NetEventIpv6Nbr { addr: string; idx: number }
/** `struct net_event_ipv6_route`. */
export interface NetEventIpv6Route { nexthop: string; addr: string; prefixLen: number }
/** `struct net_event_ipv6_prefix`. `lifetime` in seconds. */
export interface NetEventIpv6Prefix { addr: string; len: number; lifetime: number }
/** `struct net_event_ipv6_pe_filter`. */
export interface NetEventIpv6PeFilter { prefix: string; isDenyList: boolean }
/** `struct net_event_ipv4_pmtu_info`. */
export interface NetEventIpv4Pmtu { dst: string; mtu: number }
/** `struct net_event_ipv6_pmtu_info`. */
export interface NetEventIpv6Pmtu { dst: string; mtu: number }
/** `struct net_event_l4_hostname`. */
export interface NetEventL4Hostname { hostname: string }

/** Any of the info structures. */
export type NetEventInfo =
  | NetEventIpv4Addr | NetEventIpv6Addr | NetEventIpv6Nbr | NetEventIpv6Route | NetEventIpv6Prefix
  | NetEventIpv6PeFilter | NetEventIpv4Pmtu | NetEventIpv6Pmtu | NetEventL4Hostname;

/** Which structure an event carries. */
export type NetEventInfoKind = 'in_addr' | 'ipv6_addr' | 'ipv6_nbr' | 'ipv6_route' | 'ipv6_prefix' | 'ipv6_pe_filter' | 'ipv4_pmtu' | 'ipv6_pmtu' | 'hostname';

const KIND = new Map<number, NetEventInfoKind>([
  [E.NET_EVENT_IPV4_ADDR_ADD, 'in_addr'], [E.NET_EVENT_IPV4_ADDR_DEL, 'in_addr'],
  [E.NET_EVENT_IPV4_MADDR_ADD, 'in_addr'], [E.NET_EVENT_IPV4_MADDR_DEL, 'in_addr'],
  [E.NET_EVENT_IPV4_ROUTER_ADD, 'in_addr'], [E.NET_EVENT_IPV4_ROUTER_DEL, 'in_addr'],
  [E.NET_EVENT_IPV4_MCAST_JOIN, 'in_addr'], [E.NET_EVENT_IPV4_MCAST_LEAVE, 'in_addr'],
  [E.NET_EVENT_IPV4_ACD_SUCCEED, 'in_addr'], [E.NET_EVENT_IPV4_ACD_FAILED, 'in_addr'], [E.NET_EVENT_IPV4_ACD_CONFLICT, 'in_addr'],
  [E.NET_EVENT_IPV4_PMTU_CHANGED, 'ipv4_pmtu'],
  [E.NET_EVENT_IPV6_ADDR_ADD, 'ipv6_addr'], [E.NET_EVENT_IPV6_ADDR_DEL, 'ipv6_addr'],
  [E.NET_EVENT_IPV6_MADDR_ADD, 'ipv6_addr'], [E.NET_EVENT_IPV6_MADDR_DEL, 'ipv6_addr'],
  [E.NET_EVENT_IPV6_MCAST_JOIN, 'ipv6_addr'], [E.NET_EVENT_IPV6_MCAST_LEAVE, 'ipv6_addr'],
  [E.NET_EVENT_IPV6_ROUTER_ADD, 'ipv6_addr'], [E.NET_EVENT_IPV6_ROUTER_DEL, 'ipv6_addr'],
  [E.NET_EVENT_IPV6_DAD_SUCCEED, 'ipv6_addr'], [E.NET_EVENT_IPV6_DAD_FAILED, 'ipv6_addr'],
  [E.NET_EVENT_IPV6_ADDR_DEPRECATED, 'ipv6_addr'],
  [E.NET_EVENT_IPV6_NBR_ADD, 'ipv6_nbr'], [E.NET_EVENT_IPV6_NBR_DEL, 'ipv6_nbr'],
  [E.NET_EVENT_IPV6_ROUTE_ADD, 'ipv6_route'], [E.NET_EVENT_IPV6_ROUTE_DEL, 'ipv6_route'],
  [E.NET_EVENT_IPV6_PREFIX_ADD, 'ipv6_prefix'], [E.NET_EVENT_IPV6_PREFIX_DEL, 'ipv6_prefix'],
  [E.NET_EVENT_IPV6_PE_FILTER_ADD, 'ipv6_pe_filter'], [E.NET_EVENT_IPV6_PE_FILTER_DEL, 'ipv6_pe_filter'],
  [E.NET_EVENT_IPV6_PMTU_CHANGED, 'ipv6_pmtu'],
  [E.NET_EVENT_HOSTNAME_CHANGED, 'hostname'],
]);

/** Byte size of each fixed structure (hostname is variable: NET_HOSTNAME_SIZE is a build option). */
export const NET_EVENT_INFO_SIZE: Readonly<Record<Exclude<NetEventInfoKind, 'hostname'>, number>> = {
  in_addr: 4, ipv6_addr: 16, ipv6_nbr: 20, ipv6_route: 36, ipv6_prefix: 24, ipv6_pe_filter: 20, ipv4_pmtu: 8, ipv6_pmtu: 20,
};

/** The info structure an event carries, or undefined when it carries none. */
export function netEventInfoKind(event: number): NetEventInfoKind | undefined {
  return KIND.get(event >>> 0);
}

function v4(text: unknown, what: string): Uint8Array {
  const b = typeof text === 'string' ? tryParseIpv4(text) : undefined;
  if (!b) throw new UsageError(`${what}: not an IPv4 address: ${JSON.stringify(text)}`);
  return b;
}
function v6(text: unknown, what: string): Uint8Array {
  const b = typeof text === 'string' ? tryParseIpv6(text) : undefined;
  if (!b) throw new UsageError(`${what}: not an IPv6 address: ${JSON.stringify(text)}`);
  return b;
}
function uint(n: unknown, max: number, what: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) throw new UsageError(`${what} must be an integer 0..${max}, got ${String(n)}`);
  return n;
}

/**
 * Encodes an info object into the C structure the event carries. Throws {@link UsageError} for an
 * event without an info structure or a malformed object. `hostnameSize` is NET_HOSTNAME_SIZE
 * (the name is NUL-padded to it; default: name length + 1).
 */
export function encodeEventInfo(event: number, info: NetEventInfo, hostnameSize?: number): Uint8Array {
  const kind = netEventInfoKind(event);
  if (!kind) throw new UsageError(`event 0x${(event >>> 0).toString(16)} carries no info structure`);
  const o = info as unknown as Record<string, unknown>;
  if (kind === 'hostname') {
    const name = new TextEncoder().encode(typeof o.hostname === 'string' ? o.hostname : '');
    const size = hostnameSize ?? name.length + 1;
    if (name.length >= size) throw new UsageError(`hostname does not fit NET_HOSTNAME_SIZE ${size}`);
    const out = new Uint8Array(size);
    out.set(name);
    return out;
  }
  const out = new Uint8Array(NET_EVENT_INFO_SIZE[kind]);
  const dv = new DataView(out.buffer);
  switch (kind) {
    case 'in_addr': out.set(v4(o.addr, 'addr')); break;
    case 'ipv6_addr': out.set(v6(o.addr, 'addr')); break;
    case 'ipv6_nbr': {
      out.set(v6(o.addr, 'addr'));
      const idx = o.idx;
      if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < -0x80000000 || idx > 0x7fffffff) throw new UsageError(`idx must be an int32, got ${String(idx)}`);
      dv.setInt32(16, idx, true);
      break;
    }
    case 'ipv6_route':
      out.set(v6(o.nexthop, 'nexthop'), 0);
      out.set(v6(o.addr, 'addr'), 16);
      out[32] = uint(o.prefixLen, 128, 'prefixLen');
      break;
    case 'ipv6_prefix':
      out.set(v6(o.addr, 'addr'));
      out[16] = uint(o.len, 128, 'len');
      dv.setUint32(20, uint(o.lifetime, 0xffffffff, 'lifetime'), true);
      break;
    case 'ipv6_pe_filter':
      out.set(v6(o.prefix, 'prefix'));
      out[16] = o.isDenyList ? 1 : 0;
      break;
    case 'ipv4_pmtu':
      out.set(v4(o.dst, 'dst'));
      dv.setUint16(4, uint(o.mtu, 0xffff, 'mtu'), true);
      break;
    case 'ipv6_pmtu':
      out.set(v6(o.dst, 'dst'));
      dv.setUint32(16, uint(o.mtu, 0xffffffff, 'mtu'), true);
      break;
  }
  return out;
}

/**
 * Decodes the C structure an event carries. Returns undefined for an event without a known info
 * structure; throws {@link ProtocolError} (`PROTOCOL_BAD_LENGTH`) when the bytes are too short.
 * Padding and trailing bytes are ignored (Zephyr passes `sizeof(struct)`).
 */
export function decodeEventInfo(event: number, bytes: Uint8Array): NetEventInfo | undefined {
  const kind = netEventInfoKind(event);
  if (!kind) return undefined;
  if (kind === 'hostname') {
    const end = bytes.indexOf(0);
    return { hostname: new TextDecoder('utf-8', { fatal: false }).decode(end < 0 ? bytes : bytes.subarray(0, end)) };
  }
  // The last field's end is the minimum; trailing padding may be absent.
  const need: Record<typeof kind, number> = { in_addr: 4, ipv6_addr: 16, ipv6_nbr: 20, ipv6_route: 33, ipv6_prefix: 24, ipv6_pe_filter: 17, ipv4_pmtu: 6, ipv6_pmtu: 20 };
  if (bytes.length < need[kind]) {
    throw new ProtocolError('PROTOCOL_BAD_LENGTH', `${kind} info needs ${need[kind]} bytes, got ${bytes.length}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const a6 = (off: number): string => formatIpv6(bytes.subarray(off, off + 16));
  switch (kind) {
    case 'in_addr': return { addr: formatIpv4(bytes.subarray(0, 4)) };
    case 'ipv6_addr': return { addr: a6(0) };
    case 'ipv6_nbr': return { addr: a6(0), idx: dv.getInt32(16, true) };
    case 'ipv6_route': return { nexthop: a6(0), addr: a6(16), prefixLen: bytes[32]! };
    case 'ipv6_prefix': return { addr: a6(0), len: bytes[16]!, lifetime: dv.getUint32(20, true) };
    case 'ipv6_pe_filter': return { prefix: a6(0), isDenyList: bytes[16] !== 0 };
    case 'ipv4_pmtu': return { dst: formatIpv4(bytes.subarray(0, 4)), mtu: dv.getUint16(4, true) };
    case 'ipv6_pmtu': return { dst: a6(0), mtu: dv.getUint32(16, true) };
  }
}
