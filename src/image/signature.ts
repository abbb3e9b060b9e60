/**
 * Signature verification as MCUboot's bootutil does it: every signature (except Ed25519 "pure")
 * is over the image **digest** (the value of the SHA TLV), not over the image bytes
 * (`bootutil_img_validate` → `bootutil_verify_sig(hash, ...)`, mcu-tools/mcuboot main, 2026-07).
 * Verifying against the digest is what lets a server stream a slot through a hash and check the
 * signature without ever holding the image.
 *
 * - ECDSA (TLV 0x22): DER signature; P-256 over a SHA-256 digest, P-384 over a SHA-384 digest. The
 *   digest is the ECDSA message hash itself (imgtool signs with `Prehashed`), so the verify is
 *   "pre-hashed" — Web Crypto cannot do that, @noble/curves can. imgtool may pad the DER with zero
 *   bytes to a fixed length; only the DER SEQUENCE is read. High-S values are accepted (mbedTLS and
 *   tinycrypt do not enforce low-S).
 * - Ed25519 (TLV 0x24): 64-byte signature whose message is the digest bytes (imgtool
 *   `sign_digest`), verified with @noble/curves as ECDSA is (Web Crypto gained Ed25519 only
 *   recently in browsers, so the verifier runs everywhere the dashboard does). RFC 8032 rules
 *   (`zip215: false`): a non-canonical S or point encoding fails, as in Web Crypto and OpenSSL.
 *   With SIG_PURE the message is the hashed region.
 * - RSA-2048 / RSA-3072 PSS (TLV 0x20 / 0x23): EMSA-PSS with SHA-256, MGF1-SHA-256, salt length 32,
 *   over the digest. Web Crypto cannot verify a pre-hashed PSS signature either, so RSAVP1 is a
 *   BigInt modular power and EMSA-PSS-VERIFY (RFC 8017 §9.1.2) follows MCUboot's
 *   `bootutil_cmp_rsasig` step by step (image_rsa.c): em = s^e mod n; em[last] = 0xbc;
 *   DB = maskedDB ⊕ MGF1(H); clear DB's top bit; DB = 0…0 ‖ 0x01 ‖ salt(32);
 *   H = SHA-256(0^8 ‖ mHash ‖ salt). Cross-checked in tests against Web Crypto RSA-PSS signatures.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256, p384 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesEqual, concatBytes } from '../core/bytes.ts';
import { TlvType, type HashAlgorithm } from './constants.ts';
import type { ImagePublicKey } from './keys.ts';

/** The signature TLV type an MCUboot build expects for a key. */
export function signatureTlvTypeFor(key: ImagePublicKey): number {
  switch (key.algorithm) {
    case 'ecdsa-p256':
    case 'ecdsa-p384':
      return TlvType.ECDSA_SIG;
    case 'ed25519':
      return TlvType.ED25519;
    case 'rsa':
      return key.bits > 2048 ? TlvType.RSA3072_PSS : TlvType.RSA2048_PSS;
  }
}

/** The image hash algorithm imgtool picks for a key (`--sha auto`). */
export function defaultHashFor(key: ImagePublicKey): HashAlgorithm {
  return key.algorithm === 'ecdsa-p384' ? 'sha384' : 'sha256';
}

/** Strips imgtool's zero padding after a DER ECDSA signature. */
export function trimEcdsaDer(sig: Uint8Array): Uint8Array {
  if (sig.length >= 2 && sig[0] === 0x30 && sig[1]! < 0x80 && sig[1]! + 2 <= sig.length) return sig.subarray(0, sig[1]! + 2);
  return sig;
}

/**
 * Verifies a signature TLV over an image digest. `sigType` is the TLV type, `algorithm` the
 * digest's algorithm. Returns false (never throws) for a wrong key/type/hash pairing, a malformed
 * signature, or a signature that does not verify.
 */
export async function verifyDigestSignature(
  key: ImagePublicKey,
  sigType: number,
  signature: Uint8Array,
  digest: Uint8Array,
  algorithm: HashAlgorithm,
): Promise<boolean> {
  try {
    switch (key.algorithm) {
      case 'ecdsa-p256':
      case 'ecdsa-p384': {
        if (sigType !== TlvType.ECDSA_SIG) return false;
        const curve = key.algorithm === 'ecdsa-p256' ? p256 : p384;
        if (algorithm !== (key.algorithm === 'ecdsa-p256' ? 'sha256' : 'sha384')) return false;
        return curve.verify(trimEcdsaDer(signature), digest, key.keyData, { prehash: false, lowS: false, format: 'der' });
      }
      case 'ed25519':
        if (sigType !== TlvType.ED25519 || signature.length !== 64) return false;
        return verifyEd25519(key, signature, digest);
      case 'rsa': {
        const expected = key.bits > 2048 ? TlvType.RSA3072_PSS : TlvType.RSA2048_PSS;
        if (sigType !== expected || algorithm !== 'sha256') return false;
        if (key.bits !== 2048 && key.bits !== 3072) return false;
        return verifyRsaPssDigest(key, signature, digest);
      }
    }
  } catch {
    return false;
  }
}

/** Ed25519 over an arbitrary message (the digest, or the whole hashed region for SIG_PURE). False for a malformed key or signature. */
export function verifyEd25519(key: ImagePublicKey, signature: Uint8Array, message: Uint8Array): boolean {
  if (key.algorithm !== 'ed25519' || signature.length !== 64) return false;
  try {
    return ed25519.verify(signature, message, key.keyData, { zip215: false });
  } catch {
    return false;
  }
}

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
    e >>= 1n;
  }
  return result;
}

function bigintToBytes(n: bigint, length: number): Uint8Array | undefined {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return n === 0n ? out : undefined;
}

const PSS_HASH_LEN = 32;
const PSS_SALT_LEN = 32;

function mgf1Sha256(seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const counter = new Uint8Array(4);
  for (let off = 0, c = 0; off < length; c++, off += PSS_HASH_LEN) {
    new DataView(counter.buffer).setUint32(0, c);
    const block = sha256(concatBytes(seed, counter));
    out.set(block.subarray(0, Math.min(PSS_HASH_LEN, length - off)), off);
  }
  return out;
}

/** RSASSA-PSS verify over a SHA-256 digest with MCUboot's fixed parameters (see module doc). */
export function verifyRsaPssDigest(key: ImagePublicKey, signature: Uint8Array, mHash: Uint8Array): boolean {
  const n = key.modulus;
  const e = key.publicExponent;
  if (n === undefined || e === undefined || mHash.length !== PSS_HASH_LEN) return false;
  const emLen = Math.ceil(key.bits / 8);
  if (signature.length !== emLen) return false;
  let s = 0n;
  for (const b of signature) s = (s << 8n) | BigInt(b);
  if (s >= n) return false;
  const em = bigintToBytes(modPow(s, e, n), emLen);
  if (!em) return false;
  if (em[emLen - 1] !== 0xbc) return false;
  const maskLen = emLen - PSS_HASH_LEN - 1;
  const h = em.subarray(maskLen, maskLen + PSS_HASH_LEN);
  const db = mgf1Sha256(h, maskLen);
  for (let i = 0; i < maskLen; i++) db[i]! ^= em[i]!;
  // MCUboot clears the top bit unconditionally (emBits = modulus bits − 1 for 2048/3072-bit keys).
  db[0]! &= 0x7f;
  const zeroCount = maskLen - PSS_SALT_LEN - 1;
  for (let i = 0; i < zeroCount; i++) if (db[i] !== 0) return false;
  if (db[zeroCount] !== 0x01) return false;
  const salt = db.subarray(zeroCount + 1);
  const h2 = sha256(concatBytes(new Uint8Array(8), mHash, salt));
  return bytesEqual(h2, h);
}
