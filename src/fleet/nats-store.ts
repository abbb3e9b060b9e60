/**
 * The fleet store on NATS JetStream (server 2.9 features only):
 * - key-value buckets: `fleet_devices` (inventory by device id), `fleet_images` (image records by
 *   hash), `fleet_rollouts` (rollout records), `fleet_rollout_devices` (`<rollout>.<device>`:
 *   each device's outcome), `fleet_control` (pause/abort requests), `fleet_gateways` (heartbeats);
 * - object store `fleet_firmware`: image bytes by MCUboot hash;
 * - stream FLEET_JOBS (work queue, subjects `fleet.jobs.<gateway>`): each gateway's durable
 *   consumer takes its own subject; a job is published with its id as the message id, so a
 *   controller that publishes it again (restart) adds no second copy;
 * - stream FLEET_RESULTS (`fleet.results.<group>.<device>`): every result, kept; a result is looked
 *   up by subject, so a restarted controller or a redelivered job finds a result already there;
 * - core subjects `fleet.progress.<group>.<device>`: upgrade stages as they happen.
 */
import { readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { McuMgrError } from '../core/errors.ts';
import { fileBytesOf, imageBytesOf, runJob, stateAfterJob, type JobDeps } from './jobs.ts';
import { localHash } from '../client/fs-transfer.ts';
import type { FleetStore, JobExecutor, OpenClient } from './store.ts';
import type { Control, DeviceRecord, ImageRecord, Job, JobResult, Rollout, RolloutDevice } from './types.ts';

export const JOBS_STREAM = 'FLEET_JOBS';
export const RESULTS_STREAM = 'FLEET_RESULTS';
export const jobSubject = (gateway: string): string => `fleet.jobs.${gateway}`;
export const resultSubject = (group: string, device: string): string => `fleet.results.${group}.${device}`;
export const progressSubject = (group: string, device: string): string => `fleet.progress.${group}.${device}`;
/** Gateways write a heartbeat this often; one older than 5 of them is a gateway that is gone. */
export const HEARTBEAT_MS = 2000;

const enc = new TextEncoder();
const json = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

export interface NatsOptions {
  url: string;
  /** A NATS credentials file (JWT and nkey seed). User and password may stand in the URL. */
  creds?: string;
  name?: string;
}

/**
 * Runs a request again while the server is away (a restart, a lost link: the client reconnects by
 * itself), for up to `ms`; errors of ours (McuMgrError) are not retried.
 */
export async function retrying<T>(what: () => Promise<T>, ms = 60000): Promise<T> {
  const deadline = Date.now() + ms;
  for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
    try {
      return await what();
    } catch (e) {
      if (e instanceof McuMgrError || Date.now() + wait > deadline) throw e;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

async function kvAll<T>(kv: KV, filter?: string): Promise<T[]> {
  const keys: string[] = [];
  for await (const k of await kv.keys(filter)) keys.push(k);
  keys.sort();
  const out: T[] = [];
  for (const k of keys) {
    const e = await kv.get(k);
    if (e && e.operation === 'PUT') out.push(e.json<T>());
  }
  return out;
}

export class NatsStore implements FleetStore {
  readonly kind = 'nats' as const;
  private constructor(
    readonly where: string,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    private readonly devices: KV,
    private readonly images: KV,
    private readonly rollouts: KV,
    private readonly rolloutDevices: KV,
    private readonly control: KV,
    readonly gateways: KV,
    private readonly firmware: ObjectStore,
  ) {}

  static async open(o: NatsOptions): Promise<NatsStore> {
    let nc: NatsConnection;
    try {
      const u = new URL(o.url);
      nc = await connect({
        servers: `${u.protocol}//${u.host}`,
        ...(u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : {}),
        ...(o.creds ? { authenticator: credsAuthenticator(await readFile(o.creds)) } : {}),
        name: o.name ?? 'mcumgr fleet',
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      });
    } catch (e) {
      throw new McuMgrError('FLEET_NATS', `cannot reach NATS at ${o.url}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const jsm = await jetstreamManager(nc);
      const ensureStream = async (name: string, subjects: string[], workqueue: boolean): Promise<void> => {
        try {
          await jsm.streams.info(name);
        } catch {
          await jsm.streams.add({ name, subjects, storage: StorageType.File, retention: workqueue ? RetentionPolicy.Workqueue : RetentionPolicy.Limits });
        }
      };
      await ensureStream(JOBS_STREAM, ['fleet.jobs.>'], true);
      await ensureStream(RESULTS_STREAM, ['fleet.results.>'], false);
      const kvm = new Kvm(nc);
      const bucket = (name: string): Promise<KV> => kvm.create(name, { history: 1, storage: StorageType.File });
      const objm = new Objm(nc);
      return new NatsStore(
        o.url.replace(/\/\/[^@/]*@/, '//'),
        nc,
        jetstream(nc),
        jsm,
        await bucket('fleet_devices'),
        await bucket('fleet_images'),
        await bucket('fleet_rollouts'),
        await bucket('fleet_rollout_devices'),
        await bucket('fleet_control'),
        await bucket('fleet_gateways'),
        await objm.create('fleet_firmware', { storage: StorageType.File }),
      );
    } catch (e) {
      await nc.close();
      throw new McuMgrError('FLEET_NATS', `NATS at ${o.url}: JetStream is not usable (is the server started with -js?): ${(e as Error).message}`, { cause: e });
    }
  }

  async getDevice(id: string): Promise<DeviceRecord | undefined> {
    const e = await retrying(() => this.devices.get(id));
    return e && e.operation === 'PUT' ? e.json<DeviceRecord>() : undefined;
  }
  async putDevice(device: DeviceRecord): Promise<void> {
    await retrying(() => this.devices.put(device.id, json(device)));
  }
  async deleteDevice(id: string): Promise<boolean> {
    if (!(await this.getDevice(id))) return false;
    await retrying(() => this.devices.delete(id));
    return true;
  }
  listDevices(): Promise<DeviceRecord[]> {
    return retrying(() => kvAll(this.devices));
  }

  async putImage(record: ImageRecord, bytes: Uint8Array): Promise<void> {
    if (await this.getImageRecord(record.hash)) return;
    await retrying(() => this.firmware.putBlob({ name: record.hash, description: `${record.name} ${record.version}` }, bytes));
    await retrying(() => this.images.put(record.hash, json(record)));
  }
  async getImageRecord(hash: string): Promise<ImageRecord | undefined> {
    const e = await retrying(() => this.images.get(hash));
    return e && e.operation === 'PUT' ? e.json<ImageRecord>() : undefined;
  }
  async getImageBytes(hash: string): Promise<Uint8Array | undefined> {
    return (await retrying(() => this.firmware.getBlob(hash))) ?? undefined;
  }
  listImages(): Promise<ImageRecord[]> {
    return retrying(() => kvAll(this.images));
  }
  /** Files live beside the firmware in the object store, named `file-<sha256>`. */
  async putFile(bytes: Uint8Array): Promise<string> {
    const hash = localHash('sha256', bytes);
    const name = `file-${hash}`;
    if (!(await retrying(() => this.firmware.info(name)))) await retrying(() => this.firmware.putBlob({ name }, bytes));
    return hash;
  }
  async getFileBytes(sha256: string): Promise<Uint8Array | undefined> {
    return (await retrying(() => this.firmware.getBlob(`file-${sha256}`))) ?? undefined;
  }

  async getRollout(id: string): Promise<Rollout | undefined> {
    const e = await retrying(() => this.rollouts.get(id));
    return e && e.operation === 'PUT' ? e.json<Rollout>() : undefined;
  }
  async putRollout(rollout: Rollout): Promise<void> {
    await retrying(() => this.rollouts.put(rollout.id, json(rollout)));
  }
  listRollouts(): Promise<Rollout[]> {
    return retrying(() => kvAll(this.rollouts));
  }
  getRolloutDevices(id: string): Promise<RolloutDevice[]> {
    return retrying(() => kvAll(this.rolloutDevices, `${id}.*`));
  }
  async putRolloutDevice(id: string, device: RolloutDevice): Promise<void> {
    await retrying(() => this.rolloutDevices.put(`${id}.${device.device}`, json(device)));
  }
  async getControl(id: string): Promise<Control> {
    const e = await retrying(() => this.control.get(id));
    return e && e.operation === 'PUT' ? (e.string() as Control) : 'run';
  }
  async setControl(id: string, control: Control): Promise<void> {
    await retrying(() => this.control.put(id, enc.encode(control)));
  }

  /** The stored result of a job, when it has one. */
  async findResult(job: Pick<Job, 'id' | 'group' | 'device'>): Promise<JobResult | undefined> {
    const m = await retrying(() => this.jsm.streams.getMessage(RESULTS_STREAM, { last_by_subj: resultSubject(job.group, job.device) }));
    if (!m) return undefined;
    const r = m.json<JobResult>();
    return r.jobId === job.id ? r : undefined;
  }

  executor(): JobExecutor {
    const waiters = new Map<string, { resolve: (r: JobResult) => void; progress: ((stage: string, detail: string) => void) | undefined }>();
    const subs = new Map<string, Subscription[]>();
    const watch = (group: string): void => {
      if (subs.has(group)) return;
      const results = this.nc.subscribe(`fleet.results.${group}.>`, {
        callback: (_err, m) => {
          try {
            const r = m.json<JobResult>();
            waiters.get(r.jobId)?.resolve(r);
          } catch {
            // not a result
          }
        },
      });
      const progress = this.nc.subscribe(`fleet.progress.${group}.>`, {
        callback: (_err, m) => {
          try {
            const p = m.json<{ jobId: string; stage: string; detail: string }>();
            waiters.get(p.jobId)?.progress?.(p.stage, p.detail);
          } catch {
            // not progress
          }
        },
      });
      subs.set(group, [results, progress]);
    };
    return {
      ensureGateways: async (names, timeoutMs) => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const missing: string[] = [];
          for (const n of names) {
            const e = await retrying(() => this.gateways.get(n));
            const seen = e && e.operation === 'PUT' ? e.json<{ lastSeen: number }>().lastSeen : 0;
            if (Date.now() - seen > 5 * HEARTBEAT_MS) missing.push(n);
          }
          if (missing.length === 0) return;
          if (Date.now() >= deadline) {
            throw new McuMgrError(
              'FLEET_GATEWAY_TIMEOUT',
              `gateway${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not come within ${Math.round(timeoutMs / 1000)} s (no heartbeat on ${this.where}): start \`mcumgr gateway --nats URL --name ${missing[0]}\` where ${missing.length > 1 ? 'they reach their' : 'it reaches its'} devices; nothing was sent`,
            );
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      },
      run: (job, onProgress) =>
        new Promise<JobResult>((resolve, reject) => {
          watch(job.group);
          let timer: NodeJS.Timeout | undefined;
          const done = (r: JobResult): void => {
            if (!waiters.has(job.id)) return;
            waiters.delete(job.id);
            clearInterval(timer);
            resolve(r);
          };
          waiters.set(job.id, { resolve: done, progress: onProgress });
          const check = async (): Promise<void> => {
            const r = await this.findResult(job);
            if (r) done(r);
          };
          (async () => {
            await check();
            if (!waiters.has(job.id)) return;
            // The message id makes a second publish of the same job (a restarted controller) a no-op.
            await retrying(() => this.js.publish(jobSubject(job.gateway), json(job), { msgID: job.id }));
            // A result published while this connection was away (server restart) is in the stream.
            timer = setInterval(() => void check().catch(() => {}), 3000);
          })().catch((e: unknown) => {
            waiters.delete(job.id);
            clearInterval(timer);
            reject(new McuMgrError('FLEET_NATS', `job ${job.id}: ${(e as Error).message}`, { cause: e }));
          });
        }),
      close: async () => {
        for (const s of subs.values()) for (const sub of s) sub.unsubscribe();
      },
    };
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}

export interface GatewayOptions {
  name: string;
  parallel: number;
  /** How long the server waits for an ack before it redelivers a job (default 30 s); in-progress acks go out every third of it. */
  ackWaitMs?: number;
  openClient: OpenClient;
  /** Refresh the state of this gateway's devices this often (0: only on `fleet scan`). */
  scanIntervalMs?: number;
  log: (line: string) => void;
  signal: AbortSignal;
}

/**
 * The gateway agent: takes the jobs addressed to it from the work queue, `parallel` at once, runs
 * them next to its devices, and publishes progress and results. A redelivered job (the gateway was
 * killed mid-job) whose result is already stored is only acknowledged; otherwise it runs again,
 * which the upgrade makes safe (upload skipped or resumed, an image already running only confirmed).
 */
export async function runGateway(store: NatsStore, o: GatewayOptions): Promise<void> {
  const ackWait = o.ackWaitMs ?? 30000;
  const durable = `gw_${o.name}`;
  const config = { durable_name: durable, filter_subject: jobSubject(o.name), ack_policy: AckPolicy.Explicit, ack_wait: ackWait * 1e6, deliver_policy: DeliverPolicy.All, max_ack_pending: Math.max(o.parallel, 1) * 2 };
  try {
    await store.jsm.consumers.info(JOBS_STREAM, durable);
    await store.jsm.consumers.update(JOBS_STREAM, durable, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
  } catch {
    await store.jsm.consumers.add(JOBS_STREAM, config);
  }
  const consumer = await store.js.consumers.get(JOBS_STREAM, durable);
  const deps: JobDeps = { openClient: o.openClient, imageBytes: imageBytesOf(store), fileBytes: fileBytesOf(store), putFile: (b) => store.putFile(b) };
  const beat = async (): Promise<void> => {
    await store.gateways.put(o.name, json({ name: o.name, parallel: o.parallel, pid: process.pid, lastSeen: Date.now() }));
  };
  await beat();
  const heartbeat = setInterval(() => void beat().catch(() => {}), HEARTBEAT_MS);

  const handle = async (m: JsMsg): Promise<void> => {
    let job: Job;
    try {
      job = m.json<Job>();
    } catch {
      m.term();
      return;
    }
    const attempt = m.info.deliveryCount;
    if (attempt > 1) {
      const prior = await store.findResult(job);
      if (prior) {
        o.log(`job ${job.id} ${job.device}: redelivered, its result is already stored: acknowledged`);
        await m.ackAck();
        return;
      }
    }
    o.log(`start ${job.id} ${job.device}${attempt > 1 ? ` (delivery ${attempt})` : ''}`);
    const keepAlive = setInterval(() => m.working(), Math.max(500, ackWait / 3));
    try {
      const result = await runJob(job, deps, attempt, (stage, detail) => store.nc.publish(progressSubject(job.group, job.device), json({ jobId: job.id, stage, detail })));
      if (result.state) {
        const dev = await store.getDevice(job.device);
        if (dev) await store.putDevice({ ...dev, state: result.state });
      }
      await retrying(() => store.js.publish(resultSubject(job.group, job.device), json(result), { msgID: `${job.id}.result` }));
      await m.ackAck();
      o.log(`done ${job.id} ${job.device} ${result.outcome}${result.error ? ` ${result.error.name ?? result.error.code}: ${result.error.message}` : ''}`);
    } finally {
      clearInterval(keepAlive);
    }
  };

  const worker = async (): Promise<void> => {
    while (!o.signal.aborted) {
      let m: JsMsg | null;
      try {
        m = await consumer.next({ expires: 5000 });
      } catch (e) {
        if (o.signal.aborted) return;
        o.log(`waiting for NATS: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (!m) continue;
      try {
        await handle(m);
      } catch (e) {
        // Not acknowledged: the server redelivers it after the ack wait.
        o.log(`job failed to complete: ${(e as Error).message}`);
      }
    }
  };

  const scan = async (): Promise<void> => {
    for (const d of (await store.listDevices()).filter((d) => d.gateway === o.name)) {
      const r = await runJob({ id: `scan.${d.id}`, kind: 'scan', group: 'scan', device: d.id, gateway: o.name, conntype: d.conntype, connstring: d.connstring }, deps);
      const latest = (await store.getDevice(d.id)) ?? d;
      const state = stateAfterJob(latest.state, r);
      if (state) await store.putDevice({ ...latest, state });
    }
  };
  const scanner = o.scanIntervalMs ? setInterval(() => void scan().catch((e: unknown) => o.log(`scan: ${(e as Error).message}`)), o.scanIntervalMs) : undefined;

  o.log(`gateway ${o.name} ready: jobs on ${jobSubject(o.name)}, ${o.parallel} at once, ack wait ${ackWait / 1000} s`);
  try {
    await Promise.all(Array.from({ length: Math.max(1, o.parallel) }, worker));
  } finally {
    clearInterval(heartbeat);
    if (scanner) clearInterval(scanner);
  }
}
