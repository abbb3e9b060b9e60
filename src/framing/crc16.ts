/**
 * CRC-16/XMODEM (a.k.a. CRC-16/CCITT with init 0, Zephyr's `crc16_itu_t(0x0000, …)`): polynomial
 * 0x1021, initial value 0x0000, MSB first, no reflection, no final XOR. Check value of the ASCII
 * string "123456789" is 0x31C3.
 *
 * The serial console framing (smp-spec.md §4.1.1) appends this CRC big-endian after the SMP packet;
 * running the CRC over packet‖CRC therefore yields 0, which is how Zephyr's receiver checks it.
 */

/** One entry per leading byte: the CRC contribution of that byte shifted through 8 rounds. */
const TABLE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/**
 * CRC-16/XMODEM over `data[start..end)`, continuing from `crc` (0 for a fresh computation).
 * Returns a 16-bit unsigned integer.
 */
export function crc16Xmodem(data: Uint8Array, crc = 0, start = 0, end = data.length): number {
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) c = ((c << 8) & 0xff00) ^ TABLE[((c >> 8) ^ data[i]!) & 0xff]!;
  return c;
}
