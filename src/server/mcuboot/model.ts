/**
 * A device-side model of MCUboot with durable slots, in any of its modes (modes.ts), plus the slot
 * logic of Zephyr's image management group (img_mgmt) that sits on top of it.
 *
 * Storage, under `dir`:
 * ```
 * layout.json                  slot size, image count, trailer size, mode (checked on every open)
 * image-<n>/slot-0.bin         primary slot of image n (slot size bytes, 0xff = erased; with
 *                              `slotStorage: "sparse"` in layout.json every byte is stored
 *                              inverted, erased = holes: see slot-file.ts)
 * image-<n>/slot-1.bin         secondary slot
 * image-<n>/scratch.bin        one swap sector
 * image-<n>/swap-status.json   swap journal, present only while a swap is in progress
 * security-counters.json       stored security counters (MCUBOOT_HW_ROLLBACK_PROT)
 * ```
 * Absolute slot numbers are `2 * image + slot`, as img_mgmt numbers them.
 *
 * Bootloader side, `boot()` (mcu-tools/mcuboot boot/bootutil/src/loader.c at 2d4bacc, read
 * 2026-07, `context_boot_go` and `boot_load_and_validate_images`):
 * - swap and overwrite-only modes: finish an interrupted swap from its journal; otherwise take the
 *   swap type from the trailers ({@link decideSwapType}); for TEST/PERM/REVERT validate the
 *   secondary (header; encrypted/compressed refused as without MCUBOOT_ENC_IMAGES /
 *   MCUBOOT_DECOMPRESS_IMAGES; hash; signature with keys; security counter with
 *   MCUBOOT_HW_ROLLBACK_PROT; overwrite-only downgrade check) and erase it when invalid; with
 *   several images check DEPENDENCY TLVs (`boot_verify_dependencies`: one unmet dependency cancels
 *   every upgrade of this boot); swap-mode downgrade prevention (`check_downgrade_prevention`);
 *   swap, or copy (`boot_copy_image`); finally validate every primary (MCUBOOT_VALIDATE_PRIMARY_SLOT)
 *   and raise the stored security counter of a confirmed image;
 * - direct-XIP and RAM load: the newest valid slot, with `boot_rom_address_check` and, with
 *   revert, `boot_select_or_erase`; invalid slots are erased;
 * - single slot: slot 0 when valid; otherwise the device stays in serial recovery.
 *
 * Application side (img_mgmt, Zephyr `img_mgmt_state.c` / `img_mgmt.c`, read 2026-07): image
 * state flags, next-boot slot (swap and the two direct-XIP variants of
 * `img_mgmt_get_next_boot_slot`), slot-in-use, set-next-boot with every refusal of
 * `img_mgmt_set_next_boot_slot` (and its direct-XIP-revert variant), `boot_set_next` trailer writes
 * (and the direct-XIP build of it), erase, upload target selection and writes. Refusals throw
 * {@link MgmtError} group 1 with the img_mgmt error number, or rc 8 where Zephyr (or MCUboot's
 * serial recovery) has no handler for the command in that mode.
 *
 * All operations are serialised by one lock (img_mgmt's `img_mgmt_take_lock`).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { McuMgrError } from '../../core/errors.ts';
import { bytesEqual } from '../../core/bytes.ts';
import {
  FlagState,
  ImageFlag,
  ImageFormatError,
  MagicState,
  SwapType,
  TRAILER_INFO_SIZE,
  buildImage,
  compareImageVersions,
  decideSwapType,
  decodeSwapState,
  BOOT_MAGIC,
  BOOT_MAX_ALIGN,
  formatImageVersion,
  trailerOffsets,
  readImage,
  swapTypeName,
  trailerSize as imgtoolTrailerSize,
  encodeTrailerTail,
  IMAGE_MAGIC,
  readImageHeaderFields,
  type ImageDependency,
  verifyImage,
  type ImagePublicKey,
  type ImageVerification,
  type ImageVersion,
  type SwapState,
  type SwapTypeValue,
} from '../../image/index.ts';
import { MgmtError } from '../errors.ts';
import { writeFileAtomic } from '../storage.ts';
import { ImgErr, readImgMgmtInfo, type ImgInfo } from './img-info.ts';
import { IO_CHUNK, SlotFile, nodeHashFactory } from './slot-file.ts';
import type { FlashTiming } from '../device-timing.ts';
import { overwriteCopy, readSwapJournal, runSwap, startSwap, type CopyProgress, type SwapProgress } from './swap.ts';
import { MCUBOOT_MODE_NUMBER, isEquivalentSlotMode, type McubootModeName } from './modes.ts';

/** Image management group id. */
const IMG_GROUP = 1;

export interface McubootModelOptions {
  /** Directory for the slot files (created if missing). */
  dir: string;
  /** Number of updatable images (slot pairs), 1–15 (default 1). */
  images?: number;
  /** Size of every slot in bytes (default 1.5 MiB: a 1 MiB image plus trailer fits easily). */
  slotSize?: number;
  /** Swap unit and scratch size (default 128 KiB); bounds the swap's journal writes, not memory. */
  sectorSize?: number;
  /** Trailer region reserved at the end of each slot (default imgtool's 3120 bytes). */
  trailerSize?: number;
  /** Flash write and erase times of the slots (default: none, as fast as the disk). */
  flashTiming?: FlashTiming;
  /** Trusted keys: with keys, MCUboot boots only images signed by one of them; without, hash only. */
  keys?: readonly ImagePublicKey[];
  /** The image whose primary slot runs the application that answers SMP (`img_mgmt_active_image`, default 0). */
  activeImage?: number;
  /** The image installed in each primary slot on first start (default: a 1.0.0 image built here). */
  factoryImage?: (image: number) => Uint8Array | Promise<Uint8Array>;
  /** CONFIG_MCUMGR_GRP_IMG_ALLOW_CONFIRM_NON_ACTIVE_IMAGE_{SECONDARY,ANY} (default none). */
  allowConfirmNonActiveImage?: 'none' | 'secondary' | 'any';
  /** CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING (default false). */
  allowErasePending?: boolean;
  /** Called around every swap step (tests kill the process here). */
  onSwapProgress?: (p: SwapProgress) => void | Promise<void>;
  /** Called around every step of an overwrite-only copy (tests kill the process here). */
  onCopyProgress?: (p: CopyProgress) => void | Promise<void>;
  /** MCUboot's mode of operation (default `swap-move`); see modes.ts. Fixed when the device is created. */
  mode?: McubootModeName;
  /**
   * MCUBOOT_DOWNGRADE_PREVENTION: a pending image older than the running one (major.minor.revision)
   * is erased instead of installed (overwrite-only: boot_validate_slot; swap modes:
   * check_downgrade_prevention). Direct-XIP modes prevent downgrades by picking the newest anyway.
   */
  downgradePrevention?: boolean;
  /**
   * MCUBOOT_HW_ROLLBACK_PROT: every image needs a SEC_CNT TLV not lower than the stored counter of
   * its image number; the counter rises when an image is confirmed (or installed permanently).
   */
  hwRollbackProtection?: boolean;
  /**
   * Keep the slots of a new device as sparse files (inverted bytes, erased = holes; slot-file.ts):
   * creating and erasing a slot writes nothing, so a thousand devices do not write their slots'
   * full size. Fixed when the device is created (layout.json); an existing device keeps its own.
   */
  sparseSlots?: boolean;
}

interface Layout {
  version: 1;
  images: number;
  slotSize: number;
  trailerSize: number;
  sectorSize: number;
  /** Absent in directories made before modes existed: those are swap devices. */
  mode?: McubootModeName;
  /** `sparse`: slot files store bytes inverted, erased = holes (slot-file.ts). Absent: plain, 0xff-filled. */
  slotStorage?: 'sparse';
}

/** img_mgmt's next-boot type (`enum img_mgmt_next_boot_type`). */
export type NextBootType = 'normal' | 'test' | 'revert';

/** One entry of the image state list (1/0 read). */
export interface ImageSlotState {
  image: number;
  /** 0 or 1 within the image. */
  slot: number;
  version: string;
  /** SHA256 TLV value. */
  hash: Uint8Array;
  bootable: boolean;
  pending: boolean;
  confirmed: boolean;
  active: boolean;
  permanent: boolean;
}

/** What `boot()` did for one image. */
export interface ImageBootReport {
  image: number;
  /** The swap type the trailers asked for (before validation). */
  requested: string;
  /**
   * What was done: none, test, perm, revert, resumed (an interrupted swap was completed),
   * overwrite (overwrite-only copy), or in equivalent-slot modes the slot chosen (`slot-0`, `slot-1`).
   */
  performed: 'none' | 'test' | 'perm' | 'revert' | 'resumed' | 'overwrite' | 'slot-0' | 'slot-1';
  /** Why an upgrade was not done although one was asked for (dependency, downgrade). */
  blocked?: string;
  /** Why the secondary was erased instead of swapped in, if it was. */
  secondaryRejected?: string;
  /** The primary slot holds a valid image after the swap. */
  primaryValid: boolean;
  /** Version running from the primary slot (undefined when it does not boot). */
  version: string | undefined;
}

export interface BootReport {
  /** Every image's primary slot verified: the application runs. */
  ok: boolean;
  images: ImageBootReport[];
}

/** Slot geometry for 1/6 slot info. */
export interface SlotInfoEntry {
  image: number;
  slots: Array<{ slot: number; size: number; uploadImageId?: number }>;
}

/**
 * The upload in progress: img_mgmt's RAM session (`g_img_mgmt_state`). The only copy: the image
 * group reads it for resumes and continuations, and it is lost at every boot, as RAM is.
 */
export interface UploadTarget {
  image: number;
  /** Absolute slot being written. */
  slot: number;
  /** Total image length announced by the client. */
  size: number;
  /** The next offset expected (bytes written so far). */
  off: number;
  /** The client's `sha` of the first chunk (up to 32 bytes; empty when none): a resume with the same `sha` continues. */
  sha: Uint8Array;
  /**
   * The peer whose first chunk started or resumed the session (the image group's rule: Zephyr's
   * session has no owner, here another peer's later chunks are refused). Undefined when not told.
   */
  owner?: string;
}

const DEFAULT_SLOT_SIZE = 0x180000;
const DEFAULT_SECTOR_SIZE = 0x20000;

/** A deterministic factory payload so a fresh device always has the same image hash. */
function factoryPayload(image: number): Uint8Array {
  const out = new Uint8Array(16 * 1024);
  let x = 0x12345678 ^ (image * 0x9e3779b9);
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export class McubootModel {
  readonly dir: string;
  readonly images: number;
  readonly slotSize: number;
  readonly sectorSize: number;
  readonly trailerSize: number;
  /** Largest image (header + payload + TLVs) MCUboot accepts: slot size minus trailer. */
  readonly maxImageSize: number;
  readonly activeImage: number;
  private readonly keys: readonly ImagePublicKey[];
  private readonly options: McubootModelOptions;
  private readonly slots: SlotFile[] = [];
  private readonly scratch: SlotFile[] = [];
  private lock: Promise<unknown> = Promise.resolve();
  private lastBoot: BootReport | undefined;
  private upload: UploadTarget | undefined;
  /** The last digest computed per slot, kept while the slot's content is unchanged (see slotDigest). */
  private readonly digests = new Map<SlotFile, { length: number; generation: number; digest: Uint8Array }>();
  private closed = false;
  /** MCUboot's mode of operation. */
  readonly mode: McubootModeName;
  readonly downgradePrevention: boolean;
  readonly hwRollbackProtection: boolean;
  /** Equivalent-slot modes: the absolute slot each image booted from at the last boot. */
  private readonly bootedSlot: number[] = [];
  /** MCUBOOT_HW_ROLLBACK_PROT: the stored (monotonic) security counter of each image. */
  private securityCounters: number[] = [];

  private constructor(options: McubootModelOptions, layout: Layout) {
    this.options = options;
    this.dir = options.dir;
    this.images = layout.images;
    this.slotSize = layout.slotSize;
    this.sectorSize = layout.sectorSize;
    this.trailerSize = layout.trailerSize;
    this.mode = layout.mode ?? 'swap-move';
    this.downgradePrevention = options.downgradePrevention ?? false;
    this.hwRollbackProtection = options.hwRollbackProtection ?? false;
    // swap-move and swap-offset need one spare sector (MCUboot docs/design.md).
    this.maxImageSize = layout.slotSize - layout.trailerSize - (this.mode === 'swap-move' || this.mode === 'swap-offset' ? layout.sectorSize : 0);
    this.activeImage = options.activeImage ?? 0;
    this.keys = options.keys ?? [];
  }

  /**
   * Opens (or on first start creates) the slot storage. A new device gets the factory image in
   * every primary slot, unflagged: swap type NONE, so it is active and confirmed. Does not boot:
   * call {@link boot} as a reset would.
   */
  static async open(options: McubootModelOptions): Promise<McubootModel> {
    const wanted: Layout = {
      version: 1,
      images: options.images ?? 1,
      slotSize: options.slotSize ?? DEFAULT_SLOT_SIZE,
      trailerSize: options.trailerSize ?? imgtoolTrailerSize(),
      sectorSize: options.sectorSize ?? DEFAULT_SECTOR_SIZE,
      mode: options.mode ?? 'swap-move',
      ...(options.sparseSlots ? { slotStorage: 'sparse' as const } : {}),
    };
    if (isEquivalentSlotMode(wanted.mode!) && wanted.images !== 1) {
      // img_mgmt_active_slot: "Multi image does not support DirectXIP currently" (Zephyr img_mgmt.c).
      throw new RangeError(`${wanted.mode} supports one image (Zephyr's img_mgmt has no multi-image direct-XIP), got ${wanted.images}`);
    }
    if (!Number.isInteger(wanted.images) || wanted.images < 1 || wanted.images > 15) throw new RangeError(`images must be 1-15, got ${wanted.images}`);
    if (!Number.isInteger(wanted.slotSize) || wanted.slotSize < 4096) throw new RangeError(`slotSize must be at least 4096, got ${wanted.slotSize}`);
    if (!Number.isInteger(wanted.trailerSize) || wanted.trailerSize < TRAILER_INFO_SIZE || wanted.trailerSize >= wanted.slotSize / 2) {
      throw new RangeError(`trailerSize must be ${TRAILER_INFO_SIZE}..slotSize/2, got ${wanted.trailerSize}`);
    }
    if (!Number.isInteger(wanted.sectorSize) || wanted.sectorSize < 512) throw new RangeError(`sectorSize must be at least 512, got ${wanted.sectorSize}`);
    const activeImage = options.activeImage ?? 0;
    if (!Number.isInteger(activeImage) || activeImage < 0 || activeImage >= wanted.images) throw new RangeError(`activeImage must be 0..${wanted.images - 1}`);

    await mkdir(options.dir, { recursive: true });
    const layoutPath = join(options.dir, 'layout.json');
    let existing: Layout | undefined;
    try {
      existing = JSON.parse(await readFile(layoutPath, 'utf8')) as Layout;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new McuMgrError('DEVICE_STATE', `cannot read ${layoutPath}`, { cause: e });
    }
    if (existing) {
      for (const k of ['images', 'slotSize', 'trailerSize', 'sectorSize', 'mode'] as const) {
        const had = k === 'mode' ? (existing.mode ?? 'swap-move') : existing[k];
        if (had !== wanted[k] && options[k] !== undefined) {
          throw new McuMgrError('DEVICE_STATE', `${options.dir} was created with ${k} ${had}, not ${wanted[k]} (use another --data directory)`);
        }
      }
    }
    const layout = existing ?? wanted;
    const model = new McubootModel(options, layout);
    try {
      for (let i = 0; i < layout.images; i++) {
        const d = join(options.dir, `image-${i}`);
        await mkdir(d, { recursive: true });
        const sparse = layout.slotStorage === 'sparse';
        model.slots.push(await SlotFile.open(join(d, 'slot-0.bin'), layout.slotSize, options.flashTiming, sparse), await SlotFile.open(join(d, 'slot-1.bin'), layout.slotSize, options.flashTiming, sparse));
        model.scratch.push(await SlotFile.open(join(d, 'scratch.bin'), layout.sectorSize, undefined, sparse));
      }
      if (!existing) {
        // First start: install the factory images, then commit the layout (a crash before the
        // commit redoes the installation on the next open).
        for (let i = 0; i < layout.images; i++) {
          const bytes = options.factoryImage
            ? await options.factoryImage(i)
            : (await buildImage({
                payload: factoryPayload(i),
                version: { major: 1, minor: 0, revision: 0, build: 0 },
                // With rollback protection every image needs a security counter.
                ...(options.hwRollbackProtection ? { securityCounter: 'auto' as const } : {}),
              })).bytes;
          if (bytes.length > model.maxImageSize) throw new RangeError(`factory image ${i} is ${bytes.length} bytes, more than ${model.maxImageSize}`);
          const primary = model.slots[2 * i]!;
          // Files left by a first start cut short are erased; files made just now are erased already.
          if (!primary.created) await primary.eraseAll();
          await primary.write(0, bytes);
          // Direct-XIP with revert boots only slots whose trailer has the magic: the factory image is
          // programmed confirmed (imgtool --pad --confirm, Zephyr's zephyr.signed.confirmed.bin).
          if (layout.mode === 'direct-xip-revert') await primary.write(primary.size - TRAILER_INFO_SIZE, encodeTrailerTail({ magic: true, imageOk: true }));
          await primary.sync();
          // (A first start cut short with other storage options left files in another encoding.)
          for (const f of [model.slots[2 * i + 1]!, model.scratch[i]!]) if (!f.created) await f.eraseAll();
        }
        await writeFileAtomic(layoutPath, JSON.stringify(layout));
      }
      await model.loadSecurityCounters();
    } catch (e) {
      await model.closeFiles();
      throw e;
    }
    return model;
  }

  private get countersPath(): string {
    return join(this.dir, 'security-counters.json');
  }

  private async loadSecurityCounters(): Promise<void> {
    let stored: unknown;
    try {
      stored = JSON.parse(await readFile(this.countersPath, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new McuMgrError('DEVICE_STATE', `cannot read ${this.countersPath}`, { cause: e });
    }
    this.securityCounters = Array.from({ length: this.images }, (_, i) => {
      const v = Array.isArray(stored) ? (stored[i] as unknown) : undefined;
      return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0;
    });
  }

  /** The stored security counter of each image (MCUBOOT_HW_ROLLBACK_PROT; 0 until an image raises it). */
  get storedSecurityCounters(): readonly number[] {
    return [...this.securityCounters];
  }

  /** `boot_nv_security_counter_update`: only ever rises; durable before it returns. */
  private async raiseSecurityCounter(image: number, f: SlotFile): Promise<void> {
    if (!this.hwRollbackProtection) return;
    const v = await this.verifyFile(f);
    const n = v instanceof ImageFormatError ? undefined : v.image.securityCounter;
    if (n === undefined || n <= (this.securityCounters[image] ?? 0)) return;
    this.securityCounters[image] = n;
    await writeFileAtomic(this.countersPath, JSON.stringify(this.securityCounters));
  }

  /**
   * Whether bootloader info reports `no-downgrade: true` (Zephyr's
   * CONFIG_MCUBOOT_BOOTLOADER_NO_DOWNGRADE: selected by the direct-XIP modes, set by hand when
   * MCUboot is built with MCUBOOT_DOWNGRADE_PREVENTION).
   */
  get noDowngrade(): boolean {
    return isEquivalentSlotMode(this.mode) || this.downgradePrevention;
  }

  /** The number bootloader info reports for this mode (`query: mode`). */
  get modeNumber(): number {
    return MCUBOOT_MODE_NUMBER[this.mode];
  }

  /**
   * Flash address of a slot (for ROM_FIXED direct-XIP images: `ih_load_addr` must equal it,
   * `boot_rom_address_check`). The emulated flash puts a 64 KiB bootloader first, then the slots
   * in order.
   */
  slotAddress(absSlot: number): number {
    return 0x10000 + absSlot * this.slotSize;
  }

  private async closeFiles(): Promise<void> {
    for (const f of [...this.slots, ...this.scratch]) await f.close().catch(() => {});
  }

  /** Closes the slot files. */
  async close(): Promise<void> {
    const run = this.lock.then(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.closeFiles();
    });
    this.lock = run.catch(() => {});
    await run;
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(() => {
      if (this.closed) throw new McuMgrError('DEVICE_STATE', 'MCUboot model is closed');
      return fn();
    });
    this.lock = run.catch(() => {});
    return run;
  }

  // ---- slots and trailers ----------------------------------------------------------------------

  private checkImage(image: number): void {
    if (!Number.isInteger(image) || image < 0 || image >= this.images) throw new RangeError(`image must be 0..${this.images - 1}, got ${image}`);
  }

  private slotFile(absSlot: number): SlotFile | undefined {
    return Number.isInteger(absSlot) && absSlot >= 0 ? this.slots[absSlot] : undefined;
  }

  /** The slot file of an absolute slot (for handlers that stream a slot). Throws RangeError if out of range. */
  slot(absSlot: number): SlotFile {
    const f = this.slotFile(absSlot);
    if (!f) throw new RangeError(`slot must be 0..${2 * this.images - 1}, got ${absSlot}`);
    return f;
  }

  private async readSwapState(f: SlotFile): Promise<SwapState> {
    return decodeSwapState(await f.readCopy(f.size - TRAILER_INFO_SIZE, TRAILER_INFO_SIZE));
  }

  private async writeTail(f: SlotFile, tail: Uint8Array): Promise<void> {
    // One positional write of the whole 48-byte trailer tail: a kill -9 cannot tear it.
    await f.write(f.size - TRAILER_INFO_SIZE, tail);
    await f.sync();
  }

  /** The trailer state of a slot (`boot_read_swap_state`). */
  swapState(image: number, slot: 0 | 1): Promise<SwapState> {
    this.checkImage(image);
    return this.locked(() => this.readSwapState(this.slots[2 * image + slot]!));
  }

  private async swapTypeOf(image: number): Promise<SwapTypeValue> {
    return decideSwapType(await this.readSwapState(this.slots[2 * image]!), await this.readSwapState(this.slots[2 * image + 1]!));
  }

  /** `boot_swap_type_multi(image)`: what the bootloader will do at the next reset. */
  swapType(image: number): Promise<SwapTypeValue> {
    this.checkImage(image);
    return this.locked(() => this.swapTypeOf(image));
  }

  /** Parses and verifies the image in a slot (streamed; hash and, with keys, signature). */
  verifySlot(absSlot: number): Promise<ImageVerification | ImageFormatError> {
    const f = this.slot(absSlot);
    return this.locked(() => this.verifyFile(f));
  }

  private async verifyFile(f: SlotFile): Promise<ImageVerification | ImageFormatError> {
    const view = { size: this.maxImageSize, read: (o: number, n: number) => f.read(o, n) };
    try {
      return await verifyImage(view, { keys: this.keys, hashFactory: nodeHashFactory, chunkSize: IO_CHUNK });
    } catch (e) {
      if (e instanceof ImageFormatError) return e;
      throw e;
    }
  }

  /** `img_mgmt_read_info` for an absolute slot (see img-info.ts). Slots out of range: INVALID_SLOT. */
  readInfo(absSlot: number): Promise<ImgInfo> {
    return this.locked(() => this.readInfoUnlocked(absSlot));
  }

  private async readInfoUnlocked(absSlot: number): Promise<ImgInfo> {
    const f = this.slotFile(absSlot);
    if (!f) return { rc: ImgErr.INVALID_SLOT };
    return readImgMgmtInfo(f);
  }

  // ---- the bootloader --------------------------------------------------------------------------

  /**
   * Why MCUboot would refuse the image in a slot (undefined: valid): `boot_check_header_valid`
   * (sizes; encrypted or compressed images are refused by a bootloader built without
   * MCUBOOT_ENC_IMAGES / MCUBOOT_DECOMPRESS_IMAGES, as this one is), then `bootutil_img_validate`
   * (hash, signature with trusted keys, and with MCUBOOT_HW_ROLLBACK_PROT a SEC_CNT TLV not lower
   * than the image's stored counter).
   */
  private async rejectReason(f: SlotFile, image: number): Promise<string | undefined> {
    const head = await f.readCopy(0, 32);
    const dv = new DataView(head.buffer);
    if (dv.getUint32(0, true) !== IMAGE_MAGIC) return 'no image header magic';
    const hdrSize = dv.getUint16(8, true);
    const protSize = dv.getUint16(10, true);
    const imgSize = dv.getUint32(12, true);
    const flags = dv.getUint32(16, true);
    // boot_check_header_valid
    if (hdrSize + imgSize + protSize >= f.size) return 'header sizes exceed the slot';
    if (flags & (ImageFlag.ENCRYPTED_AES128 | ImageFlag.ENCRYPTED_AES256)) return 'encrypted image (this MCUboot is built without MCUBOOT_ENC_IMAGES)';
    if ((flags & (ImageFlag.COMPRESSED_LZMA1 | ImageFlag.COMPRESSED_LZMA2 | ImageFlag.COMPRESSED_ARM_THUMB_FLT)) !== 0) {
      return 'compressed image (this MCUboot is built without MCUBOOT_DECOMPRESS_IMAGES)';
    }
    const v = await this.verifyFile(f);
    if (v instanceof ImageFormatError) return v.message;
    // bootutil_img_validate: the TLV area must end within the image area.
    if (v.image.layout.end > this.maxImageSize) return 'TLVs beyond the maximum image size';
    if (!v.hashValid) return v.hashes.length === 0 ? 'no hash TLV' : 'hash mismatch';
    if (v.signature.status !== 'valid' && v.signature.status !== 'not-checked') {
      return `signature ${v.signature.status}${'reason' in v.signature ? ` (${v.signature.reason})` : ''}`;
    }
    if (this.hwRollbackProtection) {
      const n = v.image.securityCounter;
      const stored = this.securityCounters[image] ?? 0;
      if (n === undefined) return 'no security counter TLV (MCUBOOT_HW_ROLLBACK_PROT)';
      if (n < stored) return `security counter ${n} lower than the stored ${stored} (rollback refused)`;
    }
    return undefined;
  }

  private async imageEnd(f: SlotFile): Promise<number> {
    try {
      const img = await readImage({ size: this.maxImageSize, read: (o, n) => f.read(o, n) });
      return img.layout.end;
    } catch {
      const head = await f.readCopy(0, 4);
      // An erased primary has nothing to preserve; anything else unreadable is swapped whole.
      return new DataView(head.buffer).getUint32(0, true) === 0xffffffff ? 0 : this.maxImageSize;
    }
  }

  private async headerVersion(f: SlotFile): Promise<ImageVersion | undefined> {
    const head = await f.readCopy(0, 32);
    if (new DataView(head.buffer).getUint32(0, true) !== IMAGE_MAGIC) return undefined;
    return readImageHeaderFields(head).version;
  }

  private async dependenciesOf(f: SlotFile): Promise<ImageDependency[]> {
    const v = await this.verifyFile(f);
    return v instanceof ImageFormatError ? [] : v.image.dependencies;
  }

  /**
   * `boot_validate_slot(secondary)` for a pending request: an erased or non-bootable header only
   * loses its trailer; with overwrite-only downgrade prevention an older image is scrambled; an
   * invalid image is scrambled ("Image in the secondary slot is not valid!"). Returns why the
   * request was dropped, or undefined when the secondary may be installed.
   */
  private async validateSecondary(image: number): Promise<string | undefined> {
    const secondary = this.slots[2 * image + 1]!;
    const head = await secondary.readCopy(0, 32);
    const dv = new DataView(head.buffer);
    if (dv.getUint32(0, true) === 0xffffffff || (dv.getUint32(16, true) & ImageFlag.NON_BOOTABLE) !== 0) {
      await secondary.eraseRange(secondary.size - this.trailerSize, this.trailerSize);
      await secondary.sync();
      return dv.getUint32(0, true) === 0xffffffff ? 'no image in the secondary slot' : 'non-bootable image';
    }
    if (this.mode === 'overwrite-only' && this.downgradePrevention) {
      const older = await this.olderThanPrimary(image);
      if (older) {
        await secondary.eraseAll();
        return older;
      }
    }
    const rejected = await this.rejectReason(secondary, image);
    if (rejected) await secondary.eraseAll();
    return rejected;
  }

  /** Downgrade prevention by version (`boot_compare_version`, build number ignored): why, or undefined. */
  private async olderThanPrimary(image: number): Promise<string | undefined> {
    const sv = await this.headerVersion(this.slots[2 * image + 1]!);
    const pv = await this.headerVersion(this.slots[2 * image]!);
    if (sv && pv && compareImageVersions(sv, pv) < 0) return `downgrade prevented: ${formatImageVersion(sv)} is older than the running ${formatImageVersion(pv)}`;
    return undefined;
  }

  /**
   * `boot_verify_dependencies` (swap and overwrite modes, loader.c): for each image, the
   * DEPENDENCY TLVs of the image it will run (secondary when upgrading, else primary) are checked
   * against the version each named image will have after this boot. The first unmet dependency
   * cancels every image's upgrade at this boot (the requests stay for the next boot).
   */
  private async verifyDependencies(types: SwapTypeValue[], reports: ImageBootReport[]): Promise<void> {
    const upgrading = (t: SwapTypeValue | undefined): boolean => t === SwapType.TEST || t === SwapType.PERM || t === SwapType.REVERT;
    for (let image = 0; image < this.images; image++) {
      const own = this.slots[2 * image + (upgrading(types[image]) ? 1 : 0)]!;
      for (const dep of await this.dependenciesOf(own)) {
        if (dep.imageId >= this.images) continue;
        const depSlot = this.slots[2 * dep.imageId + (upgrading(types[dep.imageId]) ? 1 : 0)]!;
        const have = await this.headerVersion(depSlot);
        if (have && compareImageVersions(have, dep.minVersion) >= 0) continue;
        const why = `image ${image} needs image ${dep.imageId} >= ${formatImageVersion(dep.minVersion)}, which would be ${have ? formatImageVersion(have) : 'missing'}`;
        for (let i = 0; i < this.images; i++) {
          if (upgrading(types[i])) reports[i]!.blocked = why;
          types[i] = SwapType.NONE;
        }
        return;
      }
    }
  }

  /** Swap and overwrite-only modes (`context_boot_go`, loader.c). */
  private async bootSwapFamily(): Promise<ImageBootReport[]> {
    const reports: ImageBootReport[] = [];
    const types: SwapTypeValue[] = [];
    // 1. Complete interrupted swaps; otherwise determine and validate each image's request.
    for (let image = 0; image < this.images; image++) {
      const report: ImageBootReport = { image, requested: 'none', performed: 'none', primaryValid: false, version: undefined };
      reports.push(report);
      const journal = this.mode === 'overwrite-only' ? undefined : await readSwapJournal(this.journalPath(image));
      if (journal) {
        if (journal.image !== image) throw new McuMgrError('DEVICE_STATE', `swap journal of image ${image} names image ${journal.image}`);
        report.requested = swapTypeName(journal.swapType);
        await runSwap(this.swapContext(image), journal);
        report.performed = 'resumed';
        types.push(SwapType.NONE);
        continue;
      }
      const requested = await this.swapTypeOf(image);
      report.requested = swapTypeName(requested);
      if (requested === SwapType.TEST || requested === SwapType.PERM || requested === SwapType.REVERT) {
        const rejected = await this.validateSecondary(image);
        if (rejected) {
          report.secondaryRejected = rejected;
          types.push(SwapType.NONE);
          // BOOT_SWAP_TYPE_FAIL (swap modes): image_ok is set so that no revert loop starts.
          if (this.mode !== 'overwrite-only') await this.setPrimaryImageOk(image);
          continue;
        }
      }
      types.push(requested);
    }
    // 2. Multi-image dependencies.
    if (this.images > 1 && types.some((t) => t !== SwapType.NONE)) await this.verifyDependencies(types, reports);
    // 3. Perform the updates.
    for (let image = 0; image < this.images; image++) {
      const report = reports[image]!;
      const type = types[image]!;
      const primary = this.slots[2 * image]!;
      const secondary = this.slots[2 * image + 1]!;
      if (type === SwapType.TEST || type === SwapType.PERM) {
        if (this.downgradePrevention && this.mode !== 'overwrite-only') {
          // check_downgrade_prevention (swap modes): an older secondary is scrambled.
          const older = await this.olderThanPrimary(image);
          if (older) {
            await secondary.eraseAll();
            report.blocked = older;
            continue;
          }
        }
      }
      if (type === SwapType.NONE) continue;
      if (this.mode === 'overwrite-only') {
        await overwriteCopy(primary, secondary, image, this.sectorSize, this.options.onCopyProgress);
        report.performed = 'overwrite';
        await this.raiseSecurityCounter(image, primary);
        continue;
      }
      const swapLength = Math.min(this.maxImageSize, Math.ceil(Math.max(await this.imageEnd(primary), await this.imageEnd(secondary)) / this.sectorSize) * this.sectorSize);
      await startSwap(this.swapContext(image), image, type, swapLength, this.sectorSize);
      report.performed = swapTypeName(type) as ImageBootReport['performed'];
      // PERM: the counter rises right away (no revert will follow).
      if (type === SwapType.PERM) await this.raiseSecurityCounter(image, primary);
    }
    // 4. MCUBOOT_VALIDATE_PRIMARY_SLOT, then boot_update_hw_rollback_protection.
    for (const report of reports) {
      const primary = this.slots[2 * report.image]!;
      const reason = await this.rejectReason(primary, report.image);
      report.primaryValid = reason === undefined;
      if (!report.primaryValid) continue;
      const state = await this.readSwapState(primary);
      if (state.magic !== MagicState.GOOD || state.imageOk === FlagState.SET) await this.raiseSecurityCounter(report.image, primary);
      const info = await readImgMgmtInfo(primary);
      report.version = 'version' in info ? formatImageVersion(info.version) : undefined;
    }
    return reports;
  }

  private journalPath(image: number): string {
    return join(this.dir, `image-${image}`, 'swap-status.json');
  }

  private swapContext(image: number): Parameters<typeof runSwap>[0] {
    return {
      primary: this.slots[2 * image]!,
      secondary: this.slots[2 * image + 1]!,
      scratch: this.scratch[image]!,
      journalPath: this.journalPath(image),
      trailerSize: this.trailerSize,
      onProgress: this.options.onSwapProgress,
    };
  }

  private async setPrimaryImageOk(image: number): Promise<void> {
    const f = this.slots[2 * image]!;
    const tail = await f.readCopy(f.size - TRAILER_INFO_SIZE, TRAILER_INFO_SIZE);
    const state = decodeSwapState(tail);
    if (state.magic !== MagicState.GOOD || state.imageOk !== FlagState.UNSET) return;
    tail.fill(0xff, trailerOffsets(TRAILER_INFO_SIZE).imageOk, trailerOffsets(TRAILER_INFO_SIZE).imageOk + BOOT_MAX_ALIGN);
    tail[trailerOffsets(TRAILER_INFO_SIZE).imageOk] = 1;
    await this.writeTail(f, tail);
  }

  /**
   * Direct-XIP and RAM load (`boot_load_and_validate_images`, loader.c): among slots with an image
   * header, take the highest version (slot 0 wins a tie); direct-XIP skips a ROM_FIXED image built
   * for another address (`boot_rom_address_check`); with revert (`boot_select_or_erase`) a slot
   * whose trailer has no magic, or was tried (copy_done) and not confirmed, is erased and the next
   * one tried, else copy_done is written; an invalid image is erased (the slots are equivalent).
   */
  private async bootEquivalentSlots(): Promise<ImageBootReport[]> {
    const reports: ImageBootReport[] = [];
    for (let image = 0; image < this.images; image++) {
      const report: ImageBootReport = { image, requested: 'none', performed: 'none', primaryValid: false, version: undefined };
      reports.push(report);
      const available = new Set<number>();
      for (const s of [2 * image, 2 * image + 1]) if ((await this.headerVersion(this.slots[s]!)) !== undefined) available.add(s);
      for (;;) {
        let chosen: number | undefined;
        let best: ImageVersion | undefined;
        for (const s of [...available].sort()) {
          const v = (await this.headerVersion(this.slots[s]!))!;
          if (best === undefined || compareImageVersions(v, best) > 0) {
            chosen = s;
            best = v;
          }
        }
        if (chosen === undefined) break;
        const f = this.slots[chosen]!;
        if (this.mode === 'direct-xip') {
          const head = readImageHeaderFields(await f.readCopy(0, 32));
          if ((head.flags & ImageFlag.ROM_FIXED) !== 0 && head.loadAddress !== this.slotAddress(chosen)) {
            available.delete(chosen);
            report.secondaryRejected = `slot ${chosen % 2}: ROM_FIXED image built for 0x${head.loadAddress.toString(16)}, not this slot`;
            continue;
          }
        }
        if (this.mode === 'direct-xip-revert') {
          const st = await this.readSwapState(f);
          if (st.magic !== MagicState.GOOD || (st.copyDone === FlagState.SET && st.imageOk !== FlagState.SET)) {
            await f.eraseAll();
            available.delete(chosen);
            report.secondaryRejected = `slot ${chosen % 2}: ${st.magic !== MagicState.GOOD ? 'not marked for boot' : 'tried and not confirmed'}: erased`;
            continue;
          }
          if (st.copyDone !== FlagState.SET) {
            const tail = await f.readCopy(f.size - TRAILER_INFO_SIZE, TRAILER_INFO_SIZE);
            const o = trailerOffsets(TRAILER_INFO_SIZE).copyDone;
            tail.fill(0xff, o, o + BOOT_MAX_ALIGN);
            tail[o] = 1;
            await this.writeTail(f, tail);
          }
        }
        const reason = await this.rejectReason(f, image);
        if (reason) {
          await f.eraseAll();
          available.delete(chosen);
          report.secondaryRejected = `slot ${chosen % 2}: ${reason}: erased`;
          continue;
        }
        this.bootedSlot[image] = chosen;
        report.performed = chosen % 2 === 0 ? 'slot-0' : 'slot-1';
        report.primaryValid = true;
        report.version = formatImageVersion(best!);
        const st = await this.readSwapState(f);
        if (this.mode !== 'direct-xip-revert' || st.imageOk === FlagState.SET) await this.raiseSecurityCounter(image, f);
        break;
      }
    }
    return reports;
  }

  /** Single slot: MCUboot boots slot 0 when it is valid, otherwise stays in serial recovery. */
  private async bootSingleSlot(): Promise<ImageBootReport[]> {
    const reports: ImageBootReport[] = [];
    for (let image = 0; image < this.images; image++) {
      const f = this.slots[2 * image]!;
      const reason = await this.rejectReason(f, image);
      let version: string | undefined;
      if (reason === undefined) {
        const info = await readImgMgmtInfo(f);
        if ('version' in info) version = formatImageVersion(info.version);
      }
      reports.push({
        image,
        requested: 'none',
        performed: 'none',
        ...(reason ? { secondaryRejected: `slot 0: ${reason}` } : {}),
        primaryValid: reason === undefined,
        version,
      });
      if (reason === undefined) await this.raiseSecurityCounter(image, f);
    }
    return reports;
  }

  /**
   * The boot sequence MCUboot runs at reset, in this model's mode, for every image. Also drops any
   * upload in progress (RAM state in Zephyr). Returns what happened; `ok` false means the device
   * would stay in the bootloader (no valid image to run).
   */
  boot(): Promise<BootReport> {
    return this.locked(async () => {
      this.upload = undefined;
      const images = isEquivalentSlotMode(this.mode) ? await this.bootEquivalentSlots() : this.mode === 'single-slot' ? await this.bootSingleSlot() : await this.bootSwapFamily();
      this.lastBoot = { ok: images.every((r) => r.primaryValid), images };
      return this.lastBoot;
    });
  }

  /** The report of the last {@link boot}, if any. */
  get bootReport(): BootReport | undefined {
    return this.lastBoot;
  }

  // ---- img_mgmt: state -------------------------------------------------------------------------

  /** `img_mgmt_active_slot(image)`: slot 0 of the image in swap modes (absolute number). */
  activeSlot(image: number): number {
    // Equivalent-slot modes run from the slot the last boot chose (Zephyr: the running partition).
    return isEquivalentSlotMode(this.mode) ? (this.bootedSlot[image] ?? 2 * image) : 2 * image;
  }

  /** `img_mgmt_get_opposite_slot`. */
  private otherSlot(absSlot: number): number {
    return absSlot ^ 1;
  }

  /**
   * Direct-XIP with revert, `read_directxip_state` (img_mgmt_state.c): FOREVER (magic, image_ok),
   * REVERT (magic, copy_done, no image_ok), ONCE (magic only), UNSET.
   */
  private async directXipState(absSlot: number): Promise<'forever' | 'revert' | 'once' | 'unset'> {
    const st = await this.readSwapState(this.slots[absSlot]!);
    if (st.magic !== MagicState.GOOD) return 'unset';
    if (st.imageOk === FlagState.SET) return 'forever';
    return st.copyDone === FlagState.SET ? 'revert' : 'once';
  }

  private async nextBoot(image: number): Promise<{ slot: number; type: NextBootType }> {
    const active = this.activeSlot(image);
    const other = this.otherSlot(active);
    if (isEquivalentSlotMode(this.mode)) {
      // img_mgmt_get_next_boot_slot, direct-XIP variants.
      const a = await this.readInfoUnlocked(active);
      const o = await this.readInfoUnlocked(other);
      const newer = 'version' in a && 'version' in o && compareImageVersions(a.version, o.version) < 0;
      if (this.mode !== 'direct-xip-revert') return { slot: newer ? other : active, type: 'normal' };
      if (a.rc !== 0 || (o.rc !== 0 && o.rc !== ImgErr.NO_IMAGE) || o.rc === ImgErr.NO_IMAGE) return { slot: active, type: 'normal' };
      const as = await this.directXipState(active);
      const os = await this.directXipState(other);
      if (as === 'revert') return { slot: other, type: 'revert' };
      if (os === 'unset') return { slot: active, type: as === 'once' ? 'test' : 'normal' };
      if (newer && os === 'forever') return { slot: other, type: 'normal' };
      if (newer && os === 'once') return { slot: other, type: 'test' };
      return { slot: active, type: 'normal' };
    }
    switch (await this.swapTypeOf(image)) {
      case SwapType.NONE:
        return { slot: active, type: 'normal' };
      case SwapType.PERM:
        return { slot: other, type: 'normal' };
      case SwapType.REVERT:
        return { slot: other, type: 'revert' };
      case SwapType.TEST:
        return { slot: other, type: 'test' };
      default:
        return { slot: active, type: 'normal' };
    }
  }

  /** `img_mgmt_get_next_boot_slot`: the absolute slot booted next and how. */
  nextBootSlot(image: number): Promise<{ slot: number; type: NextBootType }> {
    this.checkImage(image);
    return this.locked(() => this.nextBoot(image));
  }

  private async inUse(absSlot: number): Promise<boolean> {
    const image = absSlot >> 1;
    const active = this.activeSlot(image);
    // Direct-XIP without revert: only the running slot is in use (img_mgmt_slot_in_use).
    if (this.mode === 'direct-xip' || this.mode === 'ram-load') return active === absSlot;
    const nb = await this.nextBoot(image);
    if (absSlot === nb.slot && nb.type === 'revert') return true;
    if ((absSlot === nb.slot && nb.type === 'test') || (active !== nb.slot && nb.type === 'normal')) {
      if (!this.options.allowErasePending) return true;
    }
    return active === absSlot;
  }

  /** `img_mgmt_slot_in_use`: active, revert target, or pending (unless ALLOW_ERASE_PENDING). */
  slotInUse(absSlot: number): Promise<boolean> {
    this.slot(absSlot);
    return this.locked(() => this.inUse(absSlot));
  }

  private async stateList(): Promise<ImageSlotState[]> {
    const out: ImageSlotState[] = [];
    for (let image = 0; image < this.images; image++) {
      const nb = await this.nextBoot(image);
      const a = this.activeSlot(image);
      const o = this.otherSlot(a);
      const flagsA = { active: true, confirmed: nb.type !== 'revert', pending: false, permanent: false };
      const flagsO = { active: false, confirmed: false, pending: false, permanent: false };
      if (nb.slot !== a) {
        if (nb.type === 'normal') Object.assign(flagsO, { pending: true, permanent: true });
        else if (nb.type === 'revert') flagsO.confirmed = true;
        else flagsO.pending = true;
      }
      // Slots in ascending order; single-slot devices have no secondary.
      const order = (a < o ? [[a, flagsA], [o, flagsO]] as const : [[o, flagsO], [a, flagsA]] as const).filter(([abs]) => this.mode !== 'single-slot' || abs % 2 === 0);
      for (const [abs, f] of order) {
        const info = await this.readInfoUnlocked(abs);
        if (!('hash' in info)) continue;
        // Zephyr's state read marks the active slot of every image active (flags_a).
        out.push({
          image,
          slot: abs % 2,
          version: formatImageVersion(info.version),
          hash: info.hash,
          bootable: (info.flags & ImageFlag.NON_BOOTABLE) === 0,
          pending: f.pending,
          confirmed: f.confirmed,
          active: f.active,
          permanent: f.permanent,
        });
      }
    }
    return out;
  }

  /** The image state list of 1/0 read, in slot order; slots without a readable image are left out. */
  imageStates(): Promise<ImageSlotState[]> {
    return this.locked(() => this.stateList());
  }

  private async findByHash(hash: Uint8Array): Promise<number> {
    for (let s = 0; s < 2 * this.images; s++) {
      const info = await this.readInfoUnlocked(s);
      if ('hash' in info && bytesEqual(info.hash, hash)) return s;
    }
    return -1;
  }

  /** `img_mgmt_find_by_hash`: first absolute slot whose SHA256 TLV equals `hash`, or -1. */
  findSlotByHash(hash: Uint8Array): Promise<number> {
    return this.locked(() => this.findByHash(hash));
  }

  /** The running application's version (`img_mgmt_my_version`). Throws img err 26 when unreadable. */
  runningVersion(): Promise<ImageVersion> {
    return this.locked(async () => {
      const info = await this.readInfoUnlocked(this.activeSlot(this.activeImage));
      if (!('version' in info)) throw MgmtError.group(IMG_GROUP, ImgErr.VERSION_GET_FAILED);
      return info.version;
    });
  }

  // ---- img_mgmt: state write -------------------------------------------------------------------

  /**
   * 1/0 write (`img_mgmt_state_write`): selects the slot from `hash` (none/empty + confirm: the
   * running slot; none + test: INVALID_HASH 24; length ≠ 32: 24; unknown: HASH_NOT_FOUND 8), then
   * {@link setNextBootSlot}. Throws MgmtError group 1.
   */
  setNextBoot(hash: Uint8Array | undefined, confirm: boolean): Promise<void> {
    return this.locked(async () => {
      this.assertStateWriteSupported();
      let slot: number;
      if (!hash || hash.length === 0) {
        if (!confirm) throw MgmtError.group(IMG_GROUP, ImgErr.INVALID_HASH);
        slot = this.activeSlot(this.activeImage);
      } else if (hash.length !== 32) {
        throw MgmtError.group(IMG_GROUP, ImgErr.INVALID_HASH);
      } else {
        slot = await this.findByHash(hash);
        if (slot < 0) throw MgmtError.group(IMG_GROUP, ImgErr.HASH_NOT_FOUND);
      }
      await this.setNextBootSlotUnlocked(slot, confirm);
    });
  }

  /**
   * `img_mgmt_set_next_boot_slot` (non-direct-XIP), in Zephyr's order:
   * 1. confirm of a non-running image → IMAGE_CONFIRMATION_DENIED (32), unless allowed;
   * 2. test of the active slot → IMAGE_SETTING_TEST_TO_ACTIVE_DENIED (33);
   * 3. TEST pending: test of that slot again is a no-op, anything else IMAGE_ALREADY_PENDING (28);
   * 4. NORMAL: confirm of the next-boot slot is a no-op; the active slot while another is
   *    permanent, or test of the permanent one → 28;
   * 5. REVERT: confirm of the next-boot slot is a no-op; any test → 28; confirm of active writes;
   * 6. `boot_set_next(slot == active, confirm)`.
   */
  setNextBootSlot(absSlot: number, confirm: boolean): Promise<void> {
    this.slot(absSlot);
    return this.locked(() => this.setNextBootSlotUnlocked(absSlot, confirm));
  }

  /**
   * Whether 1/0 write exists: Zephyr registers no state-write handler with
   * CONFIG_MCUBOOT_BOOTLOADER_MODE_DIRECT_XIP (img_mgmt.c handler table), and MCUboot's serial
   * recovery answers MGMT_ERR_ENOTSUP without MCUBOOT_SERIAL_IMG_GRP_IMAGE_STATE (boot_serial.c).
   */
  get stateWriteSupported(): boolean {
    return this.mode !== 'direct-xip' && this.mode !== 'ram-load' && this.mode !== 'single-slot';
  }

  private assertStateWriteSupported(): void {
    if (!this.stateWriteSupported) throw MgmtError.rc(MGMT_ERR_ENOTSUP, `image state write is not supported in ${this.mode} mode`);
  }

  private async setNextBootSlotUnlocked(slot: number, confirm: boolean): Promise<void> {
    this.assertStateWriteSupported();
    const image = slot >> 1;
    const active = this.activeSlot(image);
    if (this.mode === 'direct-xip-revert') {
      // img_mgmt_set_next_boot_slot, DIRECT_XIP_WITH_REVERT variant: only "test the running slot" is refused.
      if (!confirm && slot === active) throw MgmtError.group(IMG_GROUP, ImgErr.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED);
      const rc = await this.bootSetNextDirectXip(this.slots[slot]!, slot === active, confirm);
      if (rc !== 0) throw MgmtError.group(IMG_GROUP, rc === BOOT_EFLASH ? ImgErr.FLASH_WRITE_FAILED : ImgErr.INVALID_IMAGE_HEADER_MAGIC);
      return;
    }
    const nb = await this.nextBoot(image);
    const allow = this.options.allowConfirmNonActiveImage ?? 'none';
    if (allow !== 'any' && confirm && image !== this.activeImage && (allow !== 'secondary' || slot === active)) {
      throw MgmtError.group(IMG_GROUP, ImgErr.IMAGE_CONFIRMATION_DENIED);
    }
    if (!confirm && slot === active) throw MgmtError.group(IMG_GROUP, ImgErr.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED);
    if (nb.type === 'test') {
      if (!confirm && slot === nb.slot) return;
      throw MgmtError.group(IMG_GROUP, ImgErr.IMAGE_ALREADY_PENDING);
    }
    if (nb.type === 'normal') {
      if (confirm && slot === nb.slot) return;
      if ((slot === active && active !== nb.slot) || (!confirm && slot !== active && slot === nb.slot)) {
        throw MgmtError.group(IMG_GROUP, ImgErr.IMAGE_ALREADY_PENDING);
      }
    }
    if (nb.type === 'revert') {
      if (confirm && slot === nb.slot) return;
      if (!confirm) throw MgmtError.group(IMG_GROUP, ImgErr.IMAGE_ALREADY_PENDING);
    }
    const rc = await this.bootSetNext(this.slots[slot]!, image, slot === active, confirm);
    if (rc !== 0) {
      // Translation in img_mgmt_set_next_boot_slot_common.
      const err = rc === BOOT_EFLASH ? ImgErr.FLASH_WRITE_FAILED : rc === BOOT_EBADVECT ? ImgErr.INVALID_IMAGE_VECTOR_TABLE : rc === BOOT_EBADIMAGE ? ImgErr.INVALID_IMAGE_HEADER_MAGIC : ImgErr.UNKNOWN;
      throw MgmtError.group(IMG_GROUP, err);
    }
  }

  /**
   * `boot_set_next(fa, active, confirm)` (bootutil_public.c): by the slot's trailer magic —
   * GOOD: when active and image_ok unset, write image_ok; else nothing ("already scheduled").
   * UNSET: when not active, write magic, image_ok if confirm, and swap_info (PERM or TEST).
   * BAD: BOOT_EBADVECT when active, BOOT_EBADIMAGE otherwise. The image itself is not checked.
   */
  private async bootSetNext(f: SlotFile, image: number, active: boolean, confirm: boolean): Promise<number> {
    if (active) confirm = true;
    const tail = await f.readCopy(f.size - TRAILER_INFO_SIZE, TRAILER_INFO_SIZE);
    const state = decodeSwapState(tail);
    const o = trailerOffsets(TRAILER_INFO_SIZE);
    // Each field write covers BOOT_MAX_ALIGN bytes: the value, then erased padding.
    const field = (off: number, value: number): void => {
      tail.fill(0xff, off, off + BOOT_MAX_ALIGN);
      tail[off] = value;
    };
    try {
      if (state.magic === MagicState.GOOD) {
        // Intentionally no copy_done check (a padded image programmed by a debugger can be confirmed).
        if (active && state.imageOk === FlagState.UNSET) {
          field(o.imageOk, 1);
          await this.writeTail(f, tail);
        }
        return 0;
      }
      if (state.magic === MagicState.UNSET) {
        if (!active) {
          tail.set(BOOT_MAGIC, o.magic);
          if (confirm) field(o.imageOk, 1);
          field(o.swapInfo, (image << 4) | (confirm ? SwapType.PERM : SwapType.TEST));
          await this.writeTail(f, tail);
        }
        return 0;
      }
      return active ? BOOT_EBADVECT : BOOT_EBADIMAGE;
    } catch {
      return BOOT_EFLASH;
    }
  }

  /**
   * `boot_set_next` as built for direct-XIP with revert (bootutil_public.c, MCUBOOT_BOOTUTIL_LIB_FOR_DIRECT_XIP):
   * an active slot is always confirmed; magic UNSET → write it; then, when confirming, copy_done
   * and image_ok if unset (a confirmed slot must not look "tried"); magic BAD → BOOT_EBADIMAGE.
   */
  private async bootSetNextDirectXip(f: SlotFile, active: boolean, confirm: boolean): Promise<number> {
    if (active) confirm = true;
    const tail = await f.readCopy(f.size - TRAILER_INFO_SIZE, TRAILER_INFO_SIZE);
    const state = decodeSwapState(tail);
    if (state.magic === MagicState.BAD) return BOOT_EBADIMAGE;
    const o = trailerOffsets(TRAILER_INFO_SIZE);
    const field = (off: number): void => {
      tail.fill(0xff, off, off + BOOT_MAX_ALIGN);
      tail[off] = 1;
    };
    if (state.magic === MagicState.UNSET) tail.set(BOOT_MAGIC, o.magic);
    if (confirm) {
      if (state.copyDone === FlagState.UNSET) field(o.copyDone);
      if (state.imageOk === FlagState.UNSET) field(o.imageOk);
    }
    try {
      await this.writeTail(f, tail);
    } catch {
      return BOOT_EFLASH;
    }
    return 0;
  }

  // ---- img_mgmt: erase, slot info, upload ------------------------------------------------------

  /**
   * 1/5 erase (`img_mgmt_erase`): default slot = the one opposite the running slot. A slot that
   * holds a readable image and is in use → NO_FREE_SLOT (9); out of range → INVALID_SLOT (14).
   * An unreadable image is erased without the in-use check, as Zephyr does. Resets any upload.
   */
  eraseSlot(absSlot?: number): Promise<void> {
    return this.locked(async () => {
      // MCUboot's serial recovery has no erase command (boot_serial.c: MGMT_ERR_ENOTSUP).
      if (this.mode === 'single-slot') throw MgmtError.rc(MGMT_ERR_ENOTSUP, 'image erase is not supported by serial recovery');
      const slot = absSlot ?? this.otherSlot(this.activeSlot(this.activeImage));
      const info = await this.readInfoUnlocked(slot);
      if (info.rc === 0 && (await this.inUse(slot))) throw MgmtError.group(IMG_GROUP, ImgErr.NO_FREE_SLOT);
      const f = this.slotFile(slot);
      this.upload = undefined;
      if (!f) throw MgmtError.group(IMG_GROUP, ImgErr.INVALID_SLOT);
      if (await f.isErased()) return;
      try {
        await f.eraseAll();
      } catch {
        throw MgmtError.group(IMG_GROUP, ImgErr.FLASH_ERASE_FAILED);
      }
    });
  }

  /** 1/6 slot info: sizes, and `upload_image_id` (the image number) on non-active slots. */
  slotInfo(): SlotInfoEntry[] {
    const out: SlotInfoEntry[] = [];
    for (let image = 0; image < this.images; image++) {
      // Single slot: serial recovery uploads straight into slot 0, the only slot.
      const slots = this.mode === 'single-slot' ? [0] : [0, 1];
      out.push({
        image,
        slots: slots.map((slot) => (2 * image + slot === this.activeSlot(image) && this.mode !== 'single-slot' ? { slot, size: this.slotSize } : { slot, size: this.slotSize, uploadImageId: image })),
      });
    }
    return out;
  }

  /**
   * The slot an upload of `image` goes to (`img_mgmt_get_unused_slot_area_id`): the slot opposite
   * the active one, unless it is in use → NO_FREE_SLOT (9) (also for an unknown image).
   */
  uploadSlot(image: number): Promise<number> {
    return this.locked(() => this.uploadSlotUnlocked(image));
  }

  private async uploadSlotUnlocked(image: number): Promise<number> {
    if (this.mode === 'single-slot') {
      // Serial recovery writes the primary slot of the image (boot_serial.c bs_upload); an
      // unknown image fails to open its flash area: MGMT_ERR_EINVAL.
      if (!Number.isInteger(image) || image < 0 || image >= this.images) throw MgmtError.rc(MGMT_ERR_EINVAL, `no image ${image}`);
      return 2 * image;
    }
    if (!Number.isInteger(image) || image < 0 || image >= this.images) throw MgmtError.group(IMG_GROUP, ImgErr.NO_FREE_SLOT);
    const slot = this.otherSlot(this.activeSlot(image));
    if (await this.inUse(slot)) throw MgmtError.group(IMG_GROUP, ImgErr.NO_FREE_SLOT);
    return slot;
  }

  /**
   * Opens an upload (first chunk, after the protocol checks) into `slot`, the one
   * {@link uploadSlot} chose (chosen here when not given: NO_FREE_SLOT 9), checks `size` against
   * the slot (INVALID_IMAGE_TOO_LARGE 30) and erases the slot unless it is already erased
   * (FLASH_ERASE_FAILED 13). The erase is atomic.
   */
  openUpload(image: number, size: number, session: { slot?: number; sha?: Uint8Array; owner?: string } = {}): Promise<UploadTarget> {
    return this.locked(async () => {
      this.upload = undefined;
      const slot = session.slot ?? (await this.uploadSlotUnlocked(image));
      if (!Number.isInteger(size) || size < 0 || size > this.slotSize) throw MgmtError.group(IMG_GROUP, ImgErr.INVALID_IMAGE_TOO_LARGE);
      const f = this.slots[slot]!;
      try {
        if (!(await f.isErased())) await f.eraseAll(size);
        else await f.chargeErase(size); // img_mgmt erases what `len` needs, erased or not
      } catch {
        throw MgmtError.group(IMG_GROUP, ImgErr.FLASH_ERASE_FAILED);
      }
      this.upload = { image, slot, size, off: 0, sha: (session.sha ?? new Uint8Array(0)).slice(), ...(session.owner !== undefined ? { owner: session.owner } : {}) };
      return { ...this.upload };
    });
  }

  /** The upload in progress, if any. */
  get currentUpload(): UploadTarget | undefined {
    return this.upload ? { ...this.upload } : undefined;
  }

  /** Makes `owner` the owner of the upload in progress, if any (a first chunk from it arrived). */
  claimUpload(owner: string): void {
    if (this.upload) this.upload.owner = owner;
  }

  /**
   * Writes upload data at `offset` of the open upload's slot and moves its next offset past it.
   * Past the announced size → INVALID_IMAGE_DATA_OVERRUN (31); no upload open →
   * FLASH_CONTEXT_NOT_SET (17); write failure → FLASH_WRITE_FAILED (12). Failures close the upload.
   */
  writeUpload(offset: number, data: Uint8Array): Promise<void> {
    return this.locked(async () => {
      const u = this.upload;
      if (!u) throw MgmtError.group(IMG_GROUP, ImgErr.FLASH_CONTEXT_NOT_SET);
      if (!Number.isInteger(offset) || offset < 0 || offset + data.length > u.size) {
        this.upload = undefined;
        throw MgmtError.group(IMG_GROUP, ImgErr.INVALID_IMAGE_DATA_OVERRUN);
      }
      try {
        await this.slots[u.slot]!.writeTimed(offset, data);
      } catch {
        this.upload = undefined;
        throw MgmtError.group(IMG_GROUP, ImgErr.FLASH_WRITE_FAILED);
      }
      u.off = Math.max(u.off, offset + data.length);
    });
  }

  /**
   * Completes the open upload: makes the written bytes durable and returns the SHA-256 of the
   * first `size` bytes of the slot (compare with the client's `sha` for `match`). Closes the upload.
   */
  finishUpload(): Promise<{ slot: number; sha256: Uint8Array }> {
    return this.locked(async () => {
      const u = this.upload;
      if (!u) throw MgmtError.group(IMG_GROUP, ImgErr.FLASH_CONTEXT_NOT_SET);
      this.upload = undefined;
      const f = this.slots[u.slot]!;
      await f.sync();
      return { slot: u.slot, sha256: await this.digestUnlocked(f, u.size) };
    });
  }

  /** Drops the open upload (the slot keeps what was written). */
  abortUpload(): void {
    this.upload = undefined;
  }

  private async digestUnlocked(f: SlotFile, length: number): Promise<Uint8Array> {
    const h = createHash('sha256');
    for (let off = 0; off < length; off += IO_CHUNK) h.update(await f.read(off, Math.min(IO_CHUNK, length - off)));
    return new Uint8Array(h.digest());
  }

  /**
   * SHA-256 of the first `length` bytes of a slot, streamed (`flash_img_check`: the upload
   * instant-match and final `match`). Out-of-range lengths → INVALID_IMAGE_TOO_LARGE (30).
   */
  slotDigest(absSlot: number, length: number): Promise<Uint8Array> {
    const f = this.slot(absSlot);
    return this.locked(async () => {
      if (!Number.isInteger(length) || length < 0 || length > f.size) throw MgmtError.group(IMG_GROUP, ImgErr.INVALID_IMAGE_TOO_LARGE);
      // A first chunk with `sha` costs a hash of up to the whole slot: a peer repeating it gets
      // the digest kept from last time, as long as the slot has not changed since.
      const kept = this.digests.get(f);
      if (kept && kept.length === length && kept.generation === f.generation) return kept.digest.slice();
      const generation = f.generation;
      const digest = await this.digestUnlocked(f, length);
      this.digests.set(f, { length, generation, digest });
      return digest.slice();
    });
  }

  /**
   * img_mgmt's upgrade-only check (`upgrade: true` on the first chunk): the new version must be
   * newer than the running one (major.minor.revision, build ignored) → else 27; unreadable → 26.
   */
  async checkUpgrade(newVersion: ImageVersion): Promise<void> {
    const current = await this.runningVersion();
    if (compareImageVersions(current, newVersion) >= 0) throw MgmtError.group(IMG_GROUP, ImgErr.CURRENT_VERSION_IS_NEWER);
  }
}

/** MGMT_ERR_ENOTSUP: no handler for the command. */
const MGMT_ERR_ENOTSUP = 8;
/** MGMT_ERR_EINVAL. */
const MGMT_ERR_EINVAL = 3;

/** bootutil error numbers returned by `boot_set_next`. */
const BOOT_EFLASH = 1;
const BOOT_EBADIMAGE = 3;
const BOOT_EBADVECT = 4;
