/**
 * MCUboot images: parse, verify (hash and signature, from memory or streamed), build, and the
 * slot trailer / swap-type rules. Portable: Uint8Array, Web Crypto and @noble only.
 */
export * from './constants.ts';
export { ImageFormatError, type ImageErrorReason } from './errors.ts';
export {
  decodeImageHeader,
  readImageHeaderFields,
  encodeImageHeader,
  formatImageVersion,
  formatImgtoolVersion,
  parseImageVersion,
  compareImageVersions,
  type ImageHeader,
  type ImageVersion,
} from './header.ts';
export { decodeTlvBlock, decodeTlvInfo, describeTlvValue, encodeTlvBlock, locateTlvs, type ImageTlv, type TlvEntry, type TlvInfo, type TlvLayout } from './tlv.ts';
export { digest, nobleHashFactory, webCryptoHashName, type HashFactory, type IncrementalHash } from './hash.ts';
export {
  decodePem,
  encodePem,
  loadSigningKey,
  parsePublicKey,
  parseSpki,
  pkcs8Algorithm,
  publicKeyFromCryptoKey,
  samePublicKey,
  webCryptoKeyParams,
  type ImagePublicKey,
  type PemBlock,
  type PublicKeyAlgorithm,
  type SigningKey,
} from './keys.ts';
export { defaultHashFor, signatureTlvTypeFor, trimEcdsaDer, verifyDigestSignature, verifyEd25519, verifyRsaPssDigest } from './signature.ts';
export {
  assertImageValid,
  bytesImageSource,
  parseImage,
  readImage,
  verifyImage,
  type HashCheck,
  type ImageDependency,
  type ImageSource,
  type ImageVerification,
  type McubootImage,
  type SignatureCheck,
  type VerifyOptions,
} from './image.ts';
export { buildImage, padImageToSlot, type BuildImageOptions, type BuiltImage, type PadToSlotOptions } from './build.ts';
export * from './trailer.ts';
export { readDfuPackage, buildDfuPackage, isZipArchive, DFU_PACKAGE_MAX_BYTES, type DfuPackage, type DfuPackageImage, type DfuPackageInput } from './dfu-package.ts';
