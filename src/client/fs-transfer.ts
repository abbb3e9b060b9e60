/**
 * File transfers over the file system group (group 8): upload and download with several chunks
 * in flight, chunks sized to the device's buffer and the link MTU with the exact CBOR overhead,
 * resume, and a hash or checksum check at the end.
 *
 * - Window: `buf_count − 1` requests in flight (one buffer stays free for the device's
 *   response), from the MCUmgr parameters command; 1 when the device does not answer it.
 * - Chunk size: the most data that keeps `8 + len(CBOR request) ≤ min(buf_size, MTU)`, computed
 *   per chunk (the offset's CBOR size grows with it).
 * - Upload follows Zephyr's non-idempotent rules (smp-spec.md §5.3): the first chunk goes alone
 *   (it carries `len` and truncates the file); a duplicated or out-of-order chunk answers
 *   `err{8,11}` with `len` = the device's expected offset and closes the transfer, so the engine
 *   drains what is in flight and carries on from the offset the device reported last.
 * - Download requests are idempotent: the engine asks ahead by the size of the chunks it sees and
 *   fills any gap at the end.
 * - Resume: compares the device's hash of the common prefix with the local bytes and continues
 *   after it.
 * - Verify: sha256 when the device supports it, else crc32 (`fs hash`), against the local data.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { commands } from '../core/commands/index.ts';
import { maxChunkData } from '../core/cbor-size.ts';
import { crc32 } from '../core/crc32.ts';
import { toHex } from '../core/bytes.ts';
import { DeviceError, McuMgrError, UsageError } from '../core/errors.ts';
import { FsMgmtErr, MgmtErr } from '../core/error-codes.ts';
import { Group } from '../core/commands/command.ts';
import type { SmpClient } from './client.ts';
import { readBufferParams } from './params.ts';

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

export interface DownloadOptions extends TransferOptions {
  /** Bytes already downloaded (a partial local file): kept when the device's prefix matches. */
  resumeFrom?: Uint8Array;
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
  let rewinds = 0;
  let confirmed = start;
  options.onProgress?.({ done: confirmed, total });

  const chunkAt = (off: number): { off: number; data: Uint8Array; name: string; len?: number } => {
    const body: { name: string; off: number; data: Uint8Array; len?: number } = off === 0 ? { name, off, data: new Uint8Array(0), len: total } : { name, off, data: new Uint8Array(0) };
    const n = maxChunkData(params.packetLimit, body);
    if (n === 0 && off < total) throw new UsageError(`a packet limit of ${params.packetLimit} bytes leaves no room for file data`);
    body.data = data.subarray(off, Math.min(total, off + n));
    return body;
  };
  const send = async (off: number): Promise<number> => {
    requests++;
    const r = await client.request(commands.fs.upload, chunkAt(off), { signal });
    return r.off;
  };

  if (start === 0) {
    // The first chunk alone: it sets `len` and truncates; nothing may race it.
    confirmed = await send(0);
    options.onProgress?.({ done: confirmed, total });
  } else if (start === total) {
    confirmed = total;
  }
  let next = start === 0 ? confirmed : start;
  /** The offset the device reported last (ack or mismatch), in arrival order. */
  let deviceOff = next;
  let mismatch = false;
  let failure: unknown;
  const inflight = new Set<Promise<void>>();
  const MAX_REWINDS = 64;
  for (;;) {
    while (failure === undefined && !mismatch && next < total && inflight.size < params.window) {
      const off = next;
      const body = chunkAt(off);
      next = off + body.data.length;
      requests++;
      const p = client
        .request(commands.fs.upload, body, { signal })
        .then(
          (r) => {
            deviceOff = r.off;
            confirmed = Math.max(confirmed, r.off);
            options.onProgress?.({ done: Math.min(confirmed, total), total });
          },
          (e: unknown) => {
            if (isOffsetMismatch(e)) {
              mismatch = true;
              deviceOff = e.body['len'] as number;
            } else if (failure === undefined) failure = e;
          },
        )
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    if (inflight.size > 0) {
      await Promise.race(inflight);
      continue;
    }
    if (failure !== undefined) throw failure;
    if (mismatch || (next >= total && deviceOff !== total)) {
      // The device closed the transfer (or holds less than was sent): carry on from its offset.
      if (++rewinds > MAX_REWINDS) throw new McuMgrError('VERIFY_FAILED', `${name}: the device kept rejecting chunk offsets (last at ${deviceOff})`);
      mismatch = false;
      if (deviceOff > total) throw new McuMgrError('VERIFY_FAILED', `${name}: the device reports ${deviceOff} bytes, more than the ${total} sent`);
      next = deviceOff;
      confirmed = deviceOff;
      if (next === 0) {
        confirmed = deviceOff = await send(0);
        next = confirmed;
      }
      continue;
    }
    if (next >= total) break;
  }
  // A resumed upload never told the device the length (only the off 0 chunk carries it), and an
  // empty file never reaches off ≥ len: close the file explicitly.
  if (start > 0 || total === 0) await client.request(commands.fs.close, {}, { signal });
  options.onProgress?.({ done: total, total });
  const verified = await verifyRemote(client, name, data, hashType, signal);
  return { bytes: total, resumedFrom: start, requests, rewinds, verified, ms: Date.now() - started };
}

/** Disjoint covered ranges of a download. */
class Coverage {
  private readonly ranges: Array<[number, number]> = [];
  add(from: number, to: number): void {
    if (to <= from) return;
    this.ranges.push([from, to]);
    this.ranges.sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const r of this.ranges) {
      const last = merged[merged.length - 1];
      if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
      else merged.push([r[0], r[1]]);
    }
    this.ranges.splice(0, this.ranges.length, ...merged);
  }
  /** The first offset at or after `from` that is not covered. */
  firstGap(from = 0): number {
    let at = from;
    for (const [a, b] of this.ranges) {
      if (a > at) break;
      if (b > at) at = b;
    }
    return at;
  }
  covered(): number {
    return this.ranges.reduce((n, [a, b]) => n + (b - a), 0);
  }
}

/** Downloads the device file `name`. Returns its bytes and the transfer figures. */
export async function downloadFile(client: SmpClient, name: string, options: DownloadOptions = {}): Promise<TransferResult & { data: Uint8Array }> {
  const started = Date.now();
  const signal = options.signal;
  const params = await transferParams(client, options);
  const hashType = await chooseHash(client, options.verify ?? 'auto', signal);
  let requests = 0;
  let start = 0;
  let total: number;
  let chunkEstimate: number;
  let out: Uint8Array;
  const coverage = new Coverage();
  const partial = options.resumeFrom;
  if (partial && partial.length > 0) {
    const size = await remoteSize(client, name, signal);
    if (size === undefined) throw new DeviceError(FsMgmtErr.FILE_NOT_FOUND, Group.FS);
    total = size;
    if (partial.length <= total && (await prefixMatches(client, name, partial, partial.length, signal))) start = partial.length;
  }
  if (start === 0) {
    requests++;
    const first = await client.request(commands.fs.download, { name, off: 0 }, { signal });
    if (first.len === undefined) throw new McuMgrError('VERIFY_FAILED', `${name}: the device did not report the file length`);
    total = first.len;
    out = new Uint8Array(total);
    out.set(first.data.subarray(0, total));
    coverage.add(0, Math.min(first.data.length, total));
    chunkEstimate = first.data.length;
  } else {
    total = total!;
    out = new Uint8Array(total);
    out.set(partial!.subarray(0, start));
    coverage.add(0, start);
    // Size requests from the packet limit until the device's chunks are seen.
    chunkEstimate = Math.max(1, maxChunkData(params.packetLimit, { off: start, data: 0 }, 'data'));
  }
  options.onProgress?.({ done: coverage.covered(), total });
  let next = coverage.firstGap(0);
  let failure: unknown;
  const inflight = new Set<Promise<void>>();
  const fetchAt = (off: number): void => {
    requests++;
    const p = client
      .request(commands.fs.download, { name, off }, { signal })
      .then(
        (r) => {
          const n = Math.min(r.data.length, Math.max(0, total - r.off));
          out.set(r.data.subarray(0, n), r.off);
          coverage.add(r.off, r.off + n);
          if (r.off + r.data.length < total && r.data.length > 0) chunkEstimate = r.data.length;
          else if (r.data.length === 0 && r.off < total && failure === undefined) failure = new McuMgrError('VERIFY_FAILED', `${name}: the device returned no data at offset ${r.off} of ${total} (file changed?)`);
          options.onProgress?.({ done: coverage.covered(), total });
        },
        (e: unknown) => {
          if (failure === undefined) failure = e;
        },
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };
  for (;;) {
    while (failure === undefined && next < total && inflight.size < params.window) {
      fetchAt(next);
      // Ask ahead a few bytes short of the last chunk: the offset's encoding may grow.
      next = coverage.firstGap(next + Math.max(1, chunkEstimate - 4));
    }
    if (inflight.size > 0) {
      await Promise.race(inflight);
      continue;
    }
    if (failure !== undefined) {
      const e = failure as Error & { partial?: Uint8Array };
      e.partial = out.subarray(0, coverage.firstGap(0));
      throw e;
    }
    const gap = coverage.firstGap(0);
    if (gap >= total) break;
    next = gap;
  }
  const verified = await verifyRemote(client, name, out, hashType, signal);
  return { data: out, bytes: total, resumedFrom: start, requests, rewinds: 0, verified, ms: Date.now() - started };
}
