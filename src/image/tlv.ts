/**
 * The TLV area that follows the payload (`bootutil/src/tlv.c`, `image.h`):
 *
 * ```
 * at hdr_size + img_size:
 *   [optional] { u16 0x6908, u16 tot }  protected TLVs   (tot == ih_protect_tlv_size, covered by the hash)
 *   [required] { u16 0x6907, u16 tot }  unprotected TLVs
 * each TLV:    { u16 type, u16 len, len bytes }            (all little-endian; tot includes the 4-byte info)
 * ```
 *
 * Rules enforced, as MCUboot's `bootutil_tlv_iter_begin/next` does (checked in mcu-tools/mcuboot
 * main, 2026-07): a 0x6908 block must have `tot == ih_protect_tlv_size`; without one,
 * `ih_protect_tlv_size` must be 0; the unprotected block must carry 0x6907; every TLV header and
 * value must fit inside its block. One deliberate strictness beyond MCUboot: a protected TLV may
 * not run past the protected block's end (MCUboot's any-type iterator would step across it).
 */
import { TLV_HEADER_SIZE, TLV_INFO_MAGIC, TLV_INFO_SIZE, TLV_PROT_INFO_MAGIC, tlvTypeName } from './constants.ts';
import { ImageFormatError } from './errors.ts';
import type { ImageHeader } from './header.ts';

export interface ImageTlv {
  type: number;
  /** Name from {@link tlvTypeName}: `SHA256`, `KEYHASH`, `ECDSA_SIG`, `VENDOR_0x00a0`, ... */
  name: string;
  /** Offset of the value from the start of the image. */
  offset: number;
  length: number;
  value: Uint8Array;
  /** True for TLVs in the 0x6908 block (covered by the image hash). */
  protected: boolean;
}

/** Where the TLV blocks sit in an image. */
export interface TlvLayout {
  /** `hdr_size + img_size`: start of the TLV area (and of the protected block if there is one). */
  tlvOffset: number;
  /** Size of the protected block including its info header, 0 if none. */
  protectedSize: number;
  /** Offset of the 0x6907 info header. */
  unprotectedOffset: number;
  /** `it_tlv_tot` of the 0x6907 block (includes its 4-byte info header). */
  unprotectedSize: number;
  /** End of the TLV area = total image length as imgtool writes it. */
  end: number;
  /** End of the hashed region: header + payload + protected block. */
  hashedLength: number;
}

export interface TlvInfo {
  magic: number;
  total: number;
}

export function decodeTlvInfo(bytes: Uint8Array, offset: number): TlvInfo {
  if (bytes.length < TLV_INFO_SIZE) throw new ImageFormatError('TRUNCATED', `image truncated in the TLV info at offset ${offset}`, offset);
  return { magic: bytes[0]! | (bytes[1]! << 8), total: bytes[2]! | (bytes[3]! << 8) };
}

/**
 * Computes the TLV layout from the header and a reader of the image. `readAt(offset, 4)` must return
 * the 4 bytes at `offset` (fewer when past the end). `imageLength` bounds every read. Throws
 * {@link ImageFormatError}: TRUNCATED, BAD_PROTECTED_TLVS, NO_TLVS.
 */
export function locateTlvs(header: ImageHeader, imageLength: number, readAt: (offset: number, length: number) => Uint8Array): TlvLayout {
  const tlvOffset = header.headerSize + header.imageSize;
  const readInfo = (offset: number): TlvInfo => {
    if (offset + TLV_INFO_SIZE > imageLength) {
      throw new ImageFormatError('TRUNCATED', `image truncated: TLV info at offset ${offset} is past the end (${imageLength} bytes)`, offset);
    }
    return decodeTlvInfo(readAt(offset, TLV_INFO_SIZE), offset);
  };
  let info = readInfo(tlvOffset);
  let protectedSize = 0;
  if (info.magic === TLV_PROT_INFO_MAGIC) {
    if (info.total !== header.protectedTlvSize) {
      throw new ImageFormatError('BAD_PROTECTED_TLVS', `protected TLV block size ${info.total} does not match ih_protect_tlv_size ${header.protectedTlvSize}`, tlvOffset);
    }
    if (info.total < TLV_INFO_SIZE) {
      throw new ImageFormatError('BAD_PROTECTED_TLVS', `protected TLV block size ${info.total} is smaller than its header`, tlvOffset);
    }
    protectedSize = info.total;
    info = readInfo(tlvOffset + protectedSize);
  } else if (header.protectedTlvSize !== 0) {
    throw new ImageFormatError('BAD_PROTECTED_TLVS', `ih_protect_tlv_size is ${header.protectedTlvSize} but there is no protected TLV block (magic 0x6908) at offset ${tlvOffset}`, tlvOffset);
  }
  const unprotectedOffset = tlvOffset + protectedSize;
  if (info.magic !== TLV_INFO_MAGIC) {
    throw new ImageFormatError('NO_TLVS', `no TLV block: magic 0x${info.magic.toString(16).padStart(4, '0')} at offset ${unprotectedOffset} (expected 0x6907)`, unprotectedOffset);
  }
  if (info.total < TLV_INFO_SIZE) {
    throw new ImageFormatError('BAD_TLV', `TLV block size ${info.total} is smaller than its header`, unprotectedOffset);
  }
  const end = unprotectedOffset + info.total;
  if (end > imageLength) {
    throw new ImageFormatError('TRUNCATED', `image truncated: TLV area ends at ${end} but the image has ${imageLength} bytes`, imageLength);
  }
  return { tlvOffset, protectedSize, unprotectedOffset, unprotectedSize: info.total, end, hashedLength: tlvOffset + protectedSize };
}

/**
 * Decodes the TLV entries of one block. `block` holds the whole block including its info header and
 * starts at image offset `blockOffset`. Throws {@link ImageFormatError} BAD_TLV when an entry's
 * header or value runs past the block.
 */
export function decodeTlvBlock(block: Uint8Array, blockOffset: number, isProtected: boolean): ImageTlv[] {
  const tlvs: ImageTlv[] = [];
  let off = TLV_INFO_SIZE;
  while (off < block.length) {
    if (block.length - off < TLV_HEADER_SIZE) {
      throw new ImageFormatError('BAD_TLV', `TLV header at offset ${blockOffset + off} runs past the end of its block`, blockOffset + off);
    }
    const type = block[off]! | (block[off + 1]! << 8);
    const length = block[off + 2]! | (block[off + 3]! << 8);
    const valueOff = off + TLV_HEADER_SIZE;
    if (length > block.length - valueOff) {
      throw new ImageFormatError('BAD_TLV', `TLV ${tlvTypeName(type)} at offset ${blockOffset + off} has length ${length}, past the end of its block`, blockOffset + off);
    }
    tlvs.push({ type, name: tlvTypeName(type), offset: blockOffset + valueOff, length, value: block.slice(valueOff, valueOff + length), protected: isProtected });
    off = valueOff + length;
  }
  return tlvs;
}

/** One TLV to encode. */
export interface TlvEntry {
  type: number;
  value: Uint8Array;
}

/** Encodes a TLV block with its info header (`magic` 0x6907 or 0x6908). Throws RangeError past 64 KiB. */
export function encodeTlvBlock(magic: number, entries: readonly TlvEntry[]): Uint8Array {
  let total = TLV_INFO_SIZE;
  for (const e of entries) {
    if (!Number.isInteger(e.type) || e.type < 0 || e.type > 0xffff) throw new RangeError(`TLV type must be a u16, got ${e.type}`);
    if (e.value.length > 0xffff) throw new RangeError(`TLV ${tlvTypeName(e.type)} value is ${e.value.length} bytes (max 65535)`);
    total += TLV_HEADER_SIZE + e.value.length;
  }
  if (total > 0xffff) throw new RangeError(`TLV block is ${total} bytes (max 65535)`);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  v.setUint16(0, magic, true);
  v.setUint16(2, total, true);
  let off = TLV_INFO_SIZE;
  for (const e of entries) {
    v.setUint16(off, e.type, true);
    v.setUint16(off + 2, e.value.length, true);
    out.set(e.value, off + TLV_HEADER_SIZE);
    off += TLV_HEADER_SIZE + e.value.length;
  }
  return out;
}

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function u32(v: Uint8Array): number | undefined {
  return v.length === 4 ? new DataView(v.buffer, v.byteOffset, 4).getUint32(0, true) : undefined;
}

function uuid(v: Uint8Array): string {
  const h = hex(v);
  return v.length === 16 ? `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` : h;
}

/**
 * A readable rendering of a TLV's value by kind (image.h): digests and key hashes in hex,
 * DEPENDENCY as `image N >= x.y.z+b`, SEC_CNT and DECOMP_SIZE as numbers, UUIDs in UUID form,
 * signatures, keys and encrypted keys by size, anything else (vendor, BOOT_RECORD) in hex.
 */
export function describeTlvValue(tlv: { type: number; value: Uint8Array }): string {
  const v = tlv.value;
  switch (tlv.type) {
    case 0x01: // KEYHASH
    case 0x10: // SHA256
    case 0x11: // SHA384
    case 0x12: // SHA512
    case 0x71: // DECOMP_SHA
      return hex(v);
    case 0x02: // PUBKEY
      return `${v.length}-byte public key ${hex(v.subarray(0, 16))}…`;
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23:
    case 0x24:
    case 0x72: // signatures
      return `${v.length}-byte signature`;
    case 0x25: // SIG_PURE
      return 'signature over the image itself';
    case 0x30:
    case 0x31:
    case 0x32:
    case 0x33:
    case 0x34: // ENC_*
      return `${v.length}-byte encrypted key`;
    case 0x40: {
      // DEPENDENCY: u8 image_id, 3 pad, image_version
      if (v.length !== 12) return `malformed (${v.length} bytes, expected 12)`;
      const d = new DataView(v.buffer, v.byteOffset, 12);
      return `image ${d.getUint8(0)} >= ${d.getUint8(4)}.${d.getUint8(5)}.${d.getUint16(6, true)}+${d.getUint32(8, true)}`;
    }
    case 0x50: // SEC_CNT
    case 0x70: // DECOMP_SIZE
    case 0x73: {
      // COMP_DEC_SIZE
      const n = u32(v);
      return n === undefined ? `malformed (${v.length} bytes, expected 4)` : String(n);
    }
    case 0x74:
    case 0x75:
      return uuid(v);
    default:
      return v.length <= 64 ? hex(v) : `${v.length} bytes ${hex(v.subarray(0, 32))}…`;
  }
}
