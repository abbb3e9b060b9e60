/**
 * The device-side SMP server: transports in, the group registry, hooks and device state.
 *
 * Packet processing follows Zephyr's `smp_process_request_packet` (smp-spec.md §1.6): a packet may
 * hold several messages, each answered on its own; a truncated header ends processing without an
 * answer; a payload shorter than its header says answers rc 9; the first failing request ends the
 * packet. Each response header mirrors its request (§1.5). Requests of one transport are handled
 * one at a time in arrival order, as Zephyr's per-transport work queue does.
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
}

/** Traffic counters per transport kind, for the statistics group. */
export interface TransportCounters {
  requests: number;
  responses: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
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
  private readonly transports: ServerTransport[] = [];
  private readonly queues = new Map<string, Promise<void>>();
  private readonly bootTasks: BootTask[] = [];
  private readonly closeTasks: Array<() => Promise<void> | void> = [];
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
    await transport.start((packet, peer) => this.enqueue(packet, peer));
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
      c = { requests: 0, responses: 0, errors: 0, bytesIn: 0, bytesOut: 0, dropped: 0 };
      this.counters.set(kind, c);
    }
    return c;
  }

  private enqueue(packet: Uint8Array, peer: SmpPeer): void {
    const c = this.counterFor(peer.transport);
    c.bytesIn += packet.length;
    if (this.rebooting || this.closed) {
      c.dropped++;
      return;
    }
    const key = peer.transport;
    const prev = this.queues.get(key) ?? Promise.resolve();
    const next = prev.then(() => this.processPacket(packet, peer)).catch((e: unknown) => this.onError?.(e));
    this.queues.set(key, next);
  }

  /**
   * Processes one packet (one or more SMP messages) and sends the responses to `peer`.
   * Exposed for transports that need direct dispatch and for tests.
   */
  async processPacket(packet: Uint8Array, peer: SmpPeer): Promise<void> {
    let off = 0;
    const counters = this.counterFor(peer.transport);
    while (off < packet.length) {
      if (packet.length - off < HEADER_SIZE) {
        counters.dropped++;
        return; // invalid header: Zephyr sends nothing
      }
      const h = decodeWireHeader(packet, off);
      const start = off + HEADER_SIZE;
      if (packet.length - start < h.length) {
        counters.errors++;
        await this.send(peer, h, { rc: MgmtErr.ECORRUPT });
        return;
      }
      const payload = packet.subarray(start, start + h.length);
      off = start + h.length;
      if (h.op === Op.READ_RSP || h.op === Op.WRITE_RSP) continue; // no SMP client on this device
      counters.requests++;
      if (!hasValidOp(h) || (h.op !== Op.READ && h.op !== Op.WRITE)) {
        counters.errors++;
        await this.send(peer, h, { rc: MgmtErr.ENOTSUP });
        return;
      }
      const { body, failed } = await this.handleSingle(h, payload, peer);
      if (failed) counters.errors++;
      await this.send(peer, h, body);
      if (failed) return;
    }
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
      const rsp = await entry.fn({ body, header: h, peer, server: this });
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

  private async send(peer: SmpPeer, req: WireSmpHeader, body: Record<string, unknown>): Promise<void> {
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
    try {
      await peer.reply(out);
    } catch (e) {
      c.dropped++;
      // The transport was stopped while the request was processed: not a server failure.
      if (!(e instanceof TransportError && e.code === 'TRANSPORT_CLOSED')) this.onError?.(e);
    }
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
      await Promise.all(this.queues.values());
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.resetTimer) clearTimeout(this.resetTimer);
    await Promise.all(this.transports.map((t) => t.close()));
    await Promise.all(this.queues.values());
    for (const t of this.closeTasks) await t();
  }
}
