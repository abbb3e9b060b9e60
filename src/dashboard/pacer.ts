/**
 * The bridge's pacing of one device link: the page may keep more requests in flight than the
 * device has buffers for, and the bridge holds the excess in a queue, forwarding at most `window`
 * requests (the device's `buf_count − 1`, read by the bridge at open) outstanding at the device.
 *
 * Why: the page's round trip (page → WebSocket → bridge → device and back) is two to three times
 * the bridge's own round trip to the device. With the window capped by the device's buffers, the
 * page's rate is window × chunk / the page's round trip; with the queue, the bridge keeps the
 * device's window full from its side, and the rate is window × chunk / the bridge's round trip.
 *
 * - A request is known by (op, group, id, seq) from its SMP header; its answer (op + 1, same
 *   group, id and seq) releases its place and the next queued request goes out at once.
 * - The same request again from the page (a retransmission: same seq) while the first is still
 *   queued is dropped (the queued copy goes); while it is outstanding at the device it takes the
 *   same place (it never adds to the count): it goes out once the first has been out for the
 *   bridge's retransmission timeout (RFC 6298 over the bridge's own round trips), at once if it
 *   has already. Loss and timeout handling stay the page's: the bridge sends nothing on its own.
 * - The same request again after its answer went to the page (the page's timer fired before it
 *   read the answer, on a busy host) is dropped: the answer is on its way over the WebSocket, and
 *   the device would only spend a buffer and a round trip on it. A request is the same when its
 *   bytes are (a new request reusing the sequence number differs in its body or header).
 * - A place whose answer never comes is freed after `releaseMs` (the page gave up on it, or the
 *   answer was lost and the page did not ask again), so a lost packet cannot stall the link.
 * - Anything that is not a request (shorter than a header, a response op) is forwarded at once.
 *
 * Portable: Uint8Array only, timers from the host.
 */
import { RtoEstimator } from '../client/transfer-engine.ts';

const HEADER = 8;
/** Answered requests remembered (a sequence number's worth). */
const ANSWERED_KEPT = 256;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface PacerOptions {
  /** Most requests outstanding at the device (its `buf_count − 1`, at least 1). */
  window: number;
  /** Hands a packet to the device link. */
  send(packet: Uint8Array): void;
  /** Frees a place whose answer did not come within this (default 3000 ms, the CLI's `-t`). */
  releaseMs?: number;
  /** Lowest retransmission timeout of a repeated request (default 100 ms, as the transfer engine's). */
  floorMs?: number;
}

export interface PacerStats {
  /** Requests handed to the device (repeats included). */
  forwarded: number;
  /** Most requests outstanding at the device at once. */
  maxOutstanding: number;
  /** Most requests waiting in the queue at once. */
  maxQueued: number;
  /** Repeats of a queued request dropped. */
  duplicatesDropped: number;
  /** Repeats of an outstanding request sent again in its place. */
  repeatsForwarded: number;
  /** Places freed without an answer. */
  released: number;
  /** Repeats of a request already answered (its answer on its way to the page) dropped. */
  answeredDropped: number;
  /** Answers that found the queue empty: a place at the device stayed free until the page sent more. */
  starved: number;
}

interface Outstanding {
  packet: Uint8Array;
  sentAt: number;
  /** Sent more than once: its answer gives no round-trip sample (Karn). */
  repeated: boolean;
  /** A repeat from the page waiting for the retransmission timeout. */
  repeat?: Uint8Array;
  repeatTimer?: ReturnType<typeof setTimeout>;
  releaseTimer: ReturnType<typeof setTimeout> | undefined;
}

/** The key of a request (op 0 or 2), or of the request a response (op 1 or 3) answers; undefined for anything else. */
function keyOf(packet: Uint8Array, response: boolean): string | undefined {
  if (packet.length < HEADER) return undefined;
  const op = packet[0]! & 0x07;
  const isResponse = op === 1 || op === 3;
  const isRequest = op === 0 || op === 2;
  if (response ? !isResponse : !isRequest) return undefined;
  const group = (packet[4]! << 8) | packet[5]!;
  return `${response ? op - 1 : op}/${group}/${packet[7]!}/${packet[6]!}`;
}

export class RequestPacer {
  readonly window: number;
  readonly stats: PacerStats = { forwarded: 0, maxOutstanding: 0, maxQueued: 0, duplicatesDropped: 0, repeatsForwarded: 0, released: 0, answeredDropped: 0, starved: 0 };
  private readonly queue: Array<{ key: string; packet: Uint8Array }> = [];
  private readonly queued = new Set<string>();
  private readonly outstanding = new Map<string, Outstanding>();
  /** Requests answered lately, by key: their bytes and when (at most {@link ANSWERED_KEPT} of them, none older than `releaseMs`). */
  private readonly answered = new Map<string, { packet: Uint8Array; at: number }>();
  private readonly rto: RtoEstimator;
  private readonly releaseMs: number;
  private closed = false;

  constructor(private readonly options: PacerOptions) {
    this.window = Math.max(1, Math.floor(options.window));
    this.releaseMs = options.releaseMs ?? 3000;
    this.rto = new RtoEstimator({ floorMs: options.floorMs ?? 100, ceilingMs: this.releaseMs, initialMs: 1000 });
  }

  /** Requests outstanding at the device now. */
  get inFlight(): number {
    return this.outstanding.size;
  }

  /** Requests waiting in the queue now. */
  get waiting(): number {
    return this.queue.length;
  }

  /** A packet from the page. */
  fromPage(packet: Uint8Array): void {
    if (this.closed) return;
    const key = keyOf(packet, false);
    if (key === undefined) {
      this.forward(packet);
      return;
    }
    if (this.queued.has(key)) {
      this.stats.duplicatesDropped++;
      return;
    }
    const out = this.outstanding.get(key);
    if (out) {
      this.repeat(key, out, packet);
      return;
    }
    const done = this.answered.get(key);
    if (done) {
      this.answered.delete(key);
      if (Date.now() - done.at < this.releaseMs && sameBytes(done.packet, packet)) {
        this.answered.set(key, done);
        this.stats.answeredDropped++;
        return;
      }
    }
    this.queue.push({ key, packet });
    this.queued.add(key);
    this.stats.maxQueued = Math.max(this.stats.maxQueued, this.queue.length);
    this.pump();
  }

  /** A packet from the device (forward it to the page after this). */
  fromDevice(packet: Uint8Array): void {
    const key = keyOf(packet, true);
    if (key === undefined) return;
    const out = this.outstanding.get(key);
    if (!out) return; // late (its place was freed) or not ours
    if (!out.repeated) this.rto.sample(Date.now() - out.sentAt);
    this.settle(key, out);
    this.answered.delete(key);
    this.answered.set(key, { packet: out.packet, at: Date.now() });
    if (this.answered.size > ANSWERED_KEPT) this.answered.delete(this.answered.keys().next().value!);
    if (this.queue.length === 0) this.stats.starved++;
    this.pump();
  }

  /** Stops: timers cleared, the queue dropped. */
  close(): void {
    this.closed = true;
    for (const [key, out] of this.outstanding) this.settle(key, out);
    this.queue.length = 0;
    this.queued.clear();
    this.answered.clear();
  }

  private forward(packet: Uint8Array): void {
    this.stats.forwarded++;
    this.options.send(packet);
  }

  private pump(): void {
    while (!this.closed && this.outstanding.size < this.window && this.queue.length > 0) {
      const { key, packet } = this.queue.shift()!;
      this.queued.delete(key);
      const out: Outstanding = { packet, sentAt: Date.now(), repeated: false, releaseTimer: undefined };
      this.armRelease(key, out);
      this.outstanding.set(key, out);
      this.stats.maxOutstanding = Math.max(this.stats.maxOutstanding, this.outstanding.size);
      this.forward(packet);
    }
  }

  /** The page sent an outstanding request again: it goes in the same place, once the first has had the bridge's timeout. */
  private repeat(key: string, out: Outstanding, packet: Uint8Array): void {
    if (out.repeat) {
      this.stats.duplicatesDropped++;
      return;
    }
    const send = (): void => {
      out.repeat = undefined;
      out.repeatTimer = undefined;
      if (this.closed || this.outstanding.get(key) !== out) return;
      out.sentAt = Date.now();
      out.repeated = true;
      this.stats.repeatsForwarded++;
      // A fresh patience for the place: the page still wants the answer.
      this.armRelease(key, out);
      this.forward(packet);
    };
    const wait = out.sentAt + this.rto.timeoutMs - Date.now();
    if (wait <= 0) {
      send();
      return;
    }
    out.repeat = packet;
    out.repeatTimer = setTimeout(send, wait);
  }

  /** (Re)starts the place's release timer: freed, unanswered, after `releaseMs`. */
  private armRelease(key: string, out: Outstanding): void {
    clearTimeout(out.releaseTimer);
    out.releaseTimer = setTimeout(() => {
      if (this.outstanding.get(key) !== out) return;
      this.stats.released++;
      this.settle(key, out);
      this.pump();
    }, this.releaseMs);
  }

  private settle(key: string, out: Outstanding): void {
    clearTimeout(out.releaseTimer);
    if (out.repeatTimer) clearTimeout(out.repeatTimer);
    this.outstanding.delete(key);
  }
}
