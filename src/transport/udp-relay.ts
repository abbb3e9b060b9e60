/**
 * A UDP relay that sits between a client and a device and impairs the link: added latency,
 * dropped, duplicated and reordered datagrams, in each direction. For tests and benchmarks (a lossy or slow
 * link on loopback), and for trying a tool against a bad network. Node-only.
 */
import dgram from 'node:dgram';

export interface LinkImpairment {
  /** One-way delay added to each datagram, ms. */
  delayMs?: number;
  /** Probability (0-1) that a datagram is dropped. */
  drop?: number;
  /** Probability (0-1) that a datagram is delivered twice. */
  duplicate?: number;
  /** Decides drops deterministically instead: return true to drop the n-th datagram (0-based). */
  dropWhen?: (n: number, packet: Uint8Array) => boolean;
  /** Probability (0-1) that a datagram is held back by `reorderMs` more, so that later ones overtake it. */
  reorder?: number;
  /** Extra delay of a reordered datagram, ms (default 5). */
  reorderMs?: number;
  /**
   * Decides each datagram's fate deterministically, ahead of every other setting (which then do
   * not apply to it): one entry per copy to deliver, `'now'` or a promise after which that copy is
   * sent (copies released by the same promise go out in the order they were scheduled); an empty
   * list drops it. For tests that reorder and duplicate on events instead of on timers.
   */
  schedule?: (n: number, packet: Uint8Array) => ReadonlyArray<'now' | PromiseLike<unknown>> | undefined;
}

export interface UdpRelayOptions {
  /** The device's address. */
  target: { host: string; port: number };
  /** Where the relay listens (default 127.0.0.1, an ephemeral port). */
  listen?: { host: string; port: number };
  toDevice?: LinkImpairment;
  toClient?: LinkImpairment;
  /** Random source for drops and duplicates (default Math.random). */
  random?: () => number;
}

/** Where a round trip through the relay goes, summed over datagrams (ms). */
export interface RelayTimingStats {
  /** Delayed datagrams sent, and how late their timers fired in all (beyond `delayMs` + any reorder delay). */
  delayed: number;
  lateMs: number;
  /**
   * Answers matched to the request forwarded last with the same SMP sequence number, and the
   * time from forwarding the request to receiving the answer in all: the device's turnaround
   * (its processing, its host process being scheduled, the loopback hops).
   */
  answered: number;
  deviceMs: number;
}

export interface UdpRelay {
  readonly port: number;
  readonly host: string;
  readonly stats: { toDevice: number; toClient: number; dropped: number; duplicated: number; reordered: number; timing: RelayTimingStats };
  close(): Promise<void>;
}

export async function startUdpRelay(options: UdpRelayOptions): Promise<UdpRelay> {
  const random = options.random ?? Math.random;
  const front = dgram.createSocket('udp4');
  const back = dgram.createSocket('udp4');
  const stats = { toDevice: 0, toClient: 0, dropped: 0, duplicated: 0, reordered: 0, timing: { delayed: 0, lateMs: 0, answered: 0, deviceMs: 0 } };
  /** When the last request with each SMP sequence number was forwarded to the device. */
  const forwardedAt = new Map<number, number>();
  const seqOf = (p: Uint8Array): number | undefined => (p.length >= 8 ? p[6] : undefined);
  let client: { port: number; address: string } | undefined;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let counts = { toDevice: 0, toClient: 0 };

  let closed = false;
  const forward = (imp: LinkImpairment | undefined, n: number, msg: Buffer, send: () => void): void => {
    const plan = imp?.schedule?.(n, msg);
    if (plan) {
      if (plan.length === 0) stats.dropped++;
      if (plan.length > 1) stats.duplicated += plan.length - 1;
      for (const when of plan) {
        if (when === 'now') send();
        else {
          stats.reordered++;
          void Promise.resolve(when).then(() => !closed && send(), () => {});
        }
      }
      return;
    }
    if (imp?.dropWhen ? imp.dropWhen(n, msg) : (imp?.drop ?? 0) > 0 && random() < imp!.drop!) {
      stats.dropped++;
      return;
    }
    const copies = (imp?.duplicate ?? 0) > 0 && random() < imp!.duplicate! ? 2 : 1;
    if (copies === 2) stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const late = (imp?.reorder ?? 0) > 0 && random() < imp!.reorder! ? (imp!.reorderMs ?? 5) : 0;
      if (late) stats.reordered++;
      const delay = (imp?.delayMs ?? 0) + late;
      if (delay > 0) {
        const due = performance.now() + delay;
        const t = setTimeout(() => {
          timers.delete(t);
          stats.timing.delayed++;
          stats.timing.lateMs += Math.max(0, performance.now() - due);
          send();
        }, delay);
        timers.add(t);
      } else send();
    }
  };

  front.on('message', (msg, rinfo) => {
    client = { port: rinfo.port, address: rinfo.address };
    stats.toDevice++;
    forward(options.toDevice, counts.toDevice++, msg, () => {
      const seq = seqOf(msg);
      if (seq !== undefined) forwardedAt.set(seq, performance.now());
      back.send(msg, options.target.port, options.target.host);
    });
  });
  back.on('message', (msg) => {
    const c = client;
    if (!c) return;
    stats.toClient++;
    const seq = seqOf(msg);
    const at = seq === undefined ? undefined : forwardedAt.get(seq);
    if (at !== undefined) {
      forwardedAt.delete(seq!);
      stats.timing.answered++;
      stats.timing.deviceMs += performance.now() - at;
    }
    forward(options.toClient, counts.toClient++, msg, () => front.send(msg, c.port, c.address));
  });
  front.on('error', () => {});
  back.on('error', () => {});
  const listen = options.listen ?? { host: '127.0.0.1', port: 0 };
  await new Promise<void>((res) => front.bind(listen.port, listen.host, () => res()));
  await new Promise<void>((res) => back.bind(0, '127.0.0.1', () => res()));
  return {
    port: front.address().port,
    host: listen.host,
    stats,
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      counts = { toDevice: 0, toClient: 0 };
      await Promise.all([new Promise<void>((r) => front.close(() => r())), new Promise<void>((r) => back.close(() => r()))]);
    },
  };
}
