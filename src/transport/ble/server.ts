/**
 * The device side of SMP over GATT (portable), with Zephyr's rules (smp_bt.c, smp_reassembly.c):
 *
 * - Writes to the SMP characteristic are reassembled per connection by the SMP header's length
 *   (CONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY; `reassembly: false` takes each write as a whole
 *   packet, as a device built without it). Packets over the MCUmgr buffer are dropped.
 * - Notifications being disabled (CCC written 0) while a request is partly collected drop the
 *   partial request; so does a disconnect.
 * - Responses go out as notifications of at most ATT MTU − 3 bytes, one after the other, each
 *   waiting for the stack to have sent the previous one. A response to a connection that has
 *   gone away (or came back as a new connection) is dropped, as Zephyr compares connection ids;
 *   so is one to a client that has not enabled notifications.
 *
 * One difference from Zephyr: Zephyr keeps one reassembly buffer for the whole transport, this
 * keeps one per connection (several centrals may write at once without corrupting each other).
 *
 * The Bluetooth stack below (BlueZ over D-Bus, the emulated link) calls {@link BleServerTransport.connect},
 * `write`, `setNotifying`, `setMtu` and `disconnect`, and sends what `notify` is given.
 */
import type { ServerTransport, SmpPeer } from '../types.ts';
import { maxValueLength } from './gatt.ts';
import { SmpReassembler } from './reassembly.ts';

export interface BleServerOptions {
  /** The device's MCUmgr buffer size: largest request and response packet (default 2048). */
  bufSize?: number;
  /** Reassemble requests written in pieces (default true). */
  reassembly?: boolean;
  /** Sends one notification to a connection; resolves when the stack has sent it. */
  notify(connection: BleConnection, value: Uint8Array): Promise<void>;
  /** Notification size instead of ATT MTU − 3 (a device whose stack sends smaller pieces). */
  notifySize?: number;
  /** What {@link ServerTransport.describe} says, e.g. `ble "Zephyr" on hci0`. */
  description?: string;
  /** Run by start() and close(): register and unregister the GATT service and advertising. */
  onStart?: () => Promise<void>;
  onClose?: () => Promise<void>;
}

export interface BleConnection {
  /** The stack's handle of the connection (a D-Bus device path, an emulated id). */
  readonly id: string;
  readonly address: string;
  attMtu: number;
  notifying: boolean;
  /** False once disconnected. */
  active: boolean;
}

export interface BleServerStats {
  connections: number;
  writes: number;
  notifications: number;
  packets: number;
  droppedRequests: number;
  droppedResponses: number;
}

interface ConnectionState {
  conn: BleConnection;
  reassembler: SmpReassembler;
  sending: Promise<void>;
}

export class BleServerTransport implements ServerTransport {
  readonly kind = 'ble';
  readonly bufSize: number;
  readonly stats: BleServerStats = { connections: 0, writes: 0, notifications: 0, packets: 0, droppedRequests: 0, droppedResponses: 0 };
  private readonly options: BleServerOptions;
  private readonly connections = new Map<string, ConnectionState>();
  private onPacket: ((packet: Uint8Array, peer: SmpPeer) => void) | undefined;

  constructor(options: BleServerOptions) {
    this.options = options;
    this.bufSize = options.bufSize ?? 2048;
  }

  async start(onPacket: (packet: Uint8Array, peer: SmpPeer) => void): Promise<void> {
    this.onPacket = onPacket;
    await this.options.onStart?.();
  }

  describe(): string {
    return this.options.description ?? 'ble';
  }

  async close(): Promise<void> {
    for (const id of [...this.connections.keys()]) this.disconnect(id);
    this.onPacket = undefined;
    await this.options.onClose?.();
  }

  /** A central connected (or the first write of an unknown connection). */
  connect(id: string, info: { address?: string; attMtu?: number } = {}): BleConnection {
    const old = this.connections.get(id);
    if (old) this.disconnect(id);
    const conn: BleConnection = { id, address: info.address ?? id, attMtu: info.attMtu ?? 23, notifying: false, active: true };
    this.connections.set(id, { conn, reassembler: new SmpReassembler({ rules: 'device', maxPacket: this.bufSize }), sending: Promise.resolve() });
    this.stats.connections++;
    return conn;
  }

  /** Ids of the connections open now. */
  connectionIds(): string[] {
    return [...this.connections.keys()];
  }

  connection(id: string): BleConnection | undefined {
    return this.connections.get(id)?.conn;
  }

  setMtu(id: string, attMtu: number): void {
    const s = this.connections.get(id);
    if (s) s.conn.attMtu = attMtu;
  }

  /** The CCC descriptor was written: notifications on or off. Off drops a partial request. */
  setNotifying(id: string, enabled: boolean): void {
    const s = this.connections.get(id);
    if (!s) return;
    s.conn.notifying = enabled;
    if (!enabled && s.reassembler.reset()) this.stats.droppedRequests++;
  }

  disconnect(id: string): void {
    const s = this.connections.get(id);
    if (!s) return;
    s.conn.active = false;
    s.conn.notifying = false;
    if (s.reassembler.reset()) this.stats.droppedRequests++;
    this.connections.delete(id);
  }

  /** A Write Command (write without response) to the SMP characteristic. */
  write(id: string, value: Uint8Array, info: { address?: string; attMtu?: number } = {}): void {
    const s = this.connections.get(id) ?? (this.connect(id, info), this.connections.get(id)!);
    if (info.attMtu !== undefined) s.conn.attMtu = info.attMtu;
    this.stats.writes++;
    let packets: Uint8Array[];
    if (this.options.reassembly === false) {
      packets = value.length >= 8 && value.length <= this.bufSize ? [value.slice()] : [];
      if (packets.length === 0) this.stats.droppedRequests++;
    } else {
      const before = s.reassembler.stats.droppedFragments + s.reassembler.stats.droppedPackets;
      packets = s.reassembler.push(value);
      if (s.reassembler.stats.droppedFragments + s.reassembler.stats.droppedPackets > before) this.stats.droppedRequests++;
    }
    for (const packet of packets) {
      this.stats.packets++;
      this.onPacket?.(packet, this.peerFor(s));
    }
  }

  private peerFor(s: ConnectionState): SmpPeer {
    const conn = s.conn;
    return {
      address: `ble:${conn.address}`,
      transport: 'ble',
      mtu: this.bufSize,
      reply: (packet) => {
        const copy = packet.slice();
        const run = s.sending.then(() => this.sendResponse(conn, copy));
        s.sending = run.catch(() => {});
        return run;
      },
    };
  }

  private async sendResponse(conn: BleConnection, packet: Uint8Array): Promise<void> {
    if (!conn.active || !conn.notifying) {
      this.stats.droppedResponses++;
      return;
    }
    for (let off = 0; off < packet.length; ) {
      // The MTU may change between pieces; the connection may go (then the rest is dropped).
      if (!conn.active) {
        this.stats.droppedResponses++;
        return;
      }
      const size = this.options.notifySize ?? maxValueLength(conn.attMtu);
      const piece = packet.subarray(off, Math.min(packet.length, off + size));
      try {
        await this.options.notify(conn, piece);
      } catch {
        this.stats.droppedResponses++; // the link went away under the notification
        return;
      }
      this.stats.notifications++;
      off += piece.length;
    }
  }
}
