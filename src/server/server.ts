/**
 * The device-side SMP server: transports in, the group registry, hooks and device state.
 *
 * Packet processing follows Zephyr's `smp_process_request_packet` (smp-spec.md §1.6): a packet may
 * hold several messages, each answered on its own; a truncated header ends processing without an
 * answer; a payload shorter than its header says answers rc 9; the first failing request ends the
 * packet. Each response header mirrors its request (§1.5).
 *
 * One management queue serves every transport, as Zephyr's single SMP work queue does
 * (smp.c: every transport's `smp_rx_req` puts its net_buf on one `k_fifo` drained by one work
 * item): one request at a time, in arrival order, so handlers of different transports never
 * interleave on the shared upload and file sessions. Buffers are bounded like Zephyr's
 * `pkt_pool` (CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT, allocated with K_NO_WAIT, a packet dropped
 * when none is free; read in smp.c and smp_udp.c): each transport holds at most `bufCount`
 * packets (waiting, being processed, or with their answer still being sent) and a packet beyond
 * that is dropped and counted. Zephyr's pool is shared by all transports; here each transport
 * has its own `bufCount`, so a flood on one link cannot take the buffers of another.
 *
 * The server never throws out of packet handling: malformed input is dropped or answered with an
 * error, and a handler bug answers rc 1 (EUNKNOWN) and is reported through `onError`.
 */
import { encodeCbor } from '../core/cbor.ts';
import { MgmtErr } from '../core/error-codes.ts';
import { HEADER_SIZE, Op, decodeWireHeader, encodeHeader, hasValidOp, type SmpHeader, type WireSmpHeader } from '../core/header.ts';
import { ProtocolError, TransportError } from '../core/errors.ts';
import { SchemaError, isLenient, type ObjectSchema } from '../core/schema.ts';
import { decodeCbor } from '../core/cbor.ts';
import type { ServerTransport, SmpPeer } from '../transport/types.ts';
import { MgmtError } from './errors.ts';
import { HookBus } from './hooks.ts';
import { GroupRegistry, type MgmtGroup, type RegisteredHandler } from './registry.ts';

/** What `os info` and the emulator report about the device (smp-spec.md §3.1, 0/7). */
export interface DeviceIdentity {
  kernelName: string;
  nodeName: string;
  kernelRelease: string;
  kernelVersion: string;
  buildDateTime: string | undefined;
  machine: string;
  processor: string;
  hardwarePlatform: string;
  operatingSystem: string;
}

export const DEFAULT_IDENTITY: DeviceIdentity = {
  kernelName: 'Zephyr',
  nodeName: 'mcumgr-emulator',
  kernelRelease: 'v4.3.0-mcumgr-ts',
  kernelVersion: '4.3.0',
  buildDateTime: undefined,
  machine: 'posix',
  processor: 'node',
  hardwarePlatform: 'native_sim',
  operatingSystem: 'Zephyr',
};

export interface SmpServerOptions {
  /** Directory holding everything the device keeps (slots, settings, files, ...). */
  dataDir: string;
  /** MCUmgr buffer size reported by `params` and the largest response (default 2048, Zephyr's with UDP). */
  bufSize?: number;
  /** MCUmgr buffer count reported by `params` (default 4). */
  bufCount?: number;
  /** Answer SMP v1 requests (CONFIG_MCUMGR_SMP_SUPPORT_ORIGINAL_PROTOCOL, default true). */
  supportV1?: boolean;
  /** Encode responses with indefinite-length maps as Zephyr does (default true) or definite. */
  indefiniteCbor?: boolean;
  /** Include `rsn` reason texts in SMP errors (CONFIG_MCUMGR_SMP_VERBOSE_ERR_RESPONSE, default true). */
  verboseErrors?: boolean;
  /** Delay between a reset response and the reset (CONFIG_MCUMGR_GRP_OS_RESET_MS, default 250). */
  resetDelayMs?: number;
  /** How long the emulated device stays unreachable while it reboots (default 100 ms). */
  bootTimeMs?: number;
  identity?: Partial<DeviceIdentity>;
  /** Called for internal failures (handler bugs); the request is answered with rc 1. */
  onError?: (error: unknown) => void;
  /** Called for every request answered, packet dropped and frame that could not be decoded (`serve -v`). */
  onEvent?: (event: ServerEvent) => void;
  /** How long {@link SmpServer.close} waits for the request being processed before closing the stores anyway (default 700 ms). */
  closeGraceMs?: number;
}

/** What the server reports through `onEvent`. */
export type ServerEvent =
  | {
      type: 'request';
      transport: string;
      peer: string;
      group: number;
      id: number;
      op: number;
      seq: number;
      /** 0, the SMP rc, or the group error's rc (then `errGroup` is set). */
      rc: number;
      errGroup?: number;
      /** Processing time, from taking the packet off the queue to handing the answer to the transport. */
      ms: number;
    }
  | { type: 'drop'; transport: string; peer: string; reason: string; bytes: number }
  | { type: 'undecodable'; transport: string; peer: string; reason: string; bytes: number };

/** Traffic counters per transport kind, for the statistics group. */
export interface TransportCounters {
  requests: number;
  responses: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  /** Packets received and never processed (buffers full, device resetting or closing) and answers that could not be sent. */
  dropped: number;
  /** Link data that was no SMP packet: frames the transport could not decode, truncated headers. */
  undecodable: number;
}

/** A packet waiting in the management queue. */
interface QueuedPacket {
  packet: Uint8Array;
  peer: SmpPeer;
  /** Already run by {@link SmpServer.letOthersRun} while a long handler of another transport waited. */
  taken?: boolean;
}

type BootTask = (reason: 'power-on' | 'reset') => Promise<void> | void;

export class SmpServer {
  readonly registry = new GroupRegistry();
  readonly hooks = new HookBus();
  readonly dataDir: string;
  readonly bufSize: number;
  readonly bufCount: number;
  readonly identity: DeviceIdentity;
  readonly counters = new Map<string, TransportCounters>();
  /** Time the device (re)booted, for uptime. */
  bootedAt = Date.now();
  /** Boot count since the data directory was created is kept by groups that need it. */
  readonly startedAt = Date.now();
  private readonly supportV1: boolean;
  private readonly indefinite: boolean;
  private readonly verboseErrors: boolean;
  private readonly resetDelayMs: number;
  private readonly bootTimeMs: number;
  private readonly onError: ((e: unknown) => void) | undefined;
  private readonly onEvent: ((e: ServerEvent) => void) | undefined;
  private readonly closeGraceMs: number;
  private readonly transports: ServerTransport[] = [];
  /** The management queue, first at `queueHead` (a ring would save nothing measurable here). */
  private queue: QueuedPacket[] = [];
  private queueHead = 0;
  /** Buffers each transport holds: packets waiting, being processed, or whose answer is being sent. */
  private readonly held = new Map<string, number>();
  /** A long handler is letting other transports' requests run ({@link letOthersRun}). */
  private yielding = false;
  /** The pump that works through the queue, while it runs. */
  private pumping: Promise<void> | undefined;
  /** Aborted when the server closes: long handlers stop early (handler context `signal`). */
  private readonly closing = new AbortController();
  private readonly bootTasks: BootTask[] = [];
  private readonly closeTasks: Array<() => Promise<void> | void> = [];
  private readonly yieldListeners = new Set<() => void>();
  private rebooting = false;
  private resetTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(options: SmpServerOptions) {
    this.dataDir = options.dataDir;
    this.bufSize = options.bufSize ?? 2048;
    this.bufCount = options.bufCount ?? 4;
    this.supportV1 = options.supportV1 ?? true;
    this.indefinite = options.indefiniteCbor ?? true;
    this.verboseErrors = options.verboseErrors ?? true;
    this.resetDelayMs = options.resetDelayMs ?? 250;
    this.bootTimeMs = options.bootTimeMs ?? 100;
    this.identity = { ...DEFAULT_IDENTITY, ...options.identity };
    this.onError = options.onError;
    this.onEvent = options.onEvent;
    this.closeGraceMs = options.closeGraceMs ?? 700;
  }

  /** Registers a group (Zephyr's mgmt_register_group). */
  registerGroup(group: MgmtGroup): void {
    this.registry.registerGroup(group);
  }

  /** Work to run at power-on and after every reset (the image group's boot sequence, settings load). */
  onBoot(task: BootTask): void {
    this.bootTasks.push(task);
  }

  /** Work to run when the server closes (flush files, stop timers). */
  onClose(task: () => Promise<void> | void): void {
    this.closeTasks.push(task);
  }

  /** Runs the power-on boot tasks. Call once after registering groups, before listening. */
  async boot(): Promise<void> {
    this.bootedAt = Date.now();
    for (const t of this.bootTasks) await t('power-on');
  }

  /**
   * Starts a transport; its packets are dispatched to the registry. A transport stopped with
   * {@link unlisten} may be started again. Once the server is closed, a transport whose start
   * finishes is closed at once.
   */
  async listen(transport: ServerTransport): Promise<void> {
    if (this.transports.includes(transport)) return;
    await transport.start((packet, peer) => this.enqueue(packet, peer), {
      freeBuffers: () => this.freeBuffers(transport.kind),
      undecodable: (reason, peer, bytes) => this.undecodable(transport.kind, peer ?? transport.kind, reason, bytes ?? 0),
    });
    if (this.closed) {
      await transport.close();
      return;
    }
    this.transports.push(transport);
  }

  /** The transports listening now, in the order they started. */
  get listeningTransports(): readonly ServerTransport[] {
    return this.transports;
  }

  /**
   * Stops one transport (closes it) while the server goes on serving the others, as Zephyr's
   * smp_udp_close() does for its sockets. Requests of that transport being processed finish;
   * their answers are dropped (counted in `dropped`), never sent elsewhere. Returns false when
   * the transport was not listening.
   */
  async unlisten(transport: ServerTransport): Promise<boolean> {
    const at = this.transports.indexOf(transport);
    if (at < 0) return false;
    this.transports.splice(at, 1);
    await transport.close();
    return true;
  }

  counterFor(kind: string): TransportCounters {
    let c = this.counters.get(kind);
    if (!c) {
      c = { requests: 0, responses: 0, errors: 0, bytesIn: 0, bytesOut: 0, dropped: 0, undecodable: 0 };
      this.counters.set(kind, c);
    }
    return c;
  }

  /** Buffers a transport may still fill before its packets are dropped. */
  freeBuffers(transport: string): number {
    return this.rebooting || this.closed ? 0 : Math.max(0, this.bufCount - (this.held.get(transport) ?? 0));
  }

  /** Packets in the management queue (waiting, not yet being processed). */
  get queueLength(): number {
    return this.queue.length - this.queueHead;
  }

  /** Counts and reports link data a transport (or the packet parser) could not make sense of. */
  private undecodable(transport: string, peer: string, reason: string, bytes: number): void {
    this.counterFor(transport).undecodable++;
    this.emit({ type: 'undecodable', transport, peer, reason, bytes });
  }

  /** Counts a dropped packet; the reason is built only for an event listener (a flood drops thousands a second). */
  private drop(peer: SmpPeer, reason: string | (() => string), bytes: number): void {
    this.counterFor(peer.transport).dropped++;
    if (this.onEvent) this.emit({ type: 'drop', transport: peer.transport, peer: peer.address, reason: typeof reason === 'string' ? reason : reason(), bytes });
  }

  private emit(event: ServerEvent): void {
    if (!this.onEvent) return;
    try {
      this.onEvent(event);
    } catch (e) {
      this.onError?.(e);
    }
  }

  /**
   * Takes a packet from a transport: queued when the transport has a free buffer, else dropped
   * and counted. Returns whether it was queued.
   */
  enqueue(packet: Uint8Array, peer: SmpPeer): boolean {
    const c = this.counterFor(peer.transport);
    c.bytesIn += packet.length;
    if (this.closed || this.rebooting) {
      this.drop(peer, this.closed ? 'server closing' : 'device resetting', packet.length);
      return false;
    }
    const held = this.held.get(peer.transport) ?? 0;
    if (held >= this.bufCount) {
      this.drop(peer, () => `buffers full (${this.bufCount} held)`, packet.length);
      return false;
    }
    this.held.set(peer.transport, held + 1);
    this.queue.push({ packet, peer });
    // Started after the transport's callback returns: packets that came in the same chunk are
    // all queued first, and the transport never sees its own callback re-entered.
    if (!this.pumping) this.pumping = Promise.resolve().then(() => this.pump());
    return true;
  }

  private release(transport: string): void {
    const n = (this.held.get(transport) ?? 1) - 1;
    if (n <= 0) this.held.delete(transport);
    else this.held.set(transport, n);
  }

  /** Works through the queue, one packet at a time, until it is empty. */
  private async pump(): Promise<void> {
    try {
      while (this.queueHead < this.queue.length && !this.closed) {
        const item = this.queue[this.queueHead]!;
        this.queue[this.queueHead++] = undefined as unknown as QueuedPacket;
        if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.queueHead);
          this.queueHead = 0;
        }
        if (!item.taken) await this.run(item);
      }
    } finally {
      this.pumping = undefined;
      if (this.queueHead < this.queue.length && !this.closed) this.pumping = Promise.resolve().then(() => this.pump());
    }
  }

  /** Processes one queued packet; its buffer is freed once the answer is handed over. */
  private async run(item: QueuedPacket): Promise<void> {
    let sent: Promise<void>;
    try {
      sent = (await this.processQueued(item.packet, item.peer)).sent;
    } catch (e) {
      this.onError?.(e);
      sent = Promise.resolve();
    }
    // Zephyr frees the response net_buf after the transport sent it; the queue goes on meanwhile.
    const transport = item.peer.transport;
    void sent.finally(() => this.release(transport));
  }

  /**
   * Called by a handler that runs long (a hash of megabytes) at points where it is safe to pause:
   * the requests of other transports that are waiting now run, one at a time in arrival order,
   * before the handler goes on. A transport's own requests keep their order; nothing nests (a
   * request run here cannot let others run in turn). Handlers of shared state must not call it
   * while they hold that state in a form another request could see half done.
   */
  async letOthersRun(transport: string): Promise<void> {
    if (this.yielding || this.closed) return;
    this.yielding = true;
    try {
      for (const l of [...this.yieldListeners]) {
        try {
          l();
        } catch (e) {
          this.onError?.(e);
        }
      }
      const end = this.queue.length;
      for (let i = this.queueHead; i < Math.min(end, this.queue.length) && !this.closed; i++) {
        const item = this.queue[i];
        if (!item || item.taken || item.peer.transport === transport) continue;
        item.taken = true;
        await this.run(item);
      }
    } finally {
      this.yielding = false;
    }
  }

  /**
   * Calls `listener` each time a long handler lets other transports' requests run, before the
   * waiting ones are taken: a transport that holds input while the device is busy (the serial
   * line buffers) hands it over then. Returns a function that removes the listener.
   */
  onYield(listener: () => void): () => void {
    this.yieldListeners.add(listener);
    return () => this.yieldListeners.delete(listener);
  }

  /** Drops every packet still waiting (reset, close), counting each. */
  private dropWaiting(reason: string): void {
    while (this.queueHead < this.queue.length) {
      const item = this.queue[this.queueHead++]!;
      this.release(item.peer.transport);
      this.drop(item.peer, reason, item.packet.length);
    }
    this.queue = [];
    this.queueHead = 0;
  }

  /**
   * Processes one packet (one or more SMP messages) and sends the responses to `peer`, bypassing
   * the management queue. Exposed for transports that need direct dispatch and for tests.
   */
  async processPacket(packet: Uint8Array, peer: SmpPeer): Promise<void> {
    await (await this.processQueued(packet, peer)).sent;
  }

  /**
   * Processes one packet; resolves once every answer is handed to the transport, with `sent`, a
   * promise that settles when the transport has sent them (never rejects).
   */
  private async processQueued(packet: Uint8Array, peer: SmpPeer): Promise<{ sent: Promise<void> }> {
    let off = 0;
    const counters = this.counterFor(peer.transport);
    const replies: Array<Promise<void>> = [];
    const settled = (): { sent: Promise<void> } => ({ sent: replies.length === 0 ? Promise.resolve() : replies.length === 1 ? replies[0]! : Promise.all(replies).then(() => undefined) });
    while (off < packet.length) {
      if (packet.length - off < HEADER_SIZE) {
        // invalid header: Zephyr sends nothing
        this.undecodable(peer.transport, peer.address, off === 0 ? `truncated header (${packet.length} bytes)` : `${packet.length - off} bytes after the last message`, packet.length - off);
        return settled();
      }
      const started = performance.now();
      const h = decodeWireHeader(packet, off);
      const start = off + HEADER_SIZE;
      if (packet.length - start < h.length) {
        counters.errors++;
        replies.push(this.send(peer, h, { rc: MgmtErr.ECORRUPT }, started));
        return settled();
      }
      const payload = packet.subarray(start, start + h.length);
      off = start + h.length;
      if (h.op === Op.READ_RSP || h.op === Op.WRITE_RSP) continue; // no SMP client on this device
      counters.requests++;
      if (!hasValidOp(h) || (h.op !== Op.READ && h.op !== Op.WRITE)) {
        counters.errors++;
        replies.push(this.send(peer, h, { rc: MgmtErr.ENOTSUP }, started));
        return settled();
      }
      const { body, failed } = await this.handleSingle(h, payload, peer);
      if (failed) counters.errors++;
      replies.push(this.send(peer, h, body, started));
      if (failed) return settled();
    }
    return settled();
  }

  private async handleSingle(h: SmpHeader, payload: Uint8Array, peer: SmpPeer): Promise<{ body: Record<string, unknown>; failed: boolean }> {
    const fail = (rc: number, rsn?: string): { body: Record<string, unknown>; failed: boolean } => ({
      body: this.verboseErrors && rsn ? { rc, rsn } : { rc },
      failed: true,
    });
    if (h.version === 0 && !this.supportV1) return fail(MgmtErr.UNSUPPORTED_TOO_OLD);
    if (h.version > 1) return fail(MgmtErr.UNSUPPORTED_TOO_NEW);
    const handler = this.registry.findHandler(h.group, h.id);
    const entry: RegisteredHandler | undefined = h.op === Op.READ ? handler?.read : handler?.write;
    if (!entry) return fail(MgmtErr.ENOTSUP);

    let result: { body: Record<string, unknown>; failed: boolean };
    try {
      // A hook that throws is a bug in the application: answered like a handler bug (rc 1).
      const denied = await this.hooks.notify('cmd_recv', { group: h.group, id: h.id, op: h.op, peer: peer.address });
      if (denied) return this.errorBody(h, denied.rc, 'group' in denied ? denied.group : undefined, undefined, {});
      const body = this.decodeRequest(entry, payload);
      const rsp = await entry.fn({ body, header: h, peer, server: this, signal: this.closing.signal, letOthersRun: () => this.letOthersRun(peer.transport) });
      result = { body: (rsp ?? {}) as Record<string, unknown>, failed: false };
    } catch (e) {
      if (e instanceof MgmtError) result = this.errorBody(h, e.rc, e.group, e.rsn, e.extra);
      else if (e instanceof SchemaError || e instanceof ProtocolError) result = fail(MgmtErr.EINVAL, this.verboseErrors ? e.message : undefined);
      else {
        this.onError?.(e);
        result = fail(MgmtErr.EUNKNOWN);
      }
    }
    const err = result.body['err'] as { group?: number; rc?: number } | undefined;
    this.hooks
      .notify('cmd_done', {
        group: h.group,
        id: h.id,
        rc: typeof result.body['rc'] === 'number' ? (result.body['rc'] as number) : (err?.rc ?? 0),
        ...(err?.group !== undefined ? { errGroup: err.group } : {}),
      })
      .catch((e: unknown) => this.onError?.(e));
    return result;
  }

  private decodeRequest(entry: RegisteredHandler, payload: Uint8Array): unknown {
    const schema = entry.command ? (entry.command.decode ?? entry.command.request) : undefined;
    if (payload.length === 0) {
      // Zephyr: a zero-length payload fails any handler that decodes arguments (rc 3), except
      // those that ignore their decode errors (reset); handlers without a schema get undefined.
      if (!schema) return undefined;
      if (isLenient(schema) && schema.ignoreErrors) return schema.parse(undefined);
      const fields = (schema as Partial<ObjectSchema<Record<string, never>>>).fields;
      if (Object.keys(fields ?? {}).length === 0) return {};
      throw MgmtError.rc(MgmtErr.EINVAL, 'empty request payload');
    }
    const body = decodeCbor(payload, { maxDepth: 16, rejectDuplicateKeys: true });
    return schema ? schema.parse(body) : body;
  }

  private errorBody(h: SmpHeader, rc: number, group: number | undefined, rsn: string | undefined, extra: Readonly<Record<string, unknown>>): { body: Record<string, unknown>; failed: boolean } {
    if (group === undefined) return { body: this.verboseErrors && rsn ? { rc, rsn } : { rc }, failed: true };
    if (h.version === 0) return { body: { rc: this.registry.translateV1(group, rc) }, failed: true };
    // v2 group error: a normal response carrying err (and any extra fields), handler "succeeded".
    return { body: { ...extra, err: { group, rc } }, failed: false };
  }

  /**
   * Encodes and hands one answer to the transport (synchronously); the promise settles when the
   * transport has sent it and never rejects: a failed send is counted as a drop.
   */
  private send(peer: SmpPeer, req: WireSmpHeader, body: Record<string, unknown>, started: number): Promise<void> {
    let payload = encodeCbor(body, { indefinite: this.indefinite });
    const limit = Math.min(peer.mtu, this.bufSize);
    if (HEADER_SIZE + payload.length > limit) payload = encodeCbor({ rc: MgmtErr.EMSGSIZE }, { indefinite: this.indefinite });
    const out = new Uint8Array(HEADER_SIZE + payload.length);
    encodeHeader(
      {
        op: req.op === Op.READ ? Op.READ_RSP : Op.WRITE_RSP,
        version: Math.min(req.version, 1),
        flags: 0,
        length: payload.length,
        group: req.group,
        seq: req.seq,
        id: req.id,
      },
      out,
    );
    out.set(payload, HEADER_SIZE);
    const c = this.counterFor(peer.transport);
    c.responses++;
    c.bytesOut += out.length;
    if (this.onEvent) {
      const err = body['err'] as { group?: number; rc?: number } | undefined;
      const rc = typeof body['rc'] === 'number' ? body['rc'] : (err?.rc ?? 0);
      this.emit({
        type: 'request',
        transport: peer.transport,
        peer: peer.address,
        group: req.group,
        id: req.id,
        op: req.op,
        seq: req.seq,
        rc,
        ...(err?.group !== undefined ? { errGroup: err.group } : {}),
        ms: performance.now() - started,
      });
    }
    let sending: Promise<void>;
    try {
      sending = peer.reply(out);
    } catch (e) {
      sending = Promise.reject(e);
    }
    return sending.catch((e: unknown) => {
      c.dropped++;
      // The transport was stopped while the request was processed: not a server failure.
      if (!(e instanceof TransportError && e.code === 'TRANSPORT_CLOSED')) this.onError?.(e);
      this.emit({ type: 'drop', transport: peer.transport, peer: peer.address, reason: `answer not sent: ${e instanceof Error ? e.message : String(e)}`, bytes: out.length });
    });
  }

  /**
   * Resets the device after `resetDelayMs` (the reset response goes out first): it stops
   * answering, runs the `reset` hook and the boot tasks (image swap, settings reload), and comes
   * back after `bootTimeMs`.
   */
  scheduleReset(bootMode?: number): void {
    if (this.resetTimer || this.closed) return;
    this.resetTimer = setTimeout(() => {
      this.resetTimer = undefined;
      void this.reset(bootMode);
    }, this.resetDelayMs);
  }

  /** Resets now (see {@link scheduleReset}). Resolves when the device is answering again. */
  async reset(bootMode?: number): Promise<void> {
    if (this.closed) return;
    this.rebooting = true;
    try {
      // Zephyr reboots with whatever its buffers hold: the request being processed finishes,
      // the packets waiting are lost.
      this.dropWaiting('device resetting');
      await this.pumping;
      await this.hooks.notify('reset', { bootMode });
      await new Promise((r) => setTimeout(r, this.bootTimeMs));
      this.bootedAt = Date.now();
      for (const t of this.bootTasks) await t('reset');
    } catch (e) {
      this.onError?.(e);
    } finally {
      this.rebooting = false;
    }
  }

  /** Milliseconds since the last (re)boot. */
  uptimeMs(): number {
    return Date.now() - this.bootedAt;
  }

  /**
   * Stops the server: transports close, packets still waiting are dropped (counted), long
   * handlers are told to stop (their `signal` aborts), the request being processed gets up to
   * `closeGraceMs` to finish, then every close task runs (files synced, stores closed) as at a
   * reset. Resolves when the stores are closed.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.resetTimer) clearTimeout(this.resetTimer);
    this.dropWaiting('server closing');
    this.closing.abort();
    const current = this.pumping;
    const closingTransports = Promise.allSettled(this.transports.map((t) => t.close()));
    if (current) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([current, new Promise<void>((r) => (timer = setTimeout(r, this.closeGraceMs)))]);
      clearTimeout(timer);
    }
    await closingTransports;
    for (const t of this.closeTasks) {
      try {
        await t();
      } catch (e) {
        this.onError?.(e);
      }
    }
  }
}
