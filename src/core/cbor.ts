/**
 * CBOR (RFC 8949) for SMP payloads.
 *
 * Why our own codec: measured on SMP payloads (see README "CBOR codec choice" and
 * `npm run bench`), cbor2 encodes an echo request at ~28 k ops/s, which alone would cap echo
 * round trips below the project's target; cbor-x is fast but cannot decode indefinite-length
 * byte/text strings (legal CBOR, and Zephyr's zcbor may emit indefinite containers), emits
 * non-preferred floats, tags Uint8Array as typed arrays unless told not to, returns Node Buffers and
 * has no depth limit for untrusted input. This codec does exactly what SMP needs and nothing else;
 * cbor2 serves as the reference implementation in the differential fuzz tests.
 *
 * Encoding: definite lengths, preferred (shortest) serialization for integers, lengths and floats;
 * object keys in insertion order; `undefined` object properties are left out.
 *
 * Decoding: definite and indefinite lengths for every major type; maps with text keys become plain
 * objects (a `__proto__` key is stored as an own property), any other key makes a `Map`; integers
 * beyond 2^53 become bigint; tags become {@link CborTag}; text is strict UTF-8. Untrusted input is
 * bounded: nesting depth, declared lengths checked against the bytes present (no huge allocations),
 * duplicate keys optionally rejected. Every failure is a ProtocolError (`PROTOCOL_BAD_CBOR` or
 * `PROTOCOL_CBOR_LIMIT`), never anything else.
 */
import { ProtocolError } from './errors.ts';

/** A tagged data item (major type 6). */
export class CborTag {
  constructor(
    readonly tag: number | bigint,
    readonly value: unknown,
  ) {}
}

/** A simple value other than false/true/null/undefined (major type 7, values 0-19 and 32-255). */
export class CborSimple {
  constructor(readonly value: number) {}
}

export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | undefined
  | Uint8Array
  | CborTag
  | CborSimple
  | readonly CborValue[]
  | ReadonlyMap<CborValue, CborValue>
  | { readonly [key: string]: CborValue };

// ---------------------------------------------------------------------------------------------
// Encoder

class Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }
  head(major: number, n: number): void {
    const m = major << 5;
    if (n < 24) {
      this.ensure(1);
      this.buf[this.pos++] = m | n;
    } else if (n < 0x100) {
      this.ensure(2);
      this.buf[this.pos++] = m | 24;
      this.buf[this.pos++] = n;
    } else if (n < 0x10000) {
      this.ensure(3);
      this.buf[this.pos++] = m | 25;
      this.buf[this.pos++] = n >> 8;
      this.buf[this.pos++] = n & 0xff;
    } else if (n < 0x100000000) {
      this.ensure(5);
      this.buf[this.pos++] = m | 26;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    } else {
      this.ensure(9);
      this.buf[this.pos++] = m | 27;
      this.view.setBigUint64(this.pos, BigInt(n));
      this.pos += 8;
    }
  }
  headBig(major: number, n: bigint): void {
    if (n <= 0xffffffffn) return this.head(major, Number(n));
    this.ensure(9);
    this.buf[this.pos++] = (major << 5) | 27;
    this.view.setBigUint64(this.pos, n);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  text(s: string): void {
    // ASCII fast path; falls back to TextEncoder for anything else.
    const n = s.length;
    if (n < 64) {
      let ascii = true;
      for (let i = 0; i < n; i++) {
        if (s.charCodeAt(i) > 0x7f) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        this.head(3, n);
        this.ensure(n);
        for (let i = 0; i < n; i++) this.buf[this.pos++] = s.charCodeAt(i);
        return;
      }
    }
    const encoded = textEncoder.encode(s);
    this.head(3, encoded.length);
    this.bytes(encoded);
  }
}

const textEncoder = new TextEncoder();
const f32 = new Float32Array(1);

/** Float16 bits for `v` when representable exactly, else -1. */
function toHalf(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  if (v === Infinity) return 0x7c00;
  if (v === -Infinity) return 0xfc00;
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const exp = Math.floor(Math.log2(a));
  if (exp >= -14 && exp <= 15) {
    const mant = a / 2 ** exp - 1; // [0,1)
    const m = mant * 1024;
    if (Number.isInteger(m) && 2 ** exp * (1 + m / 1024) === a) return sign | ((exp + 15) << 10) | m;
    return -1;
  }
  if (exp < -14 && exp >= -24) {
    const m = a / 2 ** -24;
    if (Number.isInteger(m)) return sign | m;
  }
  return -1;
}

function encodeFloat(w: Writer, v: number): void {
  const half = toHalf(v);
  if (half >= 0) {
    w.ensure(3);
    w.buf[w.pos++] = 0xf9;
    w.buf[w.pos++] = half >> 8;
    w.buf[w.pos++] = half & 0xff;
    return;
  }
  f32[0] = v;
  if (f32[0] === v) {
    w.ensure(5);
    w.buf[w.pos++] = 0xfa;
    w.view.setFloat32(w.pos, v);
    w.pos += 4;
    return;
  }
  w.ensure(9);
  w.buf[w.pos++] = 0xfb;
  w.view.setFloat64(w.pos, v);
  w.pos += 8;
}

const MAX_ENCODE_DEPTH = 256;

function encodeItem(w: Writer, v: unknown, depth: number, indef = false): void {
  if (depth > MAX_ENCODE_DEPTH) throw new RangeError('CBOR encode: value nested too deeply (cycle?)');
  switch (typeof v) {
    case 'number':
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
        if (v >= 0) w.head(0, v);
        else w.head(1, -1 - v);
      } else encodeFloat(w, v); // beyond 2^53 a number is a float; pass a bigint for an exact integer
      return;
    case 'string':
      w.text(v);
      return;
    case 'boolean':
      w.byte(v ? 0xf5 : 0xf4);
      return;
    case 'undefined':
      w.byte(0xf7);
      return;
    case 'bigint':
      if (v >= 0n) {
        if (v > 0xffffffffffffffffn) throw new RangeError('CBOR encode: bigint out of 64-bit range');
        w.headBig(0, v);
      } else {
        if (v < -0x10000000000000000n) throw new RangeError('CBOR encode: bigint out of 64-bit range');
        w.headBig(1, -1n - v);
      }
      return;
    case 'object':
      break;
    default:
      throw new TypeError(`CBOR encode: cannot encode a ${typeof v}`);
  }
  if (v === null) {
    w.byte(0xf6);
  } else if (v instanceof Uint8Array) {
    w.head(2, v.length);
    w.bytes(v);
  } else if (Array.isArray(v)) {
    if (indef) w.byte(0x9f);
    else w.head(4, v.length);
    for (const item of v) encodeItem(w, item, depth + 1, indef);
    if (indef) w.byte(0xff);
  } else if (v instanceof Map) {
    if (indef) w.byte(0xbf);
    else w.head(5, v.size);
    for (const [k, item] of v) {
      encodeItem(w, k, depth + 1, indef);
      encodeItem(w, item, depth + 1, indef);
    }
    if (indef) w.byte(0xff);
  } else if (v instanceof CborTag) {
    if (typeof v.tag === 'bigint') w.headBig(6, v.tag);
    else w.head(6, v.tag);
    encodeItem(w, v.value, depth + 1, indef);
  } else if (v instanceof CborSimple) {
    if (v.value < 24) w.byte(0xe0 | v.value);
    else {
      w.byte(0xf8);
      w.byte(v.value);
    }
  } else if (ArrayBuffer.isView(v)) {
    throw new TypeError('CBOR encode: only Uint8Array is encoded as a byte string');
  } else {
    const obj = v as Record<string, unknown>;
    if (indef) w.byte(0xbf);
    else {
      let n = 0;
      for (const k in obj) if (Object.hasOwn(obj, k) && obj[k] !== undefined) n++;
      w.head(5, n);
    }
    for (const k in obj) {
      if (!Object.hasOwn(obj, k)) continue;
      const item = obj[k];
      if (item === undefined) continue;
      w.text(k);
      encodeItem(w, item, depth + 1, indef);
    }
    if (indef) w.byte(0xff);
  }
}

export interface CborEncodeOptions {
  /**
   * Write maps and arrays with indefinite length (`BF … FF`, `9F … FF`), as Zephyr's zcbor does
   * unless built with CONFIG_ZCBOR_CANONICAL. Default false: definite lengths.
   */
  indefinite?: boolean;
}

/** Encodes a value with preferred serialization; definite lengths unless told otherwise. */
/**
 * The writer every encode starts with: encoding is synchronous, so one buffer serves them all and
 * grows only until it has held the largest message (an image chunk costs no regrowth per call).
 * A writer grown past {@link SHARED_WRITER_MAX} is not kept.
 */
let sharedWriter: Writer | undefined;
const SHARED_WRITER_MAX = 128 * 1024;

export function encodeCbor(value: unknown, options?: CborEncodeOptions): Uint8Array {
  // Taken while in use: an encode that started inside another (it cannot today) gets its own.
  const w = sharedWriter ?? new Writer(256);
  sharedWriter = undefined;
  w.pos = 0;
  try {
    encodeItem(w, value, 0, options?.indefinite ?? false);
    return w.buf.slice(0, w.pos);
  } finally {
    if (w.buf.length <= SHARED_WRITER_MAX) sharedWriter = w;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoder

export interface CborDecodeOptions {
  /** Maximum nesting of arrays, maps and tags. Default 32. */
  maxDepth?: number;
  /** Reject a map that repeats a key (as Zephyr's zcbor_bulk does for request fields). Default false: last wins. */
  rejectDuplicateKeys?: boolean;
  /** Allow bytes after the first data item. Default false. */
  allowTrailing?: boolean;
}

const BREAK = Symbol('break');
const textDecoder = new TextDecoder('utf-8', { fatal: true });

function bad(message: string, pos: number): ProtocolError {
  return new ProtocolError('PROTOCOL_BAD_CBOR', `bad CBOR at byte ${pos}: ${message}`);
}

class Reader {
  pos = 0;
  readonly view: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly maxDepth: number,
    readonly rejectDup: boolean,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw bad(`truncated (need ${n} more bytes)`, this.pos);
  }

  /** Takes the next `n` bytes (a fixed-size number); returns where they start. */
  take(n: number): number {
    this.need(n);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** Reads the argument of a head; returns -1 for indefinite length (ai 31). */
  arg(ai: number, start: number): number | bigint {
    if (ai < 24) return ai;
    switch (ai) {
      case 24:
        this.need(1);
        return this.buf[this.pos++]!;
      case 25:
        return this.view.getUint16(this.take(2));
      case 26:
        return this.view.getUint32(this.take(4));
      case 27: {
        const v = this.view.getBigUint64(this.take(8));
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 31:
        return -1;
      default:
        throw bad(`reserved additional information ${ai}`, start);
    }
  }

  /** A length for strings, arrays and maps: must fit in the bytes that remain. */
  length(ai: number, start: number, minBytesPerItem: number): number {
    const n = this.arg(ai, start);
    if (n === -1) return -1;
    if (typeof n === 'bigint' || n * minBytesPerItem > this.buf.length - this.pos) {
      throw new ProtocolError('PROTOCOL_CBOR_LIMIT', `CBOR length ${n} at byte ${start} exceeds the ${this.buf.length - this.pos} bytes left`);
    }
    return n;
  }

  text(n: number, start: number): string {
    this.need(n);
    const b = this.buf;
    const p = this.pos;
    this.pos += n;
    if (n < 32) {
      let s = '';
      for (let i = p; i < p + n; i++) {
        const c = b[i]!;
        if (c > 0x7f) return this.utf8(p, n, start);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return this.utf8(p, n, start);
  }

  utf8(p: number, n: number, start: number): string {
    try {
      return textDecoder.decode(this.buf.subarray(p, p + n));
    } catch {
      throw bad('invalid UTF-8 in text string', start);
    }
  }

  item(depth: number): unknown {
    const start = this.pos;
    this.need(1);
    const ib = this.buf[this.pos++]!;
    const major = ib >> 5;
    const ai = ib & 0x1f;
    switch (major) {
      case 0: {
        if (ai === 31) throw bad('indefinite length on an integer', start);
        return this.arg(ai, start);
      }
      case 1: {
        if (ai === 31) throw bad('indefinite length on an integer', start);
        const n = this.arg(ai, start);
        if (typeof n === 'bigint') return -1n - n;
        const neg = -1 - n;
        return Number.isSafeInteger(neg) ? neg : -1n - BigInt(n);
      }
      case 2: {
        const n = this.length(ai, start, 1);
        if (n >= 0) {
          const out = this.buf.slice(this.pos, this.pos + n);
          this.pos += n;
          return out;
        }
        return this.chunks(2, start, depth);
      }
      case 3: {
        const n = this.length(ai, start, 1);
        if (n >= 0) return this.text(n, start);
        return this.chunks(3, start, depth);
      }
      case 4: {
        if (depth >= this.maxDepth) throw new ProtocolError('PROTOCOL_CBOR_LIMIT', `CBOR nested deeper than ${this.maxDepth}`);
        const n = this.length(ai, start, 1);
        const out: unknown[] = [];
        if (n >= 0) {
          for (let i = 0; i < n; i++) out.push(this.item(depth + 1));
        } else {
          for (;;) {
            const v = this.itemOrBreak(depth + 1);
            if (v === BREAK) break;
            out.push(v);
          }
        }
        return out;
      }
      case 5: {
        if (depth >= this.maxDepth) throw new ProtocolError('PROTOCOL_CBOR_LIMIT', `CBOR nested deeper than ${this.maxDepth}`);
        const n = this.length(ai, start, 2);
        return this.map(n, start, depth);
      }
      case 6: {
        if (ai === 31) throw bad('indefinite length on a tag', start);
        if (depth >= this.maxDepth) throw new ProtocolError('PROTOCOL_CBOR_LIMIT', `CBOR nested deeper than ${this.maxDepth}`);
        const tag = this.arg(ai, start);
        return new CborTag(tag, this.item(depth + 1));
      }
      default:
        return this.simple(ai, start);
    }
  }

  itemOrBreak(depth: number): unknown {
    this.need(1);
    if (this.buf[this.pos] === 0xff) {
      this.pos++;
      return BREAK;
    }
    return this.item(depth);
  }

  chunks(major: 2 | 3, start: number, _depth: number): Uint8Array | string {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      this.need(1);
      const ib = this.buf[this.pos]!;
      if (ib === 0xff) {
        this.pos++;
        break;
      }
      if (ib >> 5 !== major || (ib & 0x1f) === 31) throw bad('bad chunk inside an indefinite-length string', this.pos);
      const cstart = this.pos++;
      const n = this.length(ib & 0x1f, cstart, 1);
      parts.push(this.buf.subarray(this.pos, this.pos + n));
      this.pos += n;
      total += n;
    }
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    if (major === 2) return out;
    try {
      return textDecoder.decode(out);
    } catch {
      throw bad('invalid UTF-8 in text string', start);
    }
  }

  map(n: number, start: number, depth: number): unknown {
    let obj: Record<string, unknown> | null = {};
    let map: Map<unknown, unknown> | null = null;
    const put = (k: unknown, v: unknown): void => {
      if (obj !== null && typeof k === 'string') {
        if (Object.hasOwn(obj, k)) {
          if (this.rejectDup) throw bad(`duplicate map key ${JSON.stringify(k)}`, start);
        }
        if (k === '__proto__') Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
        else obj[k] = v;
        return;
      }
      if (map === null) {
        map = new Map(Object.entries(obj ?? {}));
        obj = null;
      }
      if (this.rejectDup && map.has(k)) throw bad('duplicate map key', start);
      map.set(k, v);
    };
    if (n >= 0) {
      for (let i = 0; i < n; i++) {
        const k = this.item(depth + 1);
        put(k, this.item(depth + 1));
      }
    } else {
      for (;;) {
        const k = this.itemOrBreak(depth + 1);
        if (k === BREAK) break;
        put(k, this.item(depth + 1));
      }
    }
    return map ?? obj;
  }

  simple(ai: number, start: number): unknown {
    switch (ai) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 24: {
        this.need(1);
        const v = this.buf[this.pos++]!;
        if (v < 32) throw bad(`simple value ${v} in two-byte form`, start);
        return new CborSimple(v);
      }
      case 25:
        return half(this.view.getUint16(this.take(2)));
      case 26:
        return this.view.getFloat32(this.take(4));
      case 27:
        return this.view.getFloat64(this.take(8));
      case 31:
        throw bad('unexpected break', start);
      default:
        if (ai < 20) return new CborSimple(ai);
        throw bad(`reserved simple value encoding ${ai}`, start);
    }
  }
}

/** IEEE 754 half precision to a number, exactly (Node 20 has no DataView.getFloat16). */
function half(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Decodes one CBOR data item. The result is `unknown`: validate it before use. Throws only
 * ProtocolError (`PROTOCOL_BAD_CBOR`, `PROTOCOL_CBOR_LIMIT`).
 */
export function decodeCbor(bytes: Uint8Array, options: CborDecodeOptions = {}): unknown {
  const r = new Reader(bytes, options.maxDepth ?? 32, options.rejectDuplicateKeys ?? false);
  const value = r.item(0);
  if (!options.allowTrailing && r.pos !== bytes.length) throw bad(`${bytes.length - r.pos} trailing bytes after the data item`, r.pos);
  return value;
}

/** Decodes one item and returns it with the number of bytes it used. */
export function decodeCborPrefix(bytes: Uint8Array, options: CborDecodeOptions = {}): { value: unknown; length: number } {
  const r = new Reader(bytes, options.maxDepth ?? 32, options.rejectDuplicateKeys ?? false);
  const value = r.item(0);
  return { value, length: r.pos };
}

/** True for a plain decoded CBOR map with text keys (what SMP payloads are). */
export function isCborMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map) && !(v instanceof CborTag) && !(v instanceof CborSimple);
}
