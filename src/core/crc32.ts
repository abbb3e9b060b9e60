/**
 * CRC-32 as IEEE 802.3 / zlib compute it (reflected polynomial 0xEDB88320, init and xorout
 * 0xFFFFFFFF): the checksum Zephyr's fs_mgmt reports as `"crc32"` (`"123456789"` → 0xCBF43926).
 * Incremental: feed chunks with {@link crc32Update} and finish with {@link crc32Final}.
 */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Starting state for an incremental CRC-32. */
export const CRC32_INIT = 0xffffffff;

/** Feeds bytes into a running CRC-32 state (start from {@link CRC32_INIT}). */
export function crc32Update(state: number, data: Uint8Array): number {
  let c = state >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** The checksum of a running state. */
export function crc32Final(state: number): number {
  return (state ^ 0xffffffff) >>> 0;
}

/** CRC-32 (IEEE) of a byte string. */
export function crc32(data: Uint8Array): number {
  return crc32Final(crc32Update(CRC32_INIT, data));
}
