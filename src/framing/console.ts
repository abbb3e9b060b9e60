/**
 * SMP over a console (UART, USB CDC-ACM, shell transport, MCUboot serial recovery): the line
 * framing of smp-spec.md §4.1, as pure incremental state machines on Uint8Array.
 *
 * ```
 * line   := MARKER(2 bytes) BASE64(piece) '\n'
 * MARKER := 06 09 (first line of a packet) | 04 14 (continuation line)
 * concatenation of the decoded pieces := LEN(2, BE) ‖ SMP packet ‖ CRC-16/XMODEM(packet)(2, BE)
 * LEN    := packet length + 2 (the CRC counts, LEN itself does not)
 * ```
 *
 * Each line's base64 is decoded on its own, so every line but the last carries a multiple of three
 * bytes. Two encoders are provided:
 *
 * - {@link encodeConsoleFrame}: the simple client form (also used by the Python `smp` library):
 *   base64 of the whole LEN‖packet‖CRC cut into pieces of at most `lineLength - 3` characters.
 * - {@link encodeConsoleFrameZephyr}: byte-for-byte what a Zephyr device emits
 *   (`mcumgr_serial_tx_pkt`, subsys/mgmt/mcumgr/transport/src/serial_util.c, read for this project):
 *   first line 93 raw bytes (LEN + 91 packet bytes), continuation lines 90 raw bytes because Zephyr
 *   never restores its per-line budget after the first line, and the CRC is never split across
 *   lines (a data byte is held back to travel with it).
 *
 * {@link ConsoleDecoder} takes arbitrary chunks of a byte stream, yields whole SMP packets and hands
 * every other line to a text callback (the shell multiplexing of §4.1.3). Invalid frames are dropped
 * silently, as Zephyr does, and counted by reason in {@link ConsoleDecoderStats}. All buffers are
 * bounded by the options, so garbage input cannot grow memory.
 */
import { TransportError, UsageError } from '../core/errors.ts';
import { BASE64_INVALID, base64DecodeInto, base64EncodedLength, base64EncodeInto, base64MaxDecodedLength } from './base64.ts';
import { crc16Xmodem } from './crc16.ts';
import { SmpStreamDecoder } from './stream-decoder.ts';

/** First byte of the "first line of a packet" marker (`06 09`). */
export const MARKER_START_1 = 0x06;
/** Second byte of the "first line of a packet" marker. */
export const MARKER_START_2 = 0x09;
/** First byte of the "continuation line" marker (`04 14`). */
export const MARKER_CONTINUATION_1 = 0x04;
/** Second byte of the "continuation line" marker. */
export const MARKER_CONTINUATION_2 = 0x14;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Zephyr's `MCUMGR_SERIAL_MAX_FRAME`: the longest line a device emits, marker and `\n` included,
 * and the longest the shell transport takes in (`SMP_SHELL_RX_BUF_SIZE`, 127).
 */
export const ZEPHYR_MAX_FRAME = 127;

/** Default line length of {@link encodeConsoleFrame}: 127 bytes = marker + 124 base64 + `\n`. */
export const DEFAULT_LINE_LENGTH = 127;

/**
 * Zephyr's UART transport line buffer (`CONFIG_MCUMGR_TRANSPORT_UART_RX_BUF_SIZE`, 128), which
 * holds the `\n` too. A line of 128 bytes with the `\n` is the longest a device takes in; since
 * base64 comes in groups of 4 characters this admits the same lines as the shell's 127 limit.
 */
export const ZEPHYR_LINE_BUFFER = 128;

/** Zephyr's default `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE`: LEN + packet + CRC must fit in it. */
export const ZEPHYR_NETBUF_SIZE = 384;

/** The largest SMP packet the console framing can express: LEN is 16 bits and counts the CRC. */
export const MAX_CONSOLE_PACKET = 0xffff - 2;

/** Bytes the framing adds around a packet before base64: LEN (2) and CRC (2). */
export const CONSOLE_FRAME_OVERHEAD = 4;

/** The largest SMP packet whose LEN‖packet‖CRC fits a device buffer of `bufferSize` bytes. */
export function maxPacketForBuffer(bufferSize: number): number {
  return Math.max(0, Math.min(MAX_CONSOLE_PACKET, bufferSize - CONSOLE_FRAME_OVERHEAD));
}

/** Options of {@link encodeConsoleFrame}. */
export interface ConsoleEncodeOptions {
  /**
   * Longest line to emit in bytes, marker and `\n` included (default 127, the Zephyr limit).
   * At least 7 (one group of four base64 characters per line).
   */
  lineLength?: number;
}

function checkPacket(packet: Uint8Array): void {
  if (packet.length > MAX_CONSOLE_PACKET) {
    throw new TransportError('TRANSPORT_TOO_LARGE', `SMP packet of ${packet.length} bytes exceeds the console framing limit of ${MAX_CONSOLE_PACKET}`);
  }
}

function checkLineLength(lineLength: number): number {
  if (!Number.isInteger(lineLength) || lineLength < 7) {
    throw new UsageError(`console line length must be an integer >= 7 (marker + 4 base64 characters + newline), got ${lineLength}`);
  }
  return lineLength;
}

/** Raw (pre-base64) bytes a line of `lineLength` bytes carries in the client form. */
function rawBytesPerLine(lineLength: number): number {
  return ((lineLength - 3) >> 2) * 3;
}

/** LEN ‖ packet ‖ CRC, the byte string the lines carry. */
function frameBody(packet: Uint8Array): Uint8Array {
  const body = new Uint8Array(packet.length + CONSOLE_FRAME_OVERHEAD);
  const len = packet.length + 2;
  body[0] = len >> 8;
  body[1] = len & 0xff;
  body.set(packet, 2);
  const crc = crc16Xmodem(packet);
  body[body.length - 2] = crc >> 8;
  body[body.length - 1] = crc & 0xff;
  return body;
}

/** Number of bytes {@link encodeConsoleFrame} produces for a packet of `packetLength` bytes. */
export function consoleFrameSize(packetLength: number, lineLength = DEFAULT_LINE_LENGTH): number {
  const bodyLength = packetLength + CONSOLE_FRAME_OVERHEAD;
  const lines = Math.ceil(bodyLength / rawBytesPerLine(checkLineLength(lineLength)));
  return lines * 3 + base64EncodedLength(bodyLength);
}

/**
 * Frames one SMP packet as console lines (client form): base64 of LEN‖packet‖CRC, cut into pieces
 * of at most `lineLength - 3` characters (a multiple of 4), the first prefixed with `06 09`, the
 * rest with `04 14`, each ended by `\n`. Returns all lines as one byte array. Zephyr accepts this.
 * Throws TransportError `TRANSPORT_TOO_LARGE` for packets over {@link MAX_CONSOLE_PACKET} bytes.
 */
export function encodeConsoleFrame(packet: Uint8Array, options: ConsoleEncodeOptions = {}): Uint8Array {
  const lineLength = checkLineLength(options.lineLength ?? DEFAULT_LINE_LENGTH);
  checkPacket(packet);
  const body = frameBody(packet);
  const perLine = rawBytesPerLine(lineLength);
  const out = new Uint8Array(consoleFrameSize(packet.length, lineLength));
  let o = 0;
  for (let src = 0; src < body.length; src += perLine) {
    out[o++] = src === 0 ? MARKER_START_1 : MARKER_CONTINUATION_1;
    out[o++] = src === 0 ? MARKER_START_2 : MARKER_CONTINUATION_2;
    o = base64EncodeInto(body, src, Math.min(body.length, src + perLine), out, o);
    out[o++] = LF;
  }
  return out;
}

/**
 * Frames one SMP packet exactly as a Zephyr device does (`mcumgr_serial_tx_pkt`, smp-spec.md
 * §4.1.2), for the device side of this project. With the default `maxFrame` of 127 the first line
 * is at most 127 bytes (93 raw bytes: LEN and 91 packet bytes) and continuation lines at most 123
 * (90 raw bytes); the CRC always travels whole in the last line. `maxFrame` must be at least 15
 * (below that Zephyr's algorithm cannot make progress). Empty packets are refused: Zephyr never
 * sends one (its loop would emit nothing).
 */
export function encodeConsoleFrameZephyr(packet: Uint8Array, maxFrame = ZEPHYR_MAX_FRAME): Uint8Array {
  if (!Number.isInteger(maxFrame) || maxFrame < 15) throw new UsageError(`Zephyr frame length must be an integer >= 15, got ${maxFrame}`);
  if (packet.length === 0) throw new UsageError('cannot frame an empty SMP packet');
  checkPacket(packet);
  const len = packet.length;
  const crc = crc16Xmodem(packet);
  // Per-line budget of raw bytes: (maxFrame - marker - newline) rounded down to whole base64 groups.
  let maxInput = ((maxFrame - 3) >> 2) * 3;
  // Upper bound of the output: every line but the first carries at least maxInput - 6 bytes.
  const lineBound = Math.ceil((len + 4) / Math.max(1, maxInput - 6)) + 2;
  const out = new Uint8Array(lineBound * maxFrame);
  const raw = new Uint8Array(3);
  let o = 0;
  let src = 0;
  let first = true;
  let last = false;
  while (src < len) {
    out[o++] = first ? MARKER_START_1 : MARKER_CONTINUATION_1;
    out[o++] = first ? MARKER_START_2 : MARKER_CONTINUATION_2;
    if (first) {
      raw[0] = (len + 2) >> 8;
      raw[1] = (len + 2) & 0xff;
      raw[2] = packet[0]!;
      o = base64EncodeInto(raw, 0, 3, out, o);
      src = 1;
      // Zephyr takes the LEN triplet out of the budget and never gives it back: continuation
      // lines are three raw bytes (four characters) shorter than the first.
      maxInput -= 3;
    }
    let toProcess = Math.min(maxInput, len - src);
    const reminder = maxInput - (len - src);
    if (reminder === 0 || reminder === 1) {
      // The rest would fit but the CRC would not: hold one byte back to travel with the CRC.
      toProcess -= 1;
      last = false;
    } else if (reminder >= 2) {
      last = true;
    }
    while (toProcess >= 3) {
      o = base64EncodeInto(packet, src, src + 3, out, o);
      src += 3;
      toProcess -= 3;
    }
    if (last) {
      const rest = len - src;
      if (rest === 0) {
        raw[0] = crc >> 8;
        raw[1] = crc & 0xff;
        o = base64EncodeInto(raw, 0, 2, out, o);
      } else if (rest === 1) {
        raw[0] = packet[src++]!;
        raw[1] = crc >> 8;
        raw[2] = crc & 0xff;
        o = base64EncodeInto(raw, 0, 3, out, o);
      } else {
        raw[0] = packet[src++]!;
        raw[1] = packet[src++]!;
        raw[2] = crc >> 8;
        o = base64EncodeInto(raw, 0, 3, out, o);
        raw[0] = crc & 0xff;
        o = base64EncodeInto(raw, 0, 1, out, o);
      }
    }
    out[o++] = LF;
    first = false;
  }
  return out.slice(0, o);
}

/** Why frames and lines were dropped, and what went through. Counters only grow (until reset). */
export interface ConsoleDecoderStats {
  /** Whole SMP packets delivered. */
  packets: number;
  /** Lines without an SMP marker (handed to `onText` when set). */
  textLines: number;
  /** Packets whose CRC did not check. */
  badCrc: number;
  /** SMP lines whose base64 was invalid (the packet in progress is dropped). */
  badBase64: number;
  /** Frames with an impossible LEN, too large for the packet limit, or more data than LEN said. */
  badLength: number;
  /** SMP lines longer than `maxLineLength` (the packet in progress is dropped). */
  lineTooLong: number;
  /** Continuation lines with no packet in progress. */
  orphanContinuation: number;
  /** Packets in progress abandoned because a new first line arrived. */
  interrupted: number;
}

/** Options of {@link ConsoleDecoder}. */
export interface ConsoleDecoderOptions {
  /**
   * Longest SMP line accepted, marker and `\n` included (default 8192, generous for clients that
   * talk to devices built with larger line buffers; a Zephyr device takes {@link ZEPHYR_LINE_BUFFER}).
   * Longer lines are discarded up to their `\n` and the packet in progress is dropped.
   */
  maxLineLength?: number;
  /**
   * Largest SMP packet accepted, header included, without LEN and CRC (default
   * {@link MAX_CONSOLE_PACKET}; a default Zephyr device takes `maxPacketForBuffer(384)` = 380).
   */
  maxPacketLength?: number;
  /** Text lines longer than this are handed over in pieces of this size (default 1024). */
  maxTextLineLength?: number;
  /**
   * Receives each line that is not an SMP frame line (logs, shell input or output), without its
   * terminator. Text lines end at `\n` or `\r` (`\r\n` counts once), as a shell sees them.
   */
  onText?: (line: Uint8Array) => void;
  /**
   * Also recognise a frame marker in the middle of a text line, e.g. after a shell prompt or a log
   * line that lacks its newline; the text before the marker is handed over as a line (default
   * true). Zephyr's own receivers look for markers at the start of a line only; set false to
   * behave exactly like them.
   */
  markersInText?: boolean;
}

const S_LINE_START = 0;
const S_MARKER = 1;
const S_SMP = 2;
const S_DISCARD = 3;
const S_TEXT = 4;
const S_TEXT_MARKER = 5;

/**
 * Incremental decoder of the console framing. Feed it any chunks of the byte stream with
 * {@link ConsoleDecoder.push}; it returns the SMP packets completed by that chunk. The result does
 * not depend on how the stream is split into chunks. `push` never throws (except what `onText`
 * throws, which propagates after the decoder state is consistent).
 */
export class ConsoleDecoder extends SmpStreamDecoder<ConsoleDecoderStats> {
  readonly stats: ConsoleDecoderStats = newStats();

  private readonly maxContent: number;
  private readonly maxText: number;
  private readonly onText: ((line: Uint8Array) => void) | undefined;
  private readonly markersInText: boolean;

  private state = S_LINE_START;
  /** The previous line ended with `\r`: a `\n` right after it is part of the same terminator. */
  private afterCR = false;
  private marker1 = 0;
  private lineIsStart = false;
  private readonly line: Uint8Array;
  private lineLength = 0;
  private readonly scratch: Uint8Array;
  private readonly text: Uint8Array;
  private textLength = 0;
  /** The packet in progress: LEN bytes (packet + CRC), `filled` of them received. */
  private body: Uint8Array | null = null;
  private filled = 0;

  constructor(options: ConsoleDecoderOptions = {}) {
    super(options.maxPacketLength, { min: 0, max: MAX_CONSOLE_PACKET });
    const maxLine = options.maxLineLength ?? 8192;
    if (!Number.isInteger(maxLine) || maxLine < 7) throw new UsageError(`maxLineLength must be an integer >= 7, got ${maxLine}`);
    const maxText = options.maxTextLineLength ?? 1024;
    if (!Number.isInteger(maxText) || maxText < 1) throw new UsageError(`maxTextLineLength must be a positive integer, got ${maxText}`);
    this.maxContent = maxLine - 3;
    this.maxText = maxText;
    this.onText = options.onText;
    this.markersInText = options.markersInText ?? true;
    this.line = new Uint8Array(this.maxContent);
    this.scratch = new Uint8Array(base64MaxDecodedLength(this.maxContent));
    this.text = new Uint8Array(options.onText ? maxText : 0);
  }

  get pending(): boolean {
    return this.body !== null;
  }

  /** Forgets any partial line and packet (for an input timeout or a reopened port). Counters stay. */
  reset(): void {
    this.state = S_LINE_START;
    this.afterCR = false;
    this.lineLength = 0;
    this.textLength = 0;
    this.body = null;
    this.filled = 0;
  }

  protected consume(chunk: Uint8Array, packets: Uint8Array[]): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case S_LINE_START: {
          const b = chunk[i]!;
          if (this.afterCR) {
            this.afterCR = false;
            if (b === LF) {
              i++;
              break;
            }
          }
          if (b === MARKER_START_1 || b === MARKER_CONTINUATION_1) {
            this.marker1 = b;
            this.state = S_MARKER;
            i++;
          } else {
            this.state = S_TEXT;
            this.textLength = 0;
          }
          break;
        }
        case S_MARKER: {
          const b = chunk[i]!;
          if ((this.marker1 === MARKER_START_1 && b === MARKER_START_2) || (this.marker1 === MARKER_CONTINUATION_1 && b === MARKER_CONTINUATION_2)) {
            this.state = S_SMP;
            this.lineIsStart = this.marker1 === MARKER_START_1;
            this.lineLength = 0;
            i++;
          } else {
            // Not a marker after all: the first byte starts a text line; `b` is looked at again.
            this.state = S_TEXT;
            this.textLength = 0;
            this.appendText(this.marker1);
          }
          break;
        }
        case S_SMP: {
          const lf = chunk.indexOf(LF, i);
          const end = lf < 0 ? n : lf;
          const count = end - i;
          if (this.lineLength + count > this.maxContent) {
            this.stats.lineTooLong++;
            this.dropPacket();
            this.lineLength = 0;
            if (lf < 0) {
              this.state = S_DISCARD;
              i = n;
            } else {
              this.state = S_LINE_START;
              i = lf + 1;
            }
            break;
          }
          this.line.set(chunk.subarray(i, end), this.lineLength);
          this.lineLength += count;
          if (lf < 0) {
            i = n;
            break;
          }
          i = lf + 1;
          this.state = S_LINE_START;
          const packet = this.finishSmpLine();
          if (packet) packets.push(packet);
          break;
        }
        case S_DISCARD: {
          const lf = chunk.indexOf(LF, i);
          if (lf < 0) {
            i = n;
          } else {
            i = lf + 1;
            this.state = S_LINE_START;
          }
          break;
        }
        case S_TEXT_MARKER: {
          const b = chunk[i]!;
          if ((this.marker1 === MARKER_START_1 && b === MARKER_START_2) || (this.marker1 === MARKER_CONTINUATION_1 && b === MARKER_CONTINUATION_2)) {
            // A frame starts in the middle of a text line: the text so far is a line of its own.
            this.finishText();
            this.state = S_SMP;
            this.lineIsStart = this.marker1 === MARKER_START_1;
            this.lineLength = 0;
            i++;
          } else {
            this.appendText(this.marker1);
            this.state = S_TEXT;
          }
          break;
        }
        default: {
          // S_TEXT: up to the next CR or LF (or marker byte, when markers are looked for in text).
          let j = i;
          const markers = this.markersInText;
          while (j < n) {
            const b = chunk[j]!;
            if (b === LF || b === CR || (markers && (b === MARKER_START_1 || b === MARKER_CONTINUATION_1))) break;
            j++;
          }
          if (this.onText) {
            for (let k = i; k < j; k++) this.appendText(chunk[k]!);
          }
          if (j === n) {
            i = n;
            break;
          }
          const end = chunk[j]!;
          if (end !== LF && end !== CR) {
            this.marker1 = end;
            this.state = S_TEXT_MARKER;
            i = j + 1;
            break;
          }
          this.afterCR = end === CR;
          this.state = S_LINE_START;
          i = j + 1;
          this.finishText();
          break;
        }
      }
    }
  }

  private appendText(b: number): void {
    if (!this.onText) return;
    if (this.textLength === this.maxText) {
      // Hand over a full piece and keep going: bounded memory, nothing lost.
      const piece = this.text.slice(0, this.textLength);
      this.textLength = 0;
      this.onText(piece);
    }
    this.text[this.textLength++] = b;
  }

  private finishText(): void {
    this.stats.textLines++;
    if (!this.onText) return;
    const line = this.text.slice(0, this.textLength);
    this.textLength = 0;
    this.onText(line);
  }

  private dropPacket(): void {
    this.body = null;
    this.filled = 0;
  }

  /** A whole SMP line is in `line`: decode it into the packet in progress. */
  private finishSmpLine(): Uint8Array | undefined {
    let end = this.lineLength;
    this.lineLength = 0;
    if (end > 0 && this.line[end - 1] === CR) end--;
    if (this.lineIsStart) {
      if (this.body) {
        this.stats.interrupted++;
        this.dropPacket();
      }
      const n = base64DecodeInto(this.line, 0, end, this.scratch, 0);
      if (n < 0) {
        // `scratch` holds any line that fits `maxLineLength`, so the only failure is bad base64.
        this.stats.badBase64++;
        return undefined;
      }
      if (n < 2) {
        this.stats.badLength++;
        return undefined;
      }
      const len = (this.scratch[0]! << 8) | this.scratch[1]!;
      if (len < 2 || len - 2 > this.maxPacketLength || n - 2 > len) {
        this.stats.badLength++;
        return undefined;
      }
      this.body = new Uint8Array(len);
      this.body.set(this.scratch.subarray(2, n));
      this.filled = n - 2;
    } else {
      if (!this.body) {
        this.stats.orphanContinuation++;
        return undefined;
      }
      const n = base64DecodeInto(this.line, 0, end, this.body, this.filled);
      if (n < 0) {
        if (n === BASE64_INVALID) this.stats.badBase64++;
        else this.stats.badLength++; // more data than LEN announced
        this.dropPacket();
        return undefined;
      }
      this.filled += n;
    }
    const body = this.body;
    if (this.filled < body.length) return undefined;
    this.dropPacket();
    if (crc16Xmodem(body) !== 0) {
      this.stats.badCrc++;
      return undefined;
    }
    this.stats.packets++;
    return body.subarray(0, body.length - 2);
  }
}

function newStats(): ConsoleDecoderStats {
  return { packets: 0, textLines: 0, badCrc: 0, badBase64: 0, badLength: 0, lineTooLong: 0, orphanContinuation: 0, interrupted: 0 };
}
