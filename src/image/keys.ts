/**
 * Public and private keys for MCUboot image signatures, from PEM or DER.
 *
 * What MCUboot embeds (and so what the KEYHASH TLV hashes) depends on the key type, as imgtool's
 * `get_public_bytes()` produces it (checked in scripts/imgtool/keys/{ecdsa,ed25519,rsa}.py at
 * mcu-tools/mcuboot main, 2026-07):
 * - ECDSA P-256 / P-384 and Ed25519: the DER SubjectPublicKeyInfo;
 * - RSA: the DER PKCS#1 `RSAPublicKey` (SEQUENCE { n, e }), not the SPKI wrapper.
 * The key hash uses the image's hash algorithm (SHA-256, or SHA-384 with P-384 keys).
 *
 * A small DER reader covers the few ASN.1 shapes involved (SPKI, PKCS#1, PKCS#8 headers); the
 * cryptography itself is left to Web Crypto and @noble/curves.
 */
import { bytesEqual, concatBytes } from '../core/bytes.ts';
import { ImageFormatError } from './errors.ts';

export type PublicKeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519' | 'rsa';

export interface ImagePublicKey {
  algorithm: PublicKeyAlgorithm;
  /** DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** The bytes MCUboot embeds for this key and hashes for KEYHASH (SPKI, or PKCS#1 for RSA). */
  embedded: Uint8Array;
  /** The key material: EC point (SEC1), Ed25519 32-byte key, or the RSA PKCS#1 body. */
  keyData: Uint8Array;
  /** RSA only. */
  modulus?: bigint;
  publicExponent?: bigint;
  /** RSA modulus size in bits; EC curve size otherwise. */
  bits: number;
}

// ---- DER ---------------------------------------------------------------------------------------

interface DerNode {
  tag: number;
  /** Offset of the content. */
  start: number;
  /** Offset just past the content. */
  end: number;
}

function derRead(bytes: Uint8Array, offset: number, limit = bytes.length): DerNode {
  const fail = (why: string): never => {
    throw new ImageFormatError('BAD_KEY', `bad DER at offset ${offset}: ${why}`, offset);
  };
  if (offset + 2 > limit) fail('truncated');
  const tag = bytes[offset]!;
  let len = bytes[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) fail('unsupported length form');
    if (start + n > limit) fail('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > limit) fail('content runs past its container');
  return { tag, start, end };
}

function derChildren(bytes: Uint8Array, node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  let off = node.start;
  while (off < node.end) {
    const child = derRead(bytes, off, node.end);
    out.push(child);
    off = child.end;
  }
  return out;
}

function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node || node.tag !== tag) {
    throw new ImageFormatError('BAD_KEY', `bad key: expected ${what}`);
  }
  return node;
}

const OID = {
  ecPublicKey: '2a8648ce3d0201',
  prime256v1: '2a8648ce3d030107',
  secp384r1: '2b81040022',
  ed25519: '2b6570',
  rsaEncryption: '2a864886f70d010101',
  rsassaPss: '2a864886f70d01010a',
} as const;

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function bigintFromBytes(b: Uint8Array): bigint {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}

function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function derWrap(tag: number, content: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(tag), derLength(content.length), content);
}

/** Parses a PKCS#1 RSAPublicKey. */
function parsePkcs1(der: Uint8Array): { modulus: bigint; publicExponent: bigint; bits: number } {
  const seq = expectTag(derRead(der, 0), 0x30, 'RSAPublicKey SEQUENCE');
  if (seq.end !== der.length) throw new ImageFormatError('BAD_KEY', 'bad RSA key: trailing bytes after RSAPublicKey');
  const [n, e] = derChildren(der, seq);
  expectTag(n, 0x02, 'modulus INTEGER');
  expectTag(e, 0x02, 'exponent INTEGER');
  const modulus = bigintFromBytes(der.subarray(n!.start, n!.end));
  const publicExponent = bigintFromBytes(der.subarray(e!.start, e!.end));
  if (modulus <= 0n || publicExponent <= 1n) throw new ImageFormatError('BAD_KEY', 'bad RSA key: non-positive modulus or exponent');
  return { modulus, publicExponent, bits: modulus.toString(2).length };
}

/** Parses a DER SubjectPublicKeyInfo. Throws ImageFormatError BAD_KEY for unsupported keys. */
export function parseSpki(spki: Uint8Array): ImagePublicKey {
  const top = expectTag(derRead(spki, 0), 0x30, 'SubjectPublicKeyInfo SEQUENCE');
  if (top.end !== spki.length) throw new ImageFormatError('BAD_KEY', 'bad key: trailing bytes after SubjectPublicKeyInfo');
  const [algId, bitString] = derChildren(spki, top);
  expectTag(algId, 0x30, 'AlgorithmIdentifier SEQUENCE');
  expectTag(bitString, 0x03, 'subjectPublicKey BIT STRING');
  const [oid, params] = derChildren(spki, algId!);
  expectTag(oid, 0x06, 'algorithm OID');
  const oidHex = hex(spki.subarray(oid!.start, oid!.end));
  if (bitString!.end - bitString!.start < 1 || spki[bitString!.start] !== 0) {
    throw new ImageFormatError('BAD_KEY', 'bad key: subjectPublicKey has unused bits');
  }
  const keyData = spki.slice(bitString!.start + 1, bitString!.end);
  const owned = spki.slice();
  if (oidHex === OID.ecPublicKey) {
    const curve = params && params.tag === 0x06 ? hex(spki.subarray(params.start, params.end)) : '';
    const algorithm = curve === OID.prime256v1 ? 'ecdsa-p256' : curve === OID.secp384r1 ? 'ecdsa-p384' : undefined;
    if (!algorithm) throw new ImageFormatError('BAD_KEY', 'unsupported EC curve (MCUboot signs with P-256 or P-384)');
    return { algorithm, spki: owned, embedded: owned, keyData, bits: algorithm === 'ecdsa-p256' ? 256 : 384 };
  }
  if (oidHex === OID.ed25519) {
    if (keyData.length !== 32) throw new ImageFormatError('BAD_KEY', `bad Ed25519 key: ${keyData.length} bytes`);
    return { algorithm: 'ed25519', spki: owned, embedded: owned, keyData, bits: 256 };
  }
  if (oidHex === OID.rsaEncryption || oidHex === OID.rsassaPss) {
    const rsa = parsePkcs1(keyData);
    return { algorithm: 'rsa', spki: owned, embedded: keyData, keyData, ...rsa };
  }
  throw new ImageFormatError('BAD_KEY', `unsupported public key algorithm (OID ${oidHex})`);
}

/** Wraps a PKCS#1 RSAPublicKey into an SPKI (rsaEncryption, NULL parameters). */
function spkiFromPkcs1(pkcs1: Uint8Array): Uint8Array {
  const algId = derWrap(0x30, concatBytes(derWrap(0x06, hexBytes(OID.rsaEncryption)), Uint8Array.of(0x05, 0x00)));
  return derWrap(0x30, concatBytes(algId, derWrap(0x03, concatBytes(Uint8Array.of(0), pkcs1))));
}

function hexBytes(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return out;
}

// ---- PEM ---------------------------------------------------------------------------------------

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

/** Extracts the first `-----BEGIN <label>-----` block. Throws ImageFormatError BAD_KEY if none. */
export function decodePem(text: string): PemBlock {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) throw new ImageFormatError('BAD_KEY', 'no PEM block found');
  const b64 = m[2]!.replace(/\s+/g, '');
  let bin: string;
  try {
    bin = atob(b64);
  } catch (e) {
    throw new ImageFormatError('BAD_KEY', `bad base64 in PEM block ${m[1]}`, undefined, { cause: e });
  }
  const der = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) der[i] = bin.charCodeAt(i);
  return { label: m[1]!, der };
}

/** Encodes DER as PEM with the given label. */
export function encodePem(label: string, der: Uint8Array): string {
  let bin = '';
  for (const b of der) bin += String.fromCharCode(b);
  const b64 = btoa(bin).replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/**
 * Reads a public key from PEM (`PUBLIC KEY` = SPKI, `RSA PUBLIC KEY` = PKCS#1) or DER bytes (SPKI,
 * or PKCS#1 for RSA). Throws ImageFormatError BAD_KEY.
 */
export function parsePublicKey(input: string | Uint8Array): ImagePublicKey {
  let der: Uint8Array;
  let label = '';
  if (typeof input === 'string') {
    const pem = decodePem(input);
    der = pem.der;
    label = pem.label;
  } else {
    der = input;
  }
  if (label === 'RSA PUBLIC KEY') return parseSpki(spkiFromPkcs1(der));
  if (label !== '' && label !== 'PUBLIC KEY') {
    throw new ImageFormatError('BAD_KEY', `expected a PUBLIC KEY PEM block, got ${label}`);
  }
  try {
    return parseSpki(der);
  } catch (e) {
    if (label !== '') throw e;
    // DER input that is not an SPKI: try a bare PKCS#1 RSA key (what MCUboot embeds for RSA).
    try {
      parsePkcs1(der);
    } catch {
      throw e;
    }
    return parseSpki(spkiFromPkcs1(der));
  }
}

/** Exports a Web Crypto public key and parses it. */
export async function publicKeyFromCryptoKey(key: CryptoKey): Promise<ImagePublicKey> {
  return parseSpki(new Uint8Array(await globalThis.crypto.subtle.exportKey('spki', key)));
}

/** True when two keys are the same key (same embedded bytes). */
export function samePublicKey(a: ImagePublicKey, b: ImagePublicKey): boolean {
  return bytesEqual(a.embedded, b.embedded);
}

// ---- private keys (signing, mostly for tests and the builder) -----------------------------------

/** Web Crypto import parameters for a key algorithm. */
export function webCryptoKeyParams(algorithm: PublicKeyAlgorithm): RsaHashedImportParams | EcKeyImportParams | Algorithm {
  switch (algorithm) {
    case 'ecdsa-p256':
      return { name: 'ECDSA', namedCurve: 'P-256' };
    case 'ecdsa-p384':
      return { name: 'ECDSA', namedCurve: 'P-384' };
    case 'ed25519':
      return { name: 'Ed25519' };
    case 'rsa':
      return { name: 'RSA-PSS', hash: 'SHA-256' };
  }
}

/** Identifies the algorithm of a PKCS#8 PrivateKeyInfo. */
export function pkcs8Algorithm(der: Uint8Array): PublicKeyAlgorithm {
  const top = expectTag(derRead(der, 0), 0x30, 'PrivateKeyInfo SEQUENCE');
  const [, algId] = derChildren(der, top);
  expectTag(algId, 0x30, 'AlgorithmIdentifier SEQUENCE');
  const [oid, params] = derChildren(der, algId!);
  expectTag(oid, 0x06, 'algorithm OID');
  const oidHex = hex(der.subarray(oid!.start, oid!.end));
  if (oidHex === OID.ecPublicKey) {
    const curve = params && params.tag === 0x06 ? hex(der.subarray(params.start, params.end)) : '';
    if (curve === OID.prime256v1) return 'ecdsa-p256';
    if (curve === OID.secp384r1) return 'ecdsa-p384';
    throw new ImageFormatError('BAD_KEY', 'unsupported EC curve (MCUboot signs with P-256 or P-384)');
  }
  if (oidHex === OID.ed25519) return 'ed25519';
  if (oidHex === OID.rsaEncryption || oidHex === OID.rsassaPss) return 'rsa';
  throw new ImageFormatError('BAD_KEY', `unsupported private key algorithm (OID ${oidHex})`);
}

/** A private key ready for signing, with its public half. */
export interface SigningKey {
  algorithm: PublicKeyAlgorithm;
  privateKey: CryptoKey;
  publicKey: ImagePublicKey;
}

/**
 * Makes a {@link SigningKey} from a PKCS#8 PEM (`PRIVATE KEY`) or a Web Crypto key pair. The public
 * half of a PEM key is derived through JWK (dropping the private fields).
 */
export async function loadSigningKey(input: string | CryptoKeyPair): Promise<SigningKey> {
  const subtle = globalThis.crypto.subtle;
  if (typeof input !== 'string') {
    const publicKey = await publicKeyFromCryptoKey(input.publicKey);
    return { algorithm: publicKey.algorithm, privateKey: input.privateKey, publicKey };
  }
  const pem = decodePem(input);
  if (pem.label !== 'PRIVATE KEY') {
    throw new ImageFormatError('BAD_KEY', `expected a PKCS#8 "PRIVATE KEY" PEM block, got ${pem.label}`);
  }
  const algorithm = pkcs8Algorithm(pem.der);
  const params = webCryptoKeyParams(algorithm);
  let privateKey: CryptoKey;
  try {
    privateKey = await subtle.importKey('pkcs8', pem.der as Uint8Array<ArrayBuffer>, params, true, ['sign']);
  } catch (e) {
    throw new ImageFormatError('BAD_KEY', `cannot import the private key: ${(e as Error).message}`, undefined, { cause: e });
  }
  const jwk = await subtle.exportKey('jwk', privateKey);
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...publicJwk } = jwk;
  const pub = await subtle.importKey('jwk', { ...publicJwk, key_ops: ['verify'] }, params, true, ['verify']);
  return { algorithm, privateKey, publicKey: await publicKeyFromCryptoKey(pub) };
}
