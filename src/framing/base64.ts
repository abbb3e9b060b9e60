/**
 * Base64 (RFC 4648 §4: standard alphabet `A–Z a–z 0–9 + /`, `=` padding) on Uint8Array, without
 * Buffer or atob. The serial console framing (smp-spec.md §4.1.1) base64-encodes each line
 * independently, so the byte-level functions ({@link base64EncodeInto}, {@link base64DecodeInto})
 * work on ASCII bytes in place and allocate nothing.
 *
 * Decoding is strict about everything that can hide a transmission error: the text length must be
 * a multiple of 4, only alphabet characters are allowed, and `=` may appear only as the last one or
 * two characters. Like Zephyr's `base64_decode` (lib/utils/base64.c, mbedTLS-derived, read for this
 * project) the unused low bits of the last character before padding are not checked: `QR==` and
 * `QQ==` both decode to "A". Zephyr additionally tolerates spaces and CR/LF; the line framing
 * strips the line terminator before decoding, and nothing else is accepted here.
 */
import { ProtocolError } from '../core/errors.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const PAD = 0x3d; // '='

/** 6-bit value → ASCII code. */
const ENCODE: Uint8Array = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));

/** ASCII code → 6-bit value, 0xff for anything outside the alphabet (including '='). */
const DECODE: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(0xff);
  for (let i = 0; i < 64; i++) t[ENCODE[i]!] = i;
  return t;
})();

/** Result of {@link base64DecodeInto} when the text is not valid base64. */
export const BASE64_INVALID = -1;
/** Result of {@link base64DecodeInto} when the output does not have room for the decoded bytes. */
export const BASE64_NO_ROOM = -2;

/** Number of base64 characters for `byteLength` bytes (with padding). */
export function base64EncodedLength(byteLength: number): number {
  return Math.ceil(byteLength / 3) * 4;
}

/**
 * Encodes `src[start..end)` as base64 ASCII bytes into `out` at `outOffset`; returns the offset just
 * past the written text. `out` must have room for `base64EncodedLength(end - start)` bytes.
 */
export function base64EncodeInto(src: Uint8Array, start: number, end: number, out: Uint8Array, outOffset: number): number {
  let o = outOffset;
  let i = start;
  const whole = start + Math.floor((end - start) / 3) * 3;
  for (; i < whole; i += 3) {
    const n = (src[i]! << 16) | (src[i + 1]! << 8) | src[i + 2]!;
    out[o] = ENCODE[n >>> 18]!;
    out[o + 1] = ENCODE[(n >>> 12) & 63]!;
    out[o + 2] = ENCODE[(n >>> 6) & 63]!;
    out[o + 3] = ENCODE[n & 63]!;
    o += 4;
  }
  const rest = end - i;
  if (rest === 1) {
    const n = src[i]! << 16;
    out[o] = ENCODE[n >>> 18]!;
    out[o + 1] = ENCODE[(n >>> 12) & 63]!;
    out[o + 2] = PAD;
    out[o + 3] = PAD;
    o += 4;
  } else if (rest === 2) {
    const n = (src[i]! << 16) | (src[i + 1]! << 8);
    out[o] = ENCODE[n >>> 18]!;
    out[o + 1] = ENCODE[(n >>> 12) & 63]!;
    out[o + 2] = ENCODE[(n >>> 6) & 63]!;
    out[o + 3] = PAD;
    o += 4;
  }
  return o;
}

/** Encodes bytes as a base64 string (standard alphabet, padded). */
export function base64Encode(bytes: Uint8Array): string {
  const out = new Uint8Array(base64EncodedLength(bytes.length));
  base64EncodeInto(bytes, 0, bytes.length, out, 0);
  let s = '';
  // String.fromCharCode on bounded slices: fast and stays under engine argument limits.
  for (let i = 0; i < out.length; i += 8192) s += String.fromCharCode(...out.subarray(i, i + 8192));
  return s;
}

/**
 * Decodes the base64 ASCII bytes `src[start..end)` into `out` at `outOffset`. Returns the number
 * of bytes written, {@link BASE64_INVALID} if the text is not strict base64, or
 * {@link BASE64_NO_ROOM} if `out` is too small (nothing useful is written in either case).
 * Never throws.
 */
export function base64DecodeInto(src: Uint8Array, start: number, end: number, out: Uint8Array, outOffset: number): number {
  const len = end - start;
  if (len < 0 || len % 4 !== 0) return BASE64_INVALID;
  if (len === 0) return 0;
  let pad = 0;
  if (src[end - 1] === PAD) pad = src[end - 2] === PAD ? 2 : 1;
  const outLen = (len / 4) * 3 - pad;
  if (outOffset < 0 || outOffset + outLen > out.length) return BASE64_NO_ROOM;
  let o = outOffset;
  const fullEnd = pad === 0 ? end : end - 4;
  for (let i = start; i < fullEnd; i += 4) {
    const a = DECODE[src[i]!]!;
    const b = DECODE[src[i + 1]!]!;
    const c = DECODE[src[i + 2]!]!;
    const d = DECODE[src[i + 3]!]!;
    if ((a | b | c | d) === 0xff) return BASE64_INVALID; // any 0xff operand makes the OR 0xff
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o] = n >>> 16;
    out[o + 1] = (n >>> 8) & 0xff;
    out[o + 2] = n & 0xff;
    o += 3;
  }
  if (pad !== 0) {
    const i = end - 4;
    const a = DECODE[src[i]!]!;
    const b = DECODE[src[i + 1]!]!;
    if (a === 0xff || b === 0xff) return BASE64_INVALID;
    if (pad === 1) {
      const c = DECODE[src[i + 2]!]!;
      if (c === 0xff) return BASE64_INVALID;
      const n = (a << 18) | (b << 12) | (c << 6);
      out[o] = n >>> 16;
      out[o + 1] = (n >>> 8) & 0xff;
      o += 2;
    } else {
      out[o] = ((a << 18) | (b << 12)) >>> 16;
      o += 1;
    }
  }
  return o - outOffset;
}

/** Upper bound of the decoded size of `textLength` base64 characters. */
export function base64MaxDecodedLength(textLength: number): number {
  return Math.floor(textLength / 4) * 3;
}

/**
 * Decodes strict base64 (a string or ASCII bytes). Throws ProtocolError `PROTOCOL_BAD_FRAME` with
 * the reason when the input is not valid base64.
 */
export function base64Decode(text: string | Uint8Array): Uint8Array {
  let src: Uint8Array;
  if (typeof text === 'string') {
    src = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) throw new ProtocolError('PROTOCOL_BAD_FRAME', `invalid base64: non-ASCII character U+${c.toString(16).padStart(4, '0')} at offset ${i}`);
      src[i] = c;
    }
  } else {
    src = text;
  }
  if (src.length % 4 !== 0) {
    throw new ProtocolError('PROTOCOL_BAD_FRAME', `invalid base64: length ${src.length} is not a multiple of 4`);
  }
  const out = new Uint8Array(base64MaxDecodedLength(src.length));
  const n = base64DecodeInto(src, 0, src.length, out, 0);
  if (n < 0) throw new ProtocolError('PROTOCOL_BAD_FRAME', `invalid base64: ${describeInvalid(src)}`);
  return n === out.length ? out : out.slice(0, n);
}

/** Names the first offending character for an error message. */
function describeInvalid(src: Uint8Array): string {
  const padStart = src.length - (src[src.length - 1] === PAD ? (src[src.length - 2] === PAD ? 2 : 1) : 0);
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (i >= padStart) continue;
    if (DECODE[c] === 0xff) {
      const shown = c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `0x${c.toString(16).padStart(2, '0')}`;
      return `character ${shown} at offset ${i}`;
    }
  }
  return 'misplaced padding';
}
