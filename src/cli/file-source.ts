/**
 * Local files for the CLI: sources read on demand (uploads whose memory must not grow with the
 * file size) and checked destinations. Every local-file problem is a UsageError (exit 2) naming
 * the path, found before anything is sent to the device. Node-only.
 */
import { open, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UsageError } from '../core/errors.ts';
import type { ImageSource } from '../image/image.ts';

export interface FileSource extends ImageSource {
  close(): Promise<void>;
}

function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return (e as Error).message;
}

export async function openFileSource(path: string): Promise<FileSource> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${describeFsError(e)}`, { cause: e });
  }
  const h = handle;
  const info = await h.stat();
  if (!info.isFile()) {
    await h.close();
    throw new UsageError(`cannot read ${path}: ${info.isDirectory() ? 'is a directory' : 'not a regular file'}`);
  }
  return {
    size: info.size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await h.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new UsageError(`${path} changed size while being read`);
        done += bytesRead;
      }
      return out;
    },
    close: () => h.close(),
  };
}

/** Checks that a file can be written at `path` (not a directory, its directory exists). */
export async function checkDestination(path: string): Promise<void> {
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw new UsageError(`cannot write ${path}: is a directory (give a file name)`);
  const dir = dirname(path);
  const parent = await stat(dir).catch(() => undefined);
  if (!parent) throw new UsageError(`cannot write ${path}: the directory ${dir} does not exist`);
  if (!parent.isDirectory()) throw new UsageError(`cannot write ${path}: ${dir} is not a directory`);
}

/** Removes a file if it is there (temporary files after a failure). */
export async function removeIfPresent(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}
