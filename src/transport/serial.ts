/**
 * The client side of SMP over a serial port (UART, USB CDC-ACM, a pseudo-terminal), through the
 * `serialport` package. Two framings:
 *
 * - `console` (default, smp-spec.md §4.1): base64 lines with `06 09` / `04 14` markers, lines of
 *   at most 127 bytes by default (what Zephyr's UART and shell transports take in). Lines that are
 *   not SMP (logs, shell output) are skipped and can be observed through `onText`.
 * - `raw` (§4.2, Zephyr `CONFIG_MCUMGR_TRANSPORT_RAW_UART`): bare SMP packets.
 *
 * Frames are written back to back, without the 20 ms sleep between lines that makes the Go tool
 * crawl (peers.md §6). Packets are bounded by `mtu` (default 256 = Zephyr's
 * `CONFIG_MCUMGR_TRANSPORT_UART_MTU`; a default device's net_buf of 384 bytes holds at most a
 * 380-byte SMP packet with the 4 framing bytes, so raise `mtu` only as far as the device's
 * `buf_size` minus 4 allows).
 *
 * When the port disappears (the device resets and its USB CDC-ACM port re-enumerates), the
 * transport reopens it within a bounded time; sends wait meanwhile, and the client's own
 * retransmissions recover anything lost on the way.
 */
import { TransportError, UsageError } from '../core/errors.ts';
import { CONSOLE_FRAME_OVERHEAD, ConsoleDecoder, consoleFrameSize, DEFAULT_LINE_LENGTH, encodeConsoleFrame, MAX_CONSOLE_PACKET } from '../framing/console.ts';
import type { ConsoleDecoderStats } from '../framing/console.ts';
import { encodeRawPacket, MAX_RAW_PACKET, RawPacketDecoder } from '../framing/raw.ts';
import type { RawDecoderStats } from '../framing/raw.ts';
import { HEADER_SIZE } from '../core/header.ts';
import { DEFAULT_REOPEN, SerialLink } from './serial-link.ts';
import type { ReopenPolicy } from './serial-link.ts';
import type { SmpTransport } from './types.ts';

export const DEFAULT_SERIAL_BAUD = 115200;
/** Zephyr's `CONFIG_MCUMGR_TRANSPORT_UART_MTU` (and `..._SHELL_MTU`). */
export const DEFAULT_SERIAL_MTU = 256;
/** Zephyr's raw-UART input timeout (`..._RAW_UART_INPUT_TIMEOUT_TIME_MS`). */
export const DEFAULT_RAW_INPUT_TIMEOUT_MS = 3000;

export type SerialFraming = 'console' | 'raw';

/** What each drop counter of the console and raw decoders means, as `-v` logs name it. */
export const DECODER_DROP_LABELS: Readonly<Record<string, string>> = {
  badCrc: 'bad CRC',
  badBase64: 'bad base64',
  badLength: 'bad length',
  lineTooLong: 'line too long',
  orphanContinuation: 'continuation without a start',
  interrupted: 'interrupted by a new frame',
  badHeader: 'bad header',
  skippedBytes: 'bytes skipped',
  abandoned: 'partial packets abandoned',
};

/** The decoder's drop counters that are not zero, as `bad CRC 2, orphan continuation 1`. */
export function describeDecoderDrops(decoder: Readonly<Record<string, number>>): string {
  return Object.entries(DECODER_DROP_LABELS)
    .filter(([k]) => (decoder[k] ?? 0) > 0)
    .map(([k, label]) => `${label} ${decoder[k]}`)
    .join(', ');
}

/** What a serial connection string says. */
export interface SerialConnection {
  path: string;
  baudRate: number;
  mtu: number;
  /** Only when the connstring sets `linelength`. */
  lineLength?: number;
  framing: SerialFraming;
}

function positiveInteger(key: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`invalid serial connstring: ${key} must be an integer ${min}-${max}, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * Parses a Go mcumgr serial connection string: `dev=PATH,baud=N,mtu=N`, or the legacy form where a
 * token without `=` is the device (`/dev/ttyACM0`, `COM3,baud=115200`). Go's keys are `dev`,
 * `baud` and `mtu`; this project adds `linelength=N` (console line length, marker and newline
 * included) and `framing=console|raw`. Unknown keys are refused, as Go does. Note on `mtu`: Go
 * mcumgr defaults it to 512, which a default Zephyr device (380-byte limit) cannot take; the
 * default here is 256.
 */
export function parseSerialConnstring(text: string): SerialConnection {
  const out: SerialConnection = { path: '', baudRate: DEFAULT_SERIAL_BAUD, mtu: DEFAULT_SERIAL_MTU, framing: 'console' };
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? 'dev' : part.slice(0, eq).trim();
    const value = (eq < 0 ? part : part.slice(eq + 1)).trim();
    switch (key) {
      case 'dev':
        out.path = value;
        break;
      case 'baud':
        out.baudRate = positiveInteger('baud', value, 1, 100_000_000);
        break;
      case 'mtu':
        out.mtu = positiveInteger('mtu', value, HEADER_SIZE, MAX_RAW_PACKET);
        break;
      case 'linelength':
        out.lineLength = positiveInteger('linelength', value, 7, 1 << 20);
        break;
      case 'framing':
        if (value !== 'console' && value !== 'raw') throw new UsageError(`invalid serial connstring: framing must be console or raw, got ${JSON.stringify(value)}`);
        out.framing = value;
        break;
      default:
        throw new UsageError(`invalid serial connstring: unrecognized key ${JSON.stringify(key)} (known: dev, baud, mtu, linelength, framing)`);
    }
  }
  if (!out.path) throw new UsageError(`invalid serial connstring ${JSON.stringify(text)}: no device (use dev=PATH or just PATH)`);
  if (out.framing === 'console' && out.mtu > MAX_CONSOLE_PACKET) {
    throw new UsageError(`invalid serial connstring: mtu ${out.mtu} exceeds the console framing limit ${MAX_CONSOLE_PACKET}`);
  }
  return out;
}

export interface SerialClientOptions {
  /** Device path: `/dev/ttyACM0`, `/dev/pts/3`, `COM3`. */
  path: string;
  /** Default 115200. Meaningless on a pseudo-terminal or USB CDC-ACM, but harmless. */
  baudRate?: number;
  /** Largest SMP packet sent (header included). Default 256. */
  mtu?: number;
  /** Console framing only: longest line sent, marker and newline included. Default 127. */
  lineLength?: number;
  /** Default `console`. */
  framing?: SerialFraming;
  /** RTS/CTS hardware flow control. Default off. */
  flowControl?: boolean;
  /** Reopen after the port disappears; default 10 s, tried every 100 ms. `false`: close instead. */
  reopen?: ReopenPolicy | false;
  /** Raw framing: drop a partial packet after this much silence (ms). Default 3000. */
  inputTimeoutMs?: number;
  /** Longest incoming console line accepted (default 8192: devices built with larger buffers). */
  maxLineLength?: number;
  /** Lines from the device that are not SMP (logs, shell output), without the line end. */
  onText?: (line: string) => void;
  /** Link events, for logging: the port went away, came back. */
  onEvent?: (event: 'lost' | 'reopened', detail?: Error) => void;
}

/** Counters of a serial client link. */
export interface SerialClientStats {
  packetsSent: number;
  bytesSent: number;
  bytesReceived: number;
  /** Writes lost because the port vanished under them. */
  lostWrites: number;
  reopens: number;
  decoder: Readonly<ConsoleDecoderStats> | Readonly<RawDecoderStats>;
}

/** A serial {@link SmpTransport}; `stats` and `path` on top of the contract. */
export interface SerialClientTransport extends SmpTransport {
  readonly path: string;
  readonly framing: SerialFraming;
  readonly stats: SerialClientStats;
  /**
   * Bytes of the device's receive buffer the framing takes besides the SMP packet: 4 with console
   * framing (LEN and CRC share Zephyr's net_buf with the packet), 0 raw. A packet must satisfy
   * `packet ≤ buf_size − frameOverhead` (MCUmgr params) as well as `≤ mtu`.
   */
  readonly frameOverhead: number;
}

/**
 * Opens a serial port as an SMP client transport. Throws TransportError `TRANSPORT_IO` when the
 * port cannot be opened, UsageError for bad options.
 */
export async function openSerialClient(options: SerialClientOptions): Promise<SerialClientTransport> {
  const framing = options.framing ?? 'console';
  const mtu = options.mtu ?? DEFAULT_SERIAL_MTU;
  const lineLength = options.lineLength ?? DEFAULT_LINE_LENGTH;
  const limit = framing === 'raw' ? MAX_RAW_PACKET : MAX_CONSOLE_PACKET;
  if (!Number.isInteger(mtu) || mtu < HEADER_SIZE || mtu > limit) throw new UsageError(`serial mtu must be an integer ${HEADER_SIZE}-${limit}, got ${mtu}`);
  if (framing === 'console') consoleFrameSize(0, lineLength); // throws UsageError for a bad line length

  let receiver: ((packet: Uint8Array) => void) | undefined;
  const textDecoder = new TextDecoder('utf-8', { fatal: false });
  const onText = options.onText;
  const decoder =
    framing === 'raw'
      ? new RawPacketDecoder()
      : new ConsoleDecoder({ ...(options.maxLineLength ? { maxLineLength: options.maxLineLength } : {}), ...(onText ? { onText: (l: Uint8Array) => onText(textDecoder.decode(l)) } : {}) });
  const inputTimeoutMs = framing === 'raw' ? (options.inputTimeoutMs ?? DEFAULT_RAW_INPUT_TIMEOUT_MS) : options.inputTimeoutMs;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;

  let closed = false;
  const closeListeners = new Set<(error?: Error) => void>();
  const stats = { packetsSent: 0, bytesSent: 0, bytesReceived: 0, lostWrites: 0, reopens: 0, decoder: decoder.stats };

  const finish = (error?: Error): void => {
    if (closed) return;
    closed = true;
    if (idleTimer) clearTimeout(idleTimer);
    for (const l of closeListeners) l(error);
  };

  const link = await SerialLink.open({
    path: options.path,
    baudRate: options.baudRate ?? DEFAULT_SERIAL_BAUD,
    flowControl: options.flowControl ?? false,
    reopen: options.reopen ?? DEFAULT_REOPEN,
    onData: (chunk) => {
      if (closed) return;
      stats.bytesReceived += chunk.length;
      const packets = decoder.push(chunk);
      if (inputTimeoutMs !== undefined) {
        if (idleTimer) clearTimeout(idleTimer);
        idleTimer = decoder.pending ? setTimeout(() => decoder.reset(), inputTimeoutMs) : undefined;
      }
      for (const p of packets) {
        if (closed) return;
        receiver?.(p);
      }
    },
    onLost: (e) => {
      // Whatever was half received belongs to a device that no longer exists.
      decoder.reset();
      options.onEvent?.('lost', e);
    },
    onReopened: () => {
      stats.reopens = link.reopens;
      options.onEvent?.('reopened');
    },
    onEnd: (e) => finish(e),
  });

  return {
    kind: 'serial',
    mtu,
    path: options.path,
    framing,
    frameOverhead: framing === 'raw' ? 0 : CONSOLE_FRAME_OVERHEAD,
    get stats() {
      stats.lostWrites = link.lostWrites;
      stats.reopens = link.reopens;
      return stats;
    },
    get closed() {
      return closed;
    },
    async send(packet: Uint8Array): Promise<void> {
      if (closed) throw new TransportError('TRANSPORT_CLOSED', `serial port ${options.path} is closed`);
      if (packet.length > mtu) throw new TransportError('TRANSPORT_TOO_LARGE', `packet of ${packet.length} bytes exceeds the serial MTU ${mtu}`);
      const bytes = framing === 'raw' ? encodeRawPacket(packet, mtu) : encodeConsoleFrame(packet, { lineLength });
      // A write lost to a vanishing port is like a frame lost on the line: the client retransmits.
      await link.write(bytes);
      stats.packetsSent++;
      stats.bytesSent += bytes.length;
    },
    setReceiver(r) {
      receiver = r;
    },
    onClose(listener) {
      closeListeners.add(listener);
      return () => closeListeners.delete(listener);
    },
    async close(): Promise<void> {
      if (closed) return;
      await link.close();
      finish();
    },
  };
}
