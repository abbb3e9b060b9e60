/**
 * The connectivity monitor (Zephyr's subsys/net/conn_mgr/conn_mgr_monitor.c and events_handler.c,
 * 3.7 era with the IPv4/IPv6 split, read in the source).
 *
 * Per interface it tracks: operationally up, has a preferred global IPv4 address, has a preferred
 * global IPv6 address, ignored. An interface is ready when up, not ignored and with an address
 * (ready4 / ready6 per family). Counting ready interfaces:
 *  - 0 -> >=1: NET_EVENT_L4_CONNECTED; >=1 -> 0: NET_EVENT_L4_DISCONNECTED; 1 -> 2: nothing.
 *  - the same separately for IPv4 (L4_IPV4_CONNECTED/DISCONNECTED) and IPv6 (L4_IPV6_*),
 *    raised in that order: overall, IPv4, IPv6.
 *  - the iface passed with the event is the "blame" iface: the last one whose readiness changed.
 * It listens with three callbacks as events_handler.c does: IF (IF_UP|IF_DOWN), IPv6
 * (ADDR_ADD|ADDR_DEL|DAD_SUCCEED|DAD_FAILED) and IPv4 (ADDR_ADD|ADDR_DEL|ACD_SUCCEED|ACD_FAILED),
 * comparing the real event code with `===` so the masks' false positives are ignored.
 * On start it reads the initial state of every interface and raises L4_CONNECTED at once if any
 * is ready (the monitor thread's first update after conn_mgr_mon_initial_state).
 */
import * as E from './events.ts';
import { initEventCallback, type NetMgmt, type NetMgmtEventCallback } from './net-mgmt.ts';
import { isPreferredGlobal, netIfIsUp, type NetIf, type NetIfManager } from './net-if.ts';

/** conn_mgr iface state flags (conn_mgr_private.h). */
export const ConnMgrIfFlag = { UP: 1 << 0, IPV6_SET: 1 << 1, IPV4_SET: 1 << 2, IGNORED: 1 << 7, READY: 1 << 13, READY_IPV4: 1 << 14, READY_IPV6: 1 << 15 } as const;

const IF_MASK = (E.NET_EVENT_IF_UP | E.NET_EVENT_IF_DOWN) >>> 0;
const IPV6_MASK = (E.NET_EVENT_IPV6_ADDR_ADD | E.NET_EVENT_IPV6_ADDR_DEL | E.NET_EVENT_IPV6_DAD_SUCCEED | E.NET_EVENT_IPV6_DAD_FAILED) >>> 0;
const IPV4_MASK = (E.NET_EVENT_IPV4_ADDR_ADD | E.NET_EVENT_IPV4_ADDR_DEL | E.NET_EVENT_IPV4_ACD_SUCCEED | E.NET_EVENT_IPV4_ACD_FAILED) >>> 0;

export class ConnMgrMonitor {
  private readonly states = new Map<number, number>();
  private readonly ignored = new Set<number>();
  private readonly callbacks: NetMgmtEventCallback[];
  private started = false;
  private readyCount = 0;
  private readyCount4 = 0;
  private readyCount6 = 0;
  private lastBlame: NetIf | null = null;
  private lastBlame4: NetIf | null = null;
  private lastBlame6: NetIf | null = null;

  constructor(
    private readonly netMgmt: NetMgmt,
    private readonly netIfs: NetIfManager,
  ) {
    this.callbacks = [
      initEventCallback((_cb, event, iface) => {
        if (event === E.NET_EVENT_IF_UP || event === E.NET_EVENT_IF_DOWN) this.refresh(iface);
      }, IF_MASK),
      initEventCallback((_cb, event, iface) => {
        if (event === E.NET_EVENT_IPV6_ADDR_ADD || event === E.NET_EVENT_IPV6_ADDR_DEL || event === E.NET_EVENT_IPV6_DAD_SUCCEED || event === E.NET_EVENT_IPV6_DAD_FAILED) this.refresh(iface);
      }, IPV6_MASK),
      initEventCallback((_cb, event, iface) => {
        if (event === E.NET_EVENT_IPV4_ADDR_ADD || event === E.NET_EVENT_IPV4_ADDR_DEL || event === E.NET_EVENT_IPV4_ACD_SUCCEED || event === E.NET_EVENT_IPV4_ACD_FAILED) this.refresh(iface);
      }, IPV4_MASK),
    ];
  }

  /** Registers the callbacks, reads every interface's state and raises L4_CONNECTED if ready. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const cb of this.callbacks) this.netMgmt.addEventCallback(cb);
    for (const iface of this.netIfs.list()) this.states.set(iface.index, this.flagsOf(iface));
    this.update();
  }

  stop(): void {
    if (!this.started) return;
    this.started = false;
    for (const cb of this.callbacks) this.netMgmt.delEventCallback(cb);
  }

  /** True while at least one interface is ready. */
  get connected(): boolean {
    return this.readyCount > 0;
  }
  get connectedIpv4(): boolean {
    return this.readyCount4 > 0;
  }
  get connectedIpv6(): boolean {
    return this.readyCount6 > 0;
  }

  /** The conn_mgr flags of an interface (0 if unknown). */
  ifaceState(index: number): number {
    return this.states.get(index) ?? 0;
  }

  /** `conn_mgr_ignore_iface()`: the interface never counts as ready. */
  ignoreIface(iface: NetIf): void {
    this.ignored.add(iface.index);
    this.refresh(iface);
  }
  /** `conn_mgr_watch_iface()`. */
  watchIface(iface: NetIf): void {
    this.ignored.delete(iface.index);
    this.refresh(iface);
  }

  /** `conn_mgr_mon_resend_status()`: raises the current overall, IPv6 and IPv4 state again. */
  resendStatus(): void {
    this.netMgmt.notify(this.readyCount > 0 ? E.NET_EVENT_L4_CONNECTED : E.NET_EVENT_L4_DISCONNECTED, this.lastBlame);
    this.netMgmt.notify(this.readyCount6 > 0 ? E.NET_EVENT_L4_IPV6_CONNECTED : E.NET_EVENT_L4_IPV6_DISCONNECTED, this.lastBlame6);
    this.netMgmt.notify(this.readyCount4 > 0 ? E.NET_EVENT_L4_IPV4_CONNECTED : E.NET_EVENT_L4_IPV4_DISCONNECTED, this.lastBlame4);
  }

  private flagsOf(iface: NetIf): number {
    const prev = this.states.get(iface.index) ?? 0;
    let f = prev & (ConnMgrIfFlag.READY | ConnMgrIfFlag.READY_IPV4 | ConnMgrIfFlag.READY_IPV6);
    if (netIfIsUp(iface)) f |= ConnMgrIfFlag.UP;
    if (iface.addresses.some((a) => a.family === 6 && isPreferredGlobal(a))) f |= ConnMgrIfFlag.IPV6_SET;
    if (iface.addresses.some((a) => a.family === 4 && isPreferredGlobal(a))) f |= ConnMgrIfFlag.IPV4_SET;
    if (this.ignored.has(iface.index)) f |= ConnMgrIfFlag.IGNORED;
    return f;
  }

  private refresh(iface: NetIf | null): void {
    if (!this.started || !iface) return;
    const current = this.netIfs.getByIndex(iface.index);
    if (current) {
      this.states.set(iface.index, this.flagsOf(current));
    } else {
      // gone: keep only the readiness bits so that update() sees the transition
      this.states.set(iface.index, (this.states.get(iface.index) ?? 0) & (ConnMgrIfFlag.READY | ConnMgrIfFlag.READY_IPV4 | ConnMgrIfFlag.READY_IPV6));
    }
    this.update(iface);
  }

  /** conn_mgr_mon_handle_update(). */
  private update(hint: NetIf | null = null): void {
    let ready = 0;
    let ready4 = 0;
    let ready6 = 0;
    let blame: NetIf | null = null;
    let blame4: NetIf | null = null;
    let blame6: NetIf | null = null;
    for (const [index, flags] of [...this.states]) {
      const up = (flags & ConnMgrIfFlag.UP) !== 0;
      const ign = (flags & ConnMgrIfFlag.IGNORED) !== 0;
      const is4 = up && !ign && (flags & ConnMgrIfFlag.IPV4_SET) !== 0;
      const is6 = up && !ign && (flags & ConnMgrIfFlag.IPV6_SET) !== 0;
      const is = is4 || is6;
      const was = (flags & ConnMgrIfFlag.READY) !== 0;
      const was4 = (flags & ConnMgrIfFlag.READY_IPV4) !== 0;
      const was6 = (flags & ConnMgrIfFlag.READY_IPV6) !== 0;
      const who = this.netIfs.getByIndex(index) ?? (hint && hint.index === index ? hint : null);
      if (is) ready++;
      if (is4) ready4++;
      if (is6) ready6++;
      if (was !== is) blame = who;
      if (was4 !== is4) blame4 = who;
      if (was6 !== is6) blame6 = who;
      let next = flags & ~(ConnMgrIfFlag.READY | ConnMgrIfFlag.READY_IPV4 | ConnMgrIfFlag.READY_IPV6);
      if (is) next |= ConnMgrIfFlag.READY;
      if (is4) next |= ConnMgrIfFlag.READY_IPV4;
      if (is6) next |= ConnMgrIfFlag.READY_IPV6;
      if (this.netIfs.getByIndex(index)) this.states.set(index, next);
      else this.states.delete(index);
    }
    if (ready !== this.readyCount) {
      if (ready === 0) this.netMgmt.notify(E.NET_EVENT_L4_DISCONNECTED, blame);
      else if (this.readyCount === 0) this.netMgmt.notify(E.NET_EVENT_L4_CONNECTED, blame);
      this.readyCount = ready;
      this.lastBlame = blame;
    }
    if (ready4 !== this.readyCount4) {
      if (ready4 === 0) this.netMgmt.notify(E.NET_EVENT_L4_IPV4_DISCONNECTED, blame4);
      else if (this.readyCount4 === 0) this.netMgmt.notify(E.NET_EVENT_L4_IPV4_CONNECTED, blame4);
      this.readyCount4 = ready4;
      this.lastBlame4 = blame4;
    }
    if (ready6 !== this.readyCount6) {
      if (ready6 === 0) this.netMgmt.notify(E.NET_EVENT_L4_IPV6_DISCONNECTED, blame6);
      else if (this.readyCount6 === 0) this.netMgmt.notify(E.NET_EVENT_L4_IPV6_CONNECTED, blame6);
      this.readyCount6 = ready6;
      this.lastBlame6 = blame6;
    }
  }
}
