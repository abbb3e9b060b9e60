/**
 * Linux: the host's network as net_mgmt events, read from a real rtnetlink socket.
 *
 * Choice: the npm package `netlink` (0.3.0, mildsunrise/node_netlink, MIT). It ships prebuilt
 * binaries for linux-x64/arm64/arm/ia32, so it loads on Node 20 without a native build (install
 * scripts are blocked here and it still works), it opens a real NETLINK_ROUTE socket, joins the
 * multicast groups and parses every rtnetlink message type with typings. Node itself cannot open
 * an AF_NETLINK socket, so writing our own decoder would still need a native socket; spawning
 * `ip monitor` was the other option (iproute2 6.1 ignores `-json` for monitor, so it would mean
 * parsing text). The parsed 'message' event of the package drops the message type (NEWADDR and
 * DELADDR look alike), so we listen to the raw socket and parse each message ourselves with
 * `rt.parseMessage(type, data)`.
 *
 * Mapping (through {@link NetIfManager}, which raises the events):
 *   RTM_NEWLINK -> link state (IFF_UP = admin, IFF_RUNNING = operational): IF_ADMIN_UP/DOWN, IF_UP/DOWN
 *   RTM_DELLINK -> interface removed (down first, its addresses deleted)
 *   RTM_NEWADDR / RTM_DELADDR -> IPV4/IPV6_ADDR_ADD/DEL; IPv6 tentative -> done: IPV6_DAD_SUCCEED,
 *     IFA_F_DADFAILED: IPV6_DAD_FAILED, IFA_F_DEPRECATED: IPV6_ADDR_DEPRECATED
 *   RTM_NEWROUTE / RTM_DELROUTE (main table, unicast) -> IPV6_ROUTE_ADD/DEL, default via a
 *     gateway -> IPV4/IPV6_ROUTER_ADD/DEL
 * An initial dump (links, addresses, routes) fills the registry before live messages are applied;
 * messages that arrive during the dump are applied after it. When the kernel reports lost
 * messages (ENOBUFS) the registry is re-synchronised from a new dump, raising the differences.
 */
import { createRtNetlink, rt, type RtNetlinkSocket } from 'netlink';
import { formatIp } from '../ip.ts';
import type { NetAddrScope, NetIfManager, NetLinkState, NetIfAddrInput, NetRoute, NetStateSnapshot } from '../net-if.ts';

/** rtnetlink message types (linux/rtnetlink.h). */
export const RtmType = { NEWLINK: 16, DELLINK: 17, NEWADDR: 20, DELADDR: 21, NEWROUTE: 24, DELROUTE: 25 } as const;

const RT_TABLE_MAIN = 254;
const AF_INET = 2;
const AF_INET6 = 10;

/** Counters of the monitor. */
export interface NetlinkMonitorStats {
  /** Messages applied. */
  messages: number;
  /** Messages that did not parse or made no sense (ignored). */
  invalid: number;
  /** Re-synchronisations after lost messages. */
  resyncs: number;
}

function scopeName(scope: number | string | undefined): NetAddrScope {
  switch (scope) {
    case 0: case 'UNIVERSE': return 'global';
    case 200: case 'SITE': return 'site';
    case 253: case 'LINK': return 'link';
    case 254: case 'HOST': return 'host';
    default: return 'nowhere';
  }
}

function hwaddrText(b: Uint8Array | undefined): string | undefined {
  if (!b || b.length === 0) return undefined;
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

type Parsed = ReturnType<typeof rt.parseMessage>;

/** Link state of a parsed RTM_NEWLINK, or undefined when it lacks what we need. */
export function linkStateOf(msg: Parsed, knownName?: string): NetLinkState | undefined {
  if (msg.kind !== 'link') return undefined;
  const index = msg.data.index;
  const name = msg.attrs.ifname ?? knownName;
  if (typeof index !== 'number' || index < 1 || name === undefined) return undefined;
  const f = msg.data.flags ?? {};
  return { index, name, up: !!f.up, running: !!f.running, loopback: !!f.loopback, mtu: msg.attrs.mtu, hwaddr: f.loopback ? undefined : hwaddrText(msg.attrs.address) };
}

/** Address of a parsed RTM_NEWADDR/DELADDR, or undefined. */
export function addressOf(msg: Parsed): { index: number; address: NetIfAddrInput } | undefined {
  if (msg.kind !== 'address') return undefined;
  const { family, index, prefixlen, scope } = msg.data;
  if (typeof index !== 'number' || (family !== AF_INET && family !== AF_INET6)) return undefined;
  // IFA_LOCAL is the local address (IFA_ADDRESS is the peer on point-to-point links).
  const raw = (family === AF_INET ? msg.attrs.local ?? msg.attrs.address : msg.attrs.address ?? msg.attrs.local) as Uint8Array | undefined;
  if (!raw || raw.length !== (family === AF_INET ? 4 : 16)) return undefined;
  const flags = msg.attrs.flags ?? msg.data.flags ?? {};
  const max = family === AF_INET ? 32 : 128;
  if (typeof prefixlen !== 'number' || prefixlen > max) return undefined;
  return {
    index,
    address: { addr: formatIp(raw), prefixLen: prefixlen, scope: scopeName(scope), tentative: !!flags.tentative, deprecated: !!flags.deprecated, dadFailed: !!flags.dadfailed },
  };
}

/** Route of a parsed RTM_NEWROUTE/DELROUTE in the main table, unicast, with an output interface. */
export function routeOf(msg: Parsed): NetRoute | undefined {
  if (msg.kind !== 'route') return undefined;
  const { family, dstLen, type } = msg.data;
  const table = msg.attrs.table ?? msg.data.table;
  if (table !== RT_TABLE_MAIN || (type !== 'UNICAST' && type !== 1)) return undefined;
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const size = family === AF_INET ? 4 : 16;
  const index = msg.attrs.oif;
  if (typeof index !== 'number' || typeof dstLen !== 'number' || dstLen > size * 8) return undefined;
  const dstRaw = msg.attrs.dst as Uint8Array | undefined;
  const dst = dstRaw && dstRaw.length === size ? formatIp(dstRaw) : formatIp(new Uint8Array(size));
  const gw = msg.attrs.gateway as Uint8Array | undefined;
  return { family: family === AF_INET ? 4 : 6, dst, dstLen, gateway: gw && gw.length === size ? formatIp(gw) : undefined, index };
}

/**
 * Applies one raw rtnetlink message (type + payload after the nlmsghdr) to the registry. Never
 * throws: a message that does not parse or does not fit is counted as invalid and ignored.
 * Returns whether it was applied.
 */
export function applyRtnetlinkMessage(netIfs: NetIfManager, type: number, data: Uint8Array, stats?: NetlinkMonitorStats): boolean {
  let msg: Parsed;
  try {
    msg = rt.parseMessage(type, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  } catch {
    if (stats) stats.invalid++;
    return false;
  }
  const applied = applyParsed(netIfs, type, msg);
  if (stats) {
    if (applied) stats.messages++;
    else stats.invalid++;
  }
  return applied;
}

function applyParsed(netIfs: NetIfManager, type: number, msg: Parsed): boolean {
  try {
    switch (type) {
      case RtmType.NEWLINK: {
        const known = msg.kind === 'link' && typeof msg.data.index === 'number' ? netIfs.getByIndex(msg.data.index)?.name : undefined;
        const state = linkStateOf(msg, known);
        if (!state) return false;
        netIfs.setLink(state);
        return true;
      }
      case RtmType.DELLINK: {
        if (msg.kind !== 'link' || typeof msg.data.index !== 'number') return false;
        netIfs.removeLink(msg.data.index);
        return true;
      }
      case RtmType.NEWADDR:
      case RtmType.DELADDR: {
        const a = addressOf(msg);
        if (!a) return false;
        if (type === RtmType.DELADDR) netIfs.removeAddress(a.index, a.address.addr);
        else if (netIfs.getByIndex(a.index)) netIfs.addAddress(a.index, a.address);
        else return false;
        return true;
      }
      case RtmType.NEWROUTE:
      case RtmType.DELROUTE: {
        const r = routeOf(msg);
        if (!r) return msg.kind === 'route'; // routes of other tables/types are valid, just not ours
        if (type === RtmType.NEWROUTE) netIfs.addRoute(r);
        else netIfs.removeRoute(r);
        return true;
      }
      default:
        return false;
    }
  } catch {
    // a value the registry rejects (UsageError): ignore the message
    return false;
  }
}

export interface NetlinkMonitorOptions {
  /** Raise events for the initial state too (default false: it only fills the registry). */
  announceInitial?: boolean;
  /** Also called for every raw message (type, bytes), for debugging. */
  onRaw?: (type: number, data: Uint8Array) => void;
}

/** A running rtnetlink monitor feeding a {@link NetIfManager}. */
export class NetlinkMonitor {
  readonly kind = 'netlink';
  readonly stats: NetlinkMonitorStats = { messages: 0, invalid: 0, resyncs: 0 };
  private closed = false;
  private resyncing: Promise<void> | undefined;

  private constructor(
    readonly netIfs: NetIfManager,
    private readonly socket: RtNetlinkSocket,
  ) {}

  /**
   * Opens the socket, joins LINK, IPV4_IFADDR, IPV6_IFADDR, IPV4_ROUTE and IPV6_ROUTE, dumps the
   * current state into the registry and starts applying live messages. Rejects if the socket
   * cannot be opened (not Linux, no native binding).
   */
  static async start(netIfs: NetIfManager, options: NetlinkMonitorOptions = {}): Promise<NetlinkMonitor> {
    // A large receive buffer makes ENOBUFS (lost messages) rare under bursts of changes.
    const socket = createRtNetlink({ ref: true, recvBufferSize: 1 << 20, sendBufferSize: 1 << 16 });
    const monitor = new NetlinkMonitor(netIfs, socket);
    const buffered: { type: number; data: Uint8Array }[] = [];
    let live = false;
    socket.socket.on('message', (msgs) => {
      for (const m of msgs) {
        options.onRaw?.(m.type, m.data);
        if (live) applyRtnetlinkMessage(netIfs, m.type, m.data, monitor.stats);
        else buffered.push({ type: m.type, data: m.data });
      }
    });
    socket.socket.on('error', (err: Error & { code?: string }) => {
      if (monitor.closed) return;
      if (err.code === 'ENOBUFS') void monitor.resync();
    });
    try {
      for (const g of ['LINK', 'IPV4_IFADDR', 'IPV6_IFADDR', 'IPV4_ROUTE', 'IPV6_ROUTE'] as const) socket.addMembership(g);
      const snapshot = await monitor.dump();
      netIfs.sync(snapshot, { silent: !options.announceInitial });
    } catch (e) {
      socket.socket.close();
      throw e;
    }
    live = true;
    for (const m of buffered) applyRtnetlinkMessage(netIfs, m.type, m.data, monitor.stats);
    return monitor;
  }

  private async dump(): Promise<NetStateSnapshot> {
    const [links, addrs, routes] = [await this.socket.getLinks(), await this.socket.getAddresses(), await this.socket.getRoutes()];
    const snapshot: NetStateSnapshot = { links: [], addresses: [], routes: [] };
    for (const l of links) {
      const s = linkStateOf(l);
      if (s) snapshot.links.push(s);
    }
    for (const a of addrs) {
      const x = addressOf(a);
      if (x) snapshot.addresses.push(x);
    }
    for (const r of routes) {
      const x = routeOf(r);
      if (x) snapshot.routes!.push(x);
    }
    return snapshot;
  }

  /** Re-reads the whole state and raises the events of the differences. */
  resync(): Promise<void> {
    if (this.resyncing) return this.resyncing;
    this.resyncing = (async () => {
      try {
        this.stats.resyncs++;
        this.netIfs.sync(await this.dump());
      } catch {
        // the socket went away; close() reports nothing more
      } finally {
        this.resyncing = undefined;
      }
    })();
    return this.resyncing;
  }

  /** Whether the open socket keeps the process alive (default true). */
  ref(keepAlive: boolean): void {
    if (!this.closed) this.socket.socket.ref(keepAlive);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.socket.close();
  }
}
