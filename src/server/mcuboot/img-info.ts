/**
 * `img_mgmt_read_info` (Zephyr subsys/mgmt/mcumgr/grp/img_mgmt/src/img_mgmt.c, read 2026-07): what
 * the image group needs from a slot — version, flags and the SHA256 TLV — and the error it reports
 * when the slot holds no usable image. It does **not** hash the image; an image whose content does
 * not match its hash is still listed (only MCUboot checks, at boot).
 *
 * The walk is reproduced as Zephyr does it, quirks included:
 * - magic 0xffffffff → NO_IMAGE (3); any other non-image magic → INVALID_IMAGE_HEADER_MAGIC (23);
 * - a 0x6908 block is skipped when present (its size read from its own info header);
 * - no 0x6907 info → NO_TLVS (4);
 * - `data_end` is computed as `start + 4 + it_tlv_tot` while `it_tlv_tot` already includes the
 *   4-byte info, so the walk reads one 4-byte "TLV header" past the block (erased flash there is
 *   `ff ff ff ff`, a non-hash TLV whose length ends the loop);
 * - a TLV header of type 0x00ff with length 0xffff → INVALID_TLV (5) (the erased-TLV test compares
 *   the u16 type against 0xff, so an erased `ffff` type does not match it);
 * - after a SHA256 TLV (type 0x10, length 32) the offset is advanced past its header but not past
 *   its value, so the next "TLV header" is the first 4 bytes of the hash and the walk usually
 *   jumps out of the block: a second SHA256 TLV is only reported (TLV_MULTIPLE_HASHES_FOUND, 6)
 *   when the hash itself starts like `10 00 20 00`; a hash value running past `data_end` →
 *   TLV_INVALID_SIZE (7); no SHA256 TLV → HASH_NOT_FOUND (8);
 * - a read outside the slot → FLASH_READ_FAILED (11).
 */
import { IMAGE_MAGIC, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC, TlvType, decodeImageHeader, readImageHeaderFields, type ImageHeader, type ImageVersion } from '../../image/index.ts';
import type { SlotFile } from './slot-file.ts';
import { ImgMgmtErr } from '../../core/error-codes.ts';

/** img_mgmt's error numbers: the IMG table of core/error-codes.ts, under the name the model's code uses. */
export const ImgErr = ImgMgmtErr;

export type ImgInfo =
  | { rc: 0; header: ImageHeader; version: ImageVersion; hash: Uint8Array; flags: number }
  | { rc: number };

const IMAGE_HASH_LEN = 32;

export async function readImgMgmtInfo(slot: SlotFile): Promise<ImgInfo> {
  const readAt = async (offset: number, length: number): Promise<Uint8Array | undefined> =>
    offset >= 0 && offset + length <= slot.size ? slot.readCopy(offset, length) : undefined;

  const hdrBytes = await readAt(0, 32);
  if (!hdrBytes) return { rc: ImgErr.FLASH_READ_FAILED };
  const magic = new DataView(hdrBytes.buffer).getUint32(0, true);
  if (magic === 0xffffffff) return { rc: ImgErr.NO_IMAGE };
  if (magic !== IMAGE_MAGIC) return { rc: ImgErr.INVALID_IMAGE_HEADER_MAGIC };
  let header: ImageHeader;
  try {
    header = decodeImageHeader(hdrBytes);
  } catch {
    // Only a header size below 32 can fail here; img_mgmt does not check it and reads on. The
    // slot is still unusable for MCUboot, so it is reported as having no TLVs where expected.
    header = readImageHeaderFields(hdrBytes);
  }

  const findTlvs = async (start: number, expected: number): Promise<{ start: number; end: number } | number> => {
    const info = await readAt(start, 4);
    if (!info) return ImgErr.FLASH_READ_FAILED;
    if ((info[0]! | (info[1]! << 8)) !== expected) return ImgErr.NO_TLVS;
    const tot = info[2]! | (info[3]! << 8);
    return { start: start + 4, end: start + 4 + tot };
  };

  let dataOff = header.headerSize + header.imageSize;
  const prot = await findTlvs(dataOff, TLV_PROT_INFO_MAGIC);
  if (typeof prot !== 'number') dataOff = prot.end - 4;
  const tlvs = await findTlvs(dataOff, TLV_INFO_MAGIC);
  if (typeof tlvs === 'number') return { rc: ImgErr.NO_TLVS };
  dataOff = tlvs.start;
  const dataEnd = tlvs.end;

  let hash: Uint8Array | undefined;
  while (dataOff + 4 <= dataEnd) {
    const t = await readAt(dataOff, 4);
    if (!t) return { rc: ImgErr.FLASH_READ_FAILED };
    const type = t[0]! | (t[1]! << 8);
    const len = t[2]! | (t[3]! << 8);
    if (type === 0xff && len === 0xffff) return { rc: ImgErr.INVALID_TLV };
    if (type !== TlvType.SHA256 || len !== IMAGE_HASH_LEN) {
      dataOff += 4 + len;
      continue;
    }
    if (hash) return { rc: ImgErr.TLV_MULTIPLE_HASHES_FOUND };
    dataOff += 4;
    if (dataOff + IMAGE_HASH_LEN > dataEnd) return { rc: ImgErr.TLV_INVALID_SIZE };
    const h = await readAt(dataOff, IMAGE_HASH_LEN);
    if (!h) return { rc: ImgErr.FLASH_READ_FAILED };
    hash = h;
    // Zephyr does not advance past the hash value here: the next iteration reads its first bytes
    // as a TLV header. A SHA-256 digest is effectively never `10 00 20 00`, so this only matters
    // for crafted images; kept faithful.
  }
  if (!hash) return { rc: ImgErr.HASH_NOT_FOUND };
  return { rc: 0, header, version: header.version, hash, flags: header.flags };
}
