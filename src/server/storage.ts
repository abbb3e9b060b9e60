/**
 * Durable writes for device state. Everything the emulated device must keep across a crash goes
 * through {@link writeFileAtomic}: write a temporary file, fsync it, rename it over the target,
 * fsync the directory. A kill -9 at any moment leaves either the old or the new content, never a
 * torn file.
 */
import { open, rename, mkdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

let counter = 0;

export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Replaces `path` atomically and durably with `data`, or with what `write` puts into the fresh
 * temporary file (for contents too large to build in memory).
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string | ((handle: FileHandle) => Promise<void>)): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${counter++}`);
  const h = await open(tmp, 'w');
  try {
    if (typeof data === 'function') await data(h);
    else await h.writeFile(data);
    await h.sync();
  } catch (e) {
    await h.close();
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await h.close();
  await rename(tmp, path);
  await fsyncDir(dir);
}
