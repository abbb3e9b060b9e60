/**
 * The image upload engine (smp-spec.md §3.2, 1/1), built for speed on every link:
 *
 * - Frame size from the device's MCUmgr parameters (`buf_size`) and the link MTU; the chunk size
 *   from the exact CBOR overhead of the request (header, map, keys, offset, byte-string head), so
 *   every request fills the frame.
 * - Several chunks in flight: the window starts at 1, grows by one chunk per acknowledged chunk
 *   until the first loss, then by one per window of acknowledged chunks, up to `buf_count - 1`
 *   (the device needs one buffer for its answer); it halves on a timeout (TCP-like, as the Go
 *   mcumgr's adaptive window).
 * - The device's offset is authoritative: every answer carries it, and the engine resumes from it
 *   (lost chunks are sent again, duplicates are harmless: the device answers with its offset).
 * - Bounded retransmission: a chunk that times out is sent again, `chunkTries` times at most.
 * - The first chunk carries `len`, `sha` (SHA-256 of the file), `image` and `upgrade` and gets a long
 *   timeout (the device erases the slot first). Sent again after an interruption, it resumes the
 *   earlier upload at the device's offset instead of starting over; a device already holding the
 *   image answers at once with `match`.
 */
import { commands } from '../core/commands/index.ts';
import { maxChunkData } from '../core/cbor-size.ts';
import { TransportError, UsageError } from '../core/errors.ts';
import type { SmpClient } from './client.ts';
import { readBufferParams } from './params.ts';
import { bytesImageSource, type ImageSource } from '../image/image.ts';
import { nobleHashFactory } from '../image/hash.ts';

export interface UploadProgress {
  /** Bytes the device has accepted. */
  offset: number;
  total: number;
  /** Chunks currently in flight. */
  window: number;
}

export interface ImageUploadOptions {
  /** Image number (default 0). */
  image?: number;
  /** Ask the device to refuse an image not newer than the running one. */
  upgrade?: boolean;
  /** Largest data bytes per chunk (default: as many as the frame holds). */
  chunkSize?: number;
  /** Round every chunk but the last down to a multiple of this (flash write alignment). */
  chunkAlignment?: number;
  /** Most chunks in flight (default: the device's `buf_count - 1`, at least 1). */
  maxWindow?: number;
  /** Time to wait for each chunk's answer (default 2000 ms). */
  chunkTimeoutMs?: number;
  /** Time to wait for the first chunk's answer, during which the device erases (default 30 s). */
  firstChunkTimeoutMs?: number;
  /** Sends of one chunk before giving up (default 5). */
  chunkTries?: number;
  /** Device buffer parameters, when already known (skips the `params` request). */
  params?: { bufSize: number; bufCount: number };
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface ImageUploadResult {
  /** Bytes sent in this call (less than the image size after a resume or a match). */
  bytesSent: number;
  /** Where the device was when this call started (0 for a fresh upload, more on resume). */
  resumedAt: number;
  /** The device's `match` answer, when it gave one. */
  match: boolean | undefined;
  chunks: number;
  retransmissions: number;
  /** Data bytes per chunk used. */
  chunkSize: number;
  maxWindow: number;
  elapsedMs: number;
}

/** SHA-256 of the whole file: Web Crypto for bytes in memory, an incremental hash over 64 KiB reads for a source. */
async function sha256(file: Uint8Array | ImageSource): Promise<Uint8Array> {
  if (file instanceof Uint8Array) return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', file as Uint8Array<ArrayBuffer>));
  const h = nobleHashFactory('sha256');
  for (let off = 0; off < file.size; off += 0x10000) h.update(await file.read(off, Math.min(0x10000, file.size - off)));
  return h.digest();
}



/**
 * Uploads an image file into the device's secondary slot (see the module notes). `input` is the
 * file's bytes or a random-access source (a file read on demand: memory then does not grow with
 * the image size).
 */
export async function uploadImage(client: SmpClient, input: Uint8Array | ImageSource, options: ImageUploadOptions = {}): Promise<ImageUploadResult> {
  const t0 = Date.now();
  const source = input instanceof Uint8Array ? bytesImageSource(input) : input;
  const file = { length: source.size };
  if (file.length < 32) throw new UsageError(`an image is at least 32 bytes (the MCUboot header); got ${file.length}`);
  const signal = options.signal;
  const params = options.params ?? (await readBufferParams(client, signal));
  const frame = client.packetLimit(params.bufSize);
  const sha = await sha256(input);
  const image = options.image ?? 0;
  const firstBody = { image, len: file.length, off: 0, sha, ...(options.upgrade ? { upgrade: true } : {}) };
  const align = Math.max(1, options.chunkAlignment ?? 1);
  const alignDown = (n: number): number => Math.max(align, n - (n % align));
  let chunkSize = maxChunkData(frame, { off: file.length }); // the largest offset costs the most bytes
  if (options.chunkSize !== undefined) chunkSize = Math.min(chunkSize, options.chunkSize);
  chunkSize = alignDown(chunkSize);
  const firstChunk = Math.min(alignDown(Math.min(chunkSize, maxChunkData(frame, firstBody))), file.length);
  if (firstChunk < 32) throw new UsageError(`the device's frame of ${frame} bytes is too small for the first image chunk`);
  const maxWindow = Math.max(1, options.maxWindow ?? params.bufCount - 1);
  const chunkTimeoutMs = options.chunkTimeoutMs ?? 2000;
  const chunkTries = Math.max(1, options.chunkTries ?? 5);

  let retransmissions = 0;
  let chunks = 0;
  let bytesSent = 0;

  // First chunk: starts (or resumes, or instantly matches) the upload.
  const sendFirst = async (): Promise<{ off: number; match?: boolean }> => {
    for (let attempt = 1; ; attempt++) {
      try {
        chunks++;
        const data = await source.read(0, firstChunk);
        const rsp = await client.request(commands.image.upload, { ...firstBody, data }, { timeoutMs: options.firstChunkTimeoutMs ?? 30000, tries: 1, signal });
        bytesSent += firstChunk;
        return rsp;
      } catch (e) {
        if (e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT' && attempt < chunkTries) {
          retransmissions++;
          continue;
        }
        throw e;
      }
    }
  };

  const first = await sendFirst();
  let deviceOff = first.off;
  const resumedAt = deviceOff > firstChunk ? deviceOff : 0;
  if (resumedAt > 0) bytesSent -= firstChunk; // the device ignored the data of a resumed first chunk
  let match = first.match;
  options.onProgress?.({ offset: Math.min(deviceOff, file.length), total: file.length, window: 1 });

  // The pipelined rest: keep up to `window` chunks in flight from `nextOff`. A resync (the
  // device answered with an offset behind what was sent, or a chunk timed out) moves `nextOff`
  // back; `epoch` counts resyncs so that the other answers to chunks sent before it do not move
  // `nextOff` back again.
  let window = 1;
  let credit = 0;
  let slowStart = true;
  let nextOff = deviceOff;
  let epoch = 0;
  let requestKey = 0;
  const inFlight = new Map<number, Promise<void>>();
  const triesAt = new Map<number, number>();
  let failure: unknown;
  let restarts = 0;

  const resync = (to: number, sentInEpoch: number): void => {
    if (sentInEpoch !== epoch) return;
    epoch++;
    nextOff = to;
  };

  const sendChunk = (off: number): void => {
    const len = Math.min(chunkSize, file.length - off);
    const sentInEpoch = epoch;
    const key = requestKey++;
    chunks++;
    const p = source
      .read(off, len)
      .then((data) => client.request(commands.image.upload, { off, data }, { timeoutMs: chunkTimeoutMs, tries: 1, signal }))
      .then(
        (rsp) => {
          bytesSent += len;
          if (rsp.match !== undefined) match = rsp.match;
          if (rsp.off > deviceOff || rsp.off === 0) deviceOff = rsp.off;
          if (rsp.off >= off + len) {
            // Slow start until the first loss (one more chunk per acknowledged chunk, doubling per
            // round trip), then additive increase (one more per window of acknowledged chunks).
            if (window < maxWindow && (slowStart || ++credit >= window)) {
              window++;
              credit = 0;
            }
          } else if (rsp.off < nextOff) {
            resync(rsp.off, sentInEpoch); // the device is behind what was sent: go on from its offset
          }
          options.onProgress?.({ offset: Math.min(deviceOff, file.length), total: file.length, window });
        },
        (e: unknown) => {
          if (e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT') {
            const n = (triesAt.get(off) ?? 1) + 1;
            triesAt.set(off, n);
            if (n > chunkTries) {
              failure ??= e;
              return;
            }
            retransmissions++;
            slowStart = false;
            window = Math.max(1, Math.floor(window / 2)); // multiplicative decrease on loss
            credit = 0;
            if (off < nextOff) resync(off, sentInEpoch);
            return;
          }
          failure ??= e;
        },
      )
      .finally(() => inFlight.delete(key));
    inFlight.set(key, p);
  };

  while (deviceOff < file.length && !failure) {
    if (nextOff === 0) {
      if (inFlight.size > 0) {
        await Promise.race(inFlight.values());
        continue;
      }
      // The device lost the upload (reset, another client): start again with a full first chunk,
      // which resumes if the device still has the session.
      if (++restarts > chunkTries) throw new TransportError('TRANSPORT_IO', 'the device keeps losing the upload session');
      const again = await sendFirst();
      deviceOff = again.off;
      nextOff = deviceOff;
      if (again.match !== undefined) match = again.match;
      continue;
    }
    while (inFlight.size < window && nextOff < file.length && nextOff > 0) {
      const off = nextOff;
      nextOff += Math.min(chunkSize, file.length - off);
      sendChunk(off);
    }
    if (inFlight.size === 0) {
      // Everything sent and answered, but the device is still behind: go on from its offset.
      nextOff = deviceOff;
      continue;
    }
    await Promise.race(inFlight.values());
  }
  await Promise.allSettled(inFlight.values());
  if (failure && deviceOff < file.length) throw failure;
  return { bytesSent, resumedAt, match, chunks, retransmissions, chunkSize, maxWindow, elapsedMs: Date.now() - t0 };
}
