/**
 * Hashing for images. One-shot digests go through Web Crypto (`globalThis.crypto.subtle`, native in
 * Node 20 and browsers). Web Crypto has no incremental interface, so streaming verification (a
 * server reading a slot in chunks, never holding the image) uses an {@link IncrementalHash}: by
 * default @noble/hashes (portable, audited); Node code may pass a factory over `node:crypto`'s
 * `createHash`, which is faster.
 */
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import type { HashAlgorithm } from './constants.ts';

/** An incremental hash: feed chunks with `update`, read the digest once with `digest`. */
export interface IncrementalHash {
  update(chunk: Uint8Array): void;
  digest(): Uint8Array;
}

/** Makes incremental hashes; inject one to use a platform implementation. */
export type HashFactory = (algorithm: HashAlgorithm) => IncrementalHash;

/** The portable default: @noble/hashes. */
export const nobleHashFactory: HashFactory = (algorithm) => {
  const h = algorithm === 'sha256' ? sha256.create() : algorithm === 'sha384' ? sha384.create() : sha512.create();
  return {
    update(chunk) {
      h.update(chunk);
    },
    digest() {
      return h.digest();
    },
  };
};

const WEB_CRYPTO_NAME: Readonly<Record<HashAlgorithm, string>> = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

/** The Web Crypto name of an algorithm (`SHA-256`, ...). */
export function webCryptoHashName(algorithm: HashAlgorithm): string {
  return WEB_CRYPTO_NAME[algorithm];
}

/** One-shot digest with Web Crypto. */
export async function digest(algorithm: HashAlgorithm, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await globalThis.crypto.subtle.digest(WEB_CRYPTO_NAME[algorithm], data as Uint8Array<ArrayBuffer>));
}
