/**
 * Network interfaces (Zephyr's struct net_if and the net_if_* functions that raise events): a
 * registry of interfaces with their flags and addresses, and routes. Every state change raises the
 * NET_EVENT_* Zephyr raises for it, with its info structure:
 *
 * - admin up/down (`net_if_up`/`net_if_down`): IF_ADMIN_UP / IF_ADMIN_DOWN; the operational state
 *   (`net_if_is_up` = admin up and running) changing: IF_UP / IF_DOWN. Going up raises ADMIN_UP
 *   then UP; going down ADMIN_DOWN then DOWN (net_if.c sets the admin flag, notifies, then updates
 *   the operational state).
 * - addresses: IPV4_ADDR_ADD/DEL and IPV6_ADDR_ADD/DEL (info: the address); an IPv6 address
 *   leaving the tentative state raises IPV6_DAD_SUCCEED, failing DAD IPV6_DAD_FAILED, becoming
 *   deprecated IPV6_ADDR_DEPRECATED.
 * - routes: IPV6_ROUTE_ADD/DEL (info: net_event_ipv6_route); a default route through a gateway
 *   also IPV4_ROUTER_ADD/DEL or IPV6_ROUTER_ADD/DEL (info: the gateway). IPv4 routes have no
 *   ROUTE event in Zephyr.
 *
 * Whoever knows the real state (the host monitor, a test, an emulated device) feeds it in with
 * {@link NetIfManager.setLink}, {@link NetIfManager.addAddress}, ... or a whole snapshot with
 * {@link NetIfManager.sync}; unchanged state raises nothing.
 */
import { UsageError } from '../core/errors.ts';
import { canonicalIp, parseIp } from './ip.ts';
import { NET_EVENT_INFO_SIZE, netEventInfoKind, type NetEventInfo } from './info.ts';
import * as E from './events.ts';
import type { NetMgmt } from './net-mgmt.ts';

/** Address scope, as Linux and Zephyr name it. */
export type NetAddrScope = 'global' | 'site' | 'link' | 'host' | 'nowhere';

/** An address on an interface. */
export interface NetIfAddr {
  family: 4 | 6;
  /** Canonical text form. */
  addr: string;
  prefixLen: number;
  scope: NetAddrScope;
  /** IPv6 duplicate address detection still running. */
  tentative: boolean;
  /** IPv6 preferred lifetime over. */
  deprecated: boolean;
  /** IPv6 DAD failed. */
  dadFailed: boolean;
}

/** Interface flags (the subset of NET_IF_* / IFF_* that matters here). */
export interface NetIfFlags {
  /** Administratively up (NET_IF_UP, IFF_UP). */
  up: boolean;
  /** Operationally running: carrier present (NET_IF_RUNNING, IFF_RUNNING / IFF_LOWER_UP). */
  running: boolean;
  loopback: boolean;
}

/** A network interface. The object stays the same for the life of the interface. */
export interface NetIf {
  /** Interface index (1-based, as Zephyr's net_if_get_by_iface and Linux ifindex). */
  readonly index: number;
  name: string;
  flags: NetIfFlags;
  mtu: number | undefined;
  /** Link-layer address as `aa:bb:cc:dd:ee:ff`, if any. */
  hwaddr: string | undefined;
  addresses: NetIfAddr[];
}

/** A route. `dst` with `dstLen` 0 is a default route. */
export interface NetRoute {
  family: 4 | 6;
  dst: string;
  dstLen: number;
  /** Next hop, if the route goes through a gateway. */
  gateway: string | undefined;
  /** Output interface index. */
  index: number;
}

/** The link state fed to {@link NetIfManager.setLink}. */
export interface NetLinkState {
  index: number;
  name: string;
  up: boolean;
  running: boolean;
  loopback?: boolean;
  mtu?: number;
  hwaddr?: string;
}

/** Input form of an address: flags default to false, scope to `global`. */
export interface NetIfAddrInput {
  addr: string;
  prefixLen: number;
  scope?: NetAddrScope;
  tentative?: boolean;
  deprecated?: boolean;
  dadFailed?: boolean;
}

/** A whole state, for {@link NetIfManager.sync}. */
export interface NetStateSnapshot {
  links: NetLinkState[];
  /** Addresses by interface index. */
  addresses: { index: number; address: NetIfAddrInput }[];
  /** Omit to leave routes alone (a source that cannot see routes). */
  routes?: NetRoute[];
}

export interface NetIfChangeOptions {
  /** Update the registry without raising events (initial snapshot). */
  silent?: boolean;
}

/** `net_if_is_up()`: admin up and running. */
export function netIfIsUp(iface: NetIf | null | undefined): boolean {
  return !!iface && iface.flags.up && iface.flags.running;
}

/** A usable ("global preferred" in Zephyr's terms) address: global scope, not tentative, deprecated or failed. */
export function isPreferredGlobal(a: NetIfAddr): boolean {
  return a.scope === 'global' && !a.tentative && !a.deprecated && !a.dadFailed;
}

function normAddr(input: NetIfAddrInput, family: 4 | 6): NetIfAddr {
  const max = family === 4 ? 32 : 128;
  if (!Number.isInteger(input.prefixLen) || input.prefixLen < 0 || input.prefixLen > max) {
    throw new UsageError(`prefix length must be 0..${max}, got ${String(input.prefixLen)}`);
  }
  return {
    family,
    addr: canonicalIp(input.addr),
    prefixLen: input.prefixLen,
    scope: input.scope ?? 'global',
    tentative: !!input.tentative,
    deprecated: !!input.deprecated,
    dadFailed: !!input.dadFailed,
  };
}

function routeKey(r: NetRoute): string {
  return `${r.family}|${r.dst}/${r.dstLen}|${r.gateway ?? ''}|${r.index}`;
}

/** The interface registry of one {@link NetMgmt} instance. */
export class NetIfManager {
  private readonly ifaces = new Map<number, NetIf>();
  private readonly routes = new Map<string, NetRoute>();

  constructor(readonly netMgmt: NetMgmt) {}

  /** All interfaces, by index. */
  list(): NetIf[] {
    return [...this.ifaces.values()].sort((a, b) => a.index - b.index);
  }
  /** `net_if_get_by_index()`. */
  getByIndex(index: number): NetIf | undefined {
    return this.ifaces.get(index);
  }
  getByName(name: string): NetIf | undefined {
    for (const i of this.ifaces.values()) if (i.name === name) return i;
    return undefined;
  }
  /** The interface holding an address (canonical comparison), if any. */
  findAddress(addr: string): { iface: NetIf; address: NetIfAddr } | undefined {
    const want = canonicalIp(addr);
    for (const iface of this.ifaces.values()) {
      const address = iface.addresses.find((a) => a.addr === want);
      if (address) return { iface, address };
    }
    return undefined;
  }
  /** Current routes. */
  listRoutes(): NetRoute[] {
    return [...this.routes.values()];
  }

  private raise(event: number, iface: NetIf | null, info?: NetEventInfo, silent?: boolean): void {
    if (silent) return;
    if (info === undefined) {
      this.netMgmt.notify(event, iface);
      return;
    }
    const kind = netEventInfoKind(event);
    const length = kind && kind !== 'hostname' ? NET_EVENT_INFO_SIZE[kind] : 0;
    this.netMgmt.notifyWithInfo(event, iface, info, length);
  }

  /**
   * Creates or updates an interface from its link state and raises the IF_* events of what
   * changed (a new interface starts from "down").
   */
  setLink(state: NetLinkState, options: NetIfChangeOptions = {}): NetIf {
    if (!Number.isInteger(state.index) || state.index < 1) throw new UsageError(`interface index must be a positive integer, got ${String(state.index)}`);
    let iface = this.ifaces.get(state.index);
    const wasAdmin = iface?.flags.up ?? false;
    const wasOper = netIfIsUp(iface);
    if (!iface) {
      iface = { index: state.index, name: state.name, flags: { up: false, running: false, loopback: !!state.loopback }, mtu: state.mtu, hwaddr: state.hwaddr, addresses: [] };
      this.ifaces.set(state.index, iface);
    }
    iface.name = state.name;
    if (state.mtu !== undefined) iface.mtu = state.mtu;
    if (state.hwaddr !== undefined) iface.hwaddr = state.hwaddr;
    if (state.loopback !== undefined) iface.flags.loopback = state.loopback;
    iface.flags.up = state.up;
    iface.flags.running = state.running;
    const isOper = netIfIsUp(iface);
    const s = options.silent;
    if (!wasAdmin && state.up) this.raise(E.NET_EVENT_IF_ADMIN_UP, iface, undefined, s);
    if (wasAdmin && !state.up) this.raise(E.NET_EVENT_IF_ADMIN_DOWN, iface, undefined, s);
    if (!wasOper && isOper) this.raise(E.NET_EVENT_IF_UP, iface, undefined, s);
    if (wasOper && !isOper) this.raise(E.NET_EVENT_IF_DOWN, iface, undefined, s);
    return iface;
  }

  /** Removes an interface: takes it down and deletes its addresses and routes first (with events). */
  removeLink(index: number, options: NetIfChangeOptions = {}): void {
    const iface = this.ifaces.get(index);
    if (!iface) return;
    if (iface.flags.up || iface.flags.running) this.setLink({ index, name: iface.name, up: false, running: false }, options);
    for (const r of [...this.routes.values()]) if (r.index === index) this.removeRoute(r, options);
    for (const a of [...iface.addresses]) this.removeAddress(index, a.addr, options);
    this.ifaces.delete(index);
  }

  /**
   * Adds an address to an interface, or updates its flags, raising ADDR_ADD for a new one and
   * DAD_SUCCEED / DAD_FAILED / ADDR_DEPRECATED for IPv6 state changes. Throws {@link UsageError}
   * for an unknown interface or a malformed address.
   */
  addAddress(index: number, input: NetIfAddrInput, options: NetIfChangeOptions = {}): NetIfAddr {
    const iface = this.ifaces.get(index);
    if (!iface) throw new UsageError(`no interface with index ${index}`);
    const { family } = parseIp(input.addr);
    const next = normAddr(input, family);
    const at = iface.addresses.findIndex((a) => a.addr === next.addr);
    const s = options.silent;
    if (at < 0) {
      iface.addresses.push(next);
      this.raise(family === 4 ? E.NET_EVENT_IPV4_ADDR_ADD : E.NET_EVENT_IPV6_ADDR_ADD, iface, { addr: next.addr }, s);
      if (family === 6 && next.dadFailed) this.raise(E.NET_EVENT_IPV6_DAD_FAILED, iface, { addr: next.addr }, s);
      return next;
    }
    const prev = iface.addresses[at]!;
    iface.addresses[at] = next;
    if (family === 6) {
      if (prev.tentative && !next.tentative && !next.dadFailed) this.raise(E.NET_EVENT_IPV6_DAD_SUCCEED, iface, { addr: next.addr }, s);
      if (!prev.dadFailed && next.dadFailed) this.raise(E.NET_EVENT_IPV6_DAD_FAILED, iface, { addr: next.addr }, s);
      if (!prev.deprecated && next.deprecated) this.raise(E.NET_EVENT_IPV6_ADDR_DEPRECATED, iface, { addr: next.addr }, s);
    }
    return next;
  }

  /** Removes an address (ADDR_DEL). Returns false if it was not there. */
  removeAddress(index: number, addr: string, options: NetIfChangeOptions = {}): boolean {
    const iface = this.ifaces.get(index);
    if (!iface) return false;
    const want = canonicalIp(addr);
    const at = iface.addresses.findIndex((a) => a.addr === want);
    if (at < 0) return false;
    const [gone] = iface.addresses.splice(at, 1);
    this.raise(gone!.family === 4 ? E.NET_EVENT_IPV4_ADDR_DEL : E.NET_EVENT_IPV6_ADDR_DEL, iface, { addr: gone!.addr }, options.silent);
    return true;
  }

  private routeEvents(r: NetRoute, add: boolean, silent?: boolean): void {
    const iface = this.ifaces.get(r.index) ?? null;
    if (r.family === 6) {
      this.raise(add ? E.NET_EVENT_IPV6_ROUTE_ADD : E.NET_EVENT_IPV6_ROUTE_DEL, iface, { nexthop: r.gateway ?? '::', addr: r.dst, prefixLen: r.dstLen }, silent);
    }
    if (r.dstLen === 0 && r.gateway !== undefined) {
      const ev = r.family === 4 ? (add ? E.NET_EVENT_IPV4_ROUTER_ADD : E.NET_EVENT_IPV4_ROUTER_DEL) : add ? E.NET_EVENT_IPV6_ROUTER_ADD : E.NET_EVENT_IPV6_ROUTER_DEL;
      this.raise(ev, iface, { addr: r.gateway }, silent);
    }
  }

  private normRoute(r: NetRoute): NetRoute {
    const dst = canonicalIp(r.dst);
    const { family } = parseIp(dst);
    if (family !== r.family) throw new UsageError(`route family ${r.family} does not match destination ${r.dst}`);
    const max = family === 4 ? 32 : 128;
    if (!Number.isInteger(r.dstLen) || r.dstLen < 0 || r.dstLen > max) throw new UsageError(`route prefix length must be 0..${max}`);
    return { family, dst, dstLen: r.dstLen, gateway: r.gateway === undefined ? undefined : canonicalIp(r.gateway), index: r.index };
  }

  /** Adds a route (events as described above). Returns false if it was already there. */
  addRoute(route: NetRoute, options: NetIfChangeOptions = {}): boolean {
    const r = this.normRoute(route);
    const key = routeKey(r);
    if (this.routes.has(key)) return false;
    this.routes.set(key, r);
    this.routeEvents(r, true, options.silent);
    return true;
  }

  /** Removes a route. Returns false if it was not there. */
  removeRoute(route: NetRoute, options: NetIfChangeOptions = {}): boolean {
    const r = this.normRoute(route);
    const key = routeKey(r);
    if (!this.routes.delete(key)) return false;
    this.routeEvents(r, false, options.silent);
    return true;
  }

  /**
   * Brings the registry to `snapshot`, raising the events of the differences: links first (new
   * and changed), then address additions and changes, address removals, routes, and last the
   * links that are gone.
   */
  sync(snapshot: NetStateSnapshot, options: NetIfChangeOptions = {}): void {
    const seen = new Set<number>();
    for (const l of snapshot.links) {
      this.setLink(l, options);
      seen.add(l.index);
    }
    const wanted = new Map<number, Set<string>>();
    for (const { index, address } of snapshot.addresses) {
      if (!this.ifaces.has(index)) continue;
      const a = this.addAddress(index, address, options);
      let set = wanted.get(index);
      if (!set) wanted.set(index, (set = new Set()));
      set.add(a.addr);
    }
    for (const iface of this.ifaces.values()) {
      if (!seen.has(iface.index)) continue;
      const keep = wanted.get(iface.index) ?? new Set<string>();
      for (const a of [...iface.addresses]) if (!keep.has(a.addr)) this.removeAddress(iface.index, a.addr, options);
    }
    if (snapshot.routes) {
      const keys = new Set<string>();
      for (const r of snapshot.routes) {
        const n = this.normRoute(r);
        keys.add(routeKey(n));
        this.addRoute(n, options);
      }
      for (const [k, r] of [...this.routes]) if (!keys.has(k)) this.removeRoute(r, options);
    }
    for (const index of [...this.ifaces.keys()]) if (!seen.has(index)) this.removeLink(index, options);
  }
}
