/**
 * NET_EVENT_* codes of the core families (Zephyr's include/zephyr/net/net_event.h), 32-bit
 * layout of Zephyr 3.7.
 *
 * Verified against the Zephyr source: the `enum net_event_*_cmd` lists of net_event.h (a tree of
 * the 3.7/4.0 era, the one that has ACD, PE and PMTU). The numbering starts at 1 in each family
 * and every later addition was appended, so 3.7's values are a prefix of that file's:
 *  - IF   (L2, code 0x001): DOWN 1, UP 2, ADMIN_DOWN 3, ADMIN_UP 4.
 *  - IPv6 (L3, code 0x060): ADDR_ADD 1 ... PE_FILTER_DEL 24; PMTU_CHANGED 25 came after 3.7
 *    (the 3.7.0 docs list no PMTU event) and is kept, marked, because it renumbers nothing.
 *  - IPv4 (L3, code 0x004): ADDR_ADD 1 ... ACD_CONFLICT 14; PMTU_CHANGED 15 likewise post-3.7.
 *  - L4   (L4, code 0x114): CONNECTED 1, DISCONNECTED 2, IPV4_CONNECTED 3, IPV4_DISCONNECTED 4,
 *    IPV6_CONNECTED 5, IPV6_DISCONNECTED 6, DNS_SERVER_ADD 7, DNS_SERVER_DEL 8,
 *    HOSTNAME_CHANGED 9, CAPTURE_STARTED 10, CAPTURE_STOPPED 11. Trees before 3.6/3.7 lacked the
 *    IPV4/IPV6_CONNECTED entries (an older net_event.h read had DNS_SERVER_ADD = 3), so the L4
 *    numbers are version-specific: these are the 3.7 ones.
 *  - conn_mgr (L2, code 0x207): IF_TIMEOUT 1, IF_FATAL_ERROR 2 (from the conn_mgr sources).
 * All families set both the event and the iface bit.
 */
import { NET_MGMT_EVENT_BIT, NET_MGMT_IFACE_BIT, NetMgmtLayer, netMgmtLayer, netMgmtLayerCode, formatNetMgmtCode } from './codes.ts';

function base(layer: number, layerCode: number): number {
  return (NET_MGMT_EVENT_BIT | NET_MGMT_IFACE_BIT | netMgmtLayer(layer) | netMgmtLayerCode(layerCode)) >>> 0;
}

/** Layer codes of the core families. */
export const NetEventLayerCode = { IF: 0x001, IPV4: 0x004, IPV6: 0x060, L4: 0x114, CONN: 0x207 } as const;

/** `_NET_EVENT_IF_BASE` = 0xD0010000. */
export const NET_EVENT_IF_BASE = base(NetMgmtLayer.L2, NetEventLayerCode.IF);
/** `_NET_EVENT_IPV6_BASE` = 0xE0600000. */
export const NET_EVENT_IPV6_BASE = base(NetMgmtLayer.L3, NetEventLayerCode.IPV6);
/** `_NET_EVENT_IPV4_BASE` = 0xE0040000. */
export const NET_EVENT_IPV4_BASE = base(NetMgmtLayer.L3, NetEventLayerCode.IPV4);
/** `_NET_EVENT_L4_BASE` = 0xF1140000. */
export const NET_EVENT_L4_BASE = base(NetMgmtLayer.L4, NetEventLayerCode.L4);
/** `NET_EVENT_CONN_BASE` (conn_mgr) = 0xD2070000. */
export const NET_EVENT_CONN_BASE = base(NetMgmtLayer.L2, NetEventLayerCode.CONN);

const ev = (b: number, cmd: number): number => (b | cmd) >>> 0;

/** Command numbers per family (`enum net_event_*_cmd`). */
export const NetEventIfCmd = { DOWN: 1, UP: 2, ADMIN_DOWN: 3, ADMIN_UP: 4 } as const;
export const NetEventIpv6Cmd = {
  ADDR_ADD: 1, ADDR_DEL: 2, MADDR_ADD: 3, MADDR_DEL: 4, PREFIX_ADD: 5, PREFIX_DEL: 6, MCAST_JOIN: 7, MCAST_LEAVE: 8,
  ROUTER_ADD: 9, ROUTER_DEL: 10, ROUTE_ADD: 11, ROUTE_DEL: 12, DAD_SUCCEED: 13, DAD_FAILED: 14, NBR_ADD: 15, NBR_DEL: 16,
  DHCP_START: 17, DHCP_BOUND: 18, DHCP_STOP: 19, ADDR_DEPRECATED: 20, PE_ENABLED: 21, PE_DISABLED: 22, PE_FILTER_ADD: 23,
  PE_FILTER_DEL: 24, PMTU_CHANGED: 25,
} as const;
export const NetEventIpv4Cmd = {
  ADDR_ADD: 1, ADDR_DEL: 2, MADDR_ADD: 3, MADDR_DEL: 4, ROUTER_ADD: 5, ROUTER_DEL: 6, DHCP_START: 7, DHCP_BOUND: 8,
  DHCP_STOP: 9, MCAST_JOIN: 10, MCAST_LEAVE: 11, ACD_SUCCEED: 12, ACD_FAILED: 13, ACD_CONFLICT: 14, PMTU_CHANGED: 15,
} as const;
export const NetEventL4Cmd = {
  CONNECTED: 1, DISCONNECTED: 2, IPV4_CONNECTED: 3, IPV4_DISCONNECTED: 4, IPV6_CONNECTED: 5, IPV6_DISCONNECTED: 6,
  DNS_SERVER_ADD: 7, DNS_SERVER_DEL: 8, HOSTNAME_CHANGED: 9, CAPTURE_STARTED: 10, CAPTURE_STOPPED: 11,
} as const;
export const NetEventConnCmd = { IF_TIMEOUT: 1, IF_FATAL_ERROR: 2 } as const;

// --- Interface events -------------------------------------------------------------------------
/** The network interface goes down (operationally). */
export const NET_EVENT_IF_DOWN = ev(NET_EVENT_IF_BASE, NetEventIfCmd.DOWN);
/** The network interface goes up (operationally). */
export const NET_EVENT_IF_UP = ev(NET_EVENT_IF_BASE, NetEventIfCmd.UP);
/** The network interface is taken down manually. */
export const NET_EVENT_IF_ADMIN_DOWN = ev(NET_EVENT_IF_BASE, NetEventIfCmd.ADMIN_DOWN);
/** The network interface is brought up manually. */
export const NET_EVENT_IF_ADMIN_UP = ev(NET_EVENT_IF_BASE, NetEventIfCmd.ADMIN_UP);

// --- IPv6 events ------------------------------------------------------------------------------
export const NET_EVENT_IPV6_ADDR_ADD = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.ADDR_ADD);
export const NET_EVENT_IPV6_ADDR_DEL = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.ADDR_DEL);
export const NET_EVENT_IPV6_MADDR_ADD = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.MADDR_ADD);
export const NET_EVENT_IPV6_MADDR_DEL = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.MADDR_DEL);
export const NET_EVENT_IPV6_PREFIX_ADD = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.PREFIX_ADD);
export const NET_EVENT_IPV6_PREFIX_DEL = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.PREFIX_DEL);
export const NET_EVENT_IPV6_MCAST_JOIN = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.MCAST_JOIN);
export const NET_EVENT_IPV6_MCAST_LEAVE = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.MCAST_LEAVE);
export const NET_EVENT_IPV6_ROUTER_ADD = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.ROUTER_ADD);
export const NET_EVENT_IPV6_ROUTER_DEL = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.ROUTER_DEL);
export const NET_EVENT_IPV6_ROUTE_ADD = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.ROUTE_ADD);
export const NET_EVENT_IPV6_ROUTE_DEL = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.ROUTE_DEL);
export const NET_EVENT_IPV6_DAD_SUCCEED = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.DAD_SUCCEED);
export const NET_EVENT_IPV6_DAD_FAILED = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.DAD_FAILED);
export const NET_EVENT_IPV6_NBR_ADD = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.NBR_ADD);
export const NET_EVENT_IPV6_NBR_DEL = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.NBR_DEL);
export const NET_EVENT_IPV6_DHCP_START = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.DHCP_START);
export const NET_EVENT_IPV6_DHCP_BOUND = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.DHCP_BOUND);
export const NET_EVENT_IPV6_DHCP_STOP = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.DHCP_STOP);
export const NET_EVENT_IPV6_ADDR_DEPRECATED = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.ADDR_DEPRECATED);
export const NET_EVENT_IPV6_PE_ENABLED = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.PE_ENABLED);
export const NET_EVENT_IPV6_PE_DISABLED = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.PE_DISABLED);
export const NET_EVENT_IPV6_PE_FILTER_ADD = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.PE_FILTER_ADD);
export const NET_EVENT_IPV6_PE_FILTER_DEL = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.PE_FILTER_DEL);
/** Added after 3.7 (appended, so no renumbering). */
export const NET_EVENT_IPV6_PMTU_CHANGED = ev(NET_EVENT_IPV6_BASE, NetEventIpv6Cmd.PMTU_CHANGED);

// --- IPv4 events ------------------------------------------------------------------------------
export const NET_EVENT_IPV4_ADDR_ADD = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.ADDR_ADD);
export const NET_EVENT_IPV4_ADDR_DEL = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.ADDR_DEL);
export const NET_EVENT_IPV4_MADDR_ADD = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.MADDR_ADD);
export const NET_EVENT_IPV4_MADDR_DEL = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.MADDR_DEL);
export const NET_EVENT_IPV4_ROUTER_ADD = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.ROUTER_ADD);
export const NET_EVENT_IPV4_ROUTER_DEL = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.ROUTER_DEL);
export const NET_EVENT_IPV4_DHCP_START = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.DHCP_START);
export const NET_EVENT_IPV4_DHCP_BOUND = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.DHCP_BOUND);
export const NET_EVENT_IPV4_DHCP_STOP = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.DHCP_STOP);
export const NET_EVENT_IPV4_MCAST_JOIN = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.MCAST_JOIN);
export const NET_EVENT_IPV4_MCAST_LEAVE = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.MCAST_LEAVE);
export const NET_EVENT_IPV4_ACD_SUCCEED = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.ACD_SUCCEED);
export const NET_EVENT_IPV4_ACD_FAILED = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.ACD_FAILED);
export const NET_EVENT_IPV4_ACD_CONFLICT = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.ACD_CONFLICT);
/** Added after 3.7 (appended, so no renumbering). */
export const NET_EVENT_IPV4_PMTU_CHANGED = ev(NET_EVENT_IPV4_BASE, NetEventIpv4Cmd.PMTU_CHANGED);

// --- L4 events (connectivity, DNS, hostname, capture) -----------------------------------------
/** The system is connected: an interface is up and has an IPv4 or IPv6 address. */
export const NET_EVENT_L4_CONNECTED = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.CONNECTED);
/** The system is no longer connected. */
export const NET_EVENT_L4_DISCONNECTED = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.DISCONNECTED);
export const NET_EVENT_L4_IPV4_CONNECTED = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.IPV4_CONNECTED);
export const NET_EVENT_L4_IPV4_DISCONNECTED = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.IPV4_DISCONNECTED);
export const NET_EVENT_L4_IPV6_CONNECTED = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.IPV6_CONNECTED);
export const NET_EVENT_L4_IPV6_DISCONNECTED = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.IPV6_DISCONNECTED);
export const NET_EVENT_DNS_SERVER_ADD = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.DNS_SERVER_ADD);
export const NET_EVENT_DNS_SERVER_DEL = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.DNS_SERVER_DEL);
export const NET_EVENT_HOSTNAME_CHANGED = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.HOSTNAME_CHANGED);
export const NET_EVENT_CAPTURE_STARTED = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.CAPTURE_STARTED);
export const NET_EVENT_CAPTURE_STOPPED = ev(NET_EVENT_L4_BASE, NetEventL4Cmd.CAPTURE_STOPPED);

// --- conn_mgr events --------------------------------------------------------------------------
export const NET_EVENT_CONN_IF_TIMEOUT = ev(NET_EVENT_CONN_BASE, NetEventConnCmd.IF_TIMEOUT);
export const NET_EVENT_CONN_IF_FATAL_ERROR = ev(NET_EVENT_CONN_BASE, NetEventConnCmd.IF_FATAL_ERROR);

/** Every NET_EVENT_* above, by name. */
export const NET_EVENTS = {
  NET_EVENT_IF_DOWN, NET_EVENT_IF_UP, NET_EVENT_IF_ADMIN_DOWN, NET_EVENT_IF_ADMIN_UP,
  NET_EVENT_IPV6_ADDR_ADD, NET_EVENT_IPV6_ADDR_DEL, NET_EVENT_IPV6_MADDR_ADD, NET_EVENT_IPV6_MADDR_DEL,
  NET_EVENT_IPV6_PREFIX_ADD, NET_EVENT_IPV6_PREFIX_DEL, NET_EVENT_IPV6_MCAST_JOIN, NET_EVENT_IPV6_MCAST_LEAVE,
  NET_EVENT_IPV6_ROUTER_ADD, NET_EVENT_IPV6_ROUTER_DEL, NET_EVENT_IPV6_ROUTE_ADD, NET_EVENT_IPV6_ROUTE_DEL,
  NET_EVENT_IPV6_DAD_SUCCEED, NET_EVENT_IPV6_DAD_FAILED, NET_EVENT_IPV6_NBR_ADD, NET_EVENT_IPV6_NBR_DEL,
  NET_EVENT_IPV6_DHCP_START, NET_EVENT_IPV6_DHCP_BOUND, NET_EVENT_IPV6_DHCP_STOP, NET_EVENT_IPV6_ADDR_DEPRECATED,
  NET_EVENT_IPV6_PE_ENABLED, NET_EVENT_IPV6_PE_DISABLED, NET_EVENT_IPV6_PE_FILTER_ADD, NET_EVENT_IPV6_PE_FILTER_DEL,
  NET_EVENT_IPV6_PMTU_CHANGED,
  NET_EVENT_IPV4_ADDR_ADD, NET_EVENT_IPV4_ADDR_DEL, NET_EVENT_IPV4_MADDR_ADD, NET_EVENT_IPV4_MADDR_DEL,
  NET_EVENT_IPV4_ROUTER_ADD, NET_EVENT_IPV4_ROUTER_DEL, NET_EVENT_IPV4_DHCP_START, NET_EVENT_IPV4_DHCP_BOUND,
  NET_EVENT_IPV4_DHCP_STOP, NET_EVENT_IPV4_MCAST_JOIN, NET_EVENT_IPV4_MCAST_LEAVE, NET_EVENT_IPV4_ACD_SUCCEED,
  NET_EVENT_IPV4_ACD_FAILED, NET_EVENT_IPV4_ACD_CONFLICT, NET_EVENT_IPV4_PMTU_CHANGED,
  NET_EVENT_L4_CONNECTED, NET_EVENT_L4_DISCONNECTED, NET_EVENT_L4_IPV4_CONNECTED, NET_EVENT_L4_IPV4_DISCONNECTED,
  NET_EVENT_L4_IPV6_CONNECTED, NET_EVENT_L4_IPV6_DISCONNECTED, NET_EVENT_DNS_SERVER_ADD, NET_EVENT_DNS_SERVER_DEL,
  NET_EVENT_HOSTNAME_CHANGED, NET_EVENT_CAPTURE_STARTED, NET_EVENT_CAPTURE_STOPPED,
  NET_EVENT_CONN_IF_TIMEOUT, NET_EVENT_CONN_IF_FATAL_ERROR,
} as const;

export type NetEventName = keyof typeof NET_EVENTS;

const NAME_BY_CODE = new Map<number, NetEventName>();
for (const [name, code] of Object.entries(NET_EVENTS) as [NetEventName, number][]) NAME_BY_CODE.set(code, name);

/** The NET_EVENT_* name of a code, or undefined for a code that is not one of the events above. */
export function netEventName(code: number): NetEventName | undefined {
  return NAME_BY_CODE.get(code >>> 0);
}

/** The code of a NET_EVENT_* name, or undefined. */
export function netEventByName(name: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(NET_EVENTS, name) ? NET_EVENTS[name as NetEventName] : undefined;
}

/** The name of a code if known, else its hex form (`0x97AB1234`). */
export function describeNetEvent(code: number): string {
  return netEventName(code) ?? formatNetMgmtCode(code);
}
