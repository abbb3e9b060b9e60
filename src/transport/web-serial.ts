/**
 * SMP over a Web Serial port (Chromium's `navigator.serial`), on the portable console framing
 * (src/framing/console.ts: base64 lines with `06 09` / `04 14` markers and CRC-16): the same bytes
 * the Node serial transport (serial.ts) puts on a UART, without any Node import, so it runs in a
 * page. Lines that are not SMP (logs, shell output on the console) go to `onText`.
 *
 * The caller picks and opens the port (`await navigator.serial.requestPort()`,
 * `await port.open({ baudRate: 115200 })`) and hands it over; anything with the
 * `readable` / `writable` WHATWG streams of a `SerialPort` works (a test feeds Node streams over a
 * pseudo-terminal).
 */
import { TransportError, UsageError } from '../core/errors.ts';
import { HEADER_SIZE } from '../core/header.ts';
import { CONSOLE_FRAME_OVERHEAD, ConsoleDecoder, consoleFrameSize, DEFAULT_LINE_LENGTH, encodeConsoleFrame, MAX_CONSOLE_PACKET } from '../framing/console.ts';
import type { SmpTransport } from './types.ts';

/** The part of the Web Serial `SerialPort` the transport uses. */
export interface SerialPortLike {
  readonly readable: ReadableStream<Uint8Array> | null;
  readonly writable: WritableStream<Uint8Array> | null;
  close(): Promise<void>;
}

export interface WebSerialOptions {
  /** Largest SMP packet sent (header included). Default 256 (Zephyr's UART MTU). */
  mtu?: number;
  /** Longest console line sent, marker and newline included. Default 127. */
  lineLength?: number;
  /** Lines from the device that are not SMP, without the line end. */
  onText?: (line: string) => void;
  /** Longest incoming line accepted (default 8192). */
  maxLineLength?: number;
}

export interface WebSerialTransport extends SmpTransport {
  readonly frameOverhead: number;
  /** Frames dropped by the decoder (bad CRC, bad base64, ...), as counted by it. */
  readonly dropped: number;
}

/** Web Serial's default port settings for an SMP console (`port.open(WEB_SERIAL_DEFAULTS)`). */
export const WEB_SERIAL_DEFAULTS = { baudRate: 115200 } as const;

/** True where the page can ask for a serial port (Chromium desktop, secure context). */
export function webSerialAvailable(): boolean {
  return typeof navigator !== 'undefined' && 'serial' in navigator;
}

/** Wraps an opened serial port as an SMP transport with console framing. */
export function openWebSerialTransport(port: SerialPortLike, options: WebSerialOptions = {}): WebSerialTransport {
  const mtu = options.mtu ?? 256;
  const lineLength = options.lineLength ?? DEFAULT_LINE_LENGTH;
  if (!Number.isInteger(mtu) || mtu < HEADER_SIZE || mtu > MAX_CONSOLE_PACKET) throw new UsageError(`serial mtu must be an integer ${HEADER_SIZE}-${MAX_CONSOLE_PACKET}, got ${mtu}`);
  consoleFrameSize(0, lineLength); // throws UsageError for a bad line length
  if (!port.readable || !port.writable) throw new TransportError('TRANSPORT_CLOSED', 'the serial port is not open');

  const textDecoder = new TextDecoder('utf-8', { fatal: false });
  const onText = options.onText;
  const decoder = new ConsoleDecoder({
    ...(options.maxLineLength ? { maxLineLength: options.maxLineLength } : {}),
    ...(onText ? { onText: (l: Uint8Array) => onText(textDecoder.decode(l)) } : {}),
  });
  const reader = port.readable.getReader();
  const writer = port.writable.getWriter();
  let receiver: ((packet: Uint8Array) => void) | undefined;
  let closed = false;
  const closeListeners = new Set<(error?: Error) => void>();
  // One write at a time, so that frames of different packets never interleave.
  let writeChain: Promise<void> = Promise.resolve();

  const finish = (error?: Error): void => {
    if (closed) return;
    closed = true;
    for (const l of closeListeners) l(error);
  };

  const readLoop = async (): Promise<void> => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (closed) break;
      for (const p of decoder.push(value)) {
        if (closed) break;
        receiver?.(p);
      }
    }
  };
  readLoop().then(
    () => finish(closed ? undefined : new TransportError('TRANSPORT_CLOSED', 'the serial port closed')),
    (e: unknown) => finish(new TransportError('TRANSPORT_IO', `serial port read failed: ${(e as Error)?.message ?? String(e)}`, { cause: e })),
  );

  const stats = decoder.stats;
  return {
    kind: 'web-serial',
    mtu,
    frameOverhead: CONSOLE_FRAME_OVERHEAD,
    get dropped() {
      return stats.badCrc + stats.badBase64 + stats.badLength + stats.lineTooLong + stats.orphanContinuation + stats.interrupted;
    },
    get closed() {
      return closed;
    },
    send(packet: Uint8Array): Promise<void> {
      if (closed) return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'the serial port is closed'));
      if (packet.length > mtu) return Promise.reject(new TransportError('TRANSPORT_TOO_LARGE', `packet of ${packet.length} bytes exceeds the serial MTU ${mtu}`));
      const bytes = encodeConsoleFrame(packet, { lineLength });
      const p = writeChain.then(() => writer.write(bytes));
      writeChain = p.catch(() => undefined);
      return p.catch((e: unknown) => {
        throw new TransportError('TRANSPORT_IO', `serial port write failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      });
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
      finish();
      await reader.cancel().catch(() => undefined);
      reader.releaseLock();
      await writeChain;
      await writer.close().catch(() => undefined);
      writer.releaseLock();
      await port.close().catch(() => undefined);
    },
  };
}
