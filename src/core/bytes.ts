/** Byte helpers for the portable layers: Uint8Array only. */

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes: Uint8Array, separator = ''): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) {
    if (i > 0 && separator) s += separator;
    s += HEX[bytes[i]!];
  }
  return s;
}

/** Parses hex, ignoring spaces, colons and a leading 0x. Throws RangeError on bad input. */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new RangeError(`not a hex string: ${JSON.stringify(text)}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}
/** Strict UTF-8 decoding: throws TypeError on invalid sequences. */
export function utf8Decode(b: Uint8Array): string {
  return decoder.decode(b);
}
