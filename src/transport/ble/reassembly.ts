/**
 * Reassembly of SMP packets from GATT fragments, by the length in the 8-byte SMP header
 * (portable). Two rule sets:
 *
 * - `device`: Zephyr's `smp_reassembly_collect` exactly. A first fragment shorter than the header
 *   is dropped (-ENODATA); a packet longer than the net_buf, or a first fragment longer than its
 *   packet, is dropped (-ENOSR, -EOVERFLOW); a fragment longer than what the packet still expects
 *   drops the partial packet and itself (-EOVERFLOW).
 * - `client`: for notifications, where a lost notification must not poison what follows (Zephyr
 *   never puts two packets in one notification, and starts every packet in a new one). A fragment
 *   that does not fit what the partial packet still expects is taken as the start of a new packet
 *   (the partial one is dropped), and so is one that begins with a response header for the same
 *   command or sequence number as the partial packet; a header that is not a plausible response (op 1 or 3, version
 *   0 or 1, length within the limit) is dropped; a partial packet idle longer than `idleMs` is
 *   dropped; a fragment may hold several whole packets (lenient toward other stacks).
 *
 * `reset()` drops a partial packet: notifications disabled mid-packet, or a disconnect.
 */
import { HEADER_SIZE } from '../../core/header.ts';

export type ReassemblyRules = 'device' | 'client';

export interface ReassemblyStats {
  packets: number;
  /** Partial packets dropped (overflow, reset, idle, implausible header). */
  droppedPackets: number;
  /** Fragments or bytes thrown away without ever starting a packet. */
  droppedFragments: number;
  droppedBytes: number;
}

export interface ReassemblerOptions {
  rules: ReassemblyRules;
  /** Largest whole packet (header included): the device's net_buf size, or 8 + 65535. */
  maxPacket: number;
  /** Client rules: drop a partial packet after this much silence (default 0: never). */
  idleMs?: number;
  /** Clock for `idleMs` (default Date.now). */
  now?: () => number;
}

/** Length field of an SMP header (bytes 2-3, big endian). */
function headerLength(b: Uint8Array, at = 0): number {
  return (b[at + 2]! << 8) | b[at + 3]!;
}

/** A response header a client may accept: op READ_RSP (1) or WRITE_RSP (3), version 0 or 1. */
function plausibleResponse(b: Uint8Array, at: number): boolean {
  const first = b[at]!;
  const op = first & 0x07;
  const version = (first >> 3) & 0x03;
  return (op === 1 || op === 3) && version <= 1 && (first & 0xe0) === 0;
}

export class SmpReassembler {
  readonly stats: ReassemblyStats = { packets: 0, droppedPackets: 0, droppedFragments: 0, droppedBytes: 0 };
  private readonly rules: ReassemblyRules;
  private readonly maxPacket: number;
  private readonly idleMs: number;
  private readonly now: () => number;
  private buf: Uint8Array | undefined;
  private filled = 0;
  /** Whole packet size once the header is known (client rules may collect a header across fragments). */
  private expected = 0;
  private lastAt = 0;

  constructor(options: ReassemblerOptions) {
    this.rules = options.rules;
    this.maxPacket = options.maxPacket;
    this.idleMs = options.idleMs ?? 0;
    this.now = options.now ?? Date.now;
  }

  /** Bytes of a partial packet held. */
  get pending(): number {
    return this.buf ? this.filled : 0;
  }

  /** Drops a partial packet; true when there was one. */
  reset(): boolean {
    if (!this.buf) return false;
    this.stats.droppedPackets++;
    this.stats.droppedBytes += this.filled;
    this.buf = undefined;
    this.filled = 0;
    this.expected = 0;
    return true;
  }

  /** Takes one fragment; returns the packets it completes (copies, in order). */
  push(fragment: Uint8Array): Uint8Array[] {
    return this.rules === 'device' ? this.pushDevice(fragment) : this.pushClient(fragment);
  }

  private dropFragment(n: number): void {
    this.stats.droppedFragments++;
    this.stats.droppedBytes += n;
  }

  private pushDevice(f: Uint8Array): Uint8Array[] {
    if (!this.buf) {
      if (f.length < HEADER_SIZE) {
        this.dropFragment(f.length); // -ENODATA
        return [];
      }
      const expected = headerLength(f) + HEADER_SIZE;
      if (f.length > this.maxPacket || expected > this.maxPacket || f.length > expected) {
        this.dropFragment(f.length); // -ENOSR / -EOVERFLOW
        return [];
      }
      this.buf = new Uint8Array(expected);
      this.expected = expected;
      this.filled = 0;
    }
    if (f.length > this.expected - this.filled) {
      this.reset(); // -EOVERFLOW on a collected buffer: the packet is dropped
      this.dropFragment(f.length);
      return [];
    }
    this.buf.set(f, this.filled);
    this.filled += f.length;
    return this.filled === this.expected ? [this.finish()] : [];
  }

  private finish(): Uint8Array {
    const p = this.buf!;
    this.buf = undefined;
    this.filled = 0;
    this.expected = 0;
    this.stats.packets++;
    return p;
  }

  private restartsPacket(f: Uint8Array): boolean {
    const b = this.buf!;
    if (f.length < HEADER_SIZE || !plausibleResponse(f, 0)) return false;
    const sameCommand = (f[0]! & 0x07) === (b[0]! & 0x07) && f[4] === b[4] && f[5] === b[5] && f[7] === b[7];
    return sameCommand || f[6] === b[6];
  }

  private pushClient(f: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    const t = this.now();
    if (this.buf && this.idleMs > 0 && t - this.lastAt > this.idleMs) this.reset();
    this.lastAt = t;
    let at = 0;
    // A continuation that does not fit what the partial packet still needs starts a new packet;
    // so does one that begins with a response header for the same command or sequence number
    // (the answer to a retry after a lost piece: a match in data bytes is about 2^-32 likely).
    if (this.buf && this.expected > 0 && (f.length > this.expected - this.filled || this.restartsPacket(f))) this.reset();
    while (at < f.length) {
      if (!this.buf) {
        const rest = f.length - at;
        if (rest < HEADER_SIZE) {
          // A header split over fragments: keep the bytes until the header is complete.
          if (!plausibleResponse(f, at)) {
            this.dropFragment(rest);
            break;
          }
          this.buf = new Uint8Array(HEADER_SIZE);
          this.buf.set(f.subarray(at), 0);
          this.filled = rest;
          this.expected = 0;
          break;
        }
        const expected = headerLength(f, at) + HEADER_SIZE;
        if (!plausibleResponse(f, at) || expected > this.maxPacket) {
          this.dropFragment(rest);
          break;
        }
        if (rest >= expected) {
          out.push(f.slice(at, at + expected));
          this.stats.packets++;
          at += expected;
          continue;
        }
        this.buf = new Uint8Array(expected);
        this.buf.set(f.subarray(at), 0);
        this.filled = rest;
        this.expected = expected;
        break;
      }
      // Continuing a partial packet.
      if (this.expected === 0) {
        // Completing a split header.
        const need = HEADER_SIZE - this.filled;
        const take = Math.min(need, f.length - at);
        this.buf.set(f.subarray(at, at + take), this.filled);
        this.filled += take;
        at += take;
        if (this.filled < HEADER_SIZE) break;
        const expected = headerLength(this.buf) + HEADER_SIZE;
        if (expected > this.maxPacket) {
          this.reset();
          this.dropFragment(f.length - at);
          break;
        }
        const grown = new Uint8Array(expected);
        grown.set(this.buf, 0);
        this.buf = grown;
        this.expected = expected;
        if (this.filled === expected) out.push(this.finish());
        continue;
      }
      const take = Math.min(this.expected - this.filled, f.length - at);
      this.buf.set(f.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
      if (this.filled === this.expected) out.push(this.finish());
    }
    return out;
  }
}
