/**
 * Waits for a local address to become usable and reports when it goes away: what the server's UDP
 * transport needs to `serve --udp ADDR:PORT` on an address that is not there yet.
 *
 * The address is available when an interface holds it, that interface is administratively up,
 * and (IPv6) the address is neither tentative nor failed DAD; the wildcard addresses (0.0.0.0, ::)
 * are always available. The watcher re-evaluates on IF, IPv4, IPv6 and L4 events of its
 * {@link NetMgmt}, so it follows whatever feeds the {@link NetIfManager} (the host monitor).
 * A change to "lost" is reported with the event that caused it: IPV4/IPV6_ADDR_DEL,
 * IF_ADMIN_DOWN, IPV6_DAD_FAILED, or NET_EVENT_L4_DISCONNECTED when the connectivity monitor
 * reports the address's interface disconnected.
 */
import { canonicalIp, isUnspecifiedIp } from './ip.ts';
import * as E from './events.ts';
import { NetMgmtError } from './errors.ts';
import { initEventCallback, type NetMgmt, type NetMgmtEventCallback } from './net-mgmt.ts';
import type { NetIf, NetIfManager } from './net-if.ts';

/** A change of availability. */
export interface AddressAvailability {
  available: boolean;
  /** The interface holding the address (null for a wildcard or when lost with the interface). */
  iface: NetIf | null;
  /** The event code that caused the change (undefined for the initial state). */
  event: number | undefined;
}

export interface AddressWaitOptions {
  /** Milliseconds; undefined waits forever. */
  timeout?: number;
  signal?: AbortSignal;
}

export class LocalAddressWatcher {
  /** Canonical address text. */
  readonly address: string;
  private readonly wildcard: boolean;
  private state: AddressAvailability;
  private readonly listeners = new Set<(change: AddressAvailability) => void>();
  private readonly callbacks: NetMgmtEventCallback[];
  private closed = false;

  constructor(
    private readonly netMgmt: NetMgmt,
    private readonly netIfs: NetIfManager,
    address: string,
  ) {
    this.address = canonicalIp(address);
    this.wildcard = isUnspecifiedIp(this.address);
    this.state = { ...this.evaluate(), event: undefined };
    const handler = (_cb: NetMgmtEventCallback, event: number, iface: NetIf | null): void => this.onEvent(event, iface);
    // One callback per layer code (Zephyr matches layer and layer code exactly). The masks name
    // real commands: a command-0 mask matches everything at delivery but adds no command bits to
    // the notify prefilter, which would then drop the events at the source.
    const masks = [
      E.NET_EVENT_IF_UP | E.NET_EVENT_IF_DOWN | E.NET_EVENT_IF_ADMIN_UP | E.NET_EVENT_IF_ADMIN_DOWN,
      E.NET_EVENT_IPV4_ADDR_ADD | E.NET_EVENT_IPV4_ADDR_DEL,
      E.NET_EVENT_IPV6_ADDR_ADD | E.NET_EVENT_IPV6_ADDR_DEL | E.NET_EVENT_IPV6_DAD_SUCCEED | E.NET_EVENT_IPV6_DAD_FAILED,
      E.NET_EVENT_L4_CONNECTED | E.NET_EVENT_L4_DISCONNECTED,
    ];
    this.callbacks = masks.map((mask) => initEventCallback(handler, mask >>> 0));
    for (const cb of this.callbacks) netMgmt.addEventCallback(cb);
  }

  /** The current availability. */
  get current(): AddressAvailability {
    return { ...this.state };
  }

  private evaluate(): { available: boolean; iface: NetIf | null } {
    if (this.wildcard) return { available: true, iface: null };
    const found = this.netIfs.findAddress(this.address);
    if (!found) return { available: false, iface: null };
    const ok = found.iface.flags.up && !found.address.tentative && !found.address.dadFailed;
    return { available: ok, iface: found.iface };
  }

  private onEvent(event: number, iface: NetIf | null): void {
    if (this.closed) return;
    let next = this.evaluate();
    if (event === E.NET_EVENT_L4_DISCONNECTED && next.available && next.iface && iface && next.iface.index === iface.index && !next.iface.flags.loopback) {
      next = { available: false, iface: next.iface };
    }
    if (next.available === this.state.available) {
      this.state = { ...next, event: this.state.event };
      return;
    }
    this.state = { ...next, event };
    for (const l of [...this.listeners]) l({ ...this.state });
  }

  /** Calls `listener` on every change of availability. Returns a function that removes it. */
  onChange(listener: (change: AddressAvailability) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolves when the address is available (at once if it is). Rejects with {@link NetMgmtError}
   * `NETMGMT_TIMEOUT` / `NETMGMT_ABORTED`.
   */
  waitAvailable(options: AddressWaitOptions = {}): Promise<AddressAvailability> {
    if (this.state.available) return Promise.resolve({ ...this.state });
    return this.waitFor(true, options);
  }

  /** Resolves when the address is lost (at once if it is not available). */
  waitLost(options: AddressWaitOptions = {}): Promise<AddressAvailability> {
    if (!this.state.available) return Promise.resolve({ ...this.state });
    return this.waitFor(false, options);
  }

  private waitFor(available: boolean, { timeout, signal }: AddressWaitOptions): Promise<AddressAvailability> {
    const what = available ? 'available' : 'lost';
    if (signal?.aborted) return Promise.reject(new NetMgmtError('NETMGMT_ABORTED', `wait for ${this.address} ${what} aborted`, { cause: signal.reason }));
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        off();
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const off = this.onChange((change) => {
        if (change.available !== available) return;
        done();
        resolve(change);
      });
      const onAbort = (): void => {
        done();
        reject(new NetMgmtError('NETMGMT_ABORTED', `wait for ${this.address} ${what} aborted`, { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          done();
          reject(new NetMgmtError('NETMGMT_TIMEOUT', `${this.address} not ${what} within ${timeout} ms`));
        }, timeout);
      }
    });
  }

  /** Removes the callbacks; pending waits stay pending until their timeout or signal. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cb of this.callbacks) this.netMgmt.delEventCallback(cb);
    this.listeners.clear();
  }
}
