/** A file read on demand, for uploads whose memory must not grow with the file size. Node-only. */
import { open } from 'node:fs/promises';
import { UsageError } from '../core/errors.ts';
import type { ImageSource } from '../image/image.ts';

export interface FileSource extends ImageSource {
  close(): Promise<void>;
}

export async function openFileSource(path: string): Promise<FileSource> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const h = handle;
  const { size } = await h.stat();
  return {
    size,
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
