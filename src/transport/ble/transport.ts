/**
 * The SMP transport over a GATT link (portable: Node, browsers, tests).
 *
 * - Requests: each packet is written without response in pieces of at most ATT MTU − 3 bytes (or
 *   the stack's write limit), packets one after another (their pieces never interleave).
 * - Packet size: until the device's MCUmgr parameters are known, one packet fits one write (a
 *   device without reassembly takes nothing else). {@link openBleTransport} then reads `params`
 *   (OS 0/6) and, as nRF Connect Device Manager does, sends packets up to `buf_size`: a device
 *   that reports its buffers reassembles (CONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY). The transfer
 *   engines keep `buf_count − 1` packets in flight from the same parameters.
 * - Responses: notifications reassembled by the SMP header's length ({@link SmpReassembler},
 *   client rules); a partial response is dropped when notifications stop or the link goes down.
 * - Reconnect: with a connector, a lost link is connected again (a bounded number of tries); a
 *   packet cut by the disconnect is written again whole on the new link, and requests whose
 *   answers were lost time out and are retried by the client and the transfer engines, which
 *   resume an interrupted upload at the device's offset.
 */
import { TransportError } from '../../core/errors.ts';
import { HEADER_SIZE } from '../../core/header.ts';
import type { SmpTransport } from '../types.ts';
import { maxValueLength, type GattConnector, type GattLink, type GattLinkEvent } from './gatt.ts';
import { SmpReassembler, type ReassemblyStats } from './reassembly.ts';

export interface BleTransportOptions {
  /** Connect again after a disconnect with this connector (default: a disconnect closes the transport). */
  reconnect?: GattConnector;
  /** Connection attempts after one disconnect before giving up (default 3). */
  reconnectTries?: number;
  /** Largest SMP packet to send (default: one write, ATT MTU − 3, until {@link BleSmpTransport.setMaxPacket}). */
  maxPacket?: number;
  /** Drop a partial response after this much silence (default 5000 ms). */
  partialResponseTimeoutMs?: number;
  /** Called on link events (reconnects, drops), for logs. */
  onStatus?: (message: string) => void;
}

export interface BleTransportStats {
  writes: number;
  notifications: number;
  reconnects: number;
  reassembly: ReassemblyStats;
}

/** The largest SMP packet: 8-byte header + a 16-bit length. */
export const MAX_SMP_PACKET = HEADER_SIZE + 0xffff;

export class BleSmpTransport implements SmpTransport {
  readonly kind = 'ble';
  private link: GattLink;
  private readonly options: BleTransportOptions;
  private readonly reassembler: SmpReassembler;
  private receiver: ((packet: Uint8Array) => void) | undefined;
  private readonly closeListeners = new Set<(error?: Error) => void>();
  private isClosed = false;
  private maxPacketSet: number | undefined;
  private sendChain: Promise<void> = Promise.resolve();
  /** Counts subscriptions lost; a packet written across a change is written again. */
  private cccGeneration = 0;
  private writing = false;
  private reconnecting: Promise<void> | undefined;
  private unlisten: () => void = () => {};
  readonly stats: BleTransportStats;

  constructor(link: GattLink, options: BleTransportOptions = {}) {
    this.link = link;
    this.options = options;
    this.maxPacketSet = options.maxPacket;
    this.reassembler = new SmpReassembler({ rules: 'client', maxPacket: MAX_SMP_PACKET, idleMs: options.partialResponseTimeoutMs ?? 5000 });
    this.stats = { writes: 0, notifications: 0, reconnects: 0, reassembly: this.reassembler.stats };
  }

  /** Subscribes to the SMP characteristic's notifications; call once before sending. */
  async start(): Promise<void> {
    await this.attach(this.link);
  }

  private async attach(link: GattLink): Promise<void> {
    this.unlisten();
    this.link = link;
    this.reassembler.reset();
    this.unlisten = link.onEvent((e) => this.onLinkEvent(link, e));
    await link.startNotifications((value) => this.onNotification(link, value));
  }

  private onNotification(link: GattLink, value: Uint8Array): void {
    if (link !== this.link || this.isClosed) return;
    this.stats.notifications++;
    for (const packet of this.reassembler.push(value)) this.receiver?.(packet);
  }

  private onLinkEvent(link: GattLink, e: GattLinkEvent): void {
    if (link !== this.link || this.isClosed) return;
    if (e.type === 'notifications-stopped') {
      if (this.reassembler.reset()) this.options.onStatus?.('notifications stopped mid-response: partial response dropped');
      // Resubscribe in order with the writes: a packet being written is cut off and written again.
      this.cccGeneration++;
      if (!this.writing) {
        const run = this.sendChain.then(() => this.resubscribe());
        this.sendChain = run.catch(() => {});
      }
    } else if (e.type === 'disconnected') {
      this.reassembler.reset();
      if (!this.options.reconnect) void this.finish(new TransportError('TRANSPORT_CLOSED', `Bluetooth LE link to ${link.name ?? link.address ?? 'the device'} lost`, { cause: e.error }));
      else void this.reconnect().catch(() => {});
    }
  }

  private reconnect(): Promise<void> {
    this.reconnecting ??= (async () => {
      const connect = this.options.reconnect!;
      const tries = Math.max(1, this.options.reconnectTries ?? 3);
      let last: unknown;
      for (let i = 1; i <= tries && !this.isClosed; i++) {
        try {
          this.options.onStatus?.(`link lost, reconnecting (try ${i} of ${tries})`);
          const link = await connect();
          await this.attach(link);
          this.stats.reconnects++;
          this.options.onStatus?.('reconnected');
          return;
        } catch (e) {
          last = e;
        }
      }
      const err = new TransportError('TRANSPORT_CLOSED', `Bluetooth LE link lost and ${tries} reconnect ${tries === 1 ? 'try' : 'tries'} failed`, { cause: last });
      await this.finish(err);
      throw err;
    })().finally(() => {
      this.reconnecting = undefined;
    });
    return this.reconnecting;
  }

  /**
   * Largest SMP packet one send may carry. Above one write, it is rounded down to whole writes
   * (2475 → 2440 at MTU 247): a short last piece would take a link-layer packet of its own.
   */
  get mtu(): number {
    const write = this.writeLength;
    const max = this.maxPacketSet ?? write;
    return max > write ? Math.max(write, max - (max % write)) : max;
  }

  /** Bytes per write on the current link. */
  get writeLength(): number {
    return maxValueLength(this.link.attMtu, this.link.maxWriteLength);
  }

  get attMtu(): number {
    return this.link.attMtu;
  }

  /** Sets the largest packet (from the device's `buf_size`, when it reassembles). */
  setMaxPacket(bytes: number): void {
    this.maxPacketSet = Math.max(HEADER_SIZE + 1, Math.min(MAX_SMP_PACKET, bytes));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(packet: Uint8Array): Promise<void> {
    if (this.isClosed) return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'Bluetooth LE transport closed'));
    if (packet.length > this.mtu) return Promise.reject(new TransportError('TRANSPORT_TOO_LARGE', `packet of ${packet.length} bytes exceeds the largest packet of this link (${this.mtu})`));
    const copy = packet.slice();
    const run = this.sendChain.then(() => this.writePacket(copy));
    this.sendChain = run.catch(() => {});
    return run;
  }

  /**
   * Subscribes again after the subscription was lost: CCC 0 then 1. Zephyr drops a partial request
   * on CCC 0 (smp_bt_ccc_changed), which clears whatever the rest of a cut packet started there.
   */
  private async resubscribe(): Promise<void> {
    const link = this.link;
    await link.stopNotifications().catch(() => {});
    this.reassembler.reset();
    await link.startNotifications((value) => this.onNotification(link, value));
  }

  private async writePacket(packet: Uint8Array): Promise<void> {
    this.writing = true;
    try {
      await this.writePacketPieces(packet);
    } finally {
      this.writing = false;
    }
  }

  private async writePacketPieces(packet: Uint8Array): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.isClosed) throw new TransportError('TRANSPORT_CLOSED', 'Bluetooth LE transport closed');
      if (this.reconnecting) await this.reconnecting;
      const link = this.link;
      try {
        const size = this.writeLength;
        let generation = this.cccGeneration;
        for (let off = 0; off < packet.length; off += size) {
          await link.writeWithoutResponse(packet.subarray(off, Math.min(packet.length, off + size)));
          this.stats.writes++;
          if (generation !== this.cccGeneration) {
            // The subscription was lost mid-packet: the device dropped the start; resubscribe and start over.
            await this.resubscribe();
            generation = this.cccGeneration;
            off = -size;
          }
        }
        return;
      } catch (e) {
        // Cut by a disconnect: the device dropped the partial packet; write it whole on the new link.
        if (this.options.reconnect && !this.isClosed && attempt < 3) {
          if (link === this.link && !link.connected) await this.reconnect();
          continue;
        }
        throw e instanceof TransportError ? e : new TransportError('TRANSPORT_IO', `Bluetooth LE write failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    }
  }

  setReceiver(receiver: (packet: Uint8Array) => void): void {
    this.receiver = receiver;
  }

  onClose(listener: (error?: Error) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  private async finish(error?: Error): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.unlisten();
    for (const l of this.closeListeners) l(error);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    const link = this.link;
    await this.finish();
    await link.stopNotifications().catch(() => {});
    await link.disconnect().catch(() => {});
  }
}
