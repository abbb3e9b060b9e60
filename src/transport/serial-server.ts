/**
 * The device side of SMP over a serial line: an existing serial device (a USB gadget, a UART, one
 * end of a pty pair) or a pseudo-terminal this transport creates, the way Zephyr's native_sim
 * prints "UART connected to pseudotty: /dev/pts/N".
 *
 * Like Zephyr's shell transport (smp-spec.md §4.1.3) SMP frames and plain text share the line:
 * incoming lines that start with an SMP marker go to SMP, every other line goes to `onShellLine`
 * (the emulator's shell answers them through {@link SerialServerTransport.writeText}). Responses
 * are framed exactly as a Zephyr device frames them (first line 93 raw bytes, continuations 90,
 * CRC never split). The receive side takes what a default Zephyr device takes: lines of at most
 * 128 bytes with the newline, and LEN‖packet‖CRC within a 384-byte net_buf (packets ≤ 380), all
 * configurable; answers go up to the net_buf size too. Frames that fail are dropped silently and
 * counted, as on a device.
 *
 * Receive line buffers (optional, `rxLineBuffers` with an `activity`): Zephyr's UART transport
 * takes each incoming line into one of CONFIG_UART_MCUMGR_RX_BUF_COUNT buffers (default 2, of
 * CONFIG_UART_MCUMGR_RX_BUF_SIZE 128 bytes; drivers/console/uart_mcumgr.c), allocated without
 * waiting when the line starts and freed once the line has been decoded. While the device is busy
 * (processing a request, writing flash) the lines it receives stay in those buffers; a line that
 * starts when all are taken is ignored up to its newline ("uart_mcumgr_ignoring"), so the frame
 * it belongs to is lost. The model: while `activity.busy`, up to `rxLineBuffers` lines are held
 * and further lines dropped (counted in `stats.linesDropped`); when the device becomes idle, or a
 * long request lets other transports' requests run (SmpServer.letOthersRun), the held lines are
 * decoded in order.
 *
 * Why socat for `pty`: Node has no openpty/posix_openpt. Opening /dev/ptmx works, but unlocking
 * and naming the slave needs ioctls (TIOCSPTLCK, TIOCGPTN) Node cannot issue, and node-pty needs a
 * native build (install scripts are blocked here) and is made for running a program on the
 * slave. `socat PTY,raw,echo=0 STDIO` creates the pty, sets it raw, prints its path, and hands us
 * the master side as plain pipes: no native code on the device side at all, and the pty survives
 * clients opening and closing it. socat is packaged everywhere (`apt-get install socat`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { TransportError, UsageError } from '../core/errors.ts';
import { decodeCbor, encodeCbor, isCborMap } from '../core/cbor.ts';
import { decodePacket, encodePacket, HEADER_SIZE, Op } from '../core/header.ts';
import { ConsoleDecoder, encodeConsoleFrameZephyr, MAX_CONSOLE_PACKET, maxPacketForBuffer, ZEPHYR_LINE_BUFFER, ZEPHYR_MAX_FRAME, ZEPHYR_NETBUF_SIZE } from '../framing/console.ts';
import type { ConsoleDecoderStats } from '../framing/console.ts';
import { encodeRawPacket, RawPacketDecoder } from '../framing/raw.ts';
import type { RawDecoderStats } from '../framing/raw.ts';
import { DECODER_DROP_LABELS, DEFAULT_RAW_INPUT_TIMEOUT_MS, DEFAULT_SERIAL_BAUD, type SerialFraming } from './serial.ts';
import { SerialLink } from './serial-link.ts';
import type { ServerReceiveContext, ServerTransport, SmpPeer } from './types.ts';

export interface SerialServerOptions {
  /** A serial device to serve on. Exactly one of `path` and `pty` is needed. */
  path?: string;
  /**
   * Create a pseudo-terminal (through socat) and serve on it. A string also makes a symlink with
   * that name pointing at the pty (removed again on close).
   */
  pty?: boolean | string;
  /** Baud rate for `path` (default 115200; ignored by ptys). */
  baudRate?: number;
  /** Default `console`; `raw` for Zephyr's raw UART transport. */
  framing?: SerialFraming;
  /**
   * Largest response packet (the peer MTU the server sizes answers by). Default: the net_buf size,
   * as on Zephyr, where an answer is built in a net_buf of `NETBUF_SIZE` and framed while sent;
   * the UART MTU Kconfig (256) bounds nothing on the way out.
   */
  mtu?: number;
  /** Device net_buf size (default 384): requests must fit (console: LEN‖packet‖CRC, raw: packet). */
  netbufSize?: number;
  /** Longest request line taken in, newline included (default 128, Zephyr's UART line buffer). */
  maxLineLength?: number;
  /** Longest response line, Zephyr's `MCUMGR_SERIAL_MAX_FRAME` (default 127). */
  maxFrame?: number;
  /** Drop a partial packet after this much silence (ms). Default: 3000 for raw, off for console. */
  inputTimeoutMs?: number;
  /** A line of plain text arrived (shell input), without its line end. */
  onShellLine?: (line: string) => void;
  /**
   * Answer plain-text lines like a Zephyr shell on the same UART: each line runs as an SMP shell
   * exec request (group 9) through the server, and its output is written back followed by a
   * prompt. This keeps one command registry and one dispatcher (hooks see the command as a shell
   * exec). Default off in the library; `mcumgr serve` turns it on.
   */
  shellOverSmp?: boolean | { prompt?: string };
  /** Link events for logging (port lost, reopened, socat exited). */
  onStatus?: (message: string) => void;
  /** socat executable (default `socat` on PATH). */
  socatPath?: string;
  /** Receive line buffers (Zephyr's CONFIG_UART_MCUMGR_RX_BUF_COUNT, 2); default unlimited. Needs `activity`. */
  rxLineBuffers?: number;
  /** When the device's management queue is busy (src/server/device-timing.ts). */
  activity?: { readonly busy: boolean; onIdle(listener: () => void): () => void; onYield?(listener: () => void): () => void };
}

/** Counters of a serial server link. */
export interface SerialServerStats {
  packetsReceived: number;
  packetsSent: number;
  bytesReceived: number;
  bytesSent: number;
  shellLines: number;
  /** Lines lost because every receive line buffer was taken while the device was busy. */
  linesDropped: number;
  decoder: Readonly<ConsoleDecoderStats> | Readonly<RawDecoderStats>;
}

/** Bytes in, bytes out: a serial port or the master side of a pty. */
interface ByteLink {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** The device-side serial transport; see the module comment. */
export class SerialServerTransport implements ServerTransport {
  readonly kind = 'serial';
  readonly framing: SerialFraming;
  private readonly options: SerialServerOptions;
  private link: ByteLink | undefined;
  private devicePath: string | undefined;
  private closed = false;
  private readonly decoder: ConsoleDecoder | RawPacketDecoder;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly inputTimeoutMs: number | undefined;
  private writeTail: Promise<unknown> = Promise.resolve();
  /** The last byte written to the line was a newline (or nothing was written yet). */
  private atLineStart = true;
  private readonly counters = { packetsReceived: 0, packetsSent: 0, bytesReceived: 0, bytesSent: 0, shellLines: 0, linesDropped: 0 };
  private readonly mtu: number;
  private readonly maxFrame: number;
  /** Runs a shell line over SMP (set by start when `shellOverSmp` is on). */
  private shellLine: ((line: string) => void) | undefined;
  private shellSeq = 0;
  private stopGate: (() => void) | undefined;
  private gate: LineBufferGate | undefined;
  private decodeIncoming: ((bytes: Uint8Array) => void) | undefined;
  private receiveContext: ServerReceiveContext | undefined;

  constructor(options: SerialServerOptions) {
    if (!options.path === !options.pty) throw new UsageError('serial server: give exactly one of a device path or pty');
    this.options = options;
    this.framing = options.framing ?? 'console';
    const netbuf = options.netbufSize ?? ZEPHYR_NETBUF_SIZE;
    this.mtu = options.mtu ?? netbuf;
    this.maxFrame = options.maxFrame ?? ZEPHYR_MAX_FRAME;
    const textDecoder = new TextDecoder('utf-8', { fatal: false });
    this.decoder =
      this.framing === 'raw'
        ? new RawPacketDecoder({ maxPacketLength: netbuf })
        : new ConsoleDecoder({
            maxLineLength: options.maxLineLength ?? ZEPHYR_LINE_BUFFER,
            maxPacketLength: maxPacketForBuffer(netbuf),
            // Zephyr's receivers only look for a marker at the start of a line.
            markersInText: false,
            onText: (line) => {
              this.counters.shellLines++;
              const text = textDecoder.decode(line);
              this.options.onShellLine?.(text);
              this.shellLine?.(text);
            },
          });
    this.inputTimeoutMs = this.framing === 'raw' ? (options.inputTimeoutMs ?? DEFAULT_RAW_INPUT_TIMEOUT_MS) : options.inputTimeoutMs;
  }

  /**
   * Models the device's receive line buffers from now on (see the module notes): `lineBuffers`
   * lines are held while `activity` is busy, more are lost. Console framing only; call after
   * start (the agent does, once its server runs).
   */
  attachDeviceActivity(activity: NonNullable<SerialServerOptions['activity']>, lineBuffers: number): void {
    const decode = this.decodeIncoming;
    if (!decode || this.framing !== 'console') return;
    this.stopGate?.();
    const gate = new LineBufferGate(lineBuffers, activity, decode, () => {
      this.counters.linesDropped++;
      this.receiveContext?.undecodable('line lost: every receive line buffer taken while the device was busy', `serial:${this.devicePath ?? '?'}`);
    });
    this.gate = gate;
    const stopIdle = activity.onIdle(() => gate.release());
    // A long request pausing for other transports' requests is the work queue reaching this
    // link's lines: they are decoded then, not after the long request.
    const stopYield = activity.onYield?.(() => gate.release(true));
    this.stopGate = () => {
      stopIdle();
      stopYield?.();
    };
  }

  /** The device path served: the pty's `/dev/pts/N` or the given path. Set once started. */
  get path(): string | undefined {
    return this.devicePath;
  }

  get stats(): SerialServerStats {
    return { ...this.counters, decoder: { ...this.decoder.stats } };
  }

  describe(): string {
    const where = this.devicePath ?? this.options.path ?? 'pty';
    const link = typeof this.options.pty === 'string' ? ` (link ${this.options.pty})` : '';
    return `${this.options.pty ? 'pty' : 'serial'} ${where}${link}, ${this.framing} framing`;
  }

  async start(onPacket: (packet: Uint8Array, peer: SmpPeer) => unknown, context?: ServerReceiveContext): Promise<void> {
    if (this.link) throw new UsageError('serial server already started');
    // One line, one peer: whoever has the other end of it.
    const addressOf = (): string => `serial:${this.devicePath ?? '?'}`;
    const peer: SmpPeer = {
      get address() {
        return addressOf();
      },
      transport: 'serial',
      mtu: this.mtu,
      reply: (packet) => this.sendPacket(packet),
    };
    if (this.options.shellOverSmp) {
      const prompt = (typeof this.options.shellOverSmp === 'object' ? this.options.shellOverSmp.prompt : undefined) ?? DEFAULT_SHELL_PROMPT;
      this.shellLine = (line) => this.runShellLine(line, prompt, addressOf(), onPacket);
    }
    this.receiveContext = context;
    const decode = (chunk: Uint8Array): void => {
      const before = context ? { ...this.decoder.stats } : undefined;
      const packets = this.decoder.push(chunk);
      if (before && context) reportDecoderDrops(before, this.decoder.stats, context, addressOf());
      this.armInputTimeout();
      for (const p of packets) {
        this.counters.packetsReceived++;
        onPacket(p, peer);
      }
    };
    this.decodeIncoming = decode;
    if (this.options.activity && this.options.rxLineBuffers !== undefined) this.attachDeviceActivity(this.options.activity, this.options.rxLineBuffers);
    const onData = (chunk: Uint8Array): void => {
      if (this.closed) return;
      this.counters.bytesReceived += chunk.length;
      if (this.gate) this.gate.push(chunk);
      else decode(chunk);
    };
    if (this.options.pty) {
      const { link, path } = await startPty(this.options, onData, (m) => this.options.onStatus?.(m));
      this.link = link;
      this.devicePath = path;
    } else {
      const path = this.options.path!;
      const serial = await SerialLink.open({
        path,
        baudRate: this.options.baudRate ?? DEFAULT_SERIAL_BAUD,
        // A device keeps trying to get its port back for as long as it runs.
        reopen: { timeoutMs: Infinity, intervalMs: 500 },
        onData,
        onLost: (e) => {
          this.decoder.reset();
          this.options.onStatus?.(`serial port ${path} went away${e ? ` (${e.message})` : ''}; reopening`);
        },
        onReopened: () => this.options.onStatus?.(`serial port ${path} is back`),
        onEnd: () => {},
      });
      this.link = {
        write: async (bytes) => {
          await serial.write(bytes);
        },
        close: () => serial.close(),
      };
      this.devicePath = path;
    }
  }

  /**
   * Writes shell output (text) to the line, between whole frames. Text may end mid-line (a
   * prompt); a frame sent after such text starts on a new line.
   */
  writeText(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
    if (bytes.length === 0) return Promise.resolve();
    return this.enqueue(() => {
      this.atLineStart = bytes[bytes.length - 1] === 0x0a;
      return bytes;
    });
  }

  /** Sends a text line to the server as a shell exec request; writes its output and a prompt. */
  private runShellLine(line: string, prompt: string, address: string, onPacket: (packet: Uint8Array, peer: SmpPeer) => void): void {
    const argv = line.trim() === '' ? [] : [line.trim()];
    if (argv.length === 0) {
      void this.writeText(prompt).catch(() => {});
      return;
    }
    const seq = this.shellSeq++ & 0xff;
    const request = encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: SHELL_GROUP, seq, id: SHELL_EXEC_ID }, encodeCbor({ argv }));
    const shellPeer: SmpPeer = {
      address: `${address}#shell`,
      transport: 'serial',
      // Shell output is text on the line, not a frame: the device's buffers bound it, not the MTU.
      mtu: MAX_CONSOLE_PACKET,
      reply: async (response) => {
        let text: string;
        try {
          text = shellOutputText(response);
        } catch {
          text = 'shell: unreadable answer\r\n';
        }
        await this.writeText(text + prompt);
      },
    };
    onPacket(request, shellPeer);
  }

  private sendPacket(packet: Uint8Array): Promise<void> {
    if (packet.length > this.mtu) return Promise.reject(new TransportError('TRANSPORT_TOO_LARGE', `response of ${packet.length} bytes exceeds the serial MTU ${this.mtu}`));
    const frame = this.framing === 'raw' ? encodeRawPacket(packet) : encodeConsoleFrameZephyr(packet, this.maxFrame);
    return this.enqueue(() => {
      this.counters.packetsSent++;
      if (this.framing === 'raw' || this.atLineStart) return frame;
      // A Zephyr device would put the frame right after the prompt, where line-based clients
      // (Go mcumgr, smpclient) miss it. One newline first keeps every client happy.
      this.atLineStart = true;
      const withNewline = new Uint8Array(frame.length + 1);
      withNewline[0] = 0x0a;
      withNewline.set(frame, 1);
      return withNewline;
    });
  }

  /** Serialises writes: frames and text never interleave. `produce` runs when it is this write's turn. */
  private enqueue(produce: () => Uint8Array): Promise<void> {
    if (this.closed || !this.link) return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'serial server is closed'));
    const link = this.link;
    const run = async (): Promise<void> => {
      if (this.closed) throw new TransportError('TRANSPORT_CLOSED', 'serial server is closed');
      const bytes = produce();
      this.counters.bytesSent += bytes.length;
      await link.write(bytes);
    };
    const result = this.writeTail.then(run, run);
    this.writeTail = result.catch(() => undefined);
    return result;
  }

  private armInputTimeout(): void {
    if (this.inputTimeoutMs === undefined) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = this.decoder.pending ? setTimeout(() => this.decoder.reset(), this.inputTimeoutMs) : undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopGate?.();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await this.link?.close();
  }
}

/** The receive line buffers of Zephyr's UART transport (see the module notes). */
class LineBufferGate {
  /** Lines waiting in buffers (the last one may still be arriving). */
  private readonly held: Uint8Array[][] = [];
  /** What the line now arriving does: decoded at once, held in a buffer, or ignored. */
  private mode: 'direct' | 'held' | 'drop' = 'direct';
  private atLineStart = true;

  constructor(
    private readonly buffers: number,
    private readonly activity: { readonly busy: boolean },
    private readonly decode: (bytes: Uint8Array) => void,
    private readonly dropped: () => void,
  ) {}

  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.atLineStart) {
        this.atLineStart = false;
        if (!this.activity.busy && this.held.length === 0) this.mode = 'direct';
        else if (this.held.length < this.buffers) {
          this.mode = 'held';
          this.held.push([]);
        } else {
          this.mode = 'drop';
          this.dropped();
        }
      }
      const nl = chunk.indexOf(0x0a, at);
      const end = nl < 0 ? chunk.length : nl + 1;
      const part = chunk.subarray(at, end);
      if (this.mode === 'direct') this.decode(part);
      else if (this.mode === 'held') this.held[this.held.length - 1]!.push(part.slice());
      if (nl >= 0) this.atLineStart = true;
      at = end;
    }
  }

  /**
   * The device is idle, or (`yielding`) its long request lets others run: decode the held lines,
   * in order (a line still arriving carries on directly).
   */
  release(yielding = false): void {
    while (this.held.length > 0 && (yielding || !this.activity.busy)) {
      const line = this.held.shift()!;
      if (this.held.length === 0 && !this.atLineStart && this.mode === 'held') this.mode = 'direct';
      for (const part of line) this.decode(part);
    }
  }
}

/** Tells the server about every frame the decoder dropped in one push, by reason. */
function reportDecoderDrops(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>> | Readonly<ConsoleDecoderStats> | Readonly<RawDecoderStats>, context: ServerReceiveContext, peer: string): void {
  const now = after as unknown as Readonly<Record<string, number>>;
  for (const [key, label] of Object.entries(DECODER_DROP_LABELS)) {
    const n = (now[key] ?? 0) - (before[key] ?? 0);
    if (n <= 0) continue;
    if (key === 'skippedBytes') context.undecodable(`${n} ${label}`, peer, n);
    else for (let i = 0; i < n; i++) context.undecodable(label, peer);
  }
}

const SHELL_GROUP = 9;
const SHELL_EXEC_ID = 0;
/** Zephyr's default shell prompt on a UART (`CONFIG_SHELL_PROMPT_UART`). */
export const DEFAULT_SHELL_PROMPT = 'uart:~$ ';

/** The terminal text for a shell exec response: its output with CR LF line ends, or the error. */
function shellOutputText(response: Uint8Array): string {
  const { payload } = decodePacket(response.subarray(0, HEADER_SIZE + ((response[2]! << 8) | response[3]!)));
  const body = decodeCbor(payload);
  if (!isCborMap(body)) return 'shell: unreadable answer\r\n';
  const crlf = (t: string): string => t.replace(/\r?\n/g, '\r\n');
  if (typeof body['o'] === 'string') {
    const out = crlf(body['o']);
    return out === '' || out.endsWith('\n') ? out : out + '\r\n';
  }
  const err = body['err'];
  if (isCborMap(err)) return `shell: error ${String(err['group'])}/${String(err['rc'])}\r\n`;
  if (typeof body['rc'] === 'number') return body['rc'] === 8 ? 'shell: not available on this device\r\n' : `shell: error rc ${body['rc']}\r\n`;
  return '';
}

/** Creates a serial server transport (not started). */
export function createSerialServer(options: SerialServerOptions): SerialServerTransport {
  return new SerialServerTransport(options);
}

/** Spawns `socat PTY STDIO` and waits for it to name the pty. */
async function startPty(options: SerialServerOptions, onData: (chunk: Uint8Array) => void, onStatus: (message: string) => void): Promise<{ link: ByteLink; path: string }> {
  const address = ['PTY', 'raw', 'echo=0'];
  if (typeof options.pty === 'string') address.push(`link=${options.pty}`);
  let child: ChildProcess;
  try {
    child = spawn(options.socatPath ?? 'socat', ['-d', '-d', address.join(','), 'STDIO'], { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    throw new TransportError('TRANSPORT_IO', `cannot start socat to create a pty: ${(e as Error).message}`, { cause: e });
  }
  let stopping = false;
  const path = await new Promise<string>((resolve, reject) => {
    let stderr = '';
    const fail = (message: string, cause?: unknown): void => {
      child.kill();
      reject(new TransportError('TRANSPORT_IO', message, cause === undefined ? undefined : { cause }));
    };
    const timer = setTimeout(() => fail(`socat did not report a pty within 5 s: ${stderr.trim()}`), 5000);
    child.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(e.code === 'ENOENT' ? 'socat not found: install socat (e.g. apt-get install socat) to create a pty' : `cannot start socat: ${e.message}`, e);
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      // socat names the pty, then makes the link, then says it is ready.
      const m = / PTY is (\S+)/.exec(stderr);
      if (m && /starting data transfer loop/.test(stderr)) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
      if (stderr.length > 65536) stderr = stderr.slice(-4096);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      fail(`socat exited (${signal ?? code}) before creating a pty: ${stderr.trim()}`);
    });
  });
  child.removeAllListeners('exit');
  child.removeAllListeners('error');
  child.on('error', () => {});
  child.stdin!.on('error', () => {});
  child.on('exit', (code, signal) => {
    if (!stopping) onStatus(`socat exited (${signal ?? code}); the pty ${path} is gone`);
  });
  child.stdout!.on('data', (d: Buffer) => onData(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
  const link: ByteLink = {
    write: (bytes) =>
      new Promise<void>((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          reject(new TransportError('TRANSPORT_CLOSED', `pty ${path} is gone (socat exited)`));
          return;
        }
        child.stdin!.write(bytes, (err) => (err ? reject(new TransportError('TRANSPORT_IO', `pty write failed: ${err.message}`, { cause: err })) : resolve()));
      }),
    close: () =>
      new Promise<void>((resolve) => {
        stopping = true;
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve();
          return;
        }
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
  return { link, path };
}
