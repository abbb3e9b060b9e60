/**
 * Raw UART framing (smp-spec.md §4.2, Zephyr `CONFIG_MCUMGR_TRANSPORT_RAW_UART`): bare SMP packets
 * back to back on the byte stream, no base64, CRC or markers. Packet boundaries come from the
 * header's length field, so the decoder accumulates 8 header bytes, then `length` payload bytes.
 *
 * Zephyr (`mcumgr_serial_process_frag` with `raw_transport`) drops a packet whose op is 4-7 or
 * whose 8 + length exceeds its net_buf (384 by default). On a byte stream a dropped header leaves
 * no way to find the next packet except trying again one byte later, so this decoder does exactly
 * that: it discards the first byte of an invalid header and looks again. The result is the same
 * however the stream is cut into chunks. Zephyr's revision read for this project also drops a read
 * that holds more than one packet; this decoder splits them instead (the newer behaviour the spec
 * describes). A caller with an input timeout (Zephyr's `RAW_UART_INPUT_TIMEOUT`) calls
 * {@link RawPacketDecoder.reset} when the line goes idle mid-packet.
 */
import { TransportError, UsageError } from '../core/errors.ts';
import { HEADER_SIZE } from '../core/header.ts';
import { SmpStreamDecoder } from './stream-decoder.ts';

/** Largest packet the raw framing can carry: header + 16-bit payload length. */
export const MAX_RAW_PACKET = HEADER_SIZE + 0xffff;

/** Drop and delivery counters of {@link RawPacketDecoder}. */
export interface RawDecoderStats {
  /** Whole packets delivered. */
  packets: number;
  /** Headers rejected (op 4-7 or longer than the packet limit); each costs one skipped byte. */
  badHeader: number;
  /** Bytes skipped while looking for a valid header. */
  skippedBytes: number;
  /** Partial packets thrown away by {@link RawPacketDecoder.reset}. */
  abandoned: number;
}

/** Options of {@link RawPacketDecoder}. */
export interface RawDecoderOptions {
  /**
   * Largest packet accepted, header included (default {@link MAX_RAW_PACKET}; a default Zephyr
   * device takes 384, its net_buf size).
   */
  maxPacketLength?: number;
}

/**
 * Incremental raw-UART packetizer: feed chunks with {@link RawPacketDecoder.push}, get whole SMP
 * packets back. Never throws.
 */
export class RawPacketDecoder extends SmpStreamDecoder<RawDecoderStats> {
  readonly stats: RawDecoderStats = { packets: 0, badHeader: 0, skippedBytes: 0, abandoned: 0 };
  private readonly header = new Uint8Array(HEADER_SIZE);
  private headerLength = 0;
  private packet: Uint8Array | null = null;
  private filled = 0;

  constructor(options: RawDecoderOptions = {}) {
    super(options.maxPacketLength, { min: HEADER_SIZE, max: MAX_RAW_PACKET });
  }

  /** True while some bytes of a packet have arrived but not all. */
  get pending(): boolean {
    return this.headerLength > 0 || this.packet !== null;
  }

  /** Forgets a partial packet (input timeout, reopened port). Counters stay. */
  reset(): void {
    if (this.pending) this.stats.abandoned++;
    this.headerLength = 0;
    this.packet = null;
    this.filled = 0;
  }

  protected consume(chunk: Uint8Array, packets: Uint8Array[]): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.packet === null) {
        const take = Math.min(HEADER_SIZE - this.headerLength, n - i);
        this.header.set(chunk.subarray(i, i + take), this.headerLength);
        this.headerLength += take;
        i += take;
        if (this.headerLength < HEADER_SIZE) break;
        // The header is complete: check it as Zephyr does, resynchronise byte by byte if bad.
        while (this.headerLength === HEADER_SIZE && !this.headerValid()) {
          this.stats.badHeader++;
          this.stats.skippedBytes++;
          this.header.copyWithin(0, 1);
          this.headerLength--;
          if (i < n) this.header[this.headerLength++] = chunk[i++]!;
        }
        if (this.headerLength < HEADER_SIZE) continue;
        const total = HEADER_SIZE + ((this.header[2]! << 8) | this.header[3]!);
        this.packet = new Uint8Array(total);
        this.packet.set(this.header);
        this.filled = HEADER_SIZE;
        this.headerLength = 0;
      }
      const packet = this.packet;
      const take = Math.min(packet.length - this.filled, n - i);
      packet.set(chunk.subarray(i, i + take), this.filled);
      this.filled += take;
      i += take;
      if (this.filled === packet.length) {
        packets.push(packet);
        this.stats.packets++;
        this.packet = null;
        this.filled = 0;
      }
    }
  }

  private headerValid(): boolean {
    const op = this.header[0]! & 0x07;
    const total = HEADER_SIZE + ((this.header[2]! << 8) | this.header[3]!);
    return op < 4 && total <= this.maxPacketLength;
  }
}

/**
 * Checks a packet for the raw framing and returns it unchanged (raw framing adds nothing). A packet
 * may hold several SMP messages back to back; each must be whole (the header length is the only
 * boundary a raw link has) and at most `maxPacketLength` bytes. Throws UsageError for a packet that
 * is not a sequence of whole messages, TransportError `TRANSPORT_TOO_LARGE` for an oversize one.
 */
export function encodeRawPacket(packet: Uint8Array, maxPacketLength = MAX_RAW_PACKET): Uint8Array {
  if (packet.length === 0) throw new UsageError('cannot send an empty raw SMP packet');
  let at = 0;
  while (at < packet.length) {
    if (packet.length - at < HEADER_SIZE) {
      throw new UsageError(`raw SMP packet ends with ${packet.length - at} bytes, less than a ${HEADER_SIZE}-byte header`);
    }
    const size = HEADER_SIZE + ((packet[at + 2]! << 8) | packet[at + 3]!);
    if (size > maxPacketLength) throw new TransportError('TRANSPORT_TOO_LARGE', `SMP message of ${size} bytes exceeds the raw link limit of ${maxPacketLength}`);
    if (at + size > packet.length) {
      throw new UsageError(`SMP header at offset ${at} announces ${size} bytes but only ${packet.length - at} remain`);
    }
    at += size;
  }
  return packet;
}
