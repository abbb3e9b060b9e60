/**
 * For servers: wait until a local address exists on this host before binding to it, and hear
 * when it goes away. Used by `mcumgr serve --udp ADDR:PORT`, so that serving on an address that
 * is not configured yet (an interface still coming up, DHCP, a namespace being set up) waits for
 * it instead of failing with EADDRNOTAVAIL.
 */
import { tryParseIpv4, tryParseIpv6, isUnspecifiedIp } from '../ip.ts';
import { LocalAddressWatcher, type AddressAvailability } from '../address-watch.ts';
import { describeNetEvent } from '../events.ts';
import { startHostNetMonitor, type HostNetMonitor, type HostNetMonitorOptions } from './index.ts';

export interface LocalAddressGateOptions {
  /** Called once if the address is not there yet, with a line for people. */
  onWaiting?: (message: string) => void;
  /** Called when the address goes away after having been available. */
  onLost?: (change: AddressAvailability, message: string) => void;
  /** Called when it comes back after a loss. */
  onAvailable?: (change: AddressAvailability, message: string) => void;
  /** Give up after this many milliseconds (NetMgmtError NETMGMT_TIMEOUT); default: wait forever. */
  timeout?: number;
  signal?: AbortSignal;
  /** Options of the host monitor (source, polling interval). */
  monitor?: HostNetMonitorOptions;
  /** A running host monitor to use instead of starting one; the gate then leaves it open and its ref alone. */
  hostMonitor?: HostNetMonitor;
}

/** A live watch of one local address. */
export interface LocalAddressGate {
  readonly address: string;
  readonly available: boolean;
  readonly monitor: HostNetMonitor;
  close(): void;
}

/** True for text that is an IP literal (so there is an address to wait for). */
function isIpLiteral(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return tryParseIpv4(h) !== undefined || tryParseIpv6(h) !== undefined;
}

/**
 * Resolves when `host` is a usable local address, with a gate that keeps reporting losses and
 * returns until closed. Resolves undefined at once for host names and wildcard addresses, which
 * need no waiting. Rejects with NetMgmtError (`NETMGMT_TIMEOUT`, `NETMGMT_ABORTED`).
 */
export async function awaitLocalAddress(host: string, options: LocalAddressGateOptions = {}): Promise<LocalAddressGate | undefined> {
  if (!isIpLiteral(host)) return undefined;
  const addr = host.startsWith('[') ? host.slice(1, -1) : host;
  if (isUnspecifiedIp(addr)) return undefined;
  const owned = options.hostMonitor === undefined;
  const monitor = options.hostMonitor ?? (await startHostNetMonitor(options.monitor));
  const watcher = new LocalAddressWatcher(monitor.netMgmt, monitor.netIfs, addr);
  const close = (): void => {
    watcher.close();
    if (owned) monitor.close();
  };
  try {
    if (!watcher.current.available) {
      options.onWaiting?.(`waiting for local address ${watcher.address} to be configured and up (watching ${monitor.source === 'netlink' ? 'rtnetlink' : 'interfaces by polling'})`);
      await watcher.waitAvailable({ timeout: options.timeout, signal: options.signal });
    }
  } catch (e) {
    close();
    throw e;
  }
  // Once serving, the server's own sockets keep the process alive; the watch must not.
  if (owned) monitor.ref(false);
  watcher.onChange((change) => {
    const why = change.event === undefined ? '' : ` (${describeNetEvent(change.event)})`;
    if (change.available) options.onAvailable?.(change, `local address ${watcher.address} is available again${why}`);
    else options.onLost?.(change, `local address ${watcher.address} went away${why}`);
  });
  return {
    address: watcher.address,
    get available() {
      return watcher.current.available;
    },
    monitor,
    close,
  };
}
