/**
 * A bounded record of the net_mgmt events an instance has raised: what the device shell's
 * `net events` prints. It listens with one callback per core family (IF, IPv4, IPv6, L4,
 * conn_mgr) whose masks name every command, as Zephyr's `net events on` monitor does, and keeps
 * the newest `capacity` events in a ring; older ones are counted as dropped.
 *
 * Because a mask naming every command widens Zephyr's notify prefilter, no event of these
 * families is dropped at the source while a log is attached: attach it before the source of
 * events starts (the host monitor) to see the initial L4_CONNECTED too.
 */
import { UsageError } from '../core/errors.ts';
import * as E from './events.ts';
import { netEventRecord, type NetEventRecord } from './format.ts';
import { initEventCallback, type NetMgmt, type NetMgmtEventCallback } from './net-mgmt.ts';

/** One recorded event. */
export interface NetEventLogEntry extends NetEventRecord {
  /** 1 for the first event the log saw, counting on across drops. */
  readonly seq: number;
  /** When it was delivered, from the log's clock (milliseconds). */
  readonly time: number;
  /** Index of the event's interface at that time, or null. */
  readonly ifaceIndex: number | null;
}

export interface NetEventLogOptions {
  /** Events kept (1..4096, default 64). */
  capacity?: number;
  /** Clock in milliseconds (default `Date.now`). */
  now?: () => number;
}

/** Every command of each core family: one mask per layer code, as Zephyr requires. */
const FAMILY_MASKS = [E.NET_EVENT_IF_BASE, E.NET_EVENT_IPV4_BASE, E.NET_EVENT_IPV6_BASE, E.NET_EVENT_L4_BASE, E.NET_EVENT_CONN_BASE].map((b) => (b | 0xffff) >>> 0);

export class NetEventLog {
  readonly capacity: number;
  private readonly ring: (NetEventLogEntry | undefined)[];
  private next = 0;
  private count = 0;
  private seq = 0;
  private readonly now: () => number;
  private readonly callbacks: NetMgmtEventCallback[];
  private closed = false;

  /** Starts recording the events of `netMgmt`. Throws {@link UsageError} for a bad capacity. */
  constructor(
    private readonly netMgmt: NetMgmt,
    options: NetEventLogOptions = {},
  ) {
    const capacity = options.capacity ?? 64;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 4096) throw new UsageError(`event log capacity must be 1..4096, got ${String(capacity)}`);
    this.capacity = capacity;
    this.ring = new Array<NetEventLogEntry | undefined>(capacity);
    this.now = options.now ?? Date.now;
    this.callbacks = FAMILY_MASKS.map((mask) =>
      initEventCallback((cb, event, iface) => {
        const record = netEventRecord(event, iface, cb.info);
        this.push({ ...record, seq: ++this.seq, time: this.now(), ifaceIndex: iface?.index ?? null });
      }, mask),
    );
    for (const cb of this.callbacks) netMgmt.addEventCallback(cb);
  }

  private push(entry: NetEventLogEntry): void {
    this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** Events recorded since the start (or the last {@link clear}), kept or not. */
  get total(): number {
    return this.seq;
  }

  /** Events no longer kept because newer ones took their place. */
  get dropped(): number {
    return this.seq - this.count;
  }

  /** The kept events, oldest first; with `last`, only the newest `last` of them. */
  entries(last?: number): NetEventLogEntry[] {
    const out: NetEventLogEntry[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) out.push(this.ring[(start + i) % this.capacity]!);
    return last === undefined ? out : out.slice(Math.max(0, out.length - last));
  }

  /** Forgets every kept event and resets the counters. */
  clear(): void {
    this.ring.fill(undefined);
    this.next = 0;
    this.count = 0;
    this.seq = 0;
  }

  /** Stops recording (removes the callbacks); the kept events stay readable. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cb of this.callbacks) this.netMgmt.delEventCallback(cb);
  }
}
