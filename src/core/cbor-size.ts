/**
 * Exact sizes for chunked transfers: how many data bytes fit in one SMP packet once the header
 * and the CBOR map around them are counted. Used by the client to size upload chunks and by the
 * server to size download chunks, so that `8 + len(CBOR) ≤ limit` holds exactly.
 */
import { encodeCbor } from './cbor.ts';
import { HEADER_SIZE } from './header.ts';

/** Bytes a CBOR head for a byte string of length `n` takes. */
export function cborHeadSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

/**
 * The largest `n` such that the packet (header + CBOR of `body` with `body[dataKey]` set to `n`
 * bytes) is at most `limit` bytes. Returns 0 when not even an empty chunk fits.
 */
export function maxChunkData(limit: number, body: Record<string, unknown>, dataKey = 'data', options: { indefinite?: boolean } = {}): number {
  const empty = encodeCbor({ ...body, [dataKey]: new Uint8Array(0) }, options).length;
  const base = HEADER_SIZE + empty - 1; // without the 1-byte head of the empty byte string
  let n = Math.max(0, limit - base - 1);
  while (n > 0 && base + cborHeadSize(n) + n > limit) n--;
  return base + cborHeadSize(n) + n <= limit ? n : 0;
}
