/**
 * File transfers over the file system group (group 8): upload and download with several chunks
 * in flight, chunks sized to the device's buffer and the link MTU with the exact CBOR overhead,
 * resume, and a hash or checksum check at the end. Window, timeouts and patience come from the
 * transfer engine (./transfer-engine.ts): an adaptive window up to `buf_count − 1`, an RTO from
 * measured round trips bounded by the client's timeout (`-t`), the client's tries (`-r`).
 *
 * - Upload runs on the engine's go-back-N loop and follows Zephyr's non-idempotent rules
 *   (smp-spec.md §5.3): the first chunk goes alone (it carries `len` and truncates the file); a
 *   duplicated or out-of-order chunk answers `err{8,11}` with `len` = the device's expected offset
 *   and closes the file, so the engine drains what is in flight and carries on from the offset the
 *   device reported last.
 * - Download requests are idempotent, and the device decides each answer's length: a selective
 *   repeat (a lost request is asked again, nothing else) asking ahead by the size of the chunks it
 *   sees, filling any hole. Data goes to a {@link DownloadSink} in file order (out-of-order answers
 *   wait in a reorder buffer of at most a window of chunks), so memory stays bounded whatever size
 *   the device claims; without a sink the bytes are collected up to `maxSize` (default 64 MiB).
 * - Resume: compares the device's hash of the common prefix with the local bytes and continues
 *   after it.
 * - Verify: sha256 when the device supports it, else crc32 (`fs hash`), against the local data
 *   (hashed as it streams for a download).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { commands } from '../core/commands/index.ts';
import { maxChunkData } from '../core/cbor-size.ts';
import { crc32, crc32Final, crc32Update, CRC32_INIT } from '../core/crc32.ts';
import { toHex } from '../core/bytes.ts';
import { DeviceError, McuMgrError, TransportError, UsageError } from '../core/errors.ts';
import { FsMgmtErr, MgmtErr } from '../core/error-codes.ts';
import { Group } from '../core/commands/command.ts';
import type { SmpClient } from './client.ts';
import { readBufferParams } from './params.ts';
import { RtoEstimator, WindowControl, chunkRetryPolicy, runOffsetTransfer } from './transfer-engine.ts';

export type HashType = 'sha256' | 'crc32';

export interface TransferProgress {
  /** Bytes the device has confirmed (upload) or that arrived (download), resumed bytes included. */
  done: number;
  total: number;
}

export interface TransferOptions {
  /** Requests in flight (default: device buf_count − 1, at least 1). */
  window?: number;
  /** Largest SMP packet to send (default: min(device buf_size, link MTU)). */
  packetLimit?: number;
  onProgress?: (p: TransferProgress) => void;
  /** Check the result with the device's hash: 'auto' (default: sha256 if supported, else crc32), a type, or false. */
  verify?: HashType | 'auto' | false;
  signal?: AbortSignal;
}

export interface UploadOptions extends TransferOptions {
  /** Continue a partial upload when the file on the device is a prefix of the data. */
  resume?: boolean;
}

/** Where a download's bytes go, in file order (a file in the CLI). */
export interface DownloadSink {
  /**
   * Called once before any data with the file's length (as the device reports it) and the length
   * of the resumed prefix (`resumeFrom` bytes the device also has: the sink holds them already or
   * writes them now; 0 when the download starts over).
   */
  start?(total: number, resumedFrom: number): void | Promise<void>;
  /** The next bytes of the file, in order. */
  write(data: Uint8Array): void | Promise<void>;
}

export interface DownloadOptions extends TransferOptions {
  /** Bytes already downloaded (a partial local file): kept when the device's prefix matches (they are not written to the sink again). */
  resumeFrom?: Uint8Array;
  /** Where the bytes go; without one they are collected and returned as `data`. */
  sink?: DownloadSink;
  /** Largest file collected in memory without a sink (default 64 MiB); a larger claim fails before anything is allocated. */
  maxSize?: number;
}

export interface TransferResult {
  bytes: number;
  /** Bytes skipped because the device already had them (resume). */
  resumedFrom: number;
  requests: number;
  /** Times the device reported an offset mismatch and the engine carried on from its offset. */
  rewinds: number;
  verified: { type: HashType; value: string } | undefined;
  ms: number;
}

export interface TransferParams {
  bufSize: number;
  bufCount: number;
  packetLimit: number;
  window: number;
}

/** Reads the device's MCUmgr parameters (0/6) and derives the packet limit and window. */
export async function transferParams(client: SmpClient, options: Pick<TransferOptions, 'window' | 'packetLimit' | 'signal'> = {}): Promise<TransferParams> {
  const { bufSize, bufCount } = await readBufferParams(client, options.signal);
  const packetLimit = Math.min(options.packetLimit ?? Infinity, client.packetLimit(bufSize));
  const window = Math.max(1, Math.floor(options.window ?? bufCount - 1));
  return { bufSize, bufCount, packetLimit, window };
}

/** The local hash or checksum of data, in the form `fs hash` reports it (hex for sha256, number as hex for crc32). */
export function localHash(type: HashType, data: Uint8Array): string {
  return type === 'sha256' ? toHex(sha256(data)) : crc32(data).toString(16).padStart(8, '0');
}

function hashOutputToString(output: number | Uint8Array): string {
  return typeof output === 'number' ? output.toString(16).padStart(8, '0') : toHex(output);
}

/** The hash types the device supports (fs 8/3); when it lacks that command, both are tried. */
export async function supportedHashTypes(client: SmpClient, signal?: AbortSignal): Promise<HashType[]> {
  try {
    const r = await client.request(commands.fs.hashTypes, {}, { signal });
    return (['sha256', 'crc32'] as const).filter((t) => Object.hasOwn(r.types, t));
  } catch (e) {
    if (e instanceof DeviceError && e.group === undefined && e.rc === MgmtErr.ENOTSUP) return ['sha256', 'crc32'];
    throw e;
  }
}

/** The device's hash of `name` (optionally a range), as a hex string. */
export async function remoteHash(client: SmpClient, name: string, type: HashType, range: { off?: number; len?: number } = {}, signal?: AbortSignal): Promise<string> {
  const body: { name: string; type: string; off?: number; len?: number } = { name, type };
  if (range.off) body.off = range.off;
  if (range.len !== undefined) body.len = range.len;
  const r = await client.request(commands.fs.hash, body, { signal });
  return hashOutputToString(r.output);
}

async function chooseHash(client: SmpClient, verify: TransferOptions['verify'], signal?: AbortSignal): Promise<HashType | undefined> {
  if (verify === false) return undefined;
  if (verify === 'sha256' || verify === 'crc32') return verify;
  const types = await supportedHashTypes(client, signal);
  return types[0];
}

/** Compares the device's hash of a prefix with local bytes; false when they differ or the device cannot say. */
async function prefixMatches(client: SmpClient, name: string, local: Uint8Array, length: number, signal?: AbortSignal): Promise<boolean> {
  if (length === 0) return true;
  for (const type of await supportedHashTypes(client, signal)) {
    try {
      return (await remoteHash(client, name, type, { len: length }, signal)) === localHash(type, local.subarray(0, length));
    } catch (e) {
      if (!(e instanceof DeviceError)) throw e;
    }
  }
  return false;
}

async function verifyRemote(client: SmpClient, name: string, data: Uint8Array, type: HashType | undefined, signal?: AbortSignal): Promise<TransferResult['verified']> {
  if (type === undefined) return undefined;
  if (data.length === 0) {
    const st = await client.request(commands.fs.status, { name }, { signal });
    if (st.len !== 0) throw new McuMgrError('VERIFY_FAILED', `${name}: the device has ${st.len} bytes, expected an empty file`);
    return undefined;
  }
  const remote = await remoteHash(client, name, type, {}, signal);
  const local = localHash(type, data);
  if (remote !== local) throw new McuMgrError('VERIFY_FAILED', `${name}: ${type} on the device ${remote} differs from the local ${local}`);
  return { type, value: local };
}

function isOffsetMismatch(e: unknown): e is DeviceError {
  return e instanceof DeviceError && e.group === Group.FS && e.rc === FsMgmtErr.FILE_OFFSET_NOT_VALID && typeof e.body['len'] === 'number';
}

async function remoteSize(client: SmpClient, name: string, signal?: AbortSignal): Promise<number | undefined> {
  try {
    return (await client.request(commands.fs.status, { name }, { signal })).len;
  } catch (e) {
    if (e instanceof DeviceError && ((e.group === Group.FS && e.rc === FsMgmtErr.FILE_NOT_FOUND) || (e.group === undefined && e.rc === MgmtErr.ENOENT))) return undefined;
    throw e;
  }
}

/** The engine's bounds from the client's defaults (`-t`, `-r`). */
function timingOf(client: SmpClient): { ceilingMs: number; tries: number; firstChunkTimeoutMs: number } {
  const d = client.requestDefaults;
  return { ceilingMs: d.timeoutMs, tries: Math.max(1, d.tries), firstChunkTimeoutMs: d.timeoutMs };
}

/** Uploads `data` to the device file `name`. */
export async function uploadFile(client: SmpClient, name: string, data: Uint8Array, options: UploadOptions = {}): Promise<TransferResult> {
  const started = Date.now();
  const signal = options.signal;
  const params = await transferParams(client, options);
  const total = data.length;
  const hashType = await chooseHash(client, options.verify ?? 'auto', signal);
  let start = 0;
  if (options.resume) {
    const have = await remoteSize(client, name, signal);
    if (have !== undefined && have > 0 && have <= total && (await prefixMatches(client, name, data, have, signal))) start = have;
  }
  let requests = 0;
  options.onProgress?.({ done: start, total });

  const chunkAt = (off: number, limit: number): { off: number; data: Uint8Array; name: string; len?: number } => {
    const body: { name: string; off: number; data: Uint8Array; len?: number } = off === 0 ? { name, off, data: new Uint8Array(0), len: total } : { name, off, data: new Uint8Array(0) };
    const n = Math.min(limit, maxChunkData(params.packetLimit, body));
    if (n === 0 && off < total) throw new UsageError(`a packet limit of ${params.packetLimit} bytes leaves no room for file data`);
    body.data = data.subarray(off, Math.min(total, off + n));
    return body;
  };

  let rewinds = 0;
  /** The end of the furthest chunk this call sent (the device cannot be past it from this call's data). */
  let sentEnd = start;
  let restarted = false;
  if (total === 0) {
    // An empty file: the first chunk creates (truncates) it; nothing for the engine to do.
    requests++;
    await client.request(commands.fs.upload, chunkAt(0, 0), { signal });
  } else if (start < total) {
    const stats = await runOffsetTransfer(
      {
        chunkLength: (off, limit) => chunkAt(off, limit).data.length,
        async send(off, len, request) {
          requests++;
          const chunk = chunkAt(off, len);
          sentEnd = Math.max(sentEnd, off + chunk.data.length);
          try {
            const r = await client.request(commands.fs.upload, chunk, request);
            return { kind: 'offset', off: r.off };
          } catch (e) {
            if (!isOffsetMismatch(e)) throw e;
            const expected = e.body['len'] as number;
            if (expected > sentEnd) {
              // Past anything this call sent: the offset is not this upload's but that of a
              // transfer the device kept open (reopened without a length after an earlier err 8/11,
              // so it never closed) on a file that changed since, or of another writer. Taking it
              // would end the upload with bytes missing. The err 8/11 closed the device's transfer:
              // start over from 0 (the first chunk truncates the file), once.
              if (restarted) throw new McuMgrError('VERIFY_FAILED', `${name}: the device reports ${expected} bytes, more than the ${sentEnd} sent`);
              restarted = true;
              return { kind: 'rewind', off: 0, drain: true };
            }
            return { kind: 'rewind', off: expected, drain: true };
          }
        },
      },
      {
        total,
        start,
        maxWindow: params.window,
        maxChunk: maxChunkData(params.packetLimit, { name, off: total, data: new Uint8Array(0) }),
        adaptChunkSize: client.transport.kind === 'serial',
        probeLostWindows: client.transport.kind !== 'udp',
        timing: timingOf(client),
        ...(signal ? { signal } : {}),
        onProgress: (off) => options.onProgress?.({ done: Math.min(off, total), total }),
      },
    );
    rewinds = stats.rewinds;
  }
  // Close the file explicitly: a resumed upload never told the device the length (only the off 0
  // chunk carries it), an empty file never reaches off ≥ len, and a chunk the link delivered
  // twice made the device answer err 8/11 (to a request already answered, so unseen here) and
  // reopen the file at the next chunk without the length. A transfer left open keeps an offset
  // that a later change of the file makes stale. A device without fs close (8/4) closes the file
  // when idle.
  try {
    await client.request(commands.fs.close, {}, { signal });
  } catch (e) {
    if (!(e instanceof DeviceError && e.group === undefined && e.rc === MgmtErr.ENOTSUP)) throw e;
  }
  options.onProgress?.({ done: total, total });
  const verified = await verifyRemote(client, name, data, hashType, signal);
  return { bytes: total, resumedFrom: restarted ? 0 : start, requests, rewinds, verified, ms: Date.now() - started };
}

/** A running hash of streamed bytes, in the form {@link localHash} gives. */
function streamingHash(type: HashType): { update(d: Uint8Array): void; hex(): string } {
  if (type === 'sha256') {
    const h = sha256.create();
    return { update: (d) => void h.update(d), hex: () => toHex(h.digest()) };
  }
  let state = CRC32_INIT;
  return { update: (d) => void (state = crc32Update(state, d)), hex: () => crc32Final(state).toString(16).padStart(8, '0') };
}

/** Answers that arrived ahead of the next byte to deliver: at most a window of chunks. */
class ReorderBuffer {
  private readonly held: Array<{ off: number; data: Uint8Array }> = [];
  add(off: number, data: Uint8Array): void {
    this.held.push({ off, data });
  }
  /** Takes the bytes that continue at `at` (overlaps trimmed), or undefined. */
  take(at: number): Uint8Array | undefined {
    let out: Uint8Array | undefined;
    for (let i = this.held.length - 1; i >= 0; i--) {
      const h = this.held[i]!;
      if (h.off + h.data.length <= at) this.held.splice(i, 1);
      else if (h.off <= at && !out) {
        out = h.data.subarray(at - h.off);
        this.held.splice(i, 1);
      }
    }
    return out;
  }
  /** True when some held answer covers `at`. */
  covers(at: number): boolean {
    return this.held.some((h) => h.off <= at && at < h.off + h.data.length);
  }
  get bytes(): number {
    return this.held.reduce((n, h) => n + h.data.length, 0);
  }
}

/**
 * Downloads the device file `name` into `options.sink` (or into memory, returned as `data`).
 * Returns the transfer figures. A failure carries `partial` (the bytes delivered in order) when
 * collecting into memory.
 */
export async function downloadFile(client: SmpClient, name: string, options: DownloadOptions = {}): Promise<TransferResult & { data: Uint8Array }> {
  const started = Date.now();
  const signal = options.signal;
  const params = await transferParams(client, options);
  const hashType = await chooseHash(client, options.verify ?? 'auto', signal);
  const maxSize = options.maxSize ?? 64 * 1024 * 1024;
  const collected: Uint8Array[] = [];
  const sink: DownloadSink = options.sink ?? {
    start(total) {
      if (total > maxSize) throw new UsageError(`${name}: the device reports ${total} bytes, more than the ${maxSize} collected in memory (give a sink, or a larger maxSize)`);
    },
    write: (d) => void collected.push(d.slice()),
  };
  const hash = hashType ? streamingHash(hashType) : undefined;
  const timing = timingOf(client);
  const rto = new RtoEstimator({ ceilingMs: timing.ceilingMs });
  const window = new WindowControl(params.window, client.transport.kind !== 'udp');
  let requests = 0;
  let start = 0;
  let total = 0;
  const partial = options.resumeFrom;
  if (partial && partial.length > 0) {
    const size = await remoteSize(client, name, signal);
    if (size === undefined) throw new DeviceError(FsMgmtErr.FILE_NOT_FOUND, Group.FS);
    total = size;
    if (partial.length <= total && (await prefixMatches(client, name, partial, partial.length, signal))) start = partial.length;
  }
  /** Bytes delivered to the sink, in order (the resumed prefix included). */
  let delivered = 0;
  const reorder = new ReorderBuffer();
  // One delivery at a time, and `delivered` moves before the sink's write is awaited: answers
  // that arrive while a slow sink (a file on a busy disk) writes must neither take the same bytes
  // again nor make the bytes being written look like a hole to ask for again (each would be
  // hashed and written twice).
  let delivering: Promise<void> = Promise.resolve();
  const deliverInOrder = async (): Promise<void> => {
    for (let d = reorder.take(delivered); d && delivered < total; d = reorder.take(delivered)) {
      const part = d.subarray(0, total - delivered);
      hash?.update(part);
      delivered += part.length;
      await sink.write(part);
    }
  };
  const deliver = (): Promise<void> => (delivering = delivering.then(deliverInOrder));
  let chunkEstimate: number;
  if (start === 0) {
    requests++;
    const first = await client.request(commands.fs.download, { name, off: 0 }, { signal });
    if (first.len === undefined) throw new McuMgrError('VERIFY_FAILED', `${name}: the device did not report the file length`);
    total = first.len;
    await sink.start?.(total, start);
    reorder.add(0, first.data.subarray(0, total));
    chunkEstimate = Math.max(1, first.data.length);
  } else {
    await sink.start?.(total, start);
    hash?.update(partial!.subarray(0, start));
    delivered = start;
    // Size requests from the packet limit until the device's chunks are seen.
    chunkEstimate = Math.max(1, maxChunkData(params.packetLimit, { off: start, data: 0 }, 'data'));
  }
  await deliver();
  options.onProgress?.({ done: delivered, total });

  /** Offsets asked and not answered yet. */
  const asked = new Set<number>();
  const again: number[] = [];
  let nextAsk = delivered;
  let failure: unknown;
  /** Bumped by every window decrease: losses of requests sent before it are the same event. */
  let lossEpoch = 0;
  const inflight = new Set<Promise<void>>();
  const isCovered = (off: number): boolean => off < delivered || reorder.covers(off) || [...asked].some((a) => a <= off && off < a + chunkEstimate);

  const fetchAt = (off: number): void => {
    const sentAt = performance.now();
    const sentInLossEpoch = lossEpoch;
    let retransmitted = false;
    asked.add(off);
    requests++;
    const policy = chunkRetryPolicy(rto.timeoutMs, timing);
    const p = client
      .request(commands.fs.download, { name, off }, {
        ...policy,
        ...(signal ? { signal } : {}),
        onRetransmit: (attempt) => {
          retransmitted = true;
          requests++;
          // Backoff once per loss event, and again on each further timeout of the same request (see the engine).
          if (sentInLossEpoch === lossEpoch || attempt > 2) rto.backoff();
          if (sentInLossEpoch === lossEpoch) {
            lossEpoch++;
            window.loss();
          }
        },
      })
      .then(
        async (r) => {
          asked.delete(off);
          if (!retransmitted) rto.sample(performance.now() - sentAt);
          window.ack();
          const n = Math.min(r.data.length, Math.max(0, total - r.off));
          if (r.data.length === 0 && r.off < total) {
            failure ??= new McuMgrError('VERIFY_FAILED', `${name}: the device returned no data at offset ${r.off} of ${total} (file changed?)`);
            return;
          }
          if (r.off + r.data.length < total && r.data.length > 0) chunkEstimate = r.data.length;
          if (r.off + n >= delivered) reorder.add(r.off, r.data.subarray(0, n));
          // A shorter answer than asked ahead for leaves a hole: ask for it now.
          const end = r.off + n;
          if (end < total && end < nextAsk && !isCovered(end)) again.push(end);
          await deliver();
          options.onProgress?.({ done: delivered, total });
        },
        (e: unknown) => {
          asked.delete(off);
          failure ??= e;
        },
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };

  while (delivered < total && failure === undefined) {
    if (signal?.aborted) break;
    while (failure === undefined && inflight.size < window.size) {
      let off = again.shift();
      while (off !== undefined && (off < delivered || reorder.covers(off))) off = again.shift();
      if (off === undefined) {
        if (nextAsk < delivered) nextAsk = delivered;
        if (nextAsk >= total) {
          // Everything asked: a hole at the delivery point that nobody is fetching gets asked.
          if (!isCovered(delivered) && delivered < total) off = delivered;
          else break;
        } else {
          off = nextAsk;
          // Ask ahead a few bytes short of the last chunk: the offset's encoding may grow.
          nextAsk += Math.max(1, chunkEstimate - 4);
        }
      }
      fetchAt(off);
    }
    if (inflight.size === 0) {
      if (failure === undefined && delivered < total && again.length === 0 && isCovered(delivered)) {
        failure = new McuMgrError('VERIFY_FAILED', `${name}: stuck at ${delivered} of ${total}`);
      }
      continue;
    }
    await Promise.race(inflight);
  }
  await Promise.allSettled(inflight);
  if (signal?.aborted && failure === undefined) failure = new TransportError('TRANSPORT_ABORTED', 'transfer aborted', { cause: signal.reason });
  const data = options.sink ? new Uint8Array(0) : concat(collected, delivered - start);
  const resumedPrefix = !options.sink && start > 0 ? partial!.subarray(0, start) : undefined;
  const result = resumedPrefix ? concat([resumedPrefix, data], delivered) : data;
  if (failure !== undefined) {
    const e = failure as Error & { partial?: Uint8Array };
    if (!options.sink) e.partial = result;
    throw e;
  }
  let verified: TransferResult['verified'];
  if (hashType && hash) {
    if (total === 0) verified = undefined;
    else {
      const remote = await remoteHash(client, name, hashType, {}, signal);
      const local = hash.hex();
      if (remote !== local) throw new McuMgrError('VERIFY_FAILED', `${name}: ${hashType} on the device ${remote} differs from the local ${local}`);
      verified = { type: hashType, value: local };
    }
  }
  return { data: result, bytes: total, resumedFrom: start, requests, rewinds: 0, verified, ms: Date.now() - started };
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1 && parts[0]!.length === length) return parts[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p.subarray(0, length - at), at);
    at += p.length;
    if (at >= length) break;
  }
  return out;
}
