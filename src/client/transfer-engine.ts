/**
 * The transfer engine shared by image upload, fs upload and fs download: what decides how long
 * to wait for a chunk, how many chunks are in flight and how large they are, as TCP does for
 * segments.
 *
 * - {@link RtoEstimator}: the retransmission timeout from measured round trips (RFC 6298: smoothed
 *   RTT and its mean deviation, RTO = SRTT + max(G, 4·RTTVAR)), clamped to a floor and a ceiling
 *   (the CLI's `-t`), doubled on each timeout of the same chunk (exponential backoff) and reset by
 *   the next fresh sample. Karn's rule: a chunk sent more than once gives no sample.
 * - {@link WindowControl}: chunks in flight. On UDP it starts full (the device's announced
 *   `buf_count − 1` bounds it, as a receive window bounds TCP's); elsewhere slow start (one more per acknowledged chunk) up to
 *   the first loss, then additive increase (one more per window of acknowledged chunks) up to
 *   the device's `buf_count − 1`; multiplicative decrease (halve) on a loss or on an answer whose
 *   offset shows a gap. A loss that comes right after the window grew to W (within 2·W
 *   acknowledged chunks) says the link cannot take W; a loss after running well at W is random
 *   (a lossy network) and only halves. A window that could not take W probes W again only after a number of
 *   acknowledged chunks that doubles with every probe that loses again, so a link that cannot take
 *   W (a serial device whose line buffers overrun with two frames in flight) pays for a lost probe
 *   (after 32, then 128, 512, ... acknowledged chunks) rarely enough that the transfer stays within a few percent of one chunk in flight.
 * - {@link ChunkSizer}: data bytes per chunk (serial links only). Halves when a chunk sent alone
 *   (window 1) is lost three times in a row (frames of that size do not get through: a serial line that corrupts long
 *   frames, a device buffer smaller than it says), and doubles back after 32 chunks in a row
 *   got through.
 * - {@link runOffsetTransfer}: the send loop for uploads, where the device's offset is
 *   authoritative (every answer says where the device is): go-back-N from that offset on a gap or a
 *   timeout. Image upload and fs upload share it. They differ in what a wrong offset does on the
 *   device: img_mgmt drops the data and answers its offset (nothing else changes, so the engine
 *   carries on at once); fs_mgmt answers `err{8, 11}` with the expected offset and closes the file,
 *   and every later chunk in flight would close it again, so an fs rewind first drains what is
 *   in flight (`drain: true`) and then carries on from the offset reported last.
 * - fs download (src/client/fs-transfer.ts) uses the same estimator, window and patience but not
 *   this loop: reads are idempotent and the device picks each answer's length, so a lost request is
 *   simply asked again (selective repeat over a coverage map), never a go-back.
 *
 * Retransmission: a chunk whose answer does not come within the RTO is sent again as the same
 * request (same sequence number, {@link chunkRetryPolicy}), with the wait doubling up to the
 * ceiling; a late answer to any of its sends counts, which matters on a busy host where a timer
 * fires late, and on a serial link where a duplicate that arrives while the device is busy is lost
 * in its line buffers. Each retransmission is a loss for the window (once per loss event) and backs
 * off the RTO (once per loss event); Karn's rule keeps retransmitted chunks out of the RTT samples. Nothing is sent past
 * a chunk that is being retransmitted (it would land in a gap). A chunk fails the transfer once it
 * was sent at least `tries` times over at least `tries × ceilingMs` (the same patience as a plain
 * request with `-r` tries of `-t` seconds), so a device that stalls for a few seconds in the middle
 * of an upload is waited for instead of being given up on.
 */
import { TransportError } from '../core/errors.ts';

export interface RtoOptions {
  /** Timeout before the first sample (RFC 6298: 1 s), clamped to [floor, ceiling]. */
  initialMs?: number;
  /**
   * Lowest timeout (default 100 ms): above timer and scheduling jitter on a busy host, where 30 ms
   * gave spurious retransmissions on a 20 ms link (measured with `npm run bench -- transfer`).
   */
  floorMs?: number;
  /** Highest timeout, also after backoff (the CLI's `-t`; default 3000 ms). */
  ceilingMs?: number;
  /** Clock granularity G of RFC 6298 (default 1 ms). */
  granularityMs?: number;
}

/** RFC 6298 retransmission timeout estimator (see the module notes). */
export class RtoEstimator {
  readonly floorMs: number;
  readonly ceilingMs: number;
  private readonly granularityMs: number;
  private srttMs: number | undefined;
  private rttvarMs = 0;
  private baseMs: number;
  private backoffs = 0;
  /** Samples taken, and their sum (ms). */
  samples = 0;
  sampleSumMs = 0;

  constructor(options: RtoOptions = {}) {
    this.floorMs = Math.max(1, options.floorMs ?? 100);
    this.ceilingMs = Math.max(this.floorMs, options.ceilingMs ?? 3000);
    this.granularityMs = options.granularityMs ?? 1;
    this.baseMs = options.initialMs ?? 1000;
  }

  /** Smoothed round trip, ms (undefined before the first sample). */
  get srtt(): number | undefined {
    return this.srttMs;
  }

  get rttvar(): number {
    return this.rttvarMs;
  }

  /** The timeout to use for the next send, ms. */
  get timeoutMs(): number {
    const rto = Math.min(this.ceilingMs, Math.max(this.floorMs, this.baseMs));
    return Math.min(this.ceilingMs, rto * 2 ** this.backoffs);
  }

  /** A round trip measured on a chunk sent once (Karn's rule is the caller's). */
  sample(rttMs: number): void {
    const r = Math.max(0, rttMs);
    if (this.srttMs === undefined) {
      this.srttMs = r;
      this.rttvarMs = r / 2;
    } else {
      this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * Math.abs(this.srttMs - r);
      this.srttMs = 0.875 * this.srttMs + 0.125 * r;
    }
    this.baseMs = this.srttMs + Math.max(this.granularityMs, 4 * this.rttvarMs);
    this.backoffs = 0;
    this.samples++;
    this.sampleSumMs += r;
  }

  /** A timeout: the next send waits twice as long (up to the ceiling). */
  backoff(): void {
    if (this.timeoutMs < this.ceilingMs) this.backoffs++;
  }
}

/** Additive-increase, multiplicative-decrease window with rarer probes of a size that lost (see the module notes). */
export class WindowControl {
  private cwnd = 1;
  private ssthresh = Infinity;
  private lossAt: number | undefined;
  private probeAfter = 0;
  private acksSinceLoss = 0;
  /** Acknowledged chunks since the window reached its current size. */
  private acksAtSize = 0;
  /** Loss events (each halves the window). */
  losses = 0;
  private before: { cwnd: number; ssthresh: number; lossAt: number | undefined; probeAfter: number; acksSinceLoss: number } | undefined;

  /**
   * `probeLostSizes` (default true): a loss right after the window grew says the link cannot take
   * that size (a serial device's receive line buffers), so the size is probed again only rarely.
   * False where nothing below `max` can overrun (UDP, where `max` is the device's own announced
   * `buf_count − 1`): every loss is then taken as random and only lowers the window.
   */
  constructor(
    readonly max: number,
    private readonly probeLostSizes = true,
  ) {
    // Without probes the device's announced buffers bound the window, as a receive window bounds
    // TCP's, and the window starts full (TCP starts at 10 segments, RFC 6928; a device takes 3):
    // slow start from 1 would cost a round trip of every upload for nothing.
    if (!probeLostSizes) this.cwnd = Math.max(1, max);
  }

  /** Chunks allowed in flight now. */
  get size(): number {
    return Math.max(1, Math.min(this.max, Math.floor(this.cwnd)));
  }

  ack(): void {
    this.acksSinceLoss++;
    this.acksAtSize++;
    if (this.cwnd >= this.max) return;
    const grown = this.cwnd < this.ssthresh ? this.cwnd + 1 : this.cwnd + 1 / Math.floor(this.cwnd);
    // Probing the size that lost last waits for `probeAfter` acknowledged chunks.
    if (this.lossAt !== undefined && Math.floor(grown) >= this.lossAt && this.acksSinceLoss < this.probeAfter) return;
    const sizeBefore = this.size;
    this.cwnd = Math.min(this.max, grown);
    if (this.size !== sizeBefore) this.acksAtSize = 0;
    // A probe that carried on for a while without loss: the link takes this size now.
    if (this.lossAt !== undefined && this.size >= this.lossAt && this.acksSinceLoss > this.probeAfter + 4 * this.lossAt) {
      this.lossAt = undefined;
      this.probeAfter = 0;
    }
  }

  /** Takes back the last decrease: the loss was spurious (a late answer, not a lost chunk). */
  undo(): void {
    const b = this.before;
    if (!b) return;
    this.before = undefined;
    this.cwnd = b.cwnd;
    this.ssthresh = b.ssthresh;
    this.lossAt = b.lossAt;
    this.probeAfter = b.probeAfter;
    this.acksSinceLoss = b.acksSinceLoss;
    this.losses--;
  }

  /** A loss (timeout) or a gap: halve, and remember the size that lost. */
  loss(): void {
    this.losses++;
    this.before = { cwnd: this.cwnd, ssthresh: this.ssthresh, lossAt: this.lossAt, probeAfter: this.probeAfter, acksSinceLoss: this.acksSinceLoss };
    const at = this.size;
    if (at <= 1 && this.lossAt === undefined) {
      this.ssthresh = 1;
      return;
    }
    if (!this.probeLostSizes) {
      this.decrease(at);
      return;
    }
    // A size that lost again waits four times longer before the next probe: after a few losses a
    // probe costs under 1% of the chunks (a lost probe costs about an RTO and a window of chunks).
    if (this.acksAtSize <= 2 * at) {
      // Lost right after growing to this size: the link (the device's buffers) cannot take it.
      this.probeAfter = this.lossAt !== undefined && at >= this.lossAt ? Math.min(4096, Math.max(32, this.probeAfter * 4)) : Math.max(32, this.probeAfter);
      this.lossAt = Math.max(2, at);
    } else {
      // Lost after running well at this size: a random loss (a lossy network), plain halving.
      this.lossAt = undefined;
      this.probeAfter = 0;
    }
    this.decrease(at);
  }

  /**
   * Halves the window, rounding up (3 → 2, 2 → 1): with the few chunks a device buffers, rounding
   * down would drop a window of 3 to a single chunk in flight on every random loss (TCP likewise
   * keeps at least 2 segments, RFC 5681).
   */
  private decrease(at: number): void {
    this.acksAtSize = 0;
    this.ssthresh = Math.max(1, Math.ceil(at / 2));
    this.cwnd = this.ssthresh;
    this.acksSinceLoss = 0;
  }
}

/** Data bytes per chunk, backing off when chunks sent alone keep getting lost (see the module notes). */
export class ChunkSizer {
  private current: number;
  private lostAlone = 0;
  private okRun = 0;

  constructor(
    readonly max: number,
    readonly min: number = Math.min(max, 64),
  ) {
    this.current = max;
  }

  get size(): number {
    return this.current;
  }

  ack(): void {
    this.lostAlone = 0;
    if (this.current < this.max && ++this.okRun >= 32) {
      this.current = Math.min(this.max, this.current * 2);
      this.okRun = 0;
    }
  }

  /** A chunk was lost; `alone` when it was the only one in flight. */
  loss(alone: boolean): void {
    this.okRun = 0;
    if (!alone) return;
    if (++this.lostAlone >= 3 && this.current > this.min) {
      this.current = Math.max(this.min, Math.floor(this.current / 2));
      this.lostAlone = 0;
    }
  }
}

/** What a chunk's answer says. */
export type ChunkOutcome =
  /**
   * The device's offset after this chunk (where it wants the next byte). `held`: the device
   * ignored the data because it holds what is up to `off` already (a resumed session, an image
   * it has): the move is not counted as data it took from this transfer.
   */
  | { kind: 'offset'; off: number; held?: boolean }
  /** The device refused the chunk's offset and expects `off`; with `drain`, nothing may be sent until every chunk in flight has answered. */
  | { kind: 'rewind'; off: number; drain: boolean };

export interface OffsetTransferHandler {
  /** Data bytes of the chunk at `off` when at most `limit` data bytes are wanted (0 only at the end). */
  chunkLength(off: number, limit: number): number;
  /** Sends the chunk at `off` with these request options (timeout, tries, backoff, onRetransmit); rejects as SmpClient.request does. */
  send(off: number, len: number, request: ChunkRequestOptions): Promise<ChunkOutcome>;
}

export interface TransferTiming {
  /** Upper bound of any chunk timeout, ms (the CLI's `-t`). */
  ceilingMs: number;
  /** Sends of a chunk before it can fail (the CLI's `-r`). */
  tries: number;
  /** How long a try of the chunk at offset 0 is waited for (the device may erase a slot first); without `firstChunkRetransmitMs` it is sent again every `ceilingMs` meanwhile ({@link firstChunkRetryPolicy}). */
  firstChunkTimeoutMs: number;
  /**
   * When the chunk at offset 0 is sent again if no answer came (doubling up to `ceilingMs`, over
   * `tries × firstChunkTimeoutMs` in all), for a device that answers a repeated first chunk as the same
   * upload (img_mgmt: the same `sha` resumes it), so that one lost datagram costs about a second
   * instead of the whole erase timeout. Undefined: sent once per `firstChunkTimeoutMs`, for a
   * device where a repeat has side effects (fs_mgmt truncates the file at offset 0).
   */
  firstChunkRetransmitMs?: number;
  /** Lowest RTO (default 100 ms). */
  floorMs?: number;
}

export interface OffsetTransferOptions {
  total: number;
  /** Where the device is (the first send goes there; 0 sends the first chunk alone). */
  start: number;
  maxWindow: number;
  /** Largest data bytes per chunk. */
  maxChunk: number;
  /**
   * Back the chunk size off when chunks sent alone keep getting lost (default false): for serial
   * links, where long frames are what gets lost; on UDP a datagram's loss does not depend on its size.
   */
  adaptChunkSize?: boolean;
  /**
   * Whether a loss right after the window grew means the link cannot take that window (default
   * true: serial line buffers); false on UDP, where the window never exceeds the device's announced
   * buffers and a lost datagram says nothing about them (see {@link WindowControl}).
   */
  probeLostWindows?: boolean;
  timing: TransferTiming;
  signal?: AbortSignal;
  onProgress?: (off: number, window: number) => void;
}

export interface TransferStats {
  chunks: number;
  retransmissions: number;
  /** Go-backs after a gap or a timeout. */
  rewinds: number;
  /** Window at the end, and the largest reached. */
  window: number;
  maxWindowReached: number;
  chunkSize: number;
  /** Smoothed RTT at the end, ms. */
  srttMs: number | undefined;
  /**
   * Mean of the RTT samples (chunks answered to their only send), ms: with the windowed rate it
   * gives the mean chunks in flight (Little's law: rate × RTT / chunk), which tells a window left
   * empty from a slow round trip.
   */
  meanRttMs: number | undefined;
  /** Device offset at the end. */
  off: number;
  /**
   * Data bytes the device took from this transfer: every forward move of its offset but those
   * answered `held` (exact whatever the answers lost, as a later answer acknowledges the chunks
   * before it; bytes taken again after the device lost its session count again).
   */
  bytesTaken: number;
}

export function isTimeout(e: unknown): e is TransportError {
  return e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT';
}

/** How one chunk request waits and retransmits (given to SmpClient.request). */
export interface ChunkRequestOptions {
  timeoutMs: number;
  tries: number;
  backoffMaxMs?: number;
  onRetransmit?: (attempt: number) => void;
  /** Aborted when the transfer is, or when the engine gives up on this request (a go-back made it stale). */
  signal?: AbortSignal;
}

/**
 * The retransmission policy of a chunk: first wait `rtoMs`, doubling after each send up to the
 * ceiling, and enough sends that the chunk waits at least `tries × ceiling` in all (the patience
 * of a plain request with `-r` tries of `-t`, or `patienceMs` when longer) and is sent at least
 * `tries` times. The same request (same sequence number) is sent again, so a late answer to an
 * earlier send still counts.
 */
export function chunkRetryPolicy(rtoMs: number, timing: Pick<TransferTiming, 'tries' | 'ceilingMs'>, patienceMs?: number): ChunkRequestOptions {
  const ceiling = Math.max(rtoMs, timing.ceilingMs);
  const patience = Math.max(patienceMs ?? 0, timing.tries * ceiling);
  let waited = 0;
  let sends = 0;
  for (let w = rtoMs; waited < patience || sends < timing.tries; w = Math.min(ceiling, w * 2)) {
    waited += w;
    sends++;
  }
  return { timeoutMs: rtoMs, tries: sends, backoffMaxMs: ceiling };
}

/**
 * The retransmission policy of the first chunk: the device may take long to answer it (it erases
 * the slot first), so it is waited for `firstChunkTimeoutMs` per try, but sent again every
 * `ceilingMs` meanwhile: a first chunk that was lost (a serial device whose line buffers were
 * full while it was busy with another transport) costs one ceiling, not the whole erase allowance.
 * A copy that arrives while the device erases is harmless: it resumes the session with the same
 * `sha` (or, on fs, truncates the file again before any later chunk is sent).
 */
export function firstChunkRetryPolicy(timing: Pick<TransferTiming, 'tries' | 'ceilingMs' | 'firstChunkTimeoutMs'>): ChunkRequestOptions {
  const every = Math.max(1, Math.min(timing.ceilingMs, timing.firstChunkTimeoutMs));
  return { timeoutMs: every, tries: Math.max(timing.tries, Math.ceil((timing.tries * timing.firstChunkTimeoutMs) / every)) };
}

/**
 * The upload send loop (go-back-N on the device's offset; see the module notes). Resolves when
 * the device's offset reaches `total`; rejects with the chunk's error once its patience is out,
 * or with the first error that is not a timeout.
 */
export async function runOffsetTransfer(handler: OffsetTransferHandler, options: OffsetTransferOptions): Promise<TransferStats> {
  const { total, timing, signal } = options;
  const rto = new RtoEstimator({ ceilingMs: timing.ceilingMs, ...(timing.floorMs !== undefined ? { floorMs: timing.floorMs } : {}) });
  const window = new WindowControl(Math.max(1, options.maxWindow), options.probeLostWindows ?? true);
  const sizer = new ChunkSizer(options.maxChunk, options.adaptChunkSize ? undefined : options.maxChunk);
  const now = (): number => performance.now();
  const stats: TransferStats = { chunks: 0, retransmissions: 0, rewinds: 0, window: 1, maxWindowReached: 1, chunkSize: sizer.size, srttMs: undefined, meanRttMs: undefined, off: options.start, bytesTaken: 0 };

  let acked = options.start;
  let next = options.start;
  /** Bumped by every go-back, so that the answers to chunks sent before it do not move `next` again. */
  let epoch = 0;
  /** Bumped by every window decrease: losses of chunks sent before it belong to the same event. */
  let lossEpoch = 0;
  let drainTo: number | undefined;
  let failure: unknown;
  let firstWithoutProgress = 0;
  const inflight = new Set<Promise<void>>();
  /** Chunks whose request is still live (the client may be retransmitting them), by offset. */
  const live = new Map<number, number>();
  /** Requests to abort at the next go-back (they became stale) or when the transfer is aborted. */
  const cancels = new Map<AbortController, { epoch: number; end: number }>();
  /**
   * Chunks that hold a place in the window: sent and neither answered nor given up on. Counted
   * from `cancels` rather than from `inflight`, because a chunk that a later answer acknowledged
   * (its own answer was lost) or that a go-back made stale is aborted at once but its promise
   * settles a few ticks later: counting it would leave a place in the window empty for a round trip.
   */
  const occupied = (): number => {
    let n = 0;
    for (const c of cancels.keys()) if (!c.signal.aborted) n++;
    return n;
  };
  const onAbort = (): void => {
    for (const c of cancels.keys()) c.abort(signal?.reason);
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  const lossEvent = (sentInLossEpoch: number): void => {
    if (sentInLossEpoch !== lossEpoch) return;
    lossEpoch++;
    window.loss();
  };

  const rewind = (to: number, sentInEpoch: number, sentInLossEpoch: number, drain: boolean, lost: boolean): void => {
    if (sentInEpoch !== epoch) return;
    epoch++;
    stats.rewinds++;
    if (lost) lossEvent(sentInLossEpoch);
    acked = to;
    if (drain) drainTo = to;
    else next = to;
    // The chunks sent before the go-back are stale: stop retransmitting them (they would only
    // block the window, and on a serial link collide with the chunks sent again).
    for (const [c, e] of cancels) if (e.epoch < epoch) c.abort();
  };

  const progress = (): void => {
    stats.window = window.size;
    stats.maxWindowReached = Math.max(stats.maxWindowReached, window.size);
    options.onProgress?.(Math.min(acked, total), window.size);
  };

  const send = async (off: number, len: number, first: boolean): Promise<void> => {
    const sentInEpoch = epoch;
    const sentInLossEpoch = lossEpoch;
    const alone = occupied() === 0;
    const t0 = now();
    let retransmitted = false;
    let retransmittedAt = 0;
    let lossCounted = false;
    stats.chunks++;
    const policy: ChunkRequestOptions = !first
      ? chunkRetryPolicy(rto.timeoutMs, timing)
      : timing.firstChunkRetransmitMs !== undefined
        ? chunkRetryPolicy(Math.min(timing.firstChunkRetransmitMs, timing.ceilingMs), timing, timing.tries * timing.firstChunkTimeoutMs)
        : firstChunkRetryPolicy(timing);
    policy.onRetransmit = (attempt) => {
      retransmitted = true;
      if (first) {
        // The first chunk's wait includes the device's erase: no loss for the window or the
        // chunk size, no backoff of the RTO.
        stats.retransmissions++;
        return;
      }
      retransmittedAt = now();
      stats.retransmissions++;
      sizer.loss(alone);
      lossCounted = sentInLossEpoch === lossEpoch;
      // The RTO backs off once per loss event (the chunks of a window that time out together
      // are one event: four of them backed it off 16-fold) and again on each further timeout of
      // the same chunk.
      if (lossCounted || attempt > 2) rto.backoff();
      lossEvent(sentInLossEpoch);
      progress();
    };
    const cancel = new AbortController();
    policy.signal = cancel.signal;
    cancels.set(cancel, { epoch: sentInEpoch, end: off + len });
    live.set(off, len);
    let outcome: ChunkOutcome;
    try {
      if (signal?.aborted) cancel.abort(signal.reason);
      outcome = await handler.send(off, len, policy);
    } catch (e) {
      // A chunk abandoned by a go-back, or that a later answer acknowledged (its own answers were
      // lost), is no failure.
      const stale = cancel.signal.aborted && !signal?.aborted;
      if (!stale && !(isTimeout(e) && off + len <= acked && off !== 0)) failure ??= e;
      return;
    } finally {
      live.delete(off);
      cancels.delete(cancel);
    }
    // The device took everything already: a late answer (to a copy sent before it got there)
    // neither goes back nor moves anything.
    if (acked >= total) return;
    if (outcome.kind === 'rewind') {
      rewind(outcome.off, sentInEpoch, sentInLossEpoch, outcome.drain, true);
      if (outcome.off > acked) acked = outcome.off;
    } else if (outcome.off === 0 && off !== 0) {
      rewind(0, sentInEpoch, sentInLossEpoch, false, false); // the device lost the session (reset, another client): start over
    } else if (outcome.off >= off + len) {
      if (outcome.off > acked && !outcome.held) stats.bytesTaken += outcome.off - acked;
      if (!retransmitted && off !== 0) rto.sample(now() - t0);
      // An answer right after the retransmission answers the first send: the timeout was
      // spurious (a late answer, a busy host), so the window decrease is taken back.
      else if (lossCounted && rto.srtt !== undefined && now() - retransmittedAt < rto.srtt / 2) window.undo();
      window.ack();
      sizer.ack();
      if (outcome.off > acked) {
        acked = outcome.off;
        // Chunks before it whose answers were lost are acknowledged by this one: stop waiting.
        for (const [c, e] of cancels) if (e.end <= acked) c.abort();
      }
    } else if (outcome.off < off) {
      // The device is behind this chunk: one before it was lost (a gap).
      if (outcome.off < next) rewind(outcome.off, sentInEpoch, sentInLossEpoch, false, true);
    } else {
      // The device took part of the chunk, or resumed inside it: carry on from its offset.
      if (outcome.off > acked && !outcome.held) stats.bytesTaken += outcome.off - acked;
      rewind(outcome.off, sentInEpoch, sentInLossEpoch, false, false);
    }
    progress();
  };

  const track = (p: Promise<void>): void => {
    const q = p.finally(() => inflight.delete(q));
    inflight.add(q);
  };

  while (failure === undefined && acked < total) {
    if (signal?.aborted) break;
    if (drainTo !== undefined) {
      if (inflight.size > 0) {
        await Promise.race(inflight);
        continue;
      }
      next = drainTo;
      drainTo = undefined;
    }
    if (next === 0) {
      // The first chunk goes alone, with its long timeout (the device may erase a slot first).
      if (inflight.size > 0) {
        await Promise.race(inflight);
        continue;
      }
      const len = handler.chunkLength(0, sizer.size);
      await send(0, len, true);
      if (failure !== undefined) break;
      if (next === 0 && drainTo === undefined && acked > 0) next = acked;
      else if (next === 0 && acked === 0 && ++firstWithoutProgress > timing.tries) {
        throw new TransportError('TRANSPORT_IO', `the device answered the first chunk ${firstWithoutProgress} times without taking it`);
      }
      continue;
    }
    while (occupied() < window.size && next < total) {
      // Never below the device's offset; never past a chunk whose request is still live (it is
      // being retransmitted: what follows would land in a gap).
      if (next < acked && drainTo === undefined) next = acked;
      if (live.has(next) || next >= total) break;
      const off = next;
      const len = handler.chunkLength(off, sizer.size);
      if (len <= 0) break;
      next = off + len;
      track(send(off, len, false));
    }
    if (inflight.size === 0) {
      // Everything answered but the device is behind: carry on from its offset.
      if (next >= total && acked < total) next = acked;
      if (failure !== undefined) break;
      continue;
    }
    await Promise.race(inflight);
  }
  signal?.removeEventListener('abort', onAbort);
  if (signal?.aborted) {
    await Promise.allSettled(inflight);
    throw new TransportError('TRANSPORT_ABORTED', 'transfer aborted', { cause: signal.reason });
  }
  await Promise.allSettled(inflight);
  if (failure !== undefined && acked < total) throw failure;
  stats.off = acked;
  stats.chunkSize = sizer.size;
  stats.srttMs = rto.srtt;
  stats.meanRttMs = rto.samples > 0 ? rto.sampleSumMs / rto.samples : undefined;
  stats.window = window.size;
  return stats;
}
