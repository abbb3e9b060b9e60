/**
 * The SMP client: turns `request(command, body)` into packets on a transport and matches the
 * answers.
 *
 * - Sequence numbers are 8-bit, advance by one per request, wrap, and never reuse one that is
 *   still in flight; with all 256 in flight, further requests wait for a free one.
 * - A response is matched by (seq, group, id, op = request op + 1); anything else (stale, unknown,
 *   duplicated) is ignored and counted.
 * - Each request has a timeout and an optional AbortSignal; on timeout it is sent again (same
 *   seq) up to `tries` times in all, then fails with TransportError TRANSPORT_TIMEOUT.
 * - SMP v2 by default. The client falls back to v1 when the device answers a v2 request with a
 *   v1 header or rc 13 (UNSUPPORTED_TOO_NEW), or does not answer v2 at all but answers v1.
 * - Device errors (v1 `rc`, v2 `err`) become {@link DeviceError}; responses that do not match the
 *   command's response shape become ProtocolError PROTOCOL_BAD_RESPONSE.
 */
import type { Command, CommandOp } from '../core/commands/command.ts';
import { DeviceError, ProtocolError, TransportError, UsageError, McuMgrError } from '../core/errors.ts';
import { MgmtErr } from '../core/error-codes.ts';
import { HEADER_SIZE, Op, encodeHeader, type OpCode, type SmpHeader, type SmpVersion } from '../core/header.ts';
import { encodeCbor } from '../core/cbor.ts';
import { decodeBody, deviceErrorOf, splitMessages } from '../core/message.ts';
import { SchemaError } from '../core/schema.ts';
import type { SmpTransport } from '../transport/types.ts';

export interface RequestOptions {
  /** Time to wait for each try, in milliseconds. */
  timeoutMs?: number;
  /** Total number of sends on timeout (1 = no retransmission). */
  tries?: number;
  /** Double the wait after each send, up to this many milliseconds (exponential backoff; default: every try waits `timeoutMs`). */
  backoffMaxMs?: number;
  /** Called before each retransmission (attempt 2, 3, ...): transfers adapt their window and timeout to it. */
  onRetransmit?: (attempt: number) => void;
  signal?: AbortSignal;
}

export interface SmpClientOptions extends RequestOptions {
  /** Protocol version to start with: 1 = SMP v2 (default), 0 = SMP v1. */
  version?: SmpVersion;
  /** Disable the automatic fall back from v2 to v1. */
  noFallback?: boolean;
  /** Observes every packet sent and received (for --verbose dumps). */
  onPacket?: (direction: 'tx' | 'rx', packet: Uint8Array) => void;
}

export interface RawResponse {
  header: SmpHeader;
  /** The decoded CBOR body (undefined for an empty payload). */
  body: unknown;
}

interface Pending {
  seq: number;
  group: number;
  id: number;
  op: OpCode;
  resolve(r: RawResponse): void;
  reject(e: unknown): void;
}

export interface ClientStats {
  requests: number;
  retransmissions: number;
  timeouts: number;
  /** Responses that matched no request in flight (late, duplicated, foreign). */
  ignored: number;
  /** Packets that could not be parsed. */
  malformed: number;
}

const DEFAULT_TIMEOUT_MS = 3000;
const DEFAULT_TRIES = 3;

export class SmpClient {
  readonly transport: SmpTransport;
  private readonly defaults: Required<Pick<RequestOptions, 'timeoutMs' | 'tries'>>;
  private readonly onPacket: SmpClientOptions['onPacket'];
  private readonly noFallback: boolean;
  private readonly inFlight = new Map<number, Pending>();
  private readonly seqWaiters: Array<() => void> = [];
  private nextSeq: number;
  private currentVersion: SmpVersion;
  /** True once the device has answered anything: its protocol version is then known. */
  private versionKnown = false;
  private closed = false;
  readonly stats: ClientStats = { requests: 0, retransmissions: 0, timeouts: 0, ignored: 0, malformed: 0 };

  constructor(transport: SmpTransport, options: SmpClientOptions = {}) {
    this.transport = transport;
    this.defaults = { timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, tries: options.tries ?? DEFAULT_TRIES };
    this.onPacket = options.onPacket;
    this.noFallback = options.noFallback ?? false;
    this.currentVersion = options.version ?? 1;
    this.nextSeq = Math.floor(Math.random() * 256);
    transport.setReceiver((packet) => this.receive(packet));
    // A link that ended with its own typed error (`nothing is listening on ...`) fails requests with it.
    transport.onClose((error) => this.failAll(error instanceof McuMgrError ? error : new TransportError('TRANSPORT_CLOSED', 'the link to the device closed', { cause: error })));
  }

  /** The timeout per try and the tries a request gets when it names none (`-t`, `-r`); transfers use them as their bounds. */
  get requestDefaults(): { readonly timeoutMs: number; readonly tries: number } {
    return this.defaults;
  }

  /** The SMP version requests are sent with now: 1 (v2) or 0 (v1, after a fall back). */
  get version(): SmpVersion {
    return this.currentVersion;
  }

  /** True once the device has answered anything on this client (the CLI words a timeout by it). */
  get deviceAnswered(): boolean {
    return this.versionKnown;
  }

  /** Largest SMP packet (header included) the transport carries. */
  get mtu(): number {
    return this.transport.mtu;
  }

  /**
   * Largest SMP packet (header included) for a device with MCUmgr buffers of `bufSize` bytes: the
   * link MTU, and the buffer less what the link's framing stores in it.
   */
  packetLimit(bufSize: number): number {
    return Math.min(this.transport.mtu, bufSize - (this.transport.frameOverhead ?? 0));
  }

  /**
   * Sends a command from the command table and returns its typed response. Throws DeviceError,
   * TransportError or ProtocolError.
   */
  async request<Req, Rsp>(command: Command<Req, Rsp, unknown>, body: Req, options: RequestOptions = {}): Promise<Rsp> {
    const raw = await this.requestRaw(command.group, command.id, command.op, body, options);
    const err = deviceErrorOf(raw.body);
    if (err) throw err;
    try {
      return command.response.parse(raw.body ?? {});
    } catch (e) {
      if (e instanceof SchemaError) {
        throw new ProtocolError('PROTOCOL_BAD_RESPONSE', `unexpected ${command.name} response from the device: ${e.message}`, { cause: e });
      }
      throw e;
    }
  }

  /**
   * Sends any (group, id, op) with a body and returns the header and decoded body as received,
   * device errors included (use {@link deviceErrorOf} to read them). For user-defined groups.
   */
  async requestRaw(group: number, id: number, op: CommandOp | OpCode, body: unknown, options: RequestOptions = {}): Promise<RawResponse> {
    const opCode: OpCode = op === 'read' ? Op.READ : op === 'write' ? Op.WRITE : op;
    if (opCode !== Op.READ && opCode !== Op.WRITE) throw new UsageError(`requests use op READ (0) or WRITE (2), not ${opCode}`);
    const payload = encodeCbor(body ?? {});
    if (HEADER_SIZE + payload.length > 0xffff + HEADER_SIZE) throw new UsageError('request body larger than 65535 bytes');
    if (HEADER_SIZE + payload.length > this.transport.mtu) {
      throw new TransportError('TRANSPORT_TOO_LARGE', `request of ${HEADER_SIZE + payload.length} bytes exceeds the link MTU of ${this.transport.mtu}`);
    }
    const first = await this.exchange(group, id, opCode, payload, options, this.currentVersion);
    if (first.kind === 'answer') return first.response;
    // No answer to v2 at all: an old device may drop v2 requests. Try once in v1.
    if (this.currentVersion === 1 && !this.versionKnown && !this.noFallback) {
      const second = await this.exchange(group, id, opCode, payload, { ...options, tries: 1 }, 0);
      if (second.kind === 'answer') return second.response;
      first.error.message += ', then once more in SMP v1';
    }
    throw first.error;
  }

  private async exchange(
    group: number,
    id: number,
    op: OpCode,
    payload: Uint8Array,
    options: RequestOptions,
    version: SmpVersion,
  ): Promise<{ kind: 'answer'; response: RawResponse } | { kind: 'timeout'; error: McuMgrError }> {
    const timeoutMs = options.timeoutMs ?? this.defaults.timeoutMs;
    const tries = Math.max(1, options.tries ?? this.defaults.tries);
    const signal = options.signal;
    if (signal?.aborted) throw abortError(signal);
    const seq = await this.allocateSeq(signal);
    const packet = new Uint8Array(HEADER_SIZE + payload.length);
    encodeHeader({ op, version, flags: 0, length: payload.length, group, seq, id }, packet);
    packet.set(payload, HEADER_SIZE);
    this.stats.requests++;
    try {
      const response = await new Promise<RawResponse>((resolve, reject) => {
        let attempt = 0;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const cleanup = (): void => {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.inFlight.delete(seq);
        };
        const onAbort = (): void => {
          cleanup();
          reject(abortError(signal));
        };
        const send = (): void => {
          attempt++;
          if (attempt > 1) {
            this.stats.retransmissions++;
            options.onRetransmit?.(attempt);
          }
          this.onPacket?.('tx', packet);
          this.transport.send(packet).catch((e: unknown) => {
            cleanup();
            reject(e);
          });
          const wait = options.backoffMaxMs === undefined ? timeoutMs : Math.min(Math.max(timeoutMs, options.backoffMaxMs), timeoutMs * 2 ** (attempt - 1));
          timer = setTimeout(() => {
            if (attempt < tries) send();
            else {
              cleanup();
              this.stats.timeouts++;
              const ms = (v: number): string => `${Math.round(v)} ms`;
              const each = options.backoffMaxMs === undefined ? `of ${ms(timeoutMs)}` : `from ${ms(timeoutMs)} up to ${ms(Math.max(timeoutMs, options.backoffMaxMs))}`;
              reject(new TransportError('TRANSPORT_TIMEOUT', `no response from the device after ${tries} ${tries === 1 ? 'try' : 'tries'} ${each}`));
            }
          }, wait);
        };
        this.inFlight.set(seq, {
          seq,
          group,
          id,
          op: (op + 1) as OpCode,
          resolve: (r) => {
            cleanup();
            resolve(r);
          },
          reject: (e) => {
            cleanup();
            reject(e);
          },
        });
        signal?.addEventListener('abort', onAbort, { once: true });
        send();
      });
      this.noteVersion(version, response);
      // rc 13: the device does not speak v2. Switch to v1 and send the request again.
      if (version === 1 && !this.noFallback && isRc(response.body, MgmtErr.UNSUPPORTED_TOO_NEW)) {
        this.currentVersion = 0;
        this.releaseSeq();
        return await this.exchange(group, id, op, payload, options, 0);
      }
      return { kind: 'answer', response };
    } catch (e) {
      if (e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT') return { kind: 'timeout', error: e };
      throw e;
    } finally {
      this.releaseSeq();
    }
  }

  private noteVersion(sent: SmpVersion, response: RawResponse): void {
    this.versionKnown = true;
    if (sent === 1 && response.header.version === 0 && !this.noFallback) this.currentVersion = 0;
    else if (sent === 0 && this.currentVersion === 1) this.currentVersion = 0;
  }

  private async allocateSeq(signal?: AbortSignal): Promise<number> {
    while (this.inFlight.size >= 256) {
      if (this.closed) throw new TransportError('TRANSPORT_CLOSED', 'client closed');
      await new Promise<void>((res, rej) => {
        this.seqWaiters.push(res);
        signal?.addEventListener('abort', () => rej(abortError(signal)), { once: true });
      });
    }
    for (;;) {
      const s = this.nextSeq;
      this.nextSeq = (this.nextSeq + 1) & 0xff;
      if (!this.inFlight.has(s)) {
        // Reserve it now; the real entry replaces this placeholder before the first send.
        this.inFlight.set(s, PLACEHOLDER);
        return s;
      }
    }
  }

  private releaseSeq(): void {
    this.seqWaiters.shift()?.();
  }

  private receive(packet: Uint8Array): void {
    this.onPacket?.('rx', packet);
    try {
      for (const { header, payload } of splitMessages(packet)) {
        const pending = this.inFlight.get(header.seq);
        if (!pending || pending === PLACEHOLDER || pending.group !== header.group || pending.id !== header.id || pending.op !== header.op) {
          this.stats.ignored++;
          continue;
        }
        let body: unknown;
        try {
          body = decodeBody(payload);
        } catch (e) {
          pending.reject(e);
          continue;
        }
        pending.resolve({ header, body });
      }
    } catch {
      this.stats.malformed++;
    }
  }

  private failAll(error: McuMgrError): void {
    for (const p of [...this.inFlight.values()]) if (p !== PLACEHOLDER) p.reject(error);
  }

  /** Closes the transport; requests in flight fail with TRANSPORT_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    await this.transport.close();
    this.failAll(new TransportError('TRANSPORT_CLOSED', 'client closed'));
    for (const w of this.seqWaiters.splice(0)) w();
  }
}

const PLACEHOLDER: Pending = { seq: -1, group: -1, id: -1, op: Op.READ, resolve: () => {}, reject: () => {} };

function isRc(body: unknown, rc: number): boolean {
  return typeof body === 'object' && body !== null && (body as Record<string, unknown>)['rc'] === rc;
}

function abortError(signal: AbortSignal | undefined): TransportError {
  return new TransportError('TRANSPORT_ABORTED', 'request aborted', { cause: signal?.reason });
}

export { DeviceError };
