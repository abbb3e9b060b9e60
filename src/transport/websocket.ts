/**
 * The page side of the dashboard's WebSocket bridge (src/dashboard/bridge.ts): an
 * {@link SmpTransport} whose packets travel over a WebSocket to `mcumgr dashboard`, which relays
 * them to a device it opened on the host (UDP, serial, BLE, a connection profile). Portable:
 * the browser's `WebSocket`, or any constructor of the same shape (the `ws` package in Node).
 *
 * The bridge protocol, one WebSocket per device link:
 *
 * ```
 * GET /bridge?token=TOKEN&connection=CONNECTION      (Origin must be the dashboard's own)
 *   server → page  text   {"type":"open","kind":"udp","mtu":1500,"frameOverhead":0,"description":"udp 127.0.0.1:1337",
 *                          "pacing":{"window":3,"inFlight":24},"batch":true}
 *                                                         pacing: present when the bridge paces the device
 *   page ⇄ server  binary one SMP packet per message, both ways, unchanged; with "batch": one or
 *                         more whole SMP messages back to back (each exactly 8 bytes plus the
 *                         length its header gives), which the receiver splits into packets
 *   server → page  text   {"type":"error","code":"TRANSPORT_IO","message":"..."}   the device could not be opened
 *   server → page  text   {"type":"closed","message":"..."}                         the device link ended
 * ```
 *
 * Batching: each side gathers the whole SMP messages it sends during one task of its event loop
 * (the answers the device gave while the bridge was busy; the chunks an upload engine sends on
 * the answers that one WebSocket message brought) into one WebSocket message. A browser spends
 * about 0.1 ms of its main thread per WebSocket message sent, besides the per-message work of
 * its network process and of the bridge, so fewer messages leave more of a 2-core machine to the
 * transfer. A packet that is not exactly one whole message is never batched: it goes alone, after
 * what was gathered before it. The bridge also holds the device's answers up to 2 ms while its
 * pacing queue is deep (src/dashboard/server.ts), and sends each at once while it is shallow.
 *
 * A wrong token or a foreign origin is refused before the upgrade (HTTP 401 / 403), so the
 * socket never opens; {@link openBridgeTransport} then fails with `TRANSPORT_IO`.
 */
import { McuMgrError, TransportError, type ErrorCode } from '../core/errors.ts';
import type { SmpTransport } from './types.ts';

/** The part of the WebSocket API the transport uses (browser WebSocket, `ws` package). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** What the bridge says once the device is open. */
export interface BridgeOpenMessage {
  type: 'open';
  /** The host-side link kind (`udp`, `serial`, `ble`). */
  kind: string;
  mtu: number;
  frameOverhead: number;
  description: string;
  /**
   * Present when the bridge paces the device (src/dashboard/pacer.ts): it keeps at most `window`
   * requests (the device's `buf_count − 1`) outstanding at the device and queues the rest; the page
   * may keep `inFlight` requests in flight.
   */
  pacing?: { window: number; inFlight: number };
  /** Binary messages may carry several whole SMP messages back to back, both ways. */
  batch?: boolean;
}

export type BridgeServerMessage = BridgeOpenMessage | { type: 'error'; code: string; message: string } | { type: 'closed'; message: string };

export interface BridgeTransportOptions {
  /** Base URL of the bridge: `ws://127.0.0.1:8080` (the path `/bridge` is added). */
  url: string;
  token: string;
  /** The connection to open on the host, e.g. `udp:127.0.0.1:1337`, `serial:dev=/dev/ttyACM0`. */
  connection: string;
  /** Default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Time to wait for the device to open (default 15 s). */
  openTimeoutMs?: number;
}

/** The bridge transport: an SmpTransport plus what the bridge said about the host-side link. */
export interface BridgeTransport extends SmpTransport {
  /** The host-side link kind and where it goes. */
  readonly link: BridgeOpenMessage;
}

const OPEN = 1;

/** Largest batched WebSocket message: the bridge's limit for one message (one SMP packet of 64 KiB). */
export const BRIDGE_BATCH_MAX_BYTES = 0x10000;

/** Whether `packet` is exactly one whole SMP message: its 8-byte header and the payload length the header gives. */
export function isWholeSmpMessage(packet: Uint8Array): boolean {
  return packet.length >= 8 && packet.length === 8 + ((packet[2]! << 8) | packet[3]!);
}

/**
 * The packets in one binary bridge message: whole SMP messages back to back, each as its own
 * packet; when the bytes are not exactly such a sequence (a device's malformed answer, relayed
 * alone), the message as one packet.
 */
export function splitBridgeMessage(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (bytes.length - off < 8) return [bytes];
    const end = off + 8 + ((bytes[off + 2]! << 8) | bytes[off + 3]!);
    if (end > bytes.length) return [bytes];
    out.push(bytes.subarray(off, end));
    off = end;
  }
  return out.length > 0 ? out : [bytes];
}

/** Runs `fn` in a later task of the event loop, after the current one and its microtasks. */
export type LaterTask = (fn: () => void) => void;

/**
 * The host's cheapest "next task": setImmediate in Node, a MessageChannel in browsers (no timer
 * clamping), setTimeout(0) elsewhere. `close` releases the channel.
 */
export function laterTask(): { later: LaterTask; close(): void } {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown; MessageChannel?: typeof MessageChannel };
  if (typeof g.setImmediate === 'function') {
    const immediate = g.setImmediate;
    return { later: (fn) => void immediate(fn), close() {} };
  }
  if (typeof g.MessageChannel === 'function') {
    const channel = new g.MessageChannel();
    const queue: Array<() => void> = [];
    channel.port1.onmessage = () => queue.shift()?.();
    return {
      later: (fn) => {
        queue.push(fn);
        channel.port2.postMessage(null);
      },
      close() {
        channel.port1.close();
        channel.port2.close();
      },
    };
  }
  return { later: (fn) => void setTimeout(fn, 0), close() {} };
}

/**
 * Gathers the whole SMP messages sent during one task into one message for `write`; a packet
 * that is not one whole message goes alone (after what was gathered), and a batch never exceeds
 * {@link BRIDGE_BATCH_MAX_BYTES}.
 */
export class PacketBatcher {
  private pending: Uint8Array[] = [];
  private bytes = 0;
  private scheduled = false;
  /** Messages written, and packets in them (for the bridge's log). */
  readonly stats = { messages: 0, packets: 0 };

  constructor(
    private readonly write: (message: Uint8Array) => void,
    private readonly later: LaterTask,
    private readonly maxBytes = BRIDGE_BATCH_MAX_BYTES,
  ) {}

  push(packet: Uint8Array): void {
    if (!isWholeSmpMessage(packet) || packet.length > this.maxBytes) {
      this.flush();
      this.emit(packet, 1);
      return;
    }
    if (this.bytes + packet.length > this.maxBytes) this.flush();
    this.pending.push(packet);
    this.bytes += packet.length;
    if (!this.scheduled) {
      this.scheduled = true;
      this.later(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Writes what was gathered now. */
  flush(): void {
    const n = this.pending.length;
    if (n === 0) return;
    let message: Uint8Array;
    if (n === 1) message = this.pending[0]!;
    else {
      message = new Uint8Array(this.bytes);
      let at = 0;
      for (const p of this.pending) {
        message.set(p, at);
        at += p.length;
      }
    }
    this.pending = [];
    this.bytes = 0;
    this.emit(message, n);
  }

  /** Drops what was gathered (the link closed). */
  discard(): void {
    this.pending = [];
    this.bytes = 0;
  }

  private emit(message: Uint8Array, packets: number): void {
    this.stats.messages++;
    this.stats.packets += packets;
    this.write(message);
  }
}

/** The URL of the bridge endpoint for a connection. */
export function bridgeUrl(base: string, token: string, connection: string): string {
  const u = new URL('/bridge', base);
  u.searchParams.set('token', token);
  u.searchParams.set('connection', connection);
  return u.toString();
}

/** Parses a text message of the bridge; undefined for anything that is not one. */
export function parseBridgeMessage(text: string): BridgeServerMessage | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const m = v as Record<string, unknown>;
  if (m['type'] === 'open' && typeof m['mtu'] === 'number' && typeof m['kind'] === 'string') {
    const open: BridgeOpenMessage = { type: 'open', kind: m['kind'], mtu: m['mtu'], frameOverhead: typeof m['frameOverhead'] === 'number' ? m['frameOverhead'] : 0, description: String(m['description'] ?? m['kind']) };
    const pacing = m['pacing'];
    if (typeof pacing === 'object' && pacing !== null) {
      const { window, inFlight } = pacing as Record<string, unknown>;
      if (typeof window === 'number' && typeof inFlight === 'number' && Number.isInteger(window) && Number.isInteger(inFlight) && window >= 1 && inFlight >= window) open.pacing = { window, inFlight };
    }
    if (m['batch'] === true) open.batch = true;
    return open;
  }
  if (m['type'] === 'error') return { type: 'error', code: String(m['code'] ?? 'TRANSPORT_IO'), message: String(m['message'] ?? 'the bridge could not open the device') };
  if (m['type'] === 'closed') return { type: 'closed', message: String(m['message'] ?? 'the device link closed') };
  return undefined;
}

const KNOWN_CODES: ReadonlySet<string> = new Set(['TRANSPORT_TIMEOUT', 'TRANSPORT_CLOSED', 'TRANSPORT_TOO_LARGE', 'TRANSPORT_IO', 'TRANSPORT_ABORTED', 'USAGE', 'UNSUPPORTED', 'NOT_FOUND']);

function bridgeError(code: string, message: string): McuMgrError {
  if (code.startsWith('TRANSPORT_') && KNOWN_CODES.has(code)) return new TransportError(code as 'TRANSPORT_IO', message);
  return new McuMgrError((KNOWN_CODES.has(code) ? code : 'TRANSPORT_IO') as ErrorCode, message);
}

function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/**
 * Opens a device through the bridge. Resolves once the bridge reports the device open; rejects
 * with the bridge's error (`TRANSPORT_IO`, `USAGE` for a connection string it refuses), or
 * `TRANSPORT_IO` when the socket is refused (wrong token, foreign origin, no dashboard).
 */
export function openBridgeTransport(options: BridgeTransportOptions): Promise<BridgeTransport> {
  const Ctor = options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!Ctor) return Promise.reject(new McuMgrError('UNSUPPORTED', 'no WebSocket implementation here: pass options.WebSocket'));
  const ws = new Ctor(bridgeUrl(options.url, options.token, options.connection));
  ws.binaryType = 'arraybuffer';
  let receiver: ((packet: Uint8Array) => void) | undefined;
  let batchIn = false;
  let closed = false;
  let closeError: Error | undefined;
  const closeListeners = new Set<(error?: Error) => void>();
  const tasks = laterTask();
  const batcher = new PacketBatcher((message) => {
    if (!closed && ws.readyState === OPEN) ws.send(message);
  }, tasks.later);

  const finish = (error?: Error): void => {
    if (closed) return;
    closed = true;
    batcher.discard();
    tasks.close();
    closeError = error;
    for (const l of closeListeners) l(error);
  };

  return new Promise<BridgeTransport>((resolve, reject) => {
    let opened = false;
    const timer = setTimeout(() => {
      if (opened) return;
      reject(new TransportError('TRANSPORT_TIMEOUT', `the bridge did not open ${options.connection} within ${Math.round((options.openTimeoutMs ?? 15000) / 1000)} s`));
      ws.close();
    }, options.openTimeoutMs ?? 15000);

    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') {
        const m = parseBridgeMessage(ev.data);
        if (!m) return;
        if (m.type === 'open' && !opened) {
          opened = true;
          clearTimeout(timer);
          resolve(makeTransport(m));
        } else if (m.type === 'error') {
          const e = bridgeError(m.code, m.message);
          if (!opened) {
            clearTimeout(timer);
            opened = true; // settled
            reject(e);
          } else finish(e);
        } else if (m.type === 'closed') {
          finish(new TransportError('TRANSPORT_CLOSED', m.message));
        }
        return;
      }
      const bytes = toBytes(ev.data);
      if (!bytes || closed || !opened) return;
      if (!batchIn) receiver?.(bytes);
      else for (const packet of splitBridgeMessage(bytes)) if (!closed) receiver?.(packet);
    };
    ws.onerror = () => {
      // The close event that follows carries what there is to say.
    };
    ws.onclose = (ev) => {
      if (!opened) {
        opened = true;
        clearTimeout(timer);
        reject(new TransportError('TRANSPORT_IO', `the dashboard bridge refused or dropped the connection (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''}); is the token in the page's address the one \`mcumgr dashboard\` printed?`));
        return;
      }
      finish(closeError ?? (ev.code === 1000 ? undefined : new TransportError('TRANSPORT_CLOSED', `the bridge closed the link (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`)));
    };
  });

  function makeTransport(link: BridgeOpenMessage): BridgeTransport {
    batchIn = link.batch === true;
    return {
      kind: `bridge/${link.kind}`,
      mtu: link.mtu,
      frameOverhead: link.frameOverhead,
      ...(link.pacing ? { pacedWindow: link.pacing.inFlight } : {}),
      link,
      get closed() {
        return closed;
      },
      send(packet: Uint8Array): Promise<void> {
        if (closed || ws.readyState !== OPEN) return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'the bridge link is closed'));
        if (packet.length > link.mtu) return Promise.reject(new TransportError('TRANSPORT_TOO_LARGE', `packet of ${packet.length} bytes exceeds the link MTU ${link.mtu}`));
        if (link.batch) batcher.push(packet);
        else ws.send(packet);
        return Promise.resolve();
      },
      setReceiver(r) {
        receiver = r;
      },
      onClose(listener) {
        closeListeners.add(listener);
        return () => closeListeners.delete(listener);
      },
      close(): Promise<void> {
        if (!closed) {
          batcher.flush();
          ws.close(1000, 'closed by the page');
          finish();
        }
        return Promise.resolve();
      },
    };
  }
}
