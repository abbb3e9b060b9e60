/**
 * Framing for byte-stream links (portable: Uint8Array only). Serial console framing (smp-spec.md
 * §4.1), the raw UART packetizer (§4.2), and their building blocks, CRC-16/XMODEM and base64.
 */
export { crc16Xmodem } from './crc16.ts';
export {
  base64Decode,
  base64DecodeInto,
  base64Encode,
  base64EncodedLength,
  base64EncodeInto,
  base64MaxDecodedLength,
  BASE64_INVALID,
  BASE64_NO_ROOM,
} from './base64.ts';
export {
  CONSOLE_FRAME_OVERHEAD,
  ConsoleDecoder,
  consoleFrameSize,
  DEFAULT_LINE_LENGTH,
  encodeConsoleFrame,
  encodeConsoleFrameZephyr,
  MARKER_CONTINUATION_1,
  MARKER_CONTINUATION_2,
  MARKER_START_1,
  MARKER_START_2,
  MAX_CONSOLE_PACKET,
  maxPacketForBuffer,
  ZEPHYR_LINE_BUFFER,
  ZEPHYR_MAX_FRAME,
  ZEPHYR_NETBUF_SIZE,
} from './console.ts';
export type { ConsoleDecoderOptions, ConsoleDecoderStats, ConsoleEncodeOptions } from './console.ts';
export { encodeRawPacket, MAX_RAW_PACKET, RawPacketDecoder } from './raw.ts';
export { SmpStreamDecoder } from './stream-decoder.ts';
export type { RawDecoderOptions, RawDecoderStats } from './raw.ts';
