/**
 * SMP messages: header + CBOR body, and the reading of a response body as success or error
 * (smp-spec.md §2.6): `rc` ≠ 0 is an SMP-level error (v1 and v2), `err.rc` ≠ 0 a v2 group error,
 * anything else success. Both definite and indefinite CBOR encodings are accepted.
 */
import { decodeCbor, encodeCbor, isCborMap } from './cbor.ts';
import { DeviceError, ProtocolError } from './errors.ts';
import { encodePacket, HEADER_SIZE, type OpCode, type SmpHeader, decodeHeader } from './header.ts';

/** Limits for CBOR bodies from untrusted peers. */
export const BODY_DECODE_OPTIONS = { maxDepth: 16 } as const;

export function encodeMessage(h: Omit<SmpHeader, 'length'>, body: unknown): Uint8Array {
  return encodePacket(h, encodeCbor(body));
}

/** Decodes a body; an empty payload decodes as undefined. Throws ProtocolError. */
export function decodeBody(payload: Uint8Array): unknown {
  if (payload.length === 0) return undefined;
  return decodeCbor(payload, BODY_DECODE_OPTIONS);
}

/** The SMP error a response body carries, or undefined for a success body. */
export function deviceErrorOf(body: unknown): DeviceError | undefined {
  if (!isCborMap(body)) return undefined;
  const rc = body['rc'];
  if (typeof rc === 'number' && rc !== 0) {
    const rsn = typeof body['rsn'] === 'string' ? body['rsn'] : undefined;
    return new DeviceError(rc, undefined, rsn, body);
  }
  const err = body['err'];
  if (isCborMap(err)) {
    const g = err['group'];
    const r = err['rc'];
    if (typeof g === 'number' && typeof r === 'number' && r !== 0) return new DeviceError(r, g, undefined, body);
  }
  return undefined;
}

/**
 * Splits a packet into the SMP messages it holds (several may be back to back, §1.6).
 * Yields header, payload and byte offset; stops with a ProtocolError on a truncated message.
 */
export function* splitMessages(packet: Uint8Array): Generator<{ header: SmpHeader; payload: Uint8Array; offset: number }> {
  let off = 0;
  while (off < packet.length) {
    const header = decodeHeader(packet, off);
    const start = off + HEADER_SIZE;
    if (packet.length - start < header.length) {
      throw new ProtocolError('PROTOCOL_BAD_LENGTH', `SMP message at byte ${off} says ${header.length} payload bytes, ${packet.length - start} present`);
    }
    yield { header, payload: packet.subarray(start, start + header.length), offset: off };
    off = start + header.length;
  }
}

export type { OpCode };
