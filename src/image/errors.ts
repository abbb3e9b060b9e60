import { ProtocolError, type McuMgrErrorOptions } from '../core/errors.ts';

/**
 * Why an image was rejected. Structural reasons come from parsing; `HASH_MISMATCH`,
 * `BAD_SIGNATURE` and `NO_TRUSTED_SIGNATURE` only from {@link assertImageValid}.
 */
export type ImageErrorReason =
  | 'TRUNCATED'
  | 'BAD_MAGIC'
  | 'BAD_HEADER'
  | 'NO_TLVS'
  | 'BAD_PROTECTED_TLVS'
  | 'BAD_TLV'
  | 'NO_HASH'
  | 'HASH_MISMATCH'
  | 'BAD_SIGNATURE'
  | 'NO_TRUSTED_SIGNATURE'
  | 'BAD_KEY'
  | 'BAD_OPTIONS'
  /** A west DFU package (dfu_application.zip) that cannot be used: not a zip, no manifest, missing file. */
  | 'BAD_PACKAGE';

/**
 * A malformed, truncated or unverifiable MCUboot image. Always code `PROTOCOL_BAD_IMAGE`; `reason`
 * says which rule failed, `offset` where in the image (when it applies).
 */
export class ImageFormatError extends ProtocolError {
  readonly reason: ImageErrorReason;
  readonly offset: number | undefined;
  constructor(reason: ImageErrorReason, message: string, offset?: number, options?: McuMgrErrorOptions) {
    super('PROTOCOL_BAD_IMAGE', message, options);
    this.reason = reason;
    this.offset = offset;
  }
}
