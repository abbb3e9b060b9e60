/**
 * Fallback monitor for hosts without rtnetlink (other systems, or no native binding): polls
 * `os.networkInterfaces()` and diffs snapshots; the registry raises the events of the
 * differences. On Linux it also reads /sys/class/net for interface indexes and IFF_* flags (so
 * interfaces without addresses and admin/operational state are seen); elsewhere an interface is
 * "up and running" while it is listed, and gets a stable synthetic index. It cannot see routes
 * nor IPv6 DAD states, and changes shorter than the interval are missed.
 */
import { networkInterfaces } from 'node:os';
import { readFileSync, readdirSync } from 'node:fs';
import type { NetAddrScope, NetIfManager, NetLinkState, NetStateSnapshot } from '../net-if.ts';
import { parseIp } from '../ip.ts';

const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
const IFF_RUNNING = 0x40;

export interface PollMonitorOptions {
  /** Milliseconds between polls (default 1000). */
  intervalMs?: number;
  /** Raise events for the initial state too (default false). */
  announceInitial?: boolean;
  /** Where the Linux interface directory is (default /sys/class/net; tests may pass another). */
  sysClassNet?: string;
  /** Keep the process alive while polling (default true, like the netlink socket). */
  ref?: boolean;
}

function readSys(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function scopeOf(addr: string, family: 4 | 6): NetAddrScope {
  const { bytes } = parseIp(addr);
  if (family === 4) {
    if (bytes[0] === 127) return 'host';
    if (bytes[0] === 169 && bytes[1] === 254) return 'link';
    return 'global';
  }
  if (bytes.every((b, i) => (i === 15 ? b === 1 : b === 0))) return 'host';
  if (bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80) return 'link';
  return 'global';
}

/** Polls the host's interfaces and feeds a {@link NetIfManager}. */
export class PollMonitor {
  readonly kind = 'poll';
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly synthetic = new Map<string, number>();
  private nextSynthetic = 100000;
  readonly intervalMs: number;
  private readonly sysClassNet: string;

  constructor(
    readonly netIfs: NetIfManager,
    options: PollMonitorOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.sysClassNet = options.sysClassNet ?? '/sys/class/net';
    this.netIfs.sync(this.snapshot(), { silent: !options.announceInitial });
    this.timer = setInterval(() => this.poll(), this.intervalMs);
    if (options.ref === false) this.timer.unref?.();
  }

  /** Takes one snapshot now and raises the differences. */
  poll(): void {
    try {
      this.netIfs.sync(this.snapshot());
    } catch {
      // a transient read failure: try again next time
    }
  }

  private indexOf(name: string): number {
    const sys = readSys(`${this.sysClassNet}/${name}/ifindex`);
    const n = sys === undefined ? NaN : Number(sys);
    if (Number.isInteger(n) && n > 0) return n;
    let idx = this.synthetic.get(name);
    if (idx === undefined) this.synthetic.set(name, (idx = this.nextSynthetic++));
    return idx;
  }

  /** The current state as a snapshot (no routes). */
  snapshot(): NetStateSnapshot {
    const links = new Map<string, NetLinkState>();
    let sysNames: string[] = [];
    try {
      sysNames = readdirSync(this.sysClassNet);
    } catch {
      sysNames = [];
    }
    const ifs = networkInterfaces();
    for (const name of new Set([...sysNames, ...Object.keys(ifs)])) {
      const flagsText = readSys(`${this.sysClassNet}/${name}/flags`);
      const flags = flagsText === undefined ? undefined : parseInt(flagsText, 16);
      const list = ifs[name] ?? [];
      const state: NetLinkState =
        flags === undefined || Number.isNaN(flags)
          ? { index: this.indexOf(name), name, up: true, running: true, loopback: list.some((a) => a.internal) }
          : { index: this.indexOf(name), name, up: (flags & IFF_UP) !== 0, running: (flags & IFF_RUNNING) !== 0, loopback: (flags & IFF_LOOPBACK) !== 0 };
      const mtu = Number(readSys(`${this.sysClassNet}/${name}/mtu`));
      if (Number.isInteger(mtu) && mtu > 0) state.mtu = mtu;
      const mac = list[0]?.mac;
      if (mac && mac !== '00:00:00:00:00:00') state.hwaddr = mac;
      links.set(name, state);
    }
    const addresses: NetStateSnapshot['addresses'] = [];
    for (const [name, list] of Object.entries(ifs)) {
      const link = links.get(name);
      if (!link || !list) continue;
      for (const a of list) {
        const family = a.family === 'IPv4' ? 4 : 6;
        const addr = a.address.split('%')[0]!;
        const prefixLen = a.cidr ? Number(a.cidr.split('/')[1]) : family === 4 ? 32 : 128;
        addresses.push({ index: link.index, address: { addr, prefixLen, scope: scopeOf(addr, family) } });
      }
    }
    return { links: [...links.values()], addresses };
  }

  /** Whether polling keeps the process alive. */
  ref(keepAlive: boolean): void {
    if (keepAlive) this.timer?.ref?.();
    else this.timer?.unref?.();
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
