/**
 * MCUboot image format constants. Values are those of MCUboot's
 * `boot/bootutil/include/bootutil/image.h` (checked against mcu-tools/mcuboot main, 2026-07) and
 * of imgtool's `image.py`, which agree.
 */

/** `IMAGE_MAGIC`: first four bytes of every image, little-endian (`3D B8 F3 96`). */
export const IMAGE_MAGIC = 0x96f3b83d;
/** `IMAGE_MAGIC_V1`: legacy magic, no longer accepted by MCUboot or img_mgmt. */
export const IMAGE_MAGIC_V1 = 0x96f3b83c;
/** Erased flash (0xffffffff): "no image" for img_mgmt (`IMG_MGMT_ERR_NO_IMAGE`). */
export const IMAGE_MAGIC_NONE = 0xffffffff;
/** `IMAGE_HEADER_SIZE`: the fixed part of the header; `ih_hdr_size` may be larger (Zephyr: 0x200). */
export const IMAGE_HEADER_SIZE = 32;
/** `IMAGE_TLV_INFO_MAGIC`: the unprotected TLV block. */
export const TLV_INFO_MAGIC = 0x6907;
/** `IMAGE_TLV_PROT_INFO_MAGIC`: the protected TLV block (covered by the image hash). */
export const TLV_PROT_INFO_MAGIC = 0x6908;
/** Size of `struct image_tlv_info` and of `struct image_tlv` (both `{u16, u16}`). */
export const TLV_INFO_SIZE = 4;
export const TLV_HEADER_SIZE = 4;

/** `IMAGE_F_*` header flags. */
export const ImageFlag = {
  PIC: 0x01,
  ENCRYPTED_AES128: 0x04,
  ENCRYPTED_AES256: 0x08,
  NON_BOOTABLE: 0x10,
  RAM_LOAD: 0x20,
  ROM_FIXED: 0x100,
  COMPRESSED_LZMA1: 0x200,
  COMPRESSED_LZMA2: 0x400,
  COMPRESSED_ARM_THUMB_FLT: 0x800,
} as const;

/**
 * `IMAGE_TLV_*` types. The type is a u16 little-endian (imgtool writes `<BBH`: type byte, 0, length,
 * which is the same bytes for types < 256).
 */
export const TlvType = {
  KEYHASH: 0x01,
  PUBKEY: 0x02,
  SHA256: 0x10,
  SHA384: 0x11,
  SHA512: 0x12,
  RSA2048_PSS: 0x20,
  /** No longer supported by MCUboot; reported but never verified. */
  ECDSA224: 0x21,
  /** DER ECDSA signature, P-256 or P-384 (older name ECDSA256). */
  ECDSA_SIG: 0x22,
  RSA3072_PSS: 0x23,
  ED25519: 0x24,
  /** The signature is over the image itself rather than its digest (Ed25519 only). */
  SIG_PURE: 0x25,
  ENC_RSA2048: 0x30,
  ENC_KW: 0x31,
  ENC_EC256: 0x32,
  ENC_X25519: 0x33,
  ENC_X25519_SHA512: 0x34,
  DEPENDENCY: 0x40,
  SEC_CNT: 0x50,
  BOOT_RECORD: 0x60,
  DECOMP_SIZE: 0x70,
  DECOMP_SHA: 0x71,
  DECOMP_SIGNATURE: 0x72,
  COMP_DEC_SIZE: 0x73,
  /**
   * 0x74 / 0x75: `docs/design.md` says 0x80 / 0x81, but image.h and imgtool both use 0x74 / 0x75
   * (checked in image.h and imgtool image.py at mcu-tools/mcuboot main, 2026-07).
   */
  UUID_VID: 0x74,
  UUID_CID: 0x75,
} as const;
export type TlvTypeName = keyof typeof TlvType;

const TLV_NAMES = new Map<number, TlvTypeName>(
  (Object.entries(TlvType) as [TlvTypeName, number][]).map(([name, value]) => [value, name]),
);

/**
 * The name of a TLV type: `SHA256`, `ECDSA_SIG`, ...; `VENDOR_0x00a0` for the vendor ranges
 * (`xxA0`–`xxFF`, custom TLVs from imgtool `--custom-tlv`), `UNKNOWN_0x0099` otherwise.
 */
export function tlvTypeName(type: number): string {
  const known = TLV_NAMES.get(type);
  if (known) return known;
  const hex = `0x${type.toString(16).padStart(4, '0')}`;
  if ((type & 0xff) >= 0xa0 && type !== 0xffff) return `VENDOR_${hex}`;
  return `UNKNOWN_${hex}`;
}

/** Hash algorithms MCUboot images use, by the TLV that carries the digest. */
export type HashAlgorithm = 'sha256' | 'sha384' | 'sha512';

export const HASH_TLV_ALGORITHM: ReadonlyMap<number, HashAlgorithm> = new Map([
  [TlvType.SHA256, 'sha256'],
  [TlvType.SHA384, 'sha384'],
  [TlvType.SHA512, 'sha512'],
]);

export const HASH_LENGTH: Readonly<Record<HashAlgorithm, number>> = { sha256: 32, sha384: 48, sha512: 64 };
export const HASH_TLV_TYPE: Readonly<Record<HashAlgorithm, number>> = {
  sha256: TlvType.SHA256,
  sha384: TlvType.SHA384,
  sha512: TlvType.SHA512,
};

/** Signature TLV types MCUboot can verify (ECDSA224 is no longer supported). */
export const SIGNATURE_TLV_TYPES: ReadonlySet<number> = new Set([
  TlvType.RSA2048_PSS,
  TlvType.ECDSA_SIG,
  TlvType.RSA3072_PSS,
  TlvType.ED25519,
]);
