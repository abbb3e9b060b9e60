/**
 * The rollout engine, one for both stores: selects devices by label, splits them into waves,
 * dispatches each device's upgrade job (at most `parallel` at once) through the store's executor,
 * records every outcome as it comes, and halts when the failures exceed the budget, naming the
 * failing devices and their errors. Every step is persisted first, so a controller killed at any
 * point resumes with {@link runRollout} where it stopped: finished devices are not touched again,
 * and a job that was in flight is asked for again under the same id (its result is reused).
 */
import { randomBytes } from 'node:crypto';
import { McuMgrError, UsageError } from '../core/errors.ts';
import type { FleetStore, JobExecutor } from './store.ts';
import type { Budget, DeviceRecord, ImageRecord, Job, JobResult, Rollout, RolloutDevice } from './types.ts';

/** `label=value,label=value` (all must hold); a value may list alternatives `a|b`; `id` and `gateway` match those fields. */
export function parseSelector(text: string): Array<{ key: string; values: string[] }> {
  const t = text.trim();
  if (t === '' || t === '*' || t === 'all') return [];
  return t.split(',').map((part) => {
    const m = /^\s*([^=\s]+)\s*=\s*([^=]*?)\s*$/.exec(part);
    if (!m || m[2] === '') throw new UsageError(`--select: expected label=value[,label=value...], got ${JSON.stringify(part)}`);
    return { key: m[1]!, values: m[2]!.split('|') };
  });
}

/** The rollout `id`, or FLEET_ROLLOUT naming the store when there is none. */
export async function requireRollout(store: FleetStore, id: string): Promise<Rollout> {
  const r = await store.getRollout(id);
  if (!r) throw new McuMgrError('FLEET_ROLLOUT', `no rollout ${id} in ${store.where}`);
  return r;
}

/** The gateways that reach these devices, each once, sorted. */
export function gatewaysOf(devices: Iterable<{ readonly gateway: string }>): string[] {
  return [...new Set(Array.from(devices, (d) => d.gateway))].sort();
}

export function selectDevices(devices: readonly DeviceRecord[], selector: string): DeviceRecord[] {
  const terms = parseSelector(selector);
  // Devices named by id must exist.
  for (const t of terms.filter((t) => t.key === 'id')) {
    const missing = t.values.filter((v) => !devices.some((d) => d.id === v));
    if (missing.length > 0) throw new McuMgrError('FLEET_UNKNOWN_DEVICE', `unknown device${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: not in the inventory (see \`mcumgr fleet devices list\`)`);
  }
  const value = (d: DeviceRecord, key: string): string | undefined => (key === 'id' ? d.id : key === 'gateway' ? d.gateway : d.labels[key]);
  const chosen = devices.filter((d) => terms.every((t) => t.values.includes(value(d, t.key) ?? '\u0000')));
  if (chosen.length === 0) throw new McuMgrError('FLEET_NO_MATCH', `the selector ${JSON.stringify(selector)} matches none of the ${devices.length} devices in the inventory`);
  return chosen.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** `1%,10%,50%,100%` (cumulative shares; the last is raised to 100%) or counts `1,5,20`. */
export function planWaves(ids: readonly string[], text: string): { percent: number; devices: string[] }[] {
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) throw new UsageError('--waves: give at least one wave, e.g. 10%,100%');
  const n = ids.length;
  const waves: { percent: number; devices: string[] }[] = [];
  let done = 0;
  for (const [i, p] of parts.entries()) {
    const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(p);
    if (!m) throw new UsageError(`--waves: ${JSON.stringify(p)} is not a percentage (10%) or a device count`);
    const v = Number(m[1]);
    let upTo = m[2] === '%' ? Math.ceil((v / 100) * n) : Math.floor(v);
    if (i === parts.length - 1) upTo = n;
    upTo = Math.min(n, Math.max(upTo, done + 1));
    if (upTo <= done) continue;
    waves.push({ percent: Math.round((upTo / n) * 1000) / 10, devices: ids.slice(done, upTo) });
    done = upTo;
    if (done >= n) break;
  }
  return waves;
}

/** `2%` of the rollout's devices, or a count `3`. */
export function parseBudget(text: string, devices: number): Budget {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(text.trim());
  if (!m) throw new UsageError(`--max-failures: expected a count (3) or a percentage (2%), got ${JSON.stringify(text)}`);
  const value = Number(m[1]);
  if (m[2] === '%') return { kind: 'percent', value, allowed: Math.floor((value / 100) * devices) };
  return { kind: 'count', value, allowed: Math.floor(value) };
}

export interface CreateRolloutOptions {
  image: ImageRecord;
  selector: string;
  waves: string;
  maxFailures: string;
  parallel: number;
  confirm: boolean;
  id?: string;
}

/** Plans a rollout and stores it (nothing is sent to a device yet). */
export async function createRollout(store: FleetStore, o: CreateRolloutOptions): Promise<Rollout> {
  const devices = selectDevices(await store.listDevices(), o.selector);
  const waves = planWaves(
    devices.map((d) => d.id),
    o.waves,
  );
  const budget = parseBudget(o.maxFailures, devices.length);
  const now = new Date();
  const id = o.id ?? `r${now.toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(2).toString('hex')}`;
  const rollout: Rollout = {
    id,
    image: o.image,
    selector: o.selector,
    confirm: o.confirm,
    parallel: o.parallel,
    budget,
    waves,
    status: 'running',
    wave: 0,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  const byId = new Map(devices.map((d) => [d.id, d]));
  // Devices first, the rollout record last: a rollout that exists has all its devices.
  // Written 64 at a time: one after the other, a thousand round trips to the store add seconds.
  const records = waves.flatMap((wave, w) => wave.devices.map((d): RolloutDevice => ({ device: d, gateway: byId.get(d)!.gateway, wave: w, status: 'pending' })));
  for (let i = 0; i < records.length; i += 64) await Promise.all(records.slice(i, i + 64).map((d) => store.putRolloutDevice(id, d)));
  await store.putRollout(rollout);
  return rollout;
}

export type RolloutEvent =
  | { type: 'wave'; wave: number; devices: number }
  | { type: 'dispatch'; device: string; gateway: string; wave: number }
  | { type: 'progress'; device: string; stage: string; detail: string }
  | { type: 'result'; device: string; result: JobResult };

export interface RunOptions {
  /** How long to wait for the gateways a rollout needs (default 30 s). */
  gatewayTimeoutMs?: number;
  onEvent?: (e: RolloutEvent) => void;
}

function failureText(devices: RolloutDevice[]): string {
  return devices.map((d) => `${d.device} (${d.result?.error ? `${d.result.error.name ?? d.result.error.code}: ${d.result.error.message}` : 'failed'})`).join(', ');
}

/** The job that upgrades one device of a rollout; its id is the same every time it is asked for. */
function upgradeJob(r: Rollout, dev: DeviceRecord): Job {
  return { id: `${r.id}.${dev.id}`, kind: 'upgrade', group: r.id, device: dev.id, gateway: dev.gateway, conntype: dev.conntype, connstring: dev.connstring, image: r.image.hash, confirm: r.confirm };
}

/**
 * Runs (or resumes) a rollout until it completes, halts on its failure budget, or is paused or
 * aborted (`fleet rollout pause|abort`, seen before each dispatch). Returns its final record.
 */
export async function runRollout(store: FleetStore, executor: JobExecutor, id: string, options: RunOptions = {}): Promise<Rollout> {
  let r = await requireRollout(store, id);
  if (r.status === 'completed' || r.status === 'aborted') return r;
  const emit = (e: RolloutEvent): void => options.onEvent?.(e);
  const states = new Map((await store.getRolloutDevices(id)).map((d) => [d.device, d]));
  const inventory = new Map((await store.listDevices()).map((d) => [d.id, d]));
  const left = [...states.values()].filter((d) => d.status === 'pending' || d.status === 'dispatched');
  for (const d of left) {
    if (!inventory.has(d.device)) throw new McuMgrError('FLEET_UNKNOWN_DEVICE', `rollout ${id}: device ${d.device} is no longer in the inventory`);
  }
  // Nothing is dispatched before every gateway needed is there.
  await executor.ensureGateways(gatewaysOf(left.map((d) => inventory.get(d.device)!)), options.gatewayTimeoutMs ?? 30000);

  const save = async (patch: Partial<Rollout>): Promise<Rollout> => {
    r = { ...r!, ...patch, updatedAt: new Date().toISOString() };
    await store.putRollout(r);
    return r;
  };
  if ((await store.getControl(id)) === 'pause') await store.setControl(id, 'run');
  r = await save({ status: 'running', reason: undefined });
  const failed = (): RolloutDevice[] => [...states.values()].filter((d) => d.status === 'failed');
  const overBudget = (): boolean => failed().length > r!.budget.allowed;

  for (let w = r.wave; w < r.waves.length; w++) {
    if (w !== r.wave) r = await save({ wave: w });
    const queue = r.waves[w]!.devices.map((d) => states.get(d)!).filter((d) => d.status === 'pending' || d.status === 'dispatched');
    emit({ type: 'wave', wave: w, devices: r.waves[w]!.devices.length });
    const flag: { stop?: 'pause' | 'abort' | 'budget' } = overBudget() ? { stop: 'budget' } : {};
    const worker = async (): Promise<void> => {
      for (;;) {
        if (flag.stop) return;
        const control = await store.getControl(id);
        if (control !== 'run') {
          flag.stop = control;
          return;
        }
        const d = queue.shift();
        if (!d) return;
        const dev = inventory.get(d.device)!;
        const job = upgradeJob(r!, dev);
        if (d.status !== 'dispatched') {
          d.status = 'dispatched';
          d.jobId = job.id;
          await store.putRolloutDevice(id, d);
        }
        emit({ type: 'dispatch', device: d.device, gateway: dev.gateway, wave: w });
        const result = await executor.run(job, (stage, detail) => emit({ type: 'progress', device: d.device, stage, detail }));
        d.status = result.outcome;
        d.result = result;
        await store.putRolloutDevice(id, d);
        if (result.state) {
          const latest = (await store.getDevice(dev.id)) ?? dev;
          await store.putDevice({ ...latest, state: result.state });
        }
        emit({ type: 'result', device: d.device, result });
        if (overBudget()) flag.stop = 'budget';
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(r.parallel, queue.length)) }, worker));
    if (flag.stop === 'abort') return save({ status: 'aborted', reason: `aborted during wave ${w + 1}` });
    if (flag.stop === 'budget' || overBudget()) {
      const f = failed();
      return save({ status: 'halted', reason: `wave ${w + 1} of ${r.waves.length}: ${f.length} failure${f.length > 1 ? 's' : ''} exceed the budget of ${r.budget.allowed} (--max-failures ${r.budget.value}${r.budget.kind === 'percent' ? '%' : ''}): ${failureText(f)}` });
    }
    if (flag.stop === 'pause') return save({ status: 'paused', reason: `paused during wave ${w + 1}` });
  }
  return save({ status: 'completed', reason: undefined });
}

export interface RolloutSummary {
  id: string;
  status: Rollout['status'];
  image: { version: string; hash: string };
  selector: string;
  devices: number;
  done: number;
  ok: number;
  failed: number;
  budget: Budget;
  reason: string | undefined;
  /** Devices per minute since the rollout started (finished devices only). */
  rate: number;
  waves: { wave: number; percent: number; devices: number; ok: number; failed: number; inFlight: number }[];
  gateways: { gateway: string; devices: number; ok: number; failed: number; inFlight: number }[];
  failures: { device: string; gateway: string; error: string }[];
}

export function summarize(r: Rollout, devices: readonly RolloutDevice[]): RolloutSummary {
  const count = (ds: readonly RolloutDevice[], s: RolloutDevice['status']): number => ds.filter((d) => d.status === s).length;
  const ok = count(devices, 'ok');
  const failedN = count(devices, 'failed');
  const ends = devices.map((d) => (d.result ? Date.parse(d.result.startedAt) + d.result.durationMs : 0));
  const minutes = (Math.max(0, ...ends) - Date.parse(r.createdAt)) / 60000;
  const gateways = gatewaysOf(devices);
  return {
    id: r.id,
    status: r.status,
    image: { version: r.image.version, hash: r.image.hash },
    selector: r.selector,
    devices: devices.length,
    done: ok + failedN,
    ok,
    failed: failedN,
    budget: r.budget,
    reason: r.reason,
    rate: minutes > 0 ? Math.round(((ok + failedN) / minutes) * 10) / 10 : 0,
    waves: r.waves.map((w, i) => {
      const ds = devices.filter((d) => d.wave === i);
      return { wave: i + 1, percent: w.percent, devices: ds.length, ok: count(ds, 'ok'), failed: count(ds, 'failed'), inFlight: count(ds, 'dispatched') };
    }),
    gateways: gateways.map((g) => {
      const ds = devices.filter((d) => d.gateway === g);
      return { gateway: g, devices: ds.length, ok: count(ds, 'ok'), failed: count(ds, 'failed'), inFlight: count(ds, 'dispatched') };
    }),
    failures: devices
      .filter((d) => d.status === 'failed')
      .map((d) => ({ device: d.device, gateway: d.gateway, error: d.result?.error ? `${d.result.error.name ?? d.result.error.code}: ${d.result.error.message}` : 'failed' })),
  };
}

export interface ReportRow {
  device: string;
  gateway: string;
  wave: number;
  outcome: 'ok' | 'failed' | 'not run' | 'in flight';
  before: string | undefined;
  after: string | undefined;
  confirmed: boolean | undefined;
  durationMs: number | undefined;
  bytes: number | undefined;
  retries: number | undefined;
  error: string | undefined;
}

export function report(devices: readonly RolloutDevice[]): ReportRow[] {
  return [...devices]
    .sort((a, b) => a.wave - b.wave || (a.device < b.device ? -1 : 1))
    .map((d) => ({
      device: d.device,
      gateway: d.gateway,
      wave: d.wave + 1,
      outcome: d.status === 'ok' ? 'ok' : d.status === 'failed' ? 'failed' : d.status === 'dispatched' ? 'in flight' : 'not run',
      before: d.result?.before,
      after: d.result?.after,
      confirmed: d.result?.confirmed,
      durationMs: d.result?.durationMs,
      bytes: d.result?.bytes,
      retries: d.result?.retries,
      error: d.result?.error ? `${d.result.error.name ?? d.result.error.code}: ${d.result.error.message}` : undefined,
    }));
}
