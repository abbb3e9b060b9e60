/**
 * The slot swap, made crash-safe by a status journal the way MCUboot's swap-scratch mode records
 * its progress in the trailer's swap status area (`boot_write_status`, swap_scratch.c).
 *
 * The swapped region `[0, swapLength)` is cut into sectors. For sector i, three steps, each
 * followed by an fsync of what it wrote and an atomic journal update (temp + fsync + rename +
 * fsync dir) recording the next step:
 *
 *   step 0: primary[i]   → scratch      (primary and secondary intact)
 *   step 1: secondary[i] → primary[i]   (scratch holds the old primary[i])
 *   step 2: scratch      → secondary[i] (primary[i] already new)
 *
 * Every step is idempotent given the journal: its source is intact until the journal moves past
 * it, so after a kill -9 at any instant the next boot redoes the recorded step and carries on.
 * After the last sector the trailers are written (phase `trailers`, also idempotent), then the
 * journal is removed. Memory is one sector-sized copy at a time through {@link SlotFile}'s 64 KiB
 * buffer, independent of the image size.
 *
 * Trailers after the swap (bootutil `swap_status_init`, `boot_perform_update`): the primary gets
 * magic, swap_info = (image << 4) | type, swap_size, copy_done = 1, and image_ok = 1 unless the
 * swap was a TEST (PERM and REVERT set it; TEST leaves it for the application to confirm). The
 * secondary's trailer is erased, so the image swapped out carries no flags.
 */
import { readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { McuMgrError } from '../../core/errors.ts';
import { SwapType, TRAILER_INFO_SIZE, encodeTrailerTail, type SwapTypeValue } from '../../image/index.ts';
import { fsyncDir, writeFileAtomic } from '../storage.ts';
import type { SlotFile } from './slot-file.ts';

export interface SwapJournal {
  version: 1;
  image: number;
  swapType: SwapTypeValue;
  sectorSize: number;
  /** Bytes swapped from the slot start (a multiple of sectorSize or the image area end). */
  swapLength: number;
  /** Next sector to work on; equals the sector count in the trailer phase. */
  sector: number;
  /** Next step within the sector: 0, 1, 2; 3 = trailers. */
  step: 0 | 1 | 2 | 3;
}

/** Progress callback data (tests use it to kill a process at a chosen point). */
export interface SwapProgress {
  image: number;
  swapType: SwapTypeValue;
  sector: number;
  sectors: number;
  step: 0 | 1 | 2 | 3;
  /** `before` a step's writes start, `after` its journal update is durable. */
  when: 'before' | 'after';
}

export interface SwapContext {
  primary: SlotFile;
  secondary: SlotFile;
  scratch: SlotFile;
  journalPath: string;
  /** Size of the trailer region at the end of each slot (erased and rewritten at the end). */
  trailerSize: number;
  onProgress?: (p: SwapProgress) => void | Promise<void>;
}

function isJournal(x: unknown): x is SwapJournal {
  if (typeof x !== 'object' || x === null) return false;
  const j = x as Record<string, unknown>;
  const int = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  return (
    j['version'] === 1 &&
    int(j['image']) &&
    (j['swapType'] === SwapType.TEST || j['swapType'] === SwapType.PERM || j['swapType'] === SwapType.REVERT) &&
    int(j['sectorSize']) && (j['sectorSize'] as number) > 0 &&
    int(j['swapLength']) &&
    int(j['sector']) &&
    (j['step'] === 0 || j['step'] === 1 || j['step'] === 2 || j['step'] === 3)
  );
}

/** Reads the journal; undefined when there is none. Throws DEVICE_STATE when it is unreadable. */
export async function readSwapJournal(path: string): Promise<SwapJournal | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new McuMgrError('DEVICE_STATE', `swap journal ${path} is not valid JSON`, { cause: e });
  }
  if (!isJournal(parsed)) throw new McuMgrError('DEVICE_STATE', `swap journal ${path} has an unexpected shape`);
  return parsed;
}

async function saveJournal(path: string, j: SwapJournal): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(j));
}

/** Starts a swap: records the journal (the commit point), then runs it. */
export async function startSwap(ctx: SwapContext, image: number, swapType: SwapTypeValue, swapLength: number, sectorSize: number): Promise<void> {
  const journal: SwapJournal = { version: 1, image, swapType, sectorSize, swapLength, sector: 0, step: 0 };
  await saveJournal(ctx.journalPath, journal);
  await runSwap(ctx, journal);
}

/** Runs (or resumes) the swap a journal describes, to completion; removes the journal. */
export async function runSwap(ctx: SwapContext, journal: SwapJournal): Promise<void> {
  const { primary, secondary, scratch } = ctx;
  const sectors = Math.ceil(journal.swapLength / journal.sectorSize);
  if (journal.swapLength > primary.size - ctx.trailerSize || journal.sectorSize > scratch.size || journal.sector > sectors) {
    throw new McuMgrError('DEVICE_STATE', `swap journal does not fit this slot layout (${JSON.stringify(journal)})`);
  }
  const j = { ...journal };
  const progress = async (when: 'before' | 'after'): Promise<void> => {
    await ctx.onProgress?.({ image: j.image, swapType: j.swapType, sector: j.sector, sectors, step: j.step, when });
  };
  while (j.sector < sectors) {
    const off = j.sector * j.sectorSize;
    const len = Math.min(j.sectorSize, j.swapLength - off);
    await progress('before');
    if (j.step === 0) {
      await scratch.copyFrom(primary, off, 0, len);
      await scratch.sync();
      j.step = 1;
    } else if (j.step === 1) {
      await primary.copyFrom(secondary, off, off, len);
      await primary.sync();
      j.step = 2;
    } else {
      await secondary.copyFrom(scratch, 0, off, len);
      await secondary.sync();
      j.sector += 1;
      j.step = 0;
    }
    if (j.sector === sectors) j.step = 3;
    await saveJournal(ctx.journalPath, j);
    await progress('after');
  }
  j.step = 3;
  await progress('before');
  // Trailer phase: rewrite both trailer regions whole (idempotent).
  const trailerStart = primary.size - ctx.trailerSize;
  await primary.eraseRange(trailerStart, ctx.trailerSize - TRAILER_INFO_SIZE);
  await primary.write(
    primary.size - TRAILER_INFO_SIZE,
    encodeTrailerTail({
      magic: true,
      swapInfo: { swapType: j.swapType, image: j.image },
      swapSize: j.swapLength,
      copyDone: true,
      imageOk: j.swapType !== SwapType.TEST,
    }),
  );
  await primary.sync();
  await secondary.eraseRange(secondary.size - ctx.trailerSize, ctx.trailerSize);
  await secondary.sync();
  await unlink(ctx.journalPath);
  await fsyncDir(dirname(ctx.journalPath));
  await progress('after');
}

/** Progress of an overwrite-only copy (tests kill the process here). */
export interface CopyProgress {
  image: number;
  /** erase-primary, copy (one per sector), erase-secondary-header, erase-secondary-trailer. */
  step: 'erase-primary' | 'copy' | 'erase-secondary-header' | 'erase-secondary-trailer';
  sector: number;
  sectors: number;
  when: 'before' | 'after';
}

/**
 * MCUboot's overwrite-only upgrade (`boot_copy_image`, loader.c, read 2026-07, without
 * MCUBOOT_OVERWRITE_ONLY_FAST): erase the primary, copy the whole secondary slot over it sector by
 * sector (its trailer comes along: magic, image_ok), then erase the secondary's first sector (the
 * header) and its last sector (the trailer). No journal is needed: until the secondary's header is
 * erased the pending request is intact and the next boot simply copies again; once the header is
 * gone the primary is complete, and the boot after a kill there scrambles the orphan trailer
 * (`boot_validate_slot` on an erased header).
 */
export async function overwriteCopy(
  primary: SlotFile,
  secondary: SlotFile,
  image: number,
  sectorSize: number,
  onProgress?: (p: CopyProgress) => void | Promise<void>,
): Promise<void> {
  const sectors = Math.ceil(primary.size / sectorSize);
  const step = async (s: CopyProgress['step'], sector: number, fn: () => Promise<void>): Promise<void> => {
    await onProgress?.({ image, step: s, sector, sectors, when: 'before' });
    await fn();
    await onProgress?.({ image, step: s, sector, sectors, when: 'after' });
  };
  await step('erase-primary', 0, () => primary.eraseAll());
  for (let i = 0; i < sectors; i++) {
    const off = i * sectorSize;
    const len = Math.min(sectorSize, primary.size - off);
    await step('copy', i, async () => {
      await primary.copyFrom(secondary, off, off, len);
      await primary.sync();
    });
  }
  await step('erase-secondary-header', 0, async () => {
    await secondary.eraseRange(0, Math.min(sectorSize, secondary.size));
    await secondary.sync();
  });
  const last = Math.max(0, secondary.size - sectorSize);
  await step('erase-secondary-trailer', sectors - 1, async () => {
    await secondary.eraseRange(last, secondary.size - last);
    await secondary.sync();
  });
}
