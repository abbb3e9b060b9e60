/**
 * The MCUboot image trailer at the end of each slot, and the swap-type decision, as in
 * `bootutil_public.c` / `bootutil_misc.h` (checked in mcu-tools/mcuboot main, 2026-07) for the
 * default `BOOT_MAX_ALIGN` = 8 and a non-offset swap mode. Offsets from the slot start, S = slot size:
 *
 * | field | offset | content |
 * |---|---|---|
 * | magic | S−16 … S−1 | 16 bytes {@link BOOT_MAGIC} |
 * | image_ok | S−24 | 1 byte (then 7 bytes 0xff) — `ALIGN_DOWN(S−16−8, 8)` |
 * | copy_done | S−32 | 1 byte |
 * | swap_info | S−40 | low nibble swap type, high nibble image index |
 * | swap_size | S−48 | u32 |
 * | swap status | before swap_size | `BOOT_MAX_IMG_SECTORS` × 3 × write-align bytes |
 *
 * Decoding (`boot_read_swap_state`): magic all 0xff → UNSET, equal → GOOD, else BAD; a flag byte
 * 0xff → UNSET, exactly 0x01 → SET, else BAD; swap_info erased or type > REVERT → NONE, image 0.
 */

/** `BOOT_MAX_ALIGN` (default). */
export const BOOT_MAX_ALIGN = 8;
/** Trailer magic for `BOOT_MAX_ALIGN` = 8. */
export const BOOT_MAGIC: Uint8Array = Uint8Array.of(0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80);
export const BOOT_MAGIC_SIZE = 16;
/** swap_size + swap_info + copy_done + image_ok (each `BOOT_MAX_ALIGN`) + magic. */
export const TRAILER_INFO_SIZE = BOOT_MAX_ALIGN * 4 + BOOT_MAGIC_SIZE;
/** Value of erased flash. */
export const ERASED = 0xff;

/** `BOOT_SWAP_TYPE_*` (bootutil_public.h). */
export const SwapType = { NONE: 1, TEST: 2, PERM: 3, REVERT: 4, FAIL: 5, PANIC: 0xff } as const;
export type SwapTypeValue = (typeof SwapType)[keyof typeof SwapType];

export function swapTypeName(t: number): string {
  return (Object.entries(SwapType).find(([, v]) => v === t)?.[0] ?? `UNKNOWN(${t})`).toLowerCase();
}

/** `BOOT_MAGIC_*`. */
export const MagicState = { GOOD: 1, BAD: 2, UNSET: 3 } as const;
export type MagicStateValue = (typeof MagicState)[keyof typeof MagicState];
/** `BOOT_FLAG_*`. */
export const FlagState = { SET: 1, BAD: 2, UNSET: 3 } as const;
export type FlagStateValue = (typeof FlagState)[keyof typeof FlagState];

/** Offsets of the trailer fields for a slot of `slotSize` bytes. */
export function trailerOffsets(slotSize: number): { magic: number; imageOk: number; copyDone: number; swapInfo: number; swapSize: number } {
  const magic = slotSize - BOOT_MAGIC_SIZE;
  const imageOk = Math.floor((magic - BOOT_MAX_ALIGN) / BOOT_MAX_ALIGN) * BOOT_MAX_ALIGN;
  const copyDone = imageOk - BOOT_MAX_ALIGN;
  const swapInfo = copyDone - BOOT_MAX_ALIGN;
  const swapSize = swapInfo - BOOT_MAX_ALIGN;
  return { magic, imageOk, copyDone, swapInfo, swapSize };
}

/**
 * The trailer size imgtool reserves (`_trailer_size`): `maxSectors × 3 × writeAlign` of swap
 * status + 32 bytes of encryption keys if encrypted + `maxAlign × 4` + the magic aligned up.
 * With the defaults (128 sectors, write alignment 8) that is 3120 bytes.
 */
export function trailerSize(options: { maxSectors?: number; writeAlign?: number; encrypted?: boolean } = {}): number {
  const maxSectors = options.maxSectors ?? 128;
  const writeAlign = options.writeAlign ?? BOOT_MAX_ALIGN;
  return maxSectors * 3 * writeAlign + (options.encrypted ? 32 : 0) + BOOT_MAX_ALIGN * 4 + BOOT_MAGIC_SIZE;
}

/** `struct boot_swap_state`. */
export interface SwapState {
  magic: MagicStateValue;
  /** From swap_info: NONE unless a valid TEST/PERM/REVERT was written. */
  swapType: SwapTypeValue;
  imageNum: number;
  copyDone: FlagStateValue;
  imageOk: FlagStateValue;
}

function decodeFlag(b: number): FlagStateValue {
  return b === ERASED ? FlagState.UNSET : b === 1 ? FlagState.SET : FlagState.BAD;
}

/** Decodes the last {@link TRAILER_INFO_SIZE} bytes of a slot (`boot_read_swap_state`). */
export function decodeSwapState(tail: Uint8Array): SwapState {
  if (tail.length !== TRAILER_INFO_SIZE) throw new RangeError(`trailer tail must be ${TRAILER_INFO_SIZE} bytes, got ${tail.length}`);
  const o = trailerOffsets(TRAILER_INFO_SIZE);
  const magicBytes = tail.subarray(o.magic, o.magic + BOOT_MAGIC_SIZE);
  let erased = true;
  let good = true;
  for (let i = 0; i < BOOT_MAGIC_SIZE; i++) {
    if (magicBytes[i] !== ERASED) erased = false;
    if (magicBytes[i] !== BOOT_MAGIC[i]) good = false;
  }
  const magic = erased ? MagicState.UNSET : good ? MagicState.GOOD : MagicState.BAD;
  const info = tail[o.swapInfo]!;
  let swapType = (info & 0x0f) as SwapTypeValue;
  let imageNum = info >> 4;
  if (info === ERASED || swapType > SwapType.REVERT) {
    swapType = SwapType.NONE;
    imageNum = 0;
  }
  return { magic, swapType, imageNum, copyDone: decodeFlag(tail[o.copyDone]!), imageOk: decodeFlag(tail[o.imageOk]!) };
}

/** What to write into a trailer tail; omitted fields stay erased. */
export interface TrailerFields {
  magic?: boolean;
  imageOk?: boolean;
  copyDone?: boolean;
  swapInfo?: { swapType: number; image: number };
  swapSize?: number;
}

/** Encodes a trailer tail ({@link TRAILER_INFO_SIZE} bytes, everything else erased). */
export function encodeTrailerTail(fields: TrailerFields): Uint8Array {
  const tail = new Uint8Array(TRAILER_INFO_SIZE).fill(ERASED);
  const o = trailerOffsets(TRAILER_INFO_SIZE);
  if (fields.magic) tail.set(BOOT_MAGIC, o.magic);
  if (fields.imageOk) tail[o.imageOk] = 1;
  if (fields.copyDone) tail[o.copyDone] = 1;
  if (fields.swapInfo) {
    if (fields.swapInfo.image > 0xe || fields.swapInfo.swapType > 0xe) throw new RangeError('swap_info image and type must be < 15');
    tail[o.swapInfo] = (fields.swapInfo.image << 4) | fields.swapInfo.swapType;
  }
  if (fields.swapSize !== undefined) new DataView(tail.buffer).setUint32(o.swapSize, fields.swapSize, true);
  return tail;
}

/**
 * `boot_swap_type_multi`: the first matching row wins.
 * 1. secondary magic GOOD, secondary image_ok UNSET → TEST
 * 2. secondary magic GOOD, secondary image_ok SET → PERM
 * 3. primary magic GOOD, primary image_ok UNSET, primary copy_done SET → REVERT
 * 4. otherwise NONE
 */
export function decideSwapType(primary: SwapState, secondary: SwapState): SwapTypeValue {
  if (secondary.magic === MagicState.GOOD && secondary.imageOk === FlagState.UNSET) return SwapType.TEST;
  if (secondary.magic === MagicState.GOOD && secondary.imageOk === FlagState.SET) return SwapType.PERM;
  if (primary.magic === MagicState.GOOD && primary.imageOk === FlagState.UNSET && primary.copyDone === FlagState.SET) return SwapType.REVERT;
  return SwapType.NONE;
}
