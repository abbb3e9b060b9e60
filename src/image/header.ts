/**
 * The 32-byte MCUboot image header (`struct image_header`, little-endian) and image versions.
 *
 * | off | size | field |
 * |---|---|---|
 * | 0 | u32 | ih_magic (0x96f3b83d) |
 * | 4 | u32 | ih_load_addr |
 * | 8 | u16 | ih_hdr_size (offset of the payload, ≥ 32) |
 * | 10 | u16 | ih_protect_tlv_size (protected TLV block incl. its 4-byte info, or 0) |
 * | 12 | u32 | ih_img_size (payload size, header excluded) |
 * | 16 | u32 | ih_flags |
 * | 20 | u8, u8, u16, u32 | iv_major, iv_minor, iv_revision, iv_build_num |
 * | 28 | u32 | _pad1 |
 */
import { IMAGE_HEADER_SIZE, IMAGE_MAGIC } from './constants.ts';
import { ImageFormatError } from './errors.ts';

export interface ImageVersion {
  major: number;
  minor: number;
  revision: number;
  build: number;
}

export interface ImageHeader {
  magic: number;
  loadAddress: number;
  /** `ih_hdr_size`: offset of the payload from the image start. */
  headerSize: number;
  /** `ih_protect_tlv_size`: the whole protected TLV block including its info header; 0 if none. */
  protectedTlvSize: number;
  /** `ih_img_size`: payload size, excluding the header. */
  imageSize: number;
  flags: number;
  version: ImageVersion;
  /** `_pad1`: normally 0. */
  pad: number;
}

/**
 * The 32 header fields as stored, with no check at all (`bytes` must hold 32 bytes): for readers
 * that apply their own rules, as Zephyr's img_mgmt does for slot contents.
 */
export function readImageHeaderFields(bytes: Uint8Array): ImageHeader {
  const v = new DataView(bytes.buffer, bytes.byteOffset, IMAGE_HEADER_SIZE);
  return {
    magic: v.getUint32(0, true),
    loadAddress: v.getUint32(4, true),
    headerSize: v.getUint16(8, true),
    protectedTlvSize: v.getUint16(10, true),
    imageSize: v.getUint32(12, true),
    flags: v.getUint32(16, true),
    version: { major: v.getUint8(20), minor: v.getUint8(21), revision: v.getUint16(22, true), build: v.getUint32(24, true) },
    pad: v.getUint32(28, true),
  };
}

/**
 * Decodes the header at the start of `bytes`. Throws {@link ImageFormatError}: `TRUNCATED` for
 * fewer than 32 bytes, `BAD_MAGIC` when the magic is not 0x96f3b83d, `BAD_HEADER` when
 * `ih_hdr_size` < 32 (the payload would overlap the header).
 */
export function decodeImageHeader(bytes: Uint8Array): ImageHeader {
  if (bytes.length < IMAGE_HEADER_SIZE) {
    throw new ImageFormatError('TRUNCATED', `truncated image header: ${bytes.length} of ${IMAGE_HEADER_SIZE} bytes`, 0);
  }
  const header = readImageHeaderFields(bytes);
  if (header.magic !== IMAGE_MAGIC) {
    throw new ImageFormatError('BAD_MAGIC', `bad image magic 0x${header.magic.toString(16).padStart(8, '0')} (expected 0x96f3b83d)`, 0);
  }
  if (header.headerSize < IMAGE_HEADER_SIZE) {
    throw new ImageFormatError('BAD_HEADER', `ih_hdr_size ${header.headerSize} is smaller than the 32-byte header`, 8);
  }
  return header;
}

/** Encodes a header (32 bytes). Throws RangeError for out-of-range fields. */
export function encodeImageHeader(h: Omit<ImageHeader, 'magic' | 'pad'> & { magic?: number; pad?: number }): Uint8Array {
  const out = new Uint8Array(IMAGE_HEADER_SIZE);
  const v = new DataView(out.buffer);
  const u32 = (name: string, x: number): number => {
    if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new RangeError(`${name} must be a u32, got ${x}`);
    return x;
  };
  const u16 = (name: string, x: number): number => {
    if (!Number.isInteger(x) || x < 0 || x > 0xffff) throw new RangeError(`${name} must be a u16, got ${x}`);
    return x;
  };
  const u8 = (name: string, x: number): number => {
    if (!Number.isInteger(x) || x < 0 || x > 0xff) throw new RangeError(`${name} must be a u8, got ${x}`);
    return x;
  };
  v.setUint32(0, u32('magic', h.magic ?? IMAGE_MAGIC), true);
  v.setUint32(4, u32('loadAddress', h.loadAddress), true);
  v.setUint16(8, u16('headerSize', h.headerSize), true);
  v.setUint16(10, u16('protectedTlvSize', h.protectedTlvSize), true);
  v.setUint32(12, u32('imageSize', h.imageSize), true);
  v.setUint32(16, u32('flags', h.flags), true);
  v.setUint8(20, u8('version.major', h.version.major));
  v.setUint8(21, u8('version.minor', h.version.minor));
  v.setUint16(22, u16('version.revision', h.version.revision), true);
  v.setUint32(24, u32('version.build', h.version.build), true);
  v.setUint32(28, u32('pad', h.pad ?? 0), true);
  return out;
}

/**
 * The version as img_mgmt reports it (`img_mgmt_ver_str`): `"major.minor.revision"`, plus
 * `".build"` only when build ≠ 0.
 */
export function formatImageVersion(v: ImageVersion): string {
  const base = `${v.major}.${v.minor}.${v.revision}`;
  return v.build !== 0 ? `${base}.${v.build}` : base;
}

/** The version as imgtool prints it: `"major.minor.revision+build"`. */
export function formatImgtoolVersion(v: ImageVersion): string {
  return `${v.major}.${v.minor}.${v.revision}+${v.build}`;
}

/**
 * Parses `"1"`, `"1.2"`, `"1.2.3"`, `"1.2.3+4"` (imgtool) or `"1.2.3.4"` (img_mgmt). Missing parts
 * are 0. Throws RangeError for anything else or out-of-range numbers.
 */
export function parseImageVersion(text: string): ImageVersion {
  const m = /^(\d+)(?:\.(\d+)(?:\.(\d+)(?:[+.](\d+))?)?)?$/.exec(text.trim());
  if (!m) throw new RangeError(`not an image version: ${JSON.stringify(text)} (expected major.minor.revision[+build])`);
  const version: ImageVersion = { major: Number(m[1]), minor: Number(m[2] ?? 0), revision: Number(m[3] ?? 0), build: Number(m[4] ?? 0) };
  if (version.major > 0xff || version.minor > 0xff || version.revision > 0xffff || version.build > 0xffffffff) {
    throw new RangeError(`image version out of range: ${text} (major, minor ≤ 255, revision ≤ 65535, build ≤ 4294967295)`);
  }
  return version;
}

/**
 * Compares two versions: negative when a < b, 0 when equal, positive when a > b. img_mgmt's
 * `img_mgmt_vercmp` ignores the build number unless built with `VERSION_CMP_USE_BUILD_NUMBER`;
 * pass `useBuild` for that (MCUboot's `boot_compare_version` also uses it under that option).
 */
export function compareImageVersions(a: ImageVersion, b: ImageVersion, useBuild = false): number {
  return a.major - b.major || a.minor - b.minor || a.revision - b.revision || (useBuild ? Math.sign(a.build - b.build) : 0);
}
