/**
 * Image upload (smp-spec.md §3.2, 1/1) on the shared transfer engine (./transfer-engine.ts):
 *
 * - Frame size from the device's MCUmgr parameters (`buf_size`) and the link MTU; the chunk size
 *   from the exact CBOR overhead of the request (header, map, keys, offset, byte-string head), so
 *   every request fills the frame.
 * - Window, retransmission timeout and chunk size adapt as TCP's do (see the engine): up to
 *   `buf_count − 1` chunks in flight, an RTO from measured round trips bounded by the client's
 *   timeout (`-t`), a chunk failing only after the client's tries (`-r`) and as long a wait.
 * - The device's offset is authoritative: every answer carries it, and the engine goes back to it
 *   on a gap (img_mgmt drops data at a wrong offset and answers its own; duplicates are harmless).
 * - The first chunk carries `len`, `sha` (SHA-256 of the file), `image` and `upgrade`, goes alone and
 *   gets a long timeout (the device erases the slot first). Sent again after an interruption, it
 *   resumes the earlier upload at the device's offset instead of starting over; a device already
 *   holding the image answers at once with `match`.
 */
import { commands } from '../core/commands/index.ts';
import { maxChunkData } from '../core/cbor-size.ts';
import { UsageError } from '../core/errors.ts';
import { chunkRetryPolicy, runOffsetTransfer } from './transfer-engine.ts';
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
  /** Most chunks in flight (default: the link's `pacedWindow` when it paces the device, else the device's `buf_count - 1`, at least 1). */
  maxWindow?: number;
  /** Upper bound of a chunk's adaptive timeout (default: the client's timeout, `-t`). */
  chunkTimeoutMs?: number;
  /** Time to wait for the first chunk's answer per try, during which the device erases (default 30 s); the chunk is sent again every `chunkTimeoutMs` meanwhile. */
  firstChunkTimeoutMs?: number;
  /** Sends of one chunk before it may fail (default: the client's tries, `-r`). */
  chunkTries?: number;
  /** Lowest adaptive timeout (default 100 ms). */
  chunkTimeoutFloorMs?: number;
  /** Device buffer parameters, when already known (skips the `params` request). */
  params?: { bufSize: number; bufCount: number };
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface ImageUploadResult {
  /** Image bytes the device took from this call (size − resumedAt; 0 after a match). */
  bytesSent: number;
  /** Where the device was when this call started (0 for a fresh upload, more on resume). */
  resumedAt: number;
  /** The device's `match` answer, when it gave one. */
  match: boolean | undefined;
  chunks: number;
  retransmissions: number;
  /** Go-backs to the device's offset after a gap or a timeout. */
  rewinds: number;
  /** Data bytes per chunk used (at the end, after any back-off). */
  chunkSize: number;
  maxWindow: number;
  /** Largest window reached. */
  windowReached: number;
  /** Smoothed round trip of a chunk at the end, ms. */
  srttMs: number | undefined;
  /** Mean round trip of the chunks answered to their only send, ms (see TransferStats.meanRttMs). */
  meanRttMs: number | undefined;
  elapsedMs: number;
}

/** When the params request and the first chunk are sent again if unanswered, before any round trip was measured (RFC 6298's initial RTO). */
const FIRST_RETRANSMIT_MS = 1000;

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
  const defaults = client.requestDefaults;
  const ceilingMs = options.chunkTimeoutMs ?? defaults.timeoutMs;
  const tries = Math.max(1, options.chunkTries ?? defaults.tries);
  // The params request is sent again after 1 s (RFC 6298's first RTO), doubling up to -t, with
  // the patience of -r tries of -t: a lost datagram cost the whole -t (3 s) before the upload began.
  const params = options.params ?? (await readBufferParams(client, signal, chunkRetryPolicy(Math.min(FIRST_RETRANSMIT_MS, ceilingMs), { tries, ceilingMs })));
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
  // A link that paces the device itself (the dashboard bridge) queues what the device has no
  // buffer for: more in flight keeps its side of the link busy across the longer round trip.
  const paced = client.transport.pacedWindow;
  const maxWindow = Math.max(1, options.maxWindow ?? paced ?? params.bufCount - 1);

  let resumedAt = 0;
  /** Whether the first chunk of this call has been answered: only that answer can say "resumed". */
  let firstAnswered = false;
  let match: boolean | undefined;
  const chunkLength = (off: number, limit: number): number => (off === 0 ? firstChunk : Math.min(limit, file.length - off));
  const stats = await runOffsetTransfer(
    {
      chunkLength,
      async send(off, len, request) {
        const data = await source.read(off, len);
        const rsp = await client.request(commands.image.upload, off === 0 ? { ...firstBody, data } : { off, data }, request);
        if (rsp.match !== undefined) match = rsp.match;
        // A first chunk answered past itself: the data was ignored, the device resumed a session
        // or holds the image already. Only the answer to this call's first send of the first
        // chunk says where the device was when the upload started; a first chunk sent again later
        // (the device answered off 0 to a go-back copy that arrived after old copies had
        // completed the image) resumes nothing.
        const held = off === 0 && rsp.off > firstChunk;
        if (held && !firstAnswered) resumedAt = rsp.off;
        if (off === 0) firstAnswered = true;
        return { kind: 'offset', off: rsp.off, held };
      },
    },
    {
      total: file.length,
      start: 0,
      maxWindow,
      maxChunk: chunkSize,
      adaptChunkSize: client.transport.kind === 'serial',
      // No overrun below the device's own window on UDP, nor on a paced link: a loss only halves.
      probeLostWindows: client.transport.kind !== 'udp' && paced === undefined,
      timing: {
        ceilingMs,
        tries,
        firstChunkTimeoutMs: options.firstChunkTimeoutMs ?? Math.max(30000, defaults.timeoutMs),
        // A repeated first chunk resumes the same upload (same `sha`): resent after 1 s (RFC 6298's first RTO).
        firstChunkRetransmitMs: FIRST_RETRANSMIT_MS,
        ...(options.chunkTimeoutFloorMs !== undefined ? { floorMs: options.chunkTimeoutFloorMs } : {}),
      },
      ...(signal ? { signal } : {}),
      onProgress: (offset, window) => options.onProgress?.({ offset, total: file.length, window }),
    },
  );
  return {
    bytesSent: stats.bytesTaken,
    resumedAt,
    match,
    chunks: stats.chunks,
    retransmissions: stats.retransmissions,
    rewinds: stats.rewinds,
    chunkSize: stats.chunkSize,
    maxWindow,
    windowReached: stats.maxWindowReached,
    srttMs: stats.srttMs,
    meanRttMs: stats.meanRttMs,
    elapsedMs: Date.now() - t0,
  };
}
