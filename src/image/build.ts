/**
 * Builds valid MCUboot images from raw bytes without imgtool, following the byte recipe that is
 * verified identical to `imgtool sign` 2.4.0 (netmgmt-mcuboot.md B5) and imgtool's `image.py`
 * (mcu-tools/mcuboot main, 2026-07):
 *
 * ```
 * header(32) + (hdrSize − 32) × 0xff        ← --pad-header fills with the erased value
 * payload (+ padding to `alignPayload`)
 * [protected block 0x6908: SEC_CNT, DEPENDENCY…, custom TLVs]   ← ih_protect_tlv_size, hashed
 * unprotected block 0x6907: SHA256|SHA384|SHA512 digest, [KEYHASH|PUBKEY, signature]
 * [--pad: 0xff up to slot size − trailer, trailer (magic last, image_ok at S−24 with --confirm)]
 * ```
 *
 * Signing uses Web Crypto private keys. Signatures are over the digest as MCUboot verifies them:
 * ECDSA/RSA-PSS over the hashed bytes with the digest's hash function (the same value as a
 * pre-hashed signature over the digest), Ed25519 over the digest bytes.
 *
 * Cross-checked: unsigned, `-s auto` and `--pad --confirm` outputs are byte-identical to imgtool
 * 2.4.0, and so is an Ed25519-signed image (deterministic signature); `imgtool verify` accepts
 * images this builder signed with P-256, P-384, Ed25519, RSA-2048 and RSA-3072 keys (with SEC_CNT
 * and DEPENDENCY TLVs). Fixtures in test/fixtures/imgtool.
 */
import { p256, p384 } from '@noble/curves/nist.js';
import { concatBytes } from '../core/bytes.ts';
import { HASH_TLV_TYPE, IMAGE_HEADER_SIZE, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC, TlvType, type HashAlgorithm } from './constants.ts';
import { ImageFormatError } from './errors.ts';
import { digest, webCryptoHashName } from './hash.ts';
import { encodeImageHeader, parseImageVersion, type ImageVersion } from './header.ts';
import type { ImageDependency } from './image.ts';
import type { SigningKey } from './keys.ts';
import { defaultHashFor, signatureTlvTypeFor } from './signature.ts';
import { encodeTlvBlock, type TlvEntry } from './tlv.ts';
import { BOOT_MAGIC, ERASED, trailerOffsets, trailerSize } from './trailer.ts';

export interface PadToSlotOptions {
  /** Slot size in bytes; the output is exactly this long. */
  slotSize: number;
  /** imgtool `--confirm`: set image_ok (byte S−24) as well as the magic. Without it: `--test`/`--pad`. */
  confirm?: boolean;
  /** Trailer size to reserve (default {@link trailerSize}() = 3120 bytes). */
  trailerSize?: number;
}

export interface BuildImageOptions {
  /** The application bytes. */
  payload: Uint8Array;
  /** `{major, minor, revision, build}` or `"1.2.3+4"` (default 0.0.0+0). */
  version?: ImageVersion | string;
  /** `ih_hdr_size` (default 0x200 as Zephyr builds use; at least 32). */
  headerSize?: number;
  /** Byte filling the header region after the 32-byte header (default 0xff, imgtool `--pad-header`). */
  headerPadByte?: number;
  loadAddress?: number;
  /** `IMAGE_F_*` flags (default 0). */
  flags?: number;
  /** Pad the payload with 0xff to a multiple of this many bytes (`ih_img_size` includes the padding). */
  alignPayload?: number;
  /** Protected SEC_CNT TLV; `'auto'` = `(major << 24) | (minor << 16) | revision` as imgtool `-s auto`. */
  securityCounter?: number | 'auto';
  /** Protected DEPENDENCY TLVs. */
  dependencies?: readonly ImageDependency[];
  /** Further protected TLVs (e.g. vendor 0x00a0–0x00ff), after SEC_CNT and dependencies. */
  protectedTlvs?: readonly TlvEntry[];
  /** Unprotected TLVs appended after the hash and signature (tests of odd layouts). */
  extraTlvs?: readonly TlvEntry[];
  /** Digest algorithm (default: what imgtool picks for the key, else SHA-256). */
  hashAlgorithm?: HashAlgorithm;
  /** Sign with this key (see `loadSigningKey`). */
  signingKey?: SigningKey;
  /** `'hash'` (default): KEYHASH TLV; `'full'`: PUBKEY TLV carrying the key. */
  publicKeyFormat?: 'hash' | 'full';
  /** Pad to a slot with a trailer (imgtool `--pad` / `--confirm`). */
  pad?: PadToSlotOptions;
}

export interface BuiltImage {
  /** The image file bytes. */
  bytes: Uint8Array;
  /** The digest in the hash TLV (the "hash" img_mgmt reports when SHA-256). */
  hash: Uint8Array;
  hashAlgorithm: HashAlgorithm;
  /** The signature bytes, if signed. */
  signature: Uint8Array | undefined;
}

async function sign(key: SigningKey, hashAlgorithm: HashAlgorithm, hashed: Uint8Array, imageDigest: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto.subtle;
  const data = hashed as Uint8Array<ArrayBuffer>;
  switch (key.algorithm) {
    case 'ecdsa-p256':
    case 'ecdsa-p384': {
      const raw = new Uint8Array(await subtle.sign({ name: 'ECDSA', hash: webCryptoHashName(hashAlgorithm) }, key.privateKey, data));
      const curve = key.algorithm === 'ecdsa-p256' ? p256 : p384;
      return curve.Signature.fromBytes(raw, 'compact').toBytes('der');
    }
    case 'ed25519':
      return new Uint8Array(await subtle.sign('Ed25519', key.privateKey, imageDigest as Uint8Array<ArrayBuffer>));
    case 'rsa':
      return new Uint8Array(await subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, key.privateKey, data));
  }
}

function checkSigningPair(key: SigningKey, hashAlgorithm: HashAlgorithm): void {
  const ok =
    key.algorithm === 'ecdsa-p256' ? hashAlgorithm === 'sha256' :
    key.algorithm === 'ecdsa-p384' ? hashAlgorithm === 'sha384' :
    key.algorithm === 'rsa' ? hashAlgorithm === 'sha256' :
    hashAlgorithm === 'sha256' || hashAlgorithm === 'sha512';
  if (!ok) throw new ImageFormatError('BAD_OPTIONS', `a ${key.algorithm} key cannot sign a ${hashAlgorithm} image (MCUboot pairs P-256/RSA with SHA-256, P-384 with SHA-384, Ed25519 with SHA-256 or SHA-512)`);
  if (key.algorithm === 'rsa' && key.publicKey.bits !== 2048 && key.publicKey.bits !== 3072) {
    throw new ImageFormatError('BAD_OPTIONS', `MCUboot verifies RSA-2048 and RSA-3072 only, not ${key.publicKey.bits}-bit keys`);
  }
}

/** Builds an image. Throws {@link ImageFormatError} BAD_OPTIONS for impossible options. */
export async function buildImage(options: BuildImageOptions): Promise<BuiltImage> {
  const version = typeof options.version === 'string' ? parseImageVersion(options.version) : options.version ?? { major: 0, minor: 0, revision: 0, build: 0 };
  const headerSize = options.headerSize ?? 0x200;
  if (!Number.isInteger(headerSize) || headerSize < IMAGE_HEADER_SIZE || headerSize > 0xffff) {
    throw new ImageFormatError('BAD_OPTIONS', `headerSize must be 32..65535, got ${headerSize}`);
  }
  const key = options.signingKey;
  const hashAlgorithm = options.hashAlgorithm ?? (key ? defaultHashFor(key.publicKey) : 'sha256');
  if (key) checkSigningPair(key, hashAlgorithm);

  let payload = options.payload;
  const align = options.alignPayload ?? 1;
  if (!Number.isInteger(align) || align < 1) throw new ImageFormatError('BAD_OPTIONS', `alignPayload must be a positive integer, got ${align}`);
  if (payload.length % align !== 0) payload = concatBytes(payload, new Uint8Array(align - (payload.length % align)).fill(ERASED));

  const protectedEntries: TlvEntry[] = [];
  if (options.securityCounter !== undefined) {
    const n = options.securityCounter === 'auto' ? ((version.major << 24) | (version.minor << 16) | version.revision) >>> 0 : options.securityCounter;
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new ImageFormatError('BAD_OPTIONS', `securityCounter must be a u32, got ${n}`);
    const v = new Uint8Array(4);
    new DataView(v.buffer).setUint32(0, n, true);
    protectedEntries.push({ type: TlvType.SEC_CNT, value: v });
  }
  for (const dep of options.dependencies ?? []) {
    const v = new Uint8Array(12);
    const dv = new DataView(v.buffer);
    dv.setUint8(0, dep.imageId);
    dv.setUint8(4, dep.minVersion.major);
    dv.setUint8(5, dep.minVersion.minor);
    dv.setUint16(6, dep.minVersion.revision, true);
    dv.setUint32(8, dep.minVersion.build, true);
    protectedEntries.push({ type: TlvType.DEPENDENCY, value: v });
  }
  protectedEntries.push(...(options.protectedTlvs ?? []));
  const protectedBlock = protectedEntries.length > 0 ? encodeTlvBlock(TLV_PROT_INFO_MAGIC, protectedEntries) : new Uint8Array(0);

  const header = encodeImageHeader({
    loadAddress: options.loadAddress ?? 0,
    headerSize,
    protectedTlvSize: protectedBlock.length,
    imageSize: payload.length,
    flags: options.flags ?? 0,
    version,
  });
  const headerRegion = new Uint8Array(headerSize).fill(options.headerPadByte ?? ERASED);
  headerRegion.set(header);
  const hashed = concatBytes(headerRegion, payload, protectedBlock);
  const imageDigest = await digest(hashAlgorithm, hashed);

  const entries: TlvEntry[] = [{ type: HASH_TLV_TYPE[hashAlgorithm], value: imageDigest }];
  let signature: Uint8Array | undefined;
  if (key) {
    if ((options.publicKeyFormat ?? 'hash') === 'hash') {
      entries.push({ type: TlvType.KEYHASH, value: await digest(hashAlgorithm, key.publicKey.embedded) });
    } else {
      entries.push({ type: TlvType.PUBKEY, value: key.publicKey.embedded });
    }
    signature = await sign(key, hashAlgorithm, hashed, imageDigest);
    entries.push({ type: signatureTlvTypeFor(key.publicKey), value: signature });
  }
  entries.push(...(options.extraTlvs ?? []));
  let bytes = concatBytes(hashed, encodeTlvBlock(TLV_INFO_MAGIC, entries));

  if (options.pad) bytes = padImageToSlot(bytes, options.pad);
  return { bytes, hash: imageDigest, hashAlgorithm, signature };
}

/**
 * Pads an image to a full slot as imgtool `--pad` does: 0xff up to the slot end, the trailer magic
 * in the last 16 bytes, and with `confirm` image_ok = 1 at S−24. Throws BAD_OPTIONS when the image
 * does not fit in front of the trailer.
 */
export function padImageToSlot(image: Uint8Array, options: PadToSlotOptions): Uint8Array {
  const reserved = options.trailerSize ?? trailerSize();
  if (image.length + reserved > options.slotSize) {
    throw new ImageFormatError('BAD_OPTIONS', `image of ${image.length} bytes does not fit a ${options.slotSize}-byte slot with a ${reserved}-byte trailer`);
  }
  const out = new Uint8Array(options.slotSize).fill(ERASED);
  out.set(image);
  const o = trailerOffsets(options.slotSize);
  out.set(BOOT_MAGIC, o.magic);
  if (options.confirm) out[o.imageOk] = 1;
  return out;
}
