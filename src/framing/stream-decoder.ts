/**
 * What the two serial framings' decoders share (console.ts and raw.ts): chunks of a byte stream
 * in, whole SMP packets out, a packet limit, drop counters, and a reset for an idle or reopened
 * line. The result never depends on how the stream is cut into chunks.
 */
import { UsageError } from '../core/errors.ts';

export abstract class SmpStreamDecoder<Stats extends { packets: number }> {
  /** Drop and delivery counters; they only grow (a reset keeps them). */
  abstract readonly stats: Stats;

  /** The largest packet accepted, checked against the framing's own `limit` (`maxPacketLength` option). */
  protected readonly maxPacketLength: number;

  constructor(maxPacketLength: number | undefined, limit: { min: number; max: number }) {
    const max = maxPacketLength ?? limit.max;
    if (!Number.isInteger(max) || max < limit.min || max > limit.max) throw new UsageError(`maxPacketLength must be an integer ${limit.min}-${limit.max}, got ${max}`);
    this.maxPacketLength = max;
  }

  /** True while a packet has started but not completed. */
  abstract get pending(): boolean;

  /** Forgets a partial packet (input timeout, reopened port). Counters stay. */
  abstract reset(): void;

  /** Feeds a chunk of the stream; returns the packets it completed, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    const packets: Uint8Array[] = [];
    this.consume(chunk, packets);
    return packets;
  }

  /** Reads all of `chunk`, appending each packet it completes to `packets`. */
  protected abstract consume(chunk: Uint8Array, packets: Uint8Array[]): void;
}
