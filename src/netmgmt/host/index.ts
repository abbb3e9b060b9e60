/**
 * The host's real network as Zephyr net_mgmt events (Node only).
 *
 * {@link startHostNetMonitor} builds the whole stack: a {@link NetMgmt} instance, the interface
 * registry filled from an initial snapshot, the connectivity monitor (L4_CONNECTED /
 * L4_DISCONNECTED) and a live source: rtnetlink on Linux ({@link NetlinkMonitor}), or polling
 * `os.networkInterfaces()` ({@link PollMonitor}) where netlink is not available or not wanted.
 */
import { NetMgmt, type NetMgmtOptions } from '../net-mgmt.ts';
import { NetIfManager } from '../net-if.ts';
import { ConnMgrMonitor } from '../conn-mgr.ts';
import { LocalAddressWatcher } from '../address-watch.ts';
import { PollMonitor } from './poll-monitor.ts';
import type { NetlinkMonitor } from './netlink-monitor.ts';

export { PollMonitor, type PollMonitorOptions } from './poll-monitor.ts';

export interface HostNetMonitorOptions {
  /** An existing instance to feed; by default a new one in queue mode with a 256-entry queue. */
  netMgmt?: NetMgmt;
  netMgmtOptions?: NetMgmtOptions;
  /** An existing interface registry to feed (its instance is then the one used); by default a new one. */
  netIfs?: NetIfManager;
  /** `auto` (default): netlink on Linux if it loads, else polling. */
  source?: 'auto' | 'netlink' | 'poll';
  /** Polling interval (ms) for the polling source. */
  pollIntervalMs?: number;
  /** Raise events for the initial state too (default false: the snapshot only fills the registry). */
  announceInitial?: boolean;
  /** Start the connectivity monitor (default true). It raises L4_CONNECTED at start if connected. */
  connMgr?: boolean;
}

/** A running host monitor. */
export interface HostNetMonitor {
  readonly netMgmt: NetMgmt;
  readonly netIfs: NetIfManager;
  readonly connMgr: ConnMgrMonitor | undefined;
  /** Which source feeds it. */
  readonly source: 'netlink' | 'poll';
  /** Why netlink was not used, when `auto` fell back to polling. */
  readonly fallbackReason: string | undefined;
  /** Whether the live source keeps the process alive (it does by default). */
  ref(keepAlive: boolean): void;
  /** Stops the source and the connectivity monitor. */
  close(): void;
}

/** Starts monitoring the host's network. Rejects if `source: 'netlink'` is asked for and cannot start. */
export async function startHostNetMonitor(options: HostNetMonitorOptions = {}): Promise<HostNetMonitor> {
  const netMgmt = options.netIfs?.netMgmt ?? options.netMgmt ?? new NetMgmt({ queueSize: 256, ...options.netMgmtOptions });
  const netIfs = options.netIfs ?? new NetIfManager(netMgmt);
  const want = options.source ?? 'auto';
  let source: { close(): void; ref(keepAlive: boolean): void } | undefined;
  let kind: 'netlink' | 'poll' = 'poll';
  let fallbackReason: string | undefined;
  if (want !== 'poll') {
    try {
      if (process.platform !== 'linux') throw new Error(`rtnetlink needs Linux (this is ${process.platform})`);
      // The `netlink` package (Linux prebuilds) is an optional dependency: polling stands in for it.
      const { NetlinkMonitor: Monitor } = (await import('./netlink-monitor.ts').catch((e: unknown) => {
        throw new Error(`rtnetlink needs the optional package netlink (npm install netlink): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      })) as { NetlinkMonitor: typeof NetlinkMonitor };
      source = await Monitor.start(netIfs, { announceInitial: !!options.announceInitial });
      kind = 'netlink';
    } catch (e) {
      if (want === 'netlink') throw e;
      fallbackReason = e instanceof Error ? e.message : String(e);
    }
  }
  if (!source) source = new PollMonitor(netIfs, { intervalMs: options.pollIntervalMs, announceInitial: !!options.announceInitial });
  const connMgr = options.connMgr === false ? undefined : new ConnMgrMonitor(netMgmt, netIfs);
  connMgr?.start();
  const live = source;
  return {
    netMgmt,
    netIfs,
    connMgr,
    source: kind,
    fallbackReason,
    ref(keepAlive) {
      live.ref(keepAlive);
    },
    close() {
      connMgr?.stop();
      live.close();
    },
  };
}

/**
 * Waits until `address` is usable on this host (its interface up, the address assigned and not
 * tentative), following the host's network live. The returned watcher reports when the address
 * goes away (`onChange`, `waitLost`); close it and the monitor when done.
 */
export async function watchHostAddress(address: string, options: HostNetMonitorOptions = {}): Promise<{ monitor: HostNetMonitor; watcher: LocalAddressWatcher }> {
  const monitor = await startHostNetMonitor(options);
  const watcher = new LocalAddressWatcher(monitor.netMgmt, monitor.netIfs, address);
  return { monitor, watcher };
}
