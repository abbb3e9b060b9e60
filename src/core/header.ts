/**
 * The 8-byte SMP header (smp-spec.md §1.1), big-endian:
 *
 *   byte 0: res(3) | version(2) | op(3)   byte 1: flags   bytes 2-3: payload length
 *   bytes 4-5: group                      byte 6: sequence  byte 7: command id
 */
import { ProtocolError } from './errors.ts';

export const HEADER_SIZE = 8;

export const Op = { READ: 0, READ_RSP: 1, WRITE: 2, WRITE_RSP: 3 } as const;
export type OpCode = (typeof Op)[keyof typeof Op];

/** SMP protocol versions carried in the header: 0 = v1 (legacy `rc`), 1 = v2 (`err{group,rc}`). */
export type SmpVersion = 0 | 1;

export interface SmpHeader {
  op: OpCode;
  /** 0 = SMP v1, 1 = SMP v2; 2 and 3 are reserved (a server answers them with rc 13). */
  version: number;
  flags: number;
  /** Payload length in bytes (the header is not counted). */
  length: number;
  group: number;
  seq: number;
  id: number;
}

export function encodeHeader(h: SmpHeader, out: Uint8Array = new Uint8Array(HEADER_SIZE), offset = 0): Uint8Array {
  if (!Number.isInteger(h.op) || h.op < 0 || h.op > 3) throw new RangeError(`op must be 0-3, got ${h.op}`);
  if (!Number.isInteger(h.version) || h.version < 0 || h.version > 3) throw new RangeError(`version must be 0-3, got ${h.version}`);
  checkRange('length', h.length, 0xffff);
  checkRange('group', h.group, 0xffff);
  checkRange('seq', h.seq, 0xff);
  checkRange('id', h.id, 0xff);
  checkRange('flags', h.flags, 0xff);
  out[offset] = (h.version << 3) | h.op;
  out[offset + 1] = h.flags;
  out[offset + 2] = h.length >> 8;
  out[offset + 3] = h.length & 0xff;
  out[offset + 4] = h.group >> 8;
  out[offset + 5] = h.group & 0xff;
  out[offset + 6] = h.seq;
  out[offset + 7] = h.id;
  return out;
}

function checkRange(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be an integer 0-${max}, got ${v}`);
}

/** A header as it stands on the wire: `op` may be one of the reserved 4-7, which a server answers with rc 8. */
export interface WireSmpHeader extends Omit<SmpHeader, 'op'> {
  op: number;
}

/**
 * Decodes the header at `offset` without judging its op (reserved bits are ignored, as Zephyr
 * does). Throws ProtocolError PROTOCOL_BAD_HEADER when fewer than 8 bytes remain.
 */
export function decodeWireHeader(bytes: Uint8Array, offset = 0): WireSmpHeader {
  if (bytes.length - offset < HEADER_SIZE) {
    throw new ProtocolError('PROTOCOL_BAD_HEADER', `truncated SMP header: ${Math.max(0, bytes.length - offset)} of 8 bytes`);
  }
  const b0 = bytes[offset]!;
  return {
    op: b0 & 0x07,
    version: (b0 >> 3) & 0x03,
    flags: bytes[offset + 1]!,
    length: (bytes[offset + 2]! << 8) | bytes[offset + 3]!,
    group: (bytes[offset + 4]! << 8) | bytes[offset + 5]!,
    seq: bytes[offset + 6]!,
    id: bytes[offset + 7]!,
  };
}

/** True when a wire header carries one of the four defined ops. */
export function hasValidOp(h: WireSmpHeader): h is SmpHeader {
  return h.op <= 3;
}

/**
 * Decodes the header at `offset`. Throws ProtocolError PROTOCOL_BAD_HEADER when fewer than 8
 * bytes remain or the op is 4-7 (reserved bits are ignored, as Zephyr does).
 */
export function decodeHeader(bytes: Uint8Array, offset = 0): SmpHeader {
  const h = decodeWireHeader(bytes, offset);
  if (!hasValidOp(h)) throw new ProtocolError('PROTOCOL_BAD_HEADER', `invalid SMP op ${h.op}`);
  return h;
}

export interface SmpPacket {
  header: SmpHeader;
  /** The payload bytes (a view into the input; copy if kept). */
  payload: Uint8Array;
}

/**
 * Decodes one whole SMP message: header plus exactly `length` payload bytes. Throws
 * PROTOCOL_BAD_LENGTH when the payload is shorter or longer than the header says.
 */
export function decodePacket(bytes: Uint8Array): SmpPacket {
  const header = decodeHeader(bytes);
  const have = bytes.length - HEADER_SIZE;
  if (have !== header.length) {
    throw new ProtocolError('PROTOCOL_BAD_LENGTH', `SMP length mismatch: header says ${header.length} payload bytes, got ${have}`);
  }
  return { header, payload: bytes.subarray(HEADER_SIZE) };
}

/** Builds a whole message: header (length filled in) followed by the payload. */
export function encodePacket(h: Omit<SmpHeader, 'length'>, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  encodeHeader({ ...h, length: payload.length }, out, 0);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** The response op for a request op (READ → READ_RSP, WRITE → WRITE_RSP). */
export function responseOp(requestOp: OpCode): OpCode {
  return requestOp === Op.READ ? Op.READ_RSP : Op.WRITE_RSP;
}
