/**
 * Parsing and verifying whole MCUboot images, from bytes in memory or from an {@link ImageSource}
 * read in chunks (a slot file on a server): memory stays bounded by the chunk size plus the TLV
 * area (≤ 128 KiB), whatever the image size.
 *
 * Verification follows MCUboot's `bootutil_img_validate` (image_validate.c, mcu-tools/mcuboot main,
 * 2026-07): the hash covers `[0, hdr_size + img_size + protect_tlv_size)` — header, payload and the
 * protected TLV block including its info header; every hash TLV must match; a KEYHASH (or PUBKEY)
 * TLV selects which trusted key checks the signature TLV that follows it; a signature whose key is
 * unknown is skipped.
 */
import { bytesEqual } from '../core/bytes.ts';
import {
  HASH_LENGTH,
  HASH_TLV_ALGORITHM,
  IMAGE_HEADER_SIZE,
  ImageFlag,
  SIGNATURE_TLV_TYPES,
  TLV_INFO_SIZE,
  TlvType,
  type HashAlgorithm,
} from './constants.ts';
import { ImageFormatError } from './errors.ts';
import { digest, nobleHashFactory, type HashFactory, type IncrementalHash } from './hash.ts';
import { decodeImageHeader, formatImageVersion, type ImageHeader, type ImageVersion } from './header.ts';
import type { ImagePublicKey } from './keys.ts';
import { verifyDigestSignature, verifyEd25519 } from './signature.ts';
import { decodeTlvBlock, locateTlvs, type ImageTlv, type TlvLayout } from './tlv.ts';

/**
 * Random access to image bytes. `read` returns exactly `length` bytes at `offset`
 * (`offset + length ≤ size`); the returned array may be a view that the next `read` overwrites.
 */
export interface ImageSource {
  /** Bytes available: the file length, or the slot size for a flash slot. */
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** An {@link ImageSource} over bytes in memory. */
export function bytesImageSource(bytes: Uint8Array): ImageSource {
  return {
    size: bytes.length,
    read: (offset, length) => Promise.resolve(bytes.subarray(offset, offset + length)),
  };
}

export interface ImageDependency {
  imageId: number;
  minVersion: ImageVersion;
}

/** A structurally valid image: header and TLVs decoded, nothing hashed yet. */
export interface McubootImage {
  header: ImageHeader;
  layout: TlvLayout;
  /** TLVs of the 0x6908 block, in order. */
  protectedTlvs: ImageTlv[];
  /** TLVs of the 0x6907 block, in order. */
  tlvs: ImageTlv[];
  /** `"major.minor.revision[.build]"` as img_mgmt reports it. */
  version: string;
  /** Total length: header + payload + TLV area (what imgtool writes before any `--pad`). */
  size: number;
  /**
   * The image hash img_mgmt reports: the first SHA256 TLV with length 32 in the 0x6907 block;
   * undefined if there is none.
   */
  hash: Uint8Array | undefined;
  /** `!(flags & NON_BOOTABLE)`. */
  bootable: boolean;
  /** AES128 or AES256 flag set (hash then covers the plaintext, which this library cannot check). */
  encrypted: boolean;
  /** SIG_PURE TLV present. */
  sigPure: boolean;
  /** SEC_CNT value, when present. */
  securityCounter: number | undefined;
  dependencies: ImageDependency[];
}

/** Maximum window read to decode the TLV area: two blocks of at most 64 KiB each. */
const MAX_TLV_WINDOW = 2 * 0xffff;

function buildImage(header: ImageHeader, layout: TlvLayout, protectedTlvs: ImageTlv[], tlvs: ImageTlv[]): McubootImage {
  const all = [...protectedTlvs, ...tlvs];
  const hashTlv = tlvs.find((t) => t.type === TlvType.SHA256 && t.length === 32);
  const secCnt = all.find((t) => t.type === TlvType.SEC_CNT && t.length === 4);
  const dependencies: ImageDependency[] = [];
  for (const t of all) {
    if (t.type !== TlvType.DEPENDENCY || t.length !== 12) continue;
    const v = new DataView(t.value.buffer, t.value.byteOffset, 12);
    dependencies.push({
      imageId: v.getUint8(0),
      minVersion: { major: v.getUint8(4), minor: v.getUint8(5), revision: v.getUint16(6, true), build: v.getUint32(8, true) },
    });
  }
  return {
    header,
    layout,
    protectedTlvs,
    tlvs,
    version: formatImageVersion(header.version),
    size: layout.end,
    hash: hashTlv?.value,
    bootable: (header.flags & ImageFlag.NON_BOOTABLE) === 0,
    encrypted: (header.flags & (ImageFlag.ENCRYPTED_AES128 | ImageFlag.ENCRYPTED_AES256)) !== 0,
    sigPure: all.some((t) => t.type === TlvType.SIG_PURE),
    securityCounter: secCnt ? new DataView(secCnt.value.buffer, secCnt.value.byteOffset, 4).getUint32(0, true) : undefined,
    dependencies,
  };
}

/** Decodes header + TLVs given the header and a window of bytes that starts at `windowOffset`. */
function decodeWithWindow(header: ImageHeader, imageLength: number, windowOffset: number, window: Uint8Array): McubootImage {
  const readAt = (offset: number, length: number): Uint8Array => window.subarray(offset - windowOffset, offset - windowOffset + length);
  const layout = locateTlvs(header, imageLength, readAt);
  const protectedTlvs = layout.protectedSize > 0 ? decodeTlvBlock(readAt(layout.tlvOffset, layout.protectedSize), layout.tlvOffset, true) : [];
  const tlvs = decodeTlvBlock(readAt(layout.unprotectedOffset, layout.unprotectedSize), layout.unprotectedOffset, false);
  return buildImage(header, layout, protectedTlvs, tlvs);
}

/**
 * Parses an image in memory (header and TLVs; nothing is hashed). Trailing bytes after the TLV area
 * (e.g. imgtool `--pad` up to a slot size) are allowed. Throws {@link ImageFormatError}
 * (`PROTOCOL_BAD_IMAGE`) for truncated input, bad magic, a bad header, missing TLVs or bad TLV
 * lengths.
 */
export function parseImage(bytes: Uint8Array): McubootImage {
  const header = decodeImageHeader(bytes);
  return decodeWithWindow(header, bytes.length, 0, bytes);
}

/** Like {@link parseImage}, reading from a source (at most 32 bytes + the TLV area are read). */
export async function readImage(source: ImageSource): Promise<McubootImage> {
  if (source.size < IMAGE_HEADER_SIZE) {
    throw new ImageFormatError('TRUNCATED', `truncated image header: ${source.size} of ${IMAGE_HEADER_SIZE} bytes`, 0);
  }
  const header = decodeImageHeader((await source.read(0, IMAGE_HEADER_SIZE)).slice());
  const tlvOffset = header.headerSize + header.imageSize;
  if (tlvOffset + TLV_INFO_SIZE > source.size) {
    throw new ImageFormatError('TRUNCATED', `image truncated: TLV area at offset ${tlvOffset} is past the end (${source.size} bytes)`, tlvOffset);
  }
  const windowLength = Math.min(source.size - tlvOffset, MAX_TLV_WINDOW);
  const window = (await source.read(tlvOffset, windowLength)).slice();
  return decodeWithWindow(header, tlvOffset + windowLength, tlvOffset, window);
}

// ---- verification ------------------------------------------------------------------------------

export interface HashCheck {
  algorithm: HashAlgorithm;
  tlvType: number;
  /** Value carried by the TLV. */
  expected: Uint8Array;
  /** Digest computed over the hashed region. */
  actual: Uint8Array;
  valid: boolean;
}

export type SignatureCheck =
  /** No trusted keys were given: signatures were not checked (MCUboot without a key accepts the image on its hash). */
  | { status: 'not-checked' }
  /** A signature TLV verified with trusted key `keyIndex`. */
  | { status: 'valid'; keyIndex: number; tlvType: number }
  /** Keys were given but no signature verified; `reason` says why. */
  | { status: 'invalid'; reason: 'no-signature' | 'no-trusted-key' | 'bad-signature' | 'no-digest' }
  /** SIG_PURE with a streamed source: the whole hashed region would have to be held in memory. */
  | { status: 'unsupported'; reason: string };

export interface ImageVerification {
  image: McubootImage;
  /** One entry per hash TLV (SHA256/384/512) found. */
  hashes: HashCheck[];
  /** True when at least one hash TLV exists and every hash TLV matches the content. */
  hashValid: boolean;
  signature: SignatureCheck;
  /** True when `hashValid` and the signature is `valid` or `not-checked`. */
  valid: boolean;
}

export interface VerifyOptions {
  /** Trusted public keys. None: signatures are not checked (as MCUboot built without signing). */
  keys?: readonly ImagePublicKey[];
  /** Incremental hash implementation for sources (default @noble/hashes). */
  hashFactory?: HashFactory;
  /** Read size when streaming a source (default 64 KiB). */
  chunkSize?: number;
}

const DEFAULT_CHUNK = 64 * 1024;

async function computeDigests(
  input: Uint8Array | ImageSource,
  length: number,
  algorithms: readonly HashAlgorithm[],
  options: VerifyOptions,
): Promise<Map<HashAlgorithm, Uint8Array>> {
  const out = new Map<HashAlgorithm, Uint8Array>();
  if (input instanceof Uint8Array) {
    const region = input.subarray(0, length);
    for (const a of algorithms) out.set(a, await digest(a, region));
    return out;
  }
  const factory = options.hashFactory ?? nobleHashFactory;
  const hashers: [HashAlgorithm, IncrementalHash][] = algorithms.map((a) => [a, factory(a)]);
  const chunk = Math.max(1, options.chunkSize ?? DEFAULT_CHUNK);
  for (let off = 0; off < length; off += chunk) {
    const bytes = await input.read(off, Math.min(chunk, length - off));
    for (const [, h] of hashers) h.update(bytes);
  }
  for (const [a, h] of hashers) out.set(a, h.digest());
  return out;
}

/** Finds the trusted key a KEYHASH or PUBKEY TLV designates (`bootutil_find_key`). */
async function findKey(tlv: ImageTlv, keys: readonly ImagePublicKey[]): Promise<number> {
  if (tlv.type === TlvType.PUBKEY) return keys.findIndex((k) => bytesEqual(k.embedded, tlv.value));
  // The key hash uses the image's hash algorithm; its length tells which.
  const algorithm: HashAlgorithm | undefined = tlv.length === 32 ? 'sha256' : tlv.length === 48 ? 'sha384' : tlv.length === 64 ? 'sha512' : undefined;
  if (!algorithm) return -1;
  for (let i = 0; i < keys.length; i++) {
    if (bytesEqual(await digest(algorithm, keys[i]!.embedded), tlv.value)) return i;
  }
  return -1;
}

function digestForKey(key: ImagePublicKey, digests: Map<HashAlgorithm, Uint8Array>, image: McubootImage): [HashAlgorithm, Uint8Array] | undefined {
  const order: HashAlgorithm[] =
    key.algorithm === 'ecdsa-p384' ? ['sha384'] : key.algorithm === 'ed25519' ? ['sha256', 'sha512'] : ['sha256'];
  // Use the image's own first hash TLV that suits the key (as the bootloader's single EXPECTED_HASH_TLV).
  for (const t of image.tlvs) {
    const a = HASH_TLV_ALGORITHM.get(t.type);
    if (a && order.includes(a)) {
      const d = digests.get(a);
      if (d) return [a, d];
    }
  }
  return undefined;
}

async function checkSignatures(
  input: Uint8Array | ImageSource,
  image: McubootImage,
  digests: Map<HashAlgorithm, Uint8Array>,
  keys: readonly ImagePublicKey[],
): Promise<SignatureCheck> {
  if (keys.length === 0) return { status: 'not-checked' };
  const all = [...image.protectedTlvs, ...image.tlvs];
  if (!all.some((t) => SIGNATURE_TLV_TYPES.has(t.type))) return { status: 'invalid', reason: 'no-signature' };
  let keyIndex = -1;
  let sawTrusted = false;
  let sawDigestless = false;
  for (const t of all) {
    if (t.type === TlvType.KEYHASH || t.type === TlvType.PUBKEY) {
      keyIndex = await findKey(t, keys);
      continue;
    }
    if (!SIGNATURE_TLV_TYPES.has(t.type)) continue;
    const key = keys[keyIndex];
    keyIndex = -1;
    if (!key) continue; // signature by an unknown key: skipped, as MCUboot does
    sawTrusted = true;
    let ok: boolean;
    if (image.sigPure) {
      if (key.algorithm !== 'ed25519' || t.type !== TlvType.ED25519) continue;
      if (!(input instanceof Uint8Array)) {
        return { status: 'unsupported', reason: 'SIG_PURE signatures need the whole image in memory' };
      }
      ok = verifyEd25519(key, t.value, input.subarray(0, image.layout.hashedLength));
    } else {
      const d = digestForKey(key, digests, image);
      if (!d) {
        sawDigestless = true;
        continue;
      }
      ok = await verifyDigestSignature(key, t.type, t.value, d[1], d[0]);
    }
    if (ok) return { status: 'valid', keyIndex: keys.indexOf(key), tlvType: t.type };
  }
  if (!sawTrusted) return { status: 'invalid', reason: 'no-trusted-key' };
  return { status: 'invalid', reason: sawDigestless ? 'no-digest' : 'bad-signature' };
}

/**
 * Parses and verifies an image: every hash TLV is checked against the content, and with `keys`
 * the signature as MCUboot does. A mismatch is reported in the result (`hashValid`, `signature`,
 * `valid`), not thrown; use {@link assertImageValid} to throw. Structural problems throw
 * {@link ImageFormatError}. For a source, `source.size` bounds the image (a slot may be larger
 * than the image it holds).
 */
export async function verifyImage(input: Uint8Array | ImageSource, options: VerifyOptions = {}): Promise<ImageVerification> {
  const image = input instanceof Uint8Array ? parseImage(input) : await readImage(input);
  const hashTlvs = [...image.protectedTlvs, ...image.tlvs].filter((t) => HASH_TLV_ALGORITHM.has(t.type));
  const algorithms = [...new Set(hashTlvs.map((t) => HASH_TLV_ALGORITHM.get(t.type)!))];
  const digests = await computeDigests(input, image.layout.hashedLength, algorithms, options);
  const hashes: HashCheck[] = hashTlvs.map((t) => {
    const algorithm = HASH_TLV_ALGORITHM.get(t.type)!;
    const actual = digests.get(algorithm)!;
    return { algorithm, tlvType: t.type, expected: t.value, actual, valid: t.length === HASH_LENGTH[algorithm] && bytesEqual(actual, t.value) };
  });
  const hashValid = hashes.length > 0 && hashes.every((h) => h.valid);
  const signature = await checkSignatures(input, image, digests, options.keys ?? []);
  const valid = hashValid && (signature.status === 'valid' || signature.status === 'not-checked');
  return { image, hashes, hashValid, signature, valid };
}

/**
 * Throws {@link ImageFormatError} unless the verification passed: `NO_HASH` (no hash TLV),
 * `HASH_MISMATCH`, `NO_TRUSTED_SIGNATURE` (keys given, no signature by one of them) or
 * `BAD_SIGNATURE`.
 */
export function assertImageValid(v: ImageVerification): void {
  if (v.hashes.length === 0) throw new ImageFormatError('NO_HASH', 'image has no SHA256/SHA384/SHA512 TLV');
  const bad = v.hashes.find((h) => !h.valid);
  if (bad) {
    throw new ImageFormatError('HASH_MISMATCH', `image ${bad.algorithm.toUpperCase()} mismatch: TLV says ${hexOf(bad.expected)}, content hashes to ${hexOf(bad.actual)}`);
  }
  const s = v.signature;
  if (s.status === 'invalid') {
    if (s.reason === 'bad-signature') throw new ImageFormatError('BAD_SIGNATURE', 'image signature does not verify with the trusted key');
    throw new ImageFormatError('NO_TRUSTED_SIGNATURE', `image is not signed by a trusted key (${s.reason})`);
  }
  if (s.status === 'unsupported') throw new ImageFormatError('NO_TRUSTED_SIGNATURE', `signature not checked: ${s.reason}`);
}

function hexOf(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
