/**
 * The size of the emulated device's file system: what a peer can make it keep through fs
 * uploads. A Zephyr device's LittleFS partition is a fixed piece of flash; when it is full,
 * `fs_open` (new file) and `fs_write` fail with -ENOSPC, which fs_mgmt answers as
 * FS_MGMT_ERR_UNKNOWN (open) and FS_MGMT_ERR_FILE_WRITE_FAILED (write), closing the transfer
 * (fs_mgmt.c, read from the source). The emulator does the same against a byte budget: the sizes
 * of the files under the fs root plus {@link FS_ENTRY_COST} per file or directory (metadata, so
 * that empty files are not free). It also refuses an upload whose announced `len` cannot fit before
 * truncating anything (Zephyr would truncate the old file, then fail part way).
 *
 * The usage is counted once at boot (and after a storage erase) and then kept up to date by the
 * uploads themselves: the data directory is locked, nobody else writes there.
 */
import { readdir, lstat } from 'node:fs/promises';
import { join } from 'node:path';

/** Default budget: 16 MiB, a large external (QSPI) flash; boards range from 32 KiB internal partitions to 8–16 MiB. */
export const DEFAULT_FS_QUOTA = 16 * 1024 * 1024;
/** Bytes charged per file or directory, besides its content (a LittleFS metadata pair is 2 blocks; this is smaller, to stay generous). */
export const FS_ENTRY_COST = 256;

export class FsQuota {
  /** Bytes in use (content plus entry costs). */
  used = 0;

  constructor(
    readonly storageDir: string,
    readonly limit: number = DEFAULT_FS_QUOTA,
  ) {
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError(`fs quota must be a positive number of bytes, got ${limit}`);
  }

  /** Counts what the storage holds now (boot, after an erase). */
  async recount(): Promise<void> {
    this.used = await usage(this.storageDir);
  }

  /** Bytes that could still be written. */
  get free(): number {
    return Math.max(0, this.limit - this.used);
  }

  /** Whether a file of `newSize` may replace one of `oldSize` (a new file: `oldSize` undefined). */
  fits(oldSize: number | undefined, newSize: number): boolean {
    return this.used + (oldSize === undefined ? FS_ENTRY_COST : 0) + newSize - (oldSize ?? 0) <= this.limit;
  }

  /** Records a change of a file's size (a new file: `oldSize` undefined). */
  changed(oldSize: number | undefined, newSize: number): void {
    this.used += (oldSize === undefined ? FS_ENTRY_COST : 0) + newSize - (oldSize ?? 0);
  }
}

async function usage(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    total += FS_ENTRY_COST;
    if (e.isDirectory()) total += await usage(path);
    else if (e.isFile()) total += (await lstat(path).catch(() => undefined))?.size ?? 0;
  }
  return total;
}
