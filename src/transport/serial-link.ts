/**
 * A serial port as a byte pipe that survives the device going away: the `serialport` package
 * underneath (prebuilt native bindings), plus what SMP links need on top of it:
 *
 * - Reopen after the port disappears (device reset, USB CDC-ACM re-enumeration, a pty whose
 *   master closed): the port is opened again every `intervalMs` until `timeoutMs` has passed.
 *   Writes issued meanwhile wait for the port to come back; if it does not, they fail with
 *   `TRANSPORT_CLOSED` and the link ends.
 * - One write queue, so frames of different packets never interleave.
 *
 * Node-only. Used by the client transport (serial.ts) and the device side (serial-server.ts).
 */
import { read as fsRead } from 'node:fs';
import { promisify } from 'node:util';
import type * as StreamModule from '@serialport/stream';
import type * as BindingsModule from '@serialport/bindings-cpp';
import type { SerialPortStream } from '@serialport/stream';
import type { AutoDetectTypes, DarwinPortBinding, LinuxPortBinding } from '@serialport/bindings-cpp';
import { TransportError } from '../core/errors.ts';

/** How to reopen a port that went away. */
export interface ReopenPolicy {
  /** Give up after this long without the port (ms). `Infinity` for a daemon. */
  timeoutMs: number;
  /** Pause between open attempts (ms). */
  intervalMs: number;
}

/** Default for clients: a device reset or USB re-enumeration usually takes 1–5 s. */
export const DEFAULT_REOPEN: ReopenPolicy = { timeoutMs: 10_000, intervalMs: 100 };

export interface SerialLinkOptions {
  path: string;
  baudRate: number;
  /** RTS/CTS hardware flow control (default off, like Zephyr's default UART setup). */
  flowControl?: boolean;
  /** Reopen after the port disappears; `false` ends the link instead. */
  reopen: ReopenPolicy | false;
  /** Every chunk read from the port, in order. */
  onData: (chunk: Uint8Array) => void;
  /** The port went away unexpectedly (a reopen is being attempted if the policy allows). */
  onLost?: (error: Error | undefined) => void;
  /** The port is back after a loss. */
  onReopened?: () => void;
  /** The link ended for good: closed by us (no error) or gave up reopening (with the error). */
  onEnd: (error?: Error) => void;
}

type LinkState = 'up' | 'reopening' | 'ended';

type SerialPort = SerialPortStream<AutoDetectTypes>;

const readAsync = promisify(fsRead);

/**
 * The unix read of @serialport/bindings-cpp 13 (`unixRead`) retries at once when read() returns 0
 * bytes. With the VMIN=1 termios it sets, 0 means end of file, which is what a pty slave reads
 * forever once its master is gone (socat exited, emulator stopped): the stock binding then spins a
 * core at 100 % and never reports the loss (measured here). This read treats 0 as the hang-up it
 * is, and EIO too; everything else mirrors the stock read (EAGAIN → wait for the poller).
 */
async function hangupAwareRead(port: LinuxPortBinding | DarwinPortBinding, buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
  for (;;) {
    if (port.fd === null) throw Object.assign(new Error('Port is not open'), { canceled: true });
    let bytesRead: number;
    try {
      ({ bytesRead } = await readAsync(port.fd, buffer, offset, length, null));
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { disconnect?: boolean };
      if (err.code === 'EAGAIN' || err.code === 'EWOULDBLOCK' || err.code === 'EINTR') {
        if (port.fd === null) throw Object.assign(new Error('Port is not open'), { canceled: true });
        await new Promise<void>((resolve, reject) => port.poller.once('readable', (pollError?: Error | null) => (pollError ? reject(pollError) : resolve())));
        continue;
      }
      if (err.code === 'EBADF' || err.code === 'ENXIO' || err.code === 'EIO' || err.code === 'UNKNOWN' || err.errno === -1) err.disconnect = true;
      throw err;
    }
    if (bytesRead > 0) return { buffer, bytesRead };
    throw Object.assign(new Error('the other end of the serial line hung up (end of file)'), { code: 'EOF', disconnect: true });
  }
}

/** The platform binding, with {@link hangupAwareRead} on Linux and macOS. */
function wrapBinding(m: typeof BindingsModule): AutoDetectTypes {
  const base = process.platform === 'linux' ? m.LinuxBinding : process.platform === 'darwin' ? m.DarwinBinding : undefined;
  if (!base) return m.autoDetect();
  const wrapped = {
    list: () => base.list(),
    async open(options: Parameters<typeof base.open>[0]) {
      const port = (await base.open(options)) as LinuxPortBinding | DarwinPortBinding;
      const stockRead = port.read.bind(port);
      port.read = async (buffer: Buffer, offset: number, length: number) => {
        if (!Buffer.isBuffer(buffer) || buffer.length < offset + length) return stockRead(buffer, offset, length); // let it report the misuse
        return hangupAwareRead(port, buffer, offset, length);
      };
      return port;
    },
  };
  return wrapped as AutoDetectTypes;
}

/**
 * The serialport packages (native prebuilds, optional dependencies of mcumgr), loaded on the first
 * open so that everything else works where they are not installed.
 */
let serialport: Promise<{ SerialPortStream: typeof SerialPortStream; binding: AutoDetectTypes }> | undefined;
function loadSerialport(): Promise<{ SerialPortStream: typeof SerialPortStream; binding: AutoDetectTypes }> {
  serialport ??= (async () => {
    let stream: typeof StreamModule;
    let bindings: typeof BindingsModule;
    try {
      stream = await import('@serialport/stream');
      bindings = await import('@serialport/bindings-cpp');
    } catch (e) {
      serialport = undefined;
      throw new TransportError('TRANSPORT_IO', `serial ports need the optional packages @serialport/stream and @serialport/bindings-cpp (npm install @serialport/stream @serialport/bindings-cpp): ${(e as Error).message}`, { cause: e });
    }
    return { SerialPortStream: stream.SerialPortStream, binding: wrapBinding(bindings) };
  })();
  return serialport;
}

async function openPort(path: string, baudRate: number, flowControl: boolean): Promise<SerialPort> {
  const { SerialPortStream: Stream, binding } = await loadSerialport();
  return new Promise((resolve, reject) => {
    const port = new Stream({ binding, path, baudRate, rtscts: flowControl, autoOpen: false });
    port.open((err) => (err ? reject(err) : resolve(port)));
  });
}

/** Opens a serial port through the same hang-up-aware binding (for tests and tools). */
export function openRawSerialPort(path: string, baudRate = 115200): Promise<SerialPort> {
  return openPort(path, baudRate, false);
}

/** An open serial port with reopen-on-loss; see the module comment. */
export class SerialLink {
  private state: LinkState = 'up';
  private port: SerialPort;
  private readonly options: SerialLinkOptions;
  private writeTail: Promise<unknown> = Promise.resolve();
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private reopenTimer: ReturnType<typeof setTimeout> | undefined;
  /** Writes that failed because the port vanished under them (the bytes are lost, like line noise). */
  lostWrites = 0;
  /** Times the port came back after a loss. */
  reopens = 0;

  private constructor(port: SerialPort, options: SerialLinkOptions) {
    this.port = port;
    this.options = options;
    this.attach(port);
  }

  /**
   * Opens `path`. Throws TransportError `TRANSPORT_IO` when the port cannot be opened (missing,
   * busy, no permission), naming the path and the cause.
   */
  static async open(options: SerialLinkOptions): Promise<SerialLink> {
    let port: SerialPort;
    try {
      port = await openPort(options.path, options.baudRate, options.flowControl ?? false);
    } catch (e) {
      throw new TransportError('TRANSPORT_IO', `cannot open serial port ${options.path}: ${(e as Error).message}`, { cause: e });
    }
    return new SerialLink(port, options);
  }

  get path(): string {
    return this.options.path;
  }

  /** True while the port is open (false while reopening and after the end). */
  get up(): boolean {
    return this.state === 'up';
  }

  get ended(): boolean {
    return this.state === 'ended';
  }

  /**
   * Queues bytes for the port; resolves once they are written. While the port is being reopened
   * the write waits for it. Resolves `false` when the port vanished during the write (the bytes
   * are lost; the link reopens). Rejects with `TRANSPORT_CLOSED` once the link has ended.
   */
  write(bytes: Uint8Array): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      await this.whenUp();
      const port = this.port;
      return new Promise<boolean>((resolve) => {
        // A stream that closes under a write never calls its callback: the close settles it.
        let settled = false;
        const settle = (ok: boolean): void => {
          if (settled) return;
          settled = true;
          port.off('close', onClose);
          if (!ok) this.lostWrites++;
          resolve(ok);
        };
        const onClose = (): void => settle(false);
        if (!port.isOpen) return settle(false);
        port.once('close', onClose);
        port.write(bytes, (err) => settle(!err));
      });
    };
    const result = this.writeTail.then(run, run);
    this.writeTail = result.catch(() => undefined);
    return result;
  }

  /** Closes the port for good. Pending and later writes fail with `TRANSPORT_CLOSED`. */
  async close(): Promise<void> {
    if (this.state === 'ended') return;
    const port = this.port;
    this.end(undefined, false);
    // Wait for the descriptor (and its exclusive lock) to be released: a reopen right after must work.
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private whenUp(): Promise<void> {
    if (this.state === 'up') return Promise.resolve();
    if (this.state === 'ended') return Promise.reject(new TransportError('TRANSPORT_CLOSED', `serial port ${this.options.path} is closed`));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private attach(port: SerialPort): void {
    port.on('data', (chunk: Buffer) => {
      if (this.port === port && this.state === 'up') this.options.onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
    // Errors also surface through write callbacks and the close event; an 'error' event with no
    // listener would crash the process.
    port.on('error', () => {});
    port.on('close', (err: (Error & { disconnected?: boolean }) | null) => {
      if (this.port !== port || this.state !== 'up') return;
      this.lost(err ?? undefined);
    });
  }

  private lost(error: Error | undefined): void {
    this.options.onLost?.(error);
    if (this.options.reopen === false) {
      this.end(new TransportError('TRANSPORT_CLOSED', `serial port ${this.options.path} went away`, { cause: error }));
      return;
    }
    this.state = 'reopening';
    const policy = this.options.reopen;
    const deadline = Date.now() + policy.timeoutMs;
    const attempt = (): void => {
      this.reopenTimer = undefined;
      if (this.state !== 'reopening') return;
      openPort(this.options.path, this.options.baudRate, this.options.flowControl ?? false).then(
        (port) => {
          if (this.state !== 'reopening') {
            port.close();
            return;
          }
          this.port = port;
          this.attach(port);
          this.state = 'up';
          this.reopens++;
          this.options.onReopened?.();
          const waiters = this.waiters;
          this.waiters = [];
          for (const w of waiters) w.resolve();
        },
        (e: unknown) => {
          if (this.state !== 'reopening') return;
          if (Date.now() + policy.intervalMs > deadline) {
            this.end(new TransportError('TRANSPORT_CLOSED', `serial port ${this.options.path} went away and did not come back within ${policy.timeoutMs} ms`, { cause: e }));
            return;
          }
          this.reopenTimer = setTimeout(attempt, policy.intervalMs);
        },
      );
    };
    this.reopenTimer = setTimeout(attempt, policy.intervalMs);
  }

  private end(error: Error | undefined, closePort = true): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    const closed = new TransportError('TRANSPORT_CLOSED', `serial port ${this.options.path} is closed`, error ? { cause: error } : undefined);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(closed);
    if (closePort && this.port.isOpen) this.port.close();
    this.options.onEnd(error);
  }
}
