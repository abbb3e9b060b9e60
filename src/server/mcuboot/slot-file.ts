/**
 * A flash slot kept as a file of exactly the slot's size. Reads go through one reusable buffer
 * (so hashing or copying a slot never allocates per chunk); writes are positional; a whole-slot
 * erase is atomic: a fresh erased file is written beside the slot, fsynced, renamed over it, and the
 * directory fsynced, so a kill -9 leaves either the old slot or an erased one.
 *
 * Durability: writes are not fsynced one by one. MCUboot needs the image durable only when it
 * matters to the boot decision, i.e. before the upload is reported complete and before a swap
 * (`finishUpload` syncs once, the swap journal syncs its steps); a device that loses power
 * mid-upload resumes or restarts the upload either way.
 *
 * Sparse storage (optional, `sparse`): the file holds every byte inverted (b ^ 0xff), so that erased
 * flash (0xff) is zero on disk, and an erased file is made with one truncate: a hole that takes no
 * disk blocks and no write. A thousand emulated devices in one process (`serve --devices`) then
 * write only what is uploaded, not their slots' full size, at creation and at every erase. Holes
 * read as zeros, so any write anywhere (a trailer at the slot's end) leaves the rest erased. Which
 * encoding a slot uses is fixed when its device is created (the MCUboot model's layout.json).
 *
 * Flash timing (optional, {@link FlashTiming}): upload writes ({@link SlotFile.writeTimed}) and the
 * upload's erase take as long as on a device's flash (see src/server/device-timing.ts); boot-time
 * work (a fresh device's factory image, swaps) stays as fast as the host's disk.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { McuMgrError } from '../../core/errors.ts';
import type { HashFactory, ImageSource } from '../../image/index.ts';
import { writeFileAtomic } from '../storage.ts';
import { DelayClock, type FlashTiming } from '../device-timing.ts';

/** Value of erased flash. */
export const ERASED_BYTE = 0xff;
/** Read/write granularity used when streaming a slot. */
export const IO_CHUNK = 64 * 1024;

const ERASED_CHUNK = new Uint8Array(IO_CHUNK).fill(ERASED_BYTE);
/** Erased bytes as a sparse slot stores them. */
const ZERO_CHUNK = new Uint8Array(IO_CHUNK);

/** Inverts bytes in place (sparse storage's encoding, its own inverse). */
function invert(bytes: Uint8Array): void {
  let i = 0;
  if (bytes.byteOffset % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
    for (let w = 0; w < words.length; w++) words[w] = ~words[w]!;
    i = words.length * 4;
  }
  for (; i < bytes.length; i++) bytes[i] = ~bytes[i]! & 0xff;
}

/** Incremental hashes over `node:crypto` (faster than the portable default). */
export const nodeHashFactory: HashFactory = (algorithm) => {
  const h = createHash(algorithm);
  return {
    update(chunk) {
      h.update(chunk);
    },
    digest() {
      return new Uint8Array(h.digest());
    },
  };
};

async function writeFully(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw new McuMgrError('DEVICE_STATE', `short write to slot file at ${position + done}`);
    done += bytesWritten;
  }
}

/**
 * Writes a file of `size` erased bytes at `path` (temp + fsync + rename + fsync dir); `sparse`: in
 * sparse storage's encoding, a hole of `size` bytes (nothing written).
 */
export async function createErasedFile(path: string, size: number, sparse = false): Promise<void> {
  await writeFileAtomic(path, async (h) => {
    if (sparse) await h.truncate(size);
    else for (let off = 0; off < size; off += IO_CHUNK) await writeFully(h, ERASED_CHUNK.subarray(0, Math.min(IO_CHUNK, size - off)), off);
  });
}

export class SlotFile implements ImageSource {
  private handle: FileHandle;
  /** Allocated at the first read: an idle device (of a thousand in one process) holds none. */
  private buffer: Uint8Array | undefined;
  private readonly clock = new DelayClock();

  private constructor(
    readonly path: string,
    readonly size: number,
    handle: FileHandle,
    readonly timing: FlashTiming | undefined,
    /** Sparse storage: bytes stored inverted, erased = holes (see the module comment). */
    readonly sparse: boolean,
    /** {@link SlotFile.open} made the file (erased, durably): erasing it again changes nothing. */
    readonly created: boolean,
  ) {
    this.handle = handle;
  }

  /**
   * Opens a slot file, creating it erased when missing. Throws if it exists with another size.
   * `sparse` must be what the file was created with.
   */
  static async open(path: string, size: number, timing?: FlashTiming, sparse = false): Promise<SlotFile> {
    let handle: FileHandle;
    let created = false;
    try {
      handle = await open(path, 'r+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await createErasedFile(path, size, sparse);
      handle = await open(path, 'r+');
      created = true;
    }
    const st = await handle.stat();
    if (st.size !== size) {
      await handle.close();
      throw new McuMgrError('DEVICE_STATE', `slot file ${path} is ${st.size} bytes, expected ${size} (slot size changed?)`);
    }
    return new SlotFile(path, size, handle, timing, sparse, created);
  }

  private check(offset: number, length: number): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`slot access [${offset}, ${offset + length}) outside the ${this.size}-byte slot`);
    }
  }

  /**
   * Reads `length` bytes at `offset`. Up to 128 KiB the result is a view of an internal buffer that
   * the next read overwrites (see ImageSource); larger reads allocate.
   */
  async read(offset: number, length: number): Promise<Uint8Array> {
    this.check(offset, length);
    const buffer = (this.buffer ??= new Uint8Array(2 * IO_CHUNK + 16));
    const out = length <= buffer.length ? buffer.subarray(0, length) : new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, offset + done);
      if (bytesRead <= 0) throw new McuMgrError('DEVICE_STATE', `short read from ${this.path} at ${offset + done}`);
      done += bytesRead;
    }
    if (this.sparse) invert(out);
    return out;
  }

  /** Reads into a fresh array the caller owns. */
  async readCopy(offset: number, length: number): Promise<Uint8Array> {
    return (await this.read(offset, length)).slice();
  }

  /**
   * Changes every time the content may have changed (bumped before and after each write), so
   * that a result computed from the slot (a digest) can be kept while it still holds.
   */
  generation = 0;

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check(offset, data.length);
    this.generation++;
    try {
      if (this.sparse) {
        // A copy: the caller's bytes (often another slot's read buffer) stay as they are.
        const stored = data.slice();
        invert(stored);
        await writeFully(this.handle, stored, offset);
      } else await writeFully(this.handle, data, offset);
    } finally {
      this.generation++;
    }
  }

  /** Writes upload data, taking as long as the device's flash would (with flash timing). */
  async writeTimed(offset: number, data: Uint8Array): Promise<void> {
    await this.write(offset, data);
    if (this.timing) await this.clock.spend((data.length * this.timing.writeUsPerByte) / 1000);
  }

  /** Takes the time a device needs to erase the sectors holding `length` bytes (no change to the file). */
  async chargeErase(length: number): Promise<void> {
    if (this.timing && length > 0) await this.clock.spend(Math.ceil(length / this.timing.sectorSize) * this.timing.eraseMsPerSector);
  }

  /** Writes erased bytes over a range in place (used for trailer scrambles). */
  async eraseRange(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    this.generation++;
    try {
      const erased = this.sparse ? ZERO_CHUNK : ERASED_CHUNK;
      for (let off = 0; off < length; off += IO_CHUNK) await writeFully(this.handle, erased.subarray(0, Math.min(IO_CHUNK, length - off)), offset + off);
    } finally {
      this.generation++;
    }
  }

  /**
   * Erases the whole slot atomically (a kill -9 leaves the old content or an erased slot). With
   * flash timing it takes as long as erasing `chargeBytes` on the device (default 0: the
   * emulator's own housekeeping, such as making a fresh device at first boot, is instant).
   */
  async eraseAll(chargeBytes = 0): Promise<void> {
    await this.chargeErase(chargeBytes);
    this.generation++;
    try {
      await this.handle.close();
      await createErasedFile(this.path, this.size, this.sparse);
      this.handle = await open(this.path, 'r+');
    } finally {
      this.generation++;
    }
  }

  /** True when every byte of the slot is erased. */
  async isErased(): Promise<boolean> {
    for (let off = 0; off < this.size; off += IO_CHUNK) {
      const b = await this.read(off, Math.min(IO_CHUNK, this.size - off));
      for (let i = 0; i < b.length; i++) if (b[i] !== ERASED_BYTE) return false;
    }
    return true;
  }

  /** Copies `length` bytes from `source` at `sourceOffset` to this slot at `offset`, chunk by chunk. */
  async copyFrom(source: SlotFile, sourceOffset: number, offset: number, length: number): Promise<void> {
    for (let done = 0; done < length; done += IO_CHUNK) {
      const n = Math.min(IO_CHUNK, length - done);
      await this.write(offset + done, await source.read(sourceOffset + done, n));
    }
  }

  async sync(): Promise<void> {
    await this.handle.sync();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
