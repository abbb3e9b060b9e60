/**
 * Group 8, file system (smp-spec.md §3.5), over the device's {@link FileSystemRoot}; follows
 * Zephyr's fs_mgmt.c (read from the source):
 *
 * - One open transfer at a time `{state, path, off, len, transport}`. A request for another
 *   path, direction or transport runs the file access hook and closes the previous transfer.
 *   The file closes when `off ≥ len` or after 4 s idle (FILE_AUTOMATIC_IDLE_CLOSE_TIME).
 * - Upload is not idempotent (§5.3): `off == 0` records `len` and truncates existing content
 *   (only when data is non-empty); `off > 0` on a fresh transfer takes the file size as the
 *   expected offset (resume); `off > 0 && off ≠ expected` answers
 *   `{err: {group 8, rc 11}, len: expected}` and closes the transfer.
 * - Download answers `{off, data, len (only when off == 0)}`; `data` is as large as the packet
 *   allows (MCUMGR_GRP_FS_DL_CHUNK_SIZE: computed here from the buffer size and link MTU).
 * - Names are 1..64 bytes (CONFIG_MCUMGR_GRP_FS_PATH_LEN) or rc 3. Paths are confined to the
 *   mount directories (fs-root.ts): escapes answer FILE_INVALID_NAME and create nothing.
 * - hash: crc32 (uint output) and sha256 (bstr), with `off` and `len`; `len: 0` is rc 3. The
 *   last result is kept with the transfer state (like `fs_mgmt_ctxt`) and answered again while
 *   the file is unchanged: hashing 8 MiB per 40-byte request is work a flood must not buy.
 * - Storage is finite ({@link FsQuota}, `serve --fs-quota`): a new file past it answers UNKNOWN
 *   (Zephyr's fs_open -ENOSPC), a write or an announced `len` past it FILE_WRITE_FAILED.
 */
import { createHash } from 'node:crypto';
import { constants, type FileHandle, open } from 'node:fs/promises';
import { commands } from '../../core/commands/index.ts';
import { Group, GROUP_NAMES } from '../../core/commands/command.ts';
import { FsMgmtErr, MgmtErr } from '../../core/error-codes.ts';
import { CRC32_INIT, crc32Final, crc32Update } from '../../core/crc32.ts';
import { maxChunkData } from '../../core/cbor-size.ts';
import { createDeviceServices, type DeviceServices } from '../device.ts';
import type { FileSystemRoot } from '../fs-root.ts';
import type { BodyOf } from '../../core/commands/command.ts';
import { MgmtError } from '../errors.ts';
import type { HookEvents } from '../hooks.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
import type { SmpServer } from '../server.ts';
import type { SmpPeer } from '../../transport/types.ts';
import type { ResolvedPath } from '../fs-root.ts';
import { FsQuota } from '../fs-quota.ts';

/** CONFIG_MCUMGR_GRP_FS_PATH_LEN. */
export const FS_PATH_LEN = 64;
/** CONFIG_MCUMGR_GRP_FS_FILE_AUTOMATIC_IDLE_CLOSE_TIME (ms). */
export const FS_IDLE_CLOSE_MS = 4000;
/**
 * A hash lets other transports' requests run when it starts and after each this many bytes:
 * one read's worth (about 0.1 ms of SHA-256 here, a few tenths of a millisecond with the read),
 * so that a request of another transport never waits for more than that. A call with nothing
 * waiting costs a scan of at most buf_count entries per transport.
 */
const YIELD_EVERY = 64 * 1024;
/** Largest type name (HASH_CHECKSUM_TYPE_SIZE). */
const HASH_TYPE_SIZE = 8;

const fsErr = (name: Exclude<keyof typeof FsMgmtErr, 'OK'>, extra?: Record<string, unknown>): MgmtError => MgmtError.group(Group.FS, FsMgmtErr[name], extra);

/** The hash and checksum types, as fs_mgmt_hash_checksum registers them (crc32 first: the default). */
export const FS_HASH_TYPES = {
  crc32: { format: 0, size: 4 },
  sha256: { format: 1, size: 32 },
} as const;

interface Transfer {
  state: 'upload' | 'download';
  /** The device path as the client named it. */
  name: string;
  hostPath: string;
  handle: FileHandle;
  off: number;
  len: number;
  transport: string;
  /** The file's size as the quota counts it. */
  fileSize: number;
}

/** The last hash answered, with the identity of the file it was computed from. */
interface KeptHash {
  hostPath: string;
  identity: string;
  type: string;
  off: number;
  want: number;
  len: number;
  output: number | Uint8Array;
}

export interface FsGroupOptions {
  idleCloseMs?: number;
}

/**
 * The one open transfer and the file lock: Zephyr's `fs_mgmt_ctxt` and its semaphore. The file
 * closes when the transfer is complete, after `idleCloseMs` without requests, at reset, storage
 * erase and server close.
 */
class FileTransfers {
  current: Transfer | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private busy = false;

  constructor(private readonly idleCloseMs: number) {}

  /** Closes the open file (synced first after an upload). */
  async close(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const t = this.current;
    this.current = undefined;
    if (t) {
      if (t.state === 'upload') await t.handle.sync().catch(() => {});
      await t.handle.close().catch(() => {});
    }
  }

  /** After a chunk: closes a complete transfer, else (re)arms the idle close. */
  async afterChunk(): Promise<void> {
    if (this.current && this.current.len > 0 && this.current.off >= this.current.len) {
      await this.close();
      return;
    }
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.busy) return;
      void this.close();
    }, this.idleCloseMs);
    this.idleTimer.unref?.();
  }

  /** Runs a handler under the file lock (Zephyr's semaphore, taken without waiting: EBUSY). */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw MgmtError.rc(MgmtErr.EBUSY);
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }

  /** Whether the open transfer continues: same transport, direction and name. */
  continues(peer: SmpPeer, state: Transfer['state'], name: string): boolean {
    const t = this.current;
    return t !== undefined && t.transport === peer.transport && t.state === state && t.name === name;
  }
}

/** What every fs command works with. */
interface FsContext {
  readonly server: SmpServer;
  readonly root: FileSystemRoot;
  readonly transfers: FileTransfers;
  /** The hash types the firmware registers (Kconfig CONFIG_MCUMGR_GRP_FS_CHECKSUM_IEEE_CRC32 / _HASH_SHA256). */
  readonly hashTypes: ReadonlyArray<'crc32' | 'sha256'>;
  readonly quota: FsQuota;
  kept: KeptHash | undefined;
}

type Body<C extends keyof typeof commands.fs> = BodyOf<(typeof commands.fs)[C]>;

function checkName(name: string): void {
  const n = new TextEncoder().encode(name).length;
  if (n === 0 || n > FS_PATH_LEN) throw MgmtError.rc(MgmtErr.EINVAL, 'file name length');
}

/** Runs the file access hook; returns the (possibly rewritten) path. */
async function fileAccess(server: SmpServer, kind: HookEvents['fs_file_access']['access'], name: string): Promise<string> {
  const data: HookEvents['fs_file_access'] = { access: kind, path: name };
  const r = await server.hooks.notify('fs_file_access', data);
  if (r) throw 'group' in r ? MgmtError.group(r.group, r.rc) : MgmtError.rc(r.rc);
  return data.path;
}

/** fs_mgmt_filelen: size of an existing regular file, or the group error Zephyr answers. */
function fileLen(r: ResolvedPath): { size: number; hostPath: string } {
  if (!r.ok) throw fsErr(r.reason === 'invalid-name' ? 'FILE_INVALID_NAME' : 'FILE_NOT_FOUND');
  if (!r.exists) throw fsErr('FILE_NOT_FOUND');
  if (r.isDirectory) throw fsErr('FILE_IS_DIRECTORY');
  return { size: r.size, hostPath: r.hostPath };
}

/**
 * The fs group over a device's file system root. Transfers close at power-on, reset, storage
 * erase (group 63) and server close.
 */
export function createFsGroup(server: SmpServer, device: DeviceServices = createDeviceServices(server), options: FsGroupOptions = {}): MgmtGroup {
  const ctx: FsContext = {
    server,
    root: device.fsRoot,
    transfers: new FileTransfers(options.idleCloseMs ?? FS_IDLE_CLOSE_MS),
    hashTypes: device.options.fsHashTypes ?? ['crc32', 'sha256'],
    quota: new FsQuota(device.fsRoot.storageDir, device.options.fsQuota),
    kept: undefined,
  };
  device.onStorageErase.push(async () => {
    await ctx.transfers.close();
    ctx.kept = undefined;
    await ctx.quota.recount();
  });
  server.onClose(() => ctx.transfers.close());
  server.onBoot(async () => {
    await ctx.transfers.close();
    ctx.kept = undefined;
    await ctx.root.ensureMounts();
    await ctx.quota.recount();
  });
  return defineGroup(Group.FS, GROUP_NAMES[Group.FS]!, [
    handle(commands.fs.download, ({ body, peer }) => ctx.transfers.locked(() => fsDownload(ctx, body, peer))),
    handle(commands.fs.upload, ({ body, peer }) => ctx.transfers.locked(() => fsUpload(ctx, body, peer))),
    handle(commands.fs.status, ({ body }) => ctx.transfers.locked(() => fsStatus(ctx, body))),
    handle(commands.fs.hash, ({ body, signal, letOthersRun }) => ctx.transfers.locked(() => fsHash(ctx, body, signal, letOthersRun))),
    handle(commands.fs.hashTypes, () => fsHashTypes(ctx)),
    handle(commands.fs.close, () => ctx.transfers.locked(() => fsClose(ctx))),
  ]);
}

/** 8/0 read: one chunk of a file, as large as the packet allows. */
async function fsDownload({ server, root, transfers }: FsContext, body: Body<'download'>, peer: SmpPeer): Promise<{ off: number; data: Uint8Array; len?: number }> {
  checkName(body.name);
  if (!transfers.continues(peer, 'download', body.name)) {
    const path = await fileAccess(server, 'read', body.name);
    await transfers.close();
    const { size, hostPath } = fileLen(await root.resolve(path));
    let h: FileHandle;
    try {
      h = await open(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      throw fsErr('UNKNOWN');
    }
    transfers.current = { state: 'download', name: body.name, hostPath, handle: h, off: 0, len: size, transport: peer.transport, fileSize: size };
  }
  const t = transfers.current!;
  const limit = Math.min(server.bufSize, peer.mtu);
  const chunk = maxChunkData(limit, body.off === 0 ? { off: body.off, data: 0, len: t.len } : { off: body.off, data: 0 }, 'data', { indefinite: true });
  const buf = new Uint8Array(chunk);
  let n: number;
  try {
    n = (await t.handle.read(buf, 0, chunk, body.off)).bytesRead;
  } catch {
    await transfers.close();
    throw fsErr('FILE_READ_FAILED');
  }
  t.off = body.off + n;
  const rsp: { off: number; data: Uint8Array; len?: number } = { off: body.off, data: buf.subarray(0, n) };
  if (body.off === 0) rsp.len = t.len;
  await transfers.afterChunk();
  return rsp;
}

/** Opens the file an upload writes to (created if missing), after the access hook. */
async function openForUpload({ server, root, transfers, quota }: FsContext, name: string, peer: SmpPeer): Promise<Transfer> {
  const path = await fileAccess(server, 'write', name);
  await transfers.close();
  const r = await root.resolve(path);
  if (!r.ok) throw fsErr(r.reason === 'invalid-name' ? 'FILE_INVALID_NAME' : 'MOUNT_POINT_NOT_FOUND');
  if (r.isDirectory) throw fsErr('UNKNOWN');
  // A new file on a full file system: fs_open fails with -ENOSPC.
  if (!r.exists && !quota.fits(undefined, 0)) throw fsErr('UNKNOWN');
  let h: FileHandle;
  try {
    h = await open(r.hostPath, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw fsErr(code === 'ENOENT' || code === 'ENOTDIR' ? 'MOUNT_POINT_NOT_FOUND' : code === 'EROFS' ? 'READ_ONLY_FILESYSTEM' : code === 'ELOOP' ? 'FILE_INVALID_NAME' : 'UNKNOWN');
  }
  if (!r.exists) quota.changed(undefined, 0);
  const t: Transfer = { state: 'upload', name, hostPath: r.hostPath, handle: h, off: 0, len: 0, transport: peer.transport, fileSize: r.exists ? r.size : 0 };
  transfers.current = t;
  return t;
}

/** 8/0 write: one chunk of a file (not idempotent: see the file's notes). */
async function fsUpload(ctx: FsContext, body: Body<'upload'>, peer: SmpPeer): Promise<{ off: number }> {
  const { transfers, quota } = ctx;
  checkName(body.name);
  if (body.off === 0 && body.len === undefined) throw MgmtError.rc(MgmtErr.EINVAL, 'len is required with off 0');
  const t = transfers.continues(peer, 'upload', body.name) ? transfers.current! : await openForUpload(ctx, body.name, peer);
  let existing = 0;
  try {
    const size = (await t.handle.stat()).size;
    if (body.off === 0) {
      t.len = body.len ?? 0;
      existing = size;
    } else if (t.off === 0) t.off = size;
  } catch {
    await transfers.close();
    throw fsErr('UNKNOWN');
  }
  if (body.off > 0 && body.off !== t.off) {
    const expected = t.off;
    await transfers.close();
    throw fsErr('FILE_OFFSET_NOT_VALID', { len: expected });
  }
  // An announced length that cannot fit is refused before the old content is truncated.
  if (body.off === 0 && !quota.fits(existing, t.len)) {
    await transfers.close();
    throw fsErr('FILE_WRITE_FAILED');
  }
  if (body.data.length > 0) {
    ctx.kept = undefined;
    if (body.off === 0 && existing !== 0) {
      try {
        await t.handle.truncate(0);
      } catch {
        await transfers.close();
        throw fsErr('FILE_TRUNCATE_FAILED');
      }
      quota.changed(existing, 0);
      t.fileSize = 0;
    }
    const newSize = Math.max(t.fileSize, body.off + body.data.length);
    if (!quota.fits(t.fileSize, newSize)) {
      await transfers.close();
      throw fsErr('FILE_WRITE_FAILED');
    }
    try {
      let written = 0;
      while (written < body.data.length) written += (await t.handle.write(body.data, written, body.data.length - written, body.off + written)).bytesWritten;
    } catch {
      await transfers.close();
      await quota.recount();
      throw fsErr('FILE_WRITE_FAILED');
    }
    quota.changed(t.fileSize, newSize);
    t.fileSize = newSize;
    t.off = body.off + body.data.length;
  }
  const off = t.off;
  await transfers.afterChunk();
  return { off };
}

/** 8/1: a file's length. */
async function fsStatus({ server, root }: FsContext, body: Body<'status'>): Promise<{ len: number }> {
  checkName(body.name);
  const path = await fileAccess(server, 'status', body.name);
  return { len: fileLen(await root.resolve(path)).size };
}

/** 8/2: crc32 or sha256 of a file's range. */
async function fsHash(ctx: FsContext, body: Body<'hash'>, signal: AbortSignal | undefined, letOthersRun: (() => Promise<void>) | undefined): Promise<{ type: string; off?: number; len: number; output: number | Uint8Array }> {
  const { server, root, hashTypes } = ctx;
  // A hash may take long (up to the whole file): other transports' waiting requests go first.
  await letOthersRun?.();
  checkName(body.name);
  const type = body.type === undefined || body.type === '' ? 'crc32' : body.type;
  if (new TextEncoder().encode(type).length > HASH_TYPE_SIZE || body.len === 0) throw MgmtError.rc(MgmtErr.EINVAL);
  if (!Object.hasOwn(FS_HASH_TYPES, type) || !hashTypes.includes(type as 'crc32' | 'sha256')) throw fsErr('CHECKSUM_HASH_NOT_FOUND');
  const path = await fileAccess(server, 'hash', body.name);
  const { size, hostPath } = fileLen(await root.resolve(path));
  const off = body.off ?? 0;
  if (size <= off) throw fsErr(size === 0 ? 'FILE_EMPTY' : 'FILE_OFFSET_LARGER_THAN_FILE');
  const want = Math.min(body.len ?? Number.MAX_SAFE_INTEGER, size - off);
  let h: FileHandle;
  try {
    h = await open(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    throw fsErr('UNKNOWN');
  }
  let identity: string;
  try {
    const st = await h.stat({ bigint: true });
    identity = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    await h.close();
    throw fsErr('UNKNOWN');
  }
  const k = ctx.kept;
  if (k && k.hostPath === hostPath && k.identity === identity && k.type === type && k.off === off && k.want === want) {
    await h.close();
    return off !== 0 ? { type, off, len: k.len, output: k.output } : { type, len: k.len, output: k.output };
  }
  let crc = CRC32_INIT;
  const sha = createHash('sha256');
  let done = 0;
  let sinceYield = 0;
  try {
    const buf = new Uint8Array(YIELD_EVERY);
    while (done < want) {
      // The device is stopping: the answer would go nowhere.
      if (signal?.aborted) throw fsErr('FILE_READ_FAILED');
      // After each read, other transports' waiting requests run (an fs request among them finds the
      // file lock taken: EBUSY, as Zephyr's semaphore answers).
      if (sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await letOthersRun?.();
      }
      const { bytesRead } = await h.read(buf, 0, Math.min(buf.length, want - done), off + done);
      if (bytesRead === 0) break;
      const part = buf.subarray(0, bytesRead);
      if (type === 'crc32') crc = crc32Update(crc, part);
      else sha.update(part);
      done += bytesRead;
      sinceYield += bytesRead;
    }
  } catch {
    throw fsErr('FILE_READ_FAILED');
  } finally {
    await h.close();
  }
  const output = type === 'crc32' ? crc32Final(crc) : new Uint8Array(sha.digest());
  ctx.kept = { hostPath, identity, type, off, want, len: done, output };
  return off !== 0 ? { type, off, len: done, output } : { type, len: done, output };
}

/** 8/3: the supported hash types. */
function fsHashTypes({ hashTypes }: FsContext): { types: Record<string, { format: number; size: number }> } {
  return { types: Object.fromEntries(hashTypes.map((t) => [t, { ...FS_HASH_TYPES[t] }])) };
}

/** 8/4: closes the open file. */
async function fsClose({ transfers }: FsContext): Promise<Record<string, never>> {
  await transfers.close();
  return {};
}
