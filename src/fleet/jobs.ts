/**
 * Runs one job on one device with the existing client: the upgrade is the client's
 * {@link upgradeImages} (upload skipped or resumed when the device already holds the image, so a
 * job run twice does no harm), the others are single requests. Both the local executor and the
 * gateway agent run jobs here.
 */
import { commands } from '../core/commands/index.ts';
import { toHex } from '../core/bytes.ts';
import { DeviceError, McuMgrError, UsageError } from '../core/errors.ts';
import { readImageState, upgradeImages, type SlotState } from '../client/upgrade.ts';
import { downloadFile, uploadFile } from '../client/fs-transfer.ts';
import type { OpenClient } from './store.ts';
import type { DeviceState, FsOutput, Job, JobResult, ShellOutput, SlotSummary } from './types.ts';

export interface JobDeps {
  openClient: OpenClient;
  imageBytes(hash: string): Promise<Uint8Array>;
  /** fs-upload: the content by SHA-256 from the store's file area (throws when it is not there). */
  fileBytes(sha256: string): Promise<Uint8Array>;
  /** fs-download: keeps a file's bytes in the store's file area; gives their SHA-256. */
  putFile(bytes: Uint8Array): Promise<string>;
  /** How long an upgrade waits for the device after its reset (default 60 s). */
  waitMs?: number;
}

/** {@link JobDeps.fileBytes} over a store's file area. */
export function fileBytesOf(store: { getFileBytes(sha256: string): Promise<Uint8Array | undefined>; where: string }): (sha256: string) => Promise<Uint8Array> {
  return async (sha256) => {
    const b = await store.getFileBytes(sha256);
    if (!b) throw new McuMgrError('FLEET_FILE', `file ${sha256} is not in the fleet store ${store.where}`);
    return b;
  };
}

/** {@link JobDeps.imageBytes} over a store's images, each read once and kept (a rollout sends one image to many devices). */
export function imageBytesOf(store: { getImageBytes(hash: string): Promise<Uint8Array | undefined>; where: string }): (hash: string) => Promise<Uint8Array> {
  const images = new Map<string, Uint8Array>();
  return async (hash) => {
    let b = images.get(hash);
    if (!b) {
      b = await store.getImageBytes(hash);
      if (!b) throw new McuMgrError('FLEET_BAD_IMAGE', `image ${hash} is not in the fleet store ${store.where}`);
      images.set(hash, b);
    }
    return b;
  };
}

const needPath = (job: Job): string => {
  if (!job.path) throw new UsageError(`job ${job.id}: no device path`);
  return job.path;
};

export function summarizeSlots(slots: readonly SlotState[]): SlotSummary[] {
  return slots.map((s) => ({
    image: s.image ?? 0,
    slot: s.slot,
    version: s.version,
    hash: s.hash ? toHex(s.hash) : '',
    active: s.active === true,
    confirmed: s.confirmed === true,
    pending: s.pending === true,
  }));
}

export function errorInfo(e: unknown): { code: string; message: string; name?: string } {
  if (e instanceof DeviceError) return { code: e.code, message: e.message, name: e.errorName };
  if (e instanceof McuMgrError) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/**
 * What the inventory keeps of a device after a job: the state the job read, else (the device did
 * not answer) the last known state with the job's error; undefined when there is nothing new.
 */
export function stateAfterJob(known: DeviceState | undefined, r: JobResult): DeviceState | undefined {
  if (r.state) return r.state;
  if (!r.error) return undefined;
  return { ...(known ?? { slots: [] }), lastSeen: known?.lastSeen ?? '', lastError: { code: r.error.code, message: r.error.message } };
}

const running = (slots: SlotSummary[]): SlotSummary | undefined => slots.find((s) => s.image === 0 && s.active);

export async function runJob(job: Job, deps: JobDeps, attempt = 1, onProgress?: (stage: string, detail: string) => void): Promise<JobResult> {
  const startedAt = new Date();
  const base = { jobId: job.id, group: job.group, device: job.device, gateway: job.gateway, startedAt: startedAt.toISOString(), attempt };
  let bytes = 0;
  let retries = attempt - 1;
  let before: string | undefined;
  let state: DeviceState | undefined;
  let client;
  try {
    client = await deps.openClient(job);
    let output: unknown;
    let after: string | undefined;
    let confirmed: boolean | undefined;
    /** A job whose request worked but whose outcome is a failure (a shell command returning non-zero). */
    let failure: { code: string; message: string } | undefined;
    switch (job.kind) {
      case 'upgrade': {
        if (job.image === undefined) throw new UsageError(`job ${job.id}: no image`);
        const image = await deps.imageBytes(job.image);
        // What it runs before: the report's "before", also when the upgrade fails.
        before = running(summarizeSlots(await readImageState(client)))?.version;
        const r = await upgradeImages(client, [{ image: 0, input: image }], {
          noConfirm: job.confirm === false,
          waitMs: deps.waitMs ?? 60000,
          onStage: (s, d) => {
            if (s === 'inspect') return;
            onProgress?.(s, d);
          },
        });
        const one = r.images[0]!;
        before = one.from?.version ?? before;
        after = one.to.version;
        confirmed = one.confirmed;
        bytes = one.upload?.bytesSent ?? 0;
        retries += one.upload?.retransmissions ?? 0;
        break;
      }
      case 'echo':
        output = (await client.request(commands.os.echo, { d: job.text ?? '' })).r;
        break;
      case 'reset':
        await client.request(commands.os.reset, {});
        break;
      case 'info':
        output = (await client.request(commands.os.info, { format: job.text ?? 'a' })).output;
        break;
      case 'stat':
        output = job.text ? (await client.request(commands.stat.show, { name: job.text })).fields : (await client.request(commands.stat.list, {})).stat_list;
        break;
      case 'shell': {
        // As `mcumgr shell exec` sends it: the words as argv, the return code from ret (or rc).
        if (!job.argv || job.argv.length === 0) throw new UsageError(`job ${job.id}: no command to run`);
        const rsp = await client.request(commands.shell.exec, { argv: job.argv });
        const ret = rsp.ret ?? rsp.rc ?? 0;
        output = { o: rsp.o, ret } satisfies ShellOutput;
        if (ret !== 0) failure = { code: 'FLEET_SHELL_RC', message: `\`${job.argv.join(' ')}\` returned ${ret}` };
        break;
      }
      case 'fs-upload': {
        // The client's `fs upload`: chunks in flight, then the device's hash when it has fs hash.
        const path = needPath(job);
        if (job.file === undefined) throw new UsageError(`job ${job.id}: no file content`);
        const data = await deps.fileBytes(job.file);
        const r = await uploadFile(client, path, data, { verify: 'auto', onProgress: (p) => onProgress?.('upload', `${p.done}/${p.total}`) });
        bytes = r.bytes - r.resumedFrom;
        output = { path, size: data.length, sha256: job.file, ...(r.verified ? { verified: r.verified } : {}) } satisfies FsOutput;
        break;
      }
      case 'fs-download': {
        const path = needPath(job);
        const r = await downloadFile(client, path, { verify: 'auto', onProgress: (p) => onProgress?.('download', `${p.done}/${p.total}`) });
        bytes = r.bytes;
        output = { path, size: r.data.length, sha256: await deps.putFile(r.data), ...(r.verified ? { verified: r.verified } : {}) } satisfies FsOutput;
        break;
      }
      case 'fs-stat': {
        const path = needPath(job);
        output = { path, size: (await client.request(commands.fs.status, { name: path })).len } satisfies FsOutput;
        break;
      }
      case 'list':
      case 'scan':
        break;
    }
    if (job.kind !== 'reset') {
      const slots = summarizeSlots(await readImageState(client));
      state = { slots, lastSeen: new Date().toISOString() };
      if (job.kind === 'scan') {
        try {
          state.appInfo = (await client.request(commands.os.info, { format: 'a' })).output;
        } catch (e) {
          // A device without os info (or with it disabled) answers with an error: no app info.
          if (!(e instanceof DeviceError)) throw e;
        }
      }
      if (job.kind === 'list') output = slots;
      before ??= running(slots)?.version;
      after ??= running(slots)?.version;
    }
    if (failure) return { ...base, outcome: 'failed', error: failure, before, after, durationMs: Date.now() - startedAt.getTime(), bytes, retries, state: state ? { ...state, lastError: failure } : state, output };
    return { ...base, outcome: 'ok', before, after, confirmed, durationMs: Date.now() - startedAt.getTime(), bytes, retries, state, output };
  } catch (e) {
    const error = errorInfo(e);
    // What the device runs now, when it still answers (a reverted device does).
    if (client) {
      try {
        const slots = summarizeSlots(await readImageState(client, 1000));
        state = { slots, lastSeen: new Date().toISOString(), lastError: { code: error.code, message: error.message } };
      } catch {
        // it does not answer: the state stays unknown
      }
    }
    const after = state ? running(state.slots)?.version : undefined;
    return { ...base, outcome: 'failed', error, before, after, durationMs: Date.now() - startedAt.getTime(), bytes, retries, state };
  } finally {
    await client?.close();
  }
}
