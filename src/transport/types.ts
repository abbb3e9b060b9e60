/**
 * The transport contracts. Kept tiny on purpose: a transport moves whole SMP packets (header +
 * payload; one packet may hold several SMP messages back to back). Framing (serial lines, BLE
 * fragments) is the transport's business, below this interface.
 *
 * Semantics:
 * - `send` resolves when the packet is handed to the link; it rejects with a TransportError
 *   (`TRANSPORT_CLOSED`, `TRANSPORT_TOO_LARGE`, `TRANSPORT_IO`).
 * - Packets received are delivered to the receiver in arrival order, synchronously from the
 *   link's event loop turn. Undecodable link data is dropped by the transport (and counted).
 * - After `close()` (or when the link goes away) no packet is delivered and the close listeners
 *   run once, with the error that ended the link if there was one.
 */

/** The client side: one link to one device. */
export interface SmpTransport {
  /** Largest SMP packet (header included) one `send` may carry on this link. */
  readonly mtu: number;
  /** Short name of the link kind: `udp`, `serial`, `loopback`, ... */
  readonly kind: string;
  /**
   * Bytes of the device's MCUmgr buffer that the link's framing takes per packet (console framing:
   * 2 length + 2 CRC = 4; UDP and raw links: 0, the default). A packet must fit
   * `buf_size - frameOverhead` as well as `mtu`.
   */
  readonly frameOverhead?: number;
  readonly closed: boolean;
  /**
   * Requests a sender may keep in flight when the link itself paces them to the device (the
   * dashboard bridge: it forwards at most the device's `buf_count − 1` at a time and queues the
   * rest). Undefined on links that do not: there the device's `buf_count − 1` bounds the window.
   */
  readonly pacedWindow?: number;
  send(packet: Uint8Array): Promise<void>;
  /** Sets the one receiver of incoming packets (replacing any earlier one). */
  setReceiver(receiver: (packet: Uint8Array) => void): void;
  /** Registers a listener for the end of the link. Returns a function that removes it. */
  onClose(listener: (error?: Error) => void): () => void;
  close(): Promise<void>;
}

/** Where a request came from, and how to answer it. */
export interface SmpPeer {
  /** Human-readable peer address, e.g. `udp:127.0.0.1:50123` or `serial:/dev/pts/3`. */
  readonly address: string;
  /** The transport kind the request arrived on (`udp`, `serial`, ...). */
  readonly transport: string;
  /** Largest response packet this peer's link carries. */
  readonly mtu: number;
  reply(packet: Uint8Array): Promise<void>;
}

/** What the server offers a transport besides taking packets. */
export interface ServerReceiveContext {
  /**
   * MCUmgr buffers the transport may still fill; a packet handed over when this is 0 is dropped
   * and counted by the server. A link that models its own line buffers (serial) asks before
   * taking a frame in.
   */
  freeBuffers(): number;
  /** Reports link data that was no packet (a bad frame, an oversize datagram): counted, and logged by `serve -v`. */
  undecodable(reason: string, peer?: string, bytes?: number): void;
}

/** The device side: receives packets from any number of peers. */
export interface ServerTransport {
  readonly kind: string;
  /**
   * Starts listening; resolves when ready. Each packet comes with its peer to answer;
   * `onPacket` returns `false` when the server dropped it (no free buffer).
   */
  start(onPacket: (packet: Uint8Array, peer: SmpPeer) => unknown, context?: ServerReceiveContext): Promise<void>;
  /** A description of where it listens (`udp 127.0.0.1:1337`, `pty /dev/pts/4`). */
  describe(): string;
  close(): Promise<void>;
}
