/**
 * An emulated GATT connection between an SMP client and a device server, in process (portable):
 * no radio, no Bluetooth stack. What it emulates, and how:
 *
 * - ATT MTU (`attMtu`): writes and notifications carry at most MTU − 3 bytes; a longer write is
 *   refused as a stack would.
 * - The device's notification size (`notifySize`): pieces smaller than MTU − 3.
 * - Lost notifications (`dropNotification(n)`: the n-th notification, counted from 1, is lost),
 *   a condition LE's link layer normally prevents but stacks and phones still produce.
 * - Notifications disabled mid-packet (`notificationsOffAtWrite`): on those writes the central
 *   writes the CCC to 0 and back to 1 before the write (the device drops its partial request, the
 *   client its partial response).
 * - Disconnects (`disconnectAtWrite`): that write never arrives, the connection drops; the
 *   connector makes a new one.
 * - Pacing (`pacing`): connection events every `connectionIntervalMs`, each carrying up to
 *   `packetsPerEvent` link-layer packets in each direction (central to peripheral and back); an
 *   ATT PDU of n bytes takes ⌈(n + 4) / llPayload⌉ link-layer packets (L2CAP header 4 bytes;
 *   llPayload 251 with Data Length Extension, 27 without). A write without response resolves when
 *   the controller has buffer room (`txBuffers` PDUs queued); a notification resolves when sent,
 *   as Zephyr waits for each one. Without pacing, every PDU is delivered a macrotask later.
 */
import { TransportError } from '../../core/errors.ts';
import { ATT_OVERHEAD, maxValueLength, type GattConnector, type GattLink, type GattLinkEvent } from './gatt.ts';
import { BleServerTransport, type BleConnection } from './server.ts';

export interface PacingOptions {
  connectionIntervalMs: number;
  packetsPerEvent: number;
  /** Link-layer payload per packet (default 251: Data Length Extension). */
  llPayload?: number;
  /** ATT PDUs a central's controller buffers before a write waits (default 2 × packetsPerEvent, at least 4). */
  txBuffers?: number;
}

export interface EmulatedGattOptions {
  attMtu?: number;
  notifySize?: number;
  /** The device's MCUmgr buffer size (default 2048). */
  bufSize?: number;
  /** Device built without reassembly: every write must hold a whole packet. */
  reassembly?: boolean;
  dropNotification?: (n: number) => boolean;
  notificationsOffAtWrite?: readonly number[];
  disconnectAtWrite?: readonly number[];
  pacing?: PacingOptions;
  name?: string;
  address?: string;
}

export interface EmulatedGattStats {
  writes: number;
  notifications: number;
  droppedNotifications: number;
  disconnects: number;
  connections: number;
  /** Link-layer packets sent in each direction (with pacing). */
  llPacketsToDevice: number;
  llPacketsToClient: number;
  connectionEvents: number;
}

export interface EmulatedGatt {
  /** The device side: give it to the server (`server.listen(gatt.server)`). */
  readonly server: BleServerTransport;
  /** Connects a new emulated central. */
  readonly connect: GattConnector;
  readonly stats: EmulatedGattStats;
  /** Drops the current connection now. */
  disconnect(): void;
  close(): void;
}

type Direction = 'toDevice' | 'toClient';
interface QueuedPdu {
  ll: number;
  at: number;
  deliver: () => void;
}

/** Connection-event pacing shared by both directions of one connection. */
class ConnectionEventPacer {
  private readonly queues: Record<Direction, QueuedPdu[]> = { toDevice: [], toClient: [] };
  private readonly t0 = Date.now();
  private eventIndex = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  constructor(
    private readonly p: PacingOptions,
    private readonly stats: EmulatedGattStats,
  ) {}

  llPacketsFor(attPdu: number): number {
    return Math.ceil((attPdu + 4) / (this.p.llPayload ?? 251));
  }

  queued(dir: Direction): number {
    return this.queues[dir].length;
  }

  enqueue(dir: Direction, attPdu: number, deliver: () => void): void {
    if (this.stopped) return;
    this.queues[dir].push({ ll: this.llPacketsFor(attPdu), at: Date.now(), deliver });
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    const now = Date.now();
    // The next event on the connection's grid that is not in the past.
    const next = Math.max(this.eventIndex, Math.ceil((now - this.t0) / this.p.connectionIntervalMs));
    this.eventIndex = next;
    this.timer = setTimeout(() => this.run(), Math.max(0, this.t0 + next * this.p.connectionIntervalMs - now));
  }

  private run(): void {
    this.timer = undefined;
    const now = Date.now();
    // Every event up to now (timers fire late on a busy machine); an event carries only PDUs queued before it.
    while (this.t0 + this.eventIndex * this.p.connectionIntervalMs <= now && (this.queues.toDevice.length > 0 || this.queues.toClient.length > 0)) {
      const t = this.t0 + this.eventIndex * this.p.connectionIntervalMs;
      this.eventIndex++;
      this.stats.connectionEvents++;
      for (const dir of ['toDevice', 'toClient'] as const) {
        let budget = this.p.packetsPerEvent;
        const q = this.queues[dir];
        while (budget > 0 && q.length > 0 && q[0]!.at <= t) {
          const head = q[0]!;
          const n = Math.min(budget, head.ll);
          head.ll -= n;
          budget -= n;
          if (dir === 'toDevice') this.stats.llPacketsToDevice += n;
          else this.stats.llPacketsToClient += n;
          if (head.ll === 0) {
            q.shift();
            head.deliver();
          }
        }
      }
    }
    if (this.queues.toDevice.length > 0 || this.queues.toClient.length > 0) this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // What was queued settles now (a notification rejects, a write is lost): nothing waits forever.
    for (const q of [this.queues.toDevice, this.queues.toClient]) for (const pdu of q.splice(0)) pdu.deliver();
  }
}

export function createEmulatedGatt(options: EmulatedGattOptions = {}): EmulatedGatt {
  const attMtu = options.attMtu ?? 247;
  const stats: EmulatedGattStats = { writes: 0, notifications: 0, droppedNotifications: 0, disconnects: 0, connections: 0, llPacketsToDevice: 0, llPacketsToClient: 0, connectionEvents: 0 };
  const offAt = new Set(options.notificationsOffAtWrite ?? []);
  const disconnectAt = new Set(options.disconnectAtWrite ?? []);
  let current: EmulatedLink | undefined;

  const server = new BleServerTransport({
    bufSize: options.bufSize ?? 2048,
    ...(options.reassembly !== undefined ? { reassembly: options.reassembly } : {}),
    ...(options.notifySize !== undefined ? { notifySize: options.notifySize } : {}),
    description: `emulated GATT link (ATT MTU ${attMtu})`,
    notify: (conn, value) => {
      const link = current;
      if (!link || link.id !== conn.id || !link.connected) return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'not connected'));
      return link.deviceNotifies(value);
    },
  });

  class EmulatedLink implements GattLink {
    readonly attMtu = attMtu;
    readonly address = options.address ?? 'EE:00:00:00:00:01';
    readonly name = options.name ?? 'emulated';
    readonly id: string;
    connected = true;
    private onValue: ((v: Uint8Array) => void) | undefined;
    private readonly listeners = new Set<(e: GattLinkEvent) => void>();
    private readonly pacer: ConnectionEventPacer | undefined;
    private readonly conn: BleConnection;
    private readonly roomWaiters: Array<() => void> = [];

    constructor(n: number) {
      this.id = `conn${n}`;
      this.pacer = options.pacing ? new ConnectionEventPacer(options.pacing, stats) : undefined;
      this.conn = server.connect(this.id, { address: this.address, attMtu });
    }

    private later(dir: Direction, attPdu: number, deliver: () => void): void {
      if (this.pacer) this.pacer.enqueue(dir, attPdu, deliver);
      else setTimeout(deliver, 0);
    }

    async writeWithoutResponse(value: Uint8Array): Promise<void> {
      if (!this.connected) throw new TransportError('TRANSPORT_CLOSED', 'emulated link disconnected');
      if (value.length > maxValueLength(attMtu)) throw new TransportError('TRANSPORT_TOO_LARGE', `write of ${value.length} bytes over ATT MTU ${attMtu}`);
      const n = ++stats.writes;
      if (offAt.has(n)) {
        // The central writes the CCC to 0 (in order with its writes): the device drops a partial
        // request, the client its partial response (and enables notifications again).
        void this.writeCcc(false);
        this.emit({ type: 'notifications-stopped' });
      }
      if (disconnectAt.has(n)) {
        this.drop();
        throw new TransportError('TRANSPORT_CLOSED', 'emulated link disconnected');
      }
      const copy = value.slice();
      const p = this.pacer;
      if (p) {
        const room = Math.max(4, options.pacing!.txBuffers ?? 2 * options.pacing!.packetsPerEvent);
        while (p.queued('toDevice') >= room && this.connected) await new Promise<void>((r) => this.roomWaiters.push(r));
        if (!this.connected) throw new TransportError('TRANSPORT_CLOSED', 'emulated link disconnected');
      }
      this.later('toDevice', copy.length + ATT_OVERHEAD, () => {
        this.roomWaiters.shift()?.();
        if (this.connected) server.write(this.id, copy);
      });
    }

    deviceNotifies(value: Uint8Array): Promise<void> {
      const copy = value.slice();
      return new Promise((resolve, reject) => {
        this.later('toClient', copy.length + ATT_OVERHEAD, () => {
          if (!this.connected) return reject(new TransportError('TRANSPORT_CLOSED', 'emulated link disconnected'));
          const n = ++stats.notifications;
          if (options.dropNotification?.(n)) stats.droppedNotifications++;
          else if (this.conn.notifying) this.onValue?.(copy);
          resolve();
        });
      });
    }

    /** A Write Request to the CCC descriptor (3 + 2 bytes), in order with the writes before it; resolves when done. */
    private writeCcc(enabled: boolean): Promise<void> {
      return new Promise((resolve) =>
        this.later('toDevice', ATT_OVERHEAD + 2, () => {
          if (this.connected) server.setNotifying(this.id, enabled);
          resolve();
        }),
      );
    }

    startNotifications(onValue: (value: Uint8Array) => void): Promise<void> {
      if (!this.connected) return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'emulated link disconnected'));
      this.onValue = onValue;
      return this.writeCcc(true);
    }

    stopNotifications(): Promise<void> {
      this.onValue = undefined;
      return this.connected ? this.writeCcc(false) : Promise.resolve();
    }

    onEvent(listener: (event: GattLinkEvent) => void): () => void {
      this.listeners.add(listener);
      return () => this.listeners.delete(listener);
    }

    private emit(e: GattLinkEvent): void {
      for (const l of [...this.listeners]) l(e);
    }

    drop(): void {
      if (!this.connected) return;
      this.connected = false;
      stats.disconnects++;
      this.pacer?.stop();
      for (const w of this.roomWaiters.splice(0)) w();
      server.disconnect(this.id);
      // The stack reports the loss a moment later, as a supervision timeout would.
      setTimeout(() => this.emit({ type: 'disconnected', error: new Error('connection lost (emulated)') }), 0);
    }

    disconnect(): Promise<void> {
      if (this.connected) {
        this.connected = false;
        this.pacer?.stop();
        for (const w of this.roomWaiters.splice(0)) w();
        server.disconnect(this.id);
      }
      return Promise.resolve();
    }
  }

  return {
    server,
    stats,
    connect: () => {
      current?.drop();
      current = new EmulatedLink(++stats.connections);
      return Promise.resolve(current);
    },
    disconnect: () => current?.drop(),
    close: () => void current?.disconnect(),
  };
}
