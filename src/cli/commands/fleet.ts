/**
 * `mcumgr fleet ...` (inventory, images, rollouts, status, reports, scans) and `mcumgr gateway`.
 * Without `--nats` everything runs in this process over the local store; with `--nats URL` the same
 * commands work over JetStream and gateways run the jobs next to the devices. The NATS client is
 * loaded only when `--nats` is given.
 */
import type { Command } from 'commander';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { McuMgrError, UsageError } from '../../core/errors.ts';
import { toHex } from '../../core/bytes.ts';
import { pool } from '../../core/pool.ts';
import { verifyImage, ImageFormatError } from '../../image/index.ts';
import { connect, numberOption } from '../connection.ts';
import type { CliContext } from '../context.ts';
import type { Output } from '../output.ts';
import type { FleetStore, OpenClient } from '../../fleet/store.ts';
import { checkName, type DeviceRecord, type FsOutput, type ImageRecord, type Job, type JobKind, type JobResult, type Rollout, type ShellOutput } from '../../fleet/types.ts';
import { errorInfo, stateAfterJob } from '../../fleet/jobs.ts';
import { localHash } from '../../client/fs-transfer.ts';
import { createRollout, gatewaysOf, report, requireRollout, runRollout, selectDevices, summarize, type RolloutEvent, type RolloutSummary } from '../../fleet/engine.ts';
import { LocalStore, defaultFleetDir } from '../../fleet/local-store.ts';

interface StoreFlags {
  nats?: string;
  natsCreds?: string;
  fleetDir?: string;
}

function storeFlags(cmd: Command): Command {
  return cmd
    .option('--nats <url>', 'NATS server with JetStream (nats://[user:pass@]host:4222; $MCUMGR_NATS); without it, the local store')
    .option('--nats-creds <file>', 'NATS credentials file')
    .option('--fleet-dir <dir>', `local store directory (default ${defaultFleetDir()}; $MCUMGR_FLEET_DIR)`);
}

async function openStore(o: StoreFlags, name?: string): Promise<FleetStore> {
  const url = o.nats ?? (process.env['MCUMGR_NATS'] || undefined);
  if (url !== undefined) {
    const { NatsStore } = await import('../../fleet/nats-store.ts');
    return NatsStore.open({ url, ...(o.natsCreds !== undefined ? { creds: o.natsCreds } : {}), ...(name !== undefined ? { name } : {}) });
  }
  return LocalStore.open(o.fleetDir);
}

async function withStore<T>(o: StoreFlags, action: (store: FleetStore) => Promise<T>): Promise<T> {
  const store = await openStore(o);
  try {
    return await action(store);
  } finally {
    await store.close();
  }
}

/** `--gateway-timeout SECONDS` (default 30) in ms. */
function gatewayTimeoutMs(o: { gatewayTimeout?: string }): number {
  return numberOption('--gateway-timeout', o.gatewayTimeout, 30) * 1000;
}

/** The options of every command that runs one job per selected device. */
function jobFlags(c: Command): Command {
  return storeFlags(
    c
      .option('--select <selector>', 'devices: label=value,...', 'all')
      .option('--parallel <n>', 'devices at once', '8')
      .option('--gateway-timeout <seconds>', 'how long to wait for gateways (default 30)'),
  );
}

function clientOpener(ctx: CliContext): OpenClient {
  return async (d) => (await connect({ conntype: d.conntype, connstring: d.connstring, timeout: ctx.globals.timeout, tries: ctx.globals.tries }, ctx.conntypes)).client;
}

function parseLabels(items: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of items.flatMap((i) => i.split(/[,;]/)).filter((i) => i.trim() !== '')) {
    const m = /^\s*([^=\s]+)\s*=\s*(.*?)\s*$/.exec(item);
    if (!m) throw new UsageError(`a label is KEY=VALUE, got ${JSON.stringify(item)}`);
    labels[m[1]!] = m[2]!;
  }
  return labels;
}

function deviceRecord(raw: Record<string, unknown>, where: string): DeviceRecord {
  const str = (k: string): string | undefined => (raw[k] === undefined || raw[k] === '' ? undefined : String(raw[k]));
  const id = str('id');
  if (id === undefined) throw new UsageError(`${where}: a device needs an id`);
  const connstring = str('connstring');
  if (connstring === undefined) throw new UsageError(`${where}: device ${id} needs a connstring`);
  const labels = typeof raw['labels'] === 'object' && raw['labels'] !== null ? Object.fromEntries(Object.entries(raw['labels'] as Record<string, unknown>).map(([k, v]) => [k, String(v)])) : parseLabels([str('labels') ?? '']);
  return { id: checkName('device id', id), gateway: checkName('gateway', str('gateway') ?? 'local'), conntype: str('conntype') ?? 'udp', connstring, labels };
}

/** CSV with a header line: id,gateway,conntype,connstring,labels (labels as k=v;k=v). */
function parseCsv(text: string, file: string): DeviceRecord[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#'));
  const header = lines.shift()?.split(',').map((h) => h.trim());
  if (!header?.includes('id')) throw new UsageError(`${file}: the first line names the columns: id,gateway,conntype,connstring,labels`);
  return lines.map((line, i) => {
    const cells = line.split(',');
    // Labels may hold commas: the last column takes the rest.
    const row: Record<string, unknown> = {};
    header.forEach((h, j) => (row[h] = j === header.length - 1 ? cells.slice(j).join(',') : cells[j]));
    return deviceRecord(row, `${file} line ${i + 2}`);
  });
}

function runningOf(d: DeviceRecord): string {
  const s = d.state?.slots.find((x) => x.image === 0 && x.active);
  return s ? `${s.version}${s.confirmed ? '' : ' (test)'}` : '-';
}

async function addImage(store: FleetStore, file: string): Promise<ImageRecord> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let v;
  try {
    v = await verifyImage(bytes);
  } catch (e) {
    if (e instanceof ImageFormatError) throw new McuMgrError('FLEET_BAD_IMAGE', `${file} is not an MCUboot image: ${e.message}; nothing was stored`);
    throw e;
  }
  if (!v.hashValid || !v.image.hash) throw new McuMgrError('FLEET_BAD_IMAGE', `${file} is not a sound MCUboot image: ${v.hashes.length === 0 ? 'it has no hash TLV' : 'its hash TLV does not match the content'}; nothing was stored`);
  const record: ImageRecord = { hash: toHex(v.image.hash), version: v.image.version, size: bytes.length, name: basename(file), addedAt: new Date().toISOString() };
  await store.putImage(record, bytes);
  return (await store.getImageRecord(record.hash)) ?? record;
}

/** An IMAGE argument: a file (verified and added), or the hash (or a prefix of 8+ digits) of a stored image. */
async function resolveImage(store: FleetStore, arg: string): Promise<ImageRecord> {
  if (/^[0-9a-f]{8,64}$/i.test(arg)) {
    const found = (await store.listImages()).filter((i) => i.hash.startsWith(arg.toLowerCase()));
    if (found.length === 1) return found[0]!;
    if (found.length > 1) throw new UsageError(`image ${arg} is ambiguous: ${found.map((i) => i.hash.slice(0, 12)).join(', ')}`);
  }
  return addImage(store, arg);
}

function formatSummary(s: RolloutSummary): string {
  const lines = [
    `rollout ${s.id}: ${s.status}; image ${s.image.version} (${s.image.hash.slice(0, 12)}), select ${JSON.stringify(s.selector)}`,
    `  ${s.done}/${s.devices} done: ${s.ok} ok, ${s.failed} failed (budget ${s.budget.allowed}); ${s.rate} devices/min`,
    ...s.waves.map((w) => `  wave ${w.wave} (${w.percent}%): ${w.ok + w.failed}/${w.devices} done, ${w.ok} ok, ${w.failed} failed${w.inFlight ? `, ${w.inFlight} in flight` : ''}`),
    ...s.gateways.map((g) => `  gateway ${g.gateway}: ${g.ok + g.failed}/${g.devices} done, ${g.ok} ok, ${g.failed} failed${g.inFlight ? `, ${g.inFlight} in flight` : ''}`),
    ...s.failures.map((f) => `  FAILED ${f.device} (gateway ${f.gateway}): ${f.error}`),
  ];
  if (s.reason) lines.push(`  ${s.reason}`);
  return lines.join('\n');
}

function eventLine(e: RolloutEvent): string | undefined {
  switch (e.type) {
    case 'wave':
      return `wave ${e.wave + 1}: ${e.devices} device${e.devices > 1 ? 's' : ''}`;
    case 'result': {
      const r = e.result;
      return r.outcome === 'ok'
        ? `${e.device}: ok ${r.before ?? '?'} → ${r.after ?? '?'}${r.confirmed ? ' confirmed' : ' (test)'} in ${(r.durationMs / 1000).toFixed(1)} s`
        : `${e.device}: FAILED ${r.error?.name ?? r.error?.code}: ${r.error?.message}`;
    }
    default:
      return undefined;
  }
}

/** Runs a rollout to its end here and reports it; a halt or an abort is an error (exit 1) that names the failures. */
async function drive(ctx: CliContext, out: Output, store: FleetStore, id: string, o: { parallel?: string; gatewayTimeout?: string }): Promise<void> {
  const r0 = await requireRollout(store, id);
  const executor = store.executor({ parallel: r0.parallel, openClient: clientOpener(ctx) });
  let final: Rollout;
  try {
    final = await runRollout(store, executor, id, {
      gatewayTimeoutMs: gatewayTimeoutMs(o),
      onEvent: (e) => {
        const line = eventLine(e);
        if (line) out.info(line);
      },
    });
  } finally {
    await executor.close();
  }
  const summary = summarize(final, await store.getRolloutDevices(id));
  if (final.status === 'halted') throw new McuMgrError('FLEET_HALTED', `rollout ${id} halted: ${final.reason}`);
  if (final.status === 'aborted') throw new McuMgrError('FLEET_ROLLOUT', `rollout ${id} aborted: ${final.reason}`);
  out.result(summary, () => (final.status === 'paused' ? `${formatSummary(summary)}\n(paused: \`mcumgr fleet rollout resume ${id}\` continues)` : formatSummary(summary)));
}

export function registerFleetCommands(program: Command, ctx: CliContext): void {
  const fleet = program.command('fleet').description('fleet operations: inventory, images, rollouts in waves, status and reports; --nats to run them through gateways');

  const devices = fleet.command('devices').description('the inventory: add, remove, list, import');
  storeFlags(
    devices
      .command('add')
      .description('add (or replace) a device')
      .argument('<id>', 'device id (letters, digits, - and _)')
      .option('--gateway <name>', 'the gateway that reaches it (default local); the global --conntype/--connstring (or --udp HOST:PORT) say how it reaches it', 'local')
      .option('--label <key=value...>', 'labels (repeat or separate with commas)'),
  ).action((id: string, o: StoreFlags & { gateway: string; label?: string[] }) =>
    ctx.run(async (out) => {
      const g = ctx.globals;
      const udp = typeof g.udp === 'string' ? g.udp : undefined;
      const connstring = udp ?? g.connstring;
      if (connstring === undefined) throw new UsageError('fleet devices add: give how its gateway reaches it: --connstring STRING [--conntype TYPE] or --udp HOST:PORT');
      const d = deviceRecord({ id, gateway: o.gateway, conntype: udp !== undefined ? 'udp' : (g.conntype ?? 'udp'), connstring, labels: parseLabels(o.label ?? []) }, 'device');
      await withStore(o, async (store) => {
        const old = await store.getDevice(d.id);
        await store.putDevice(old?.state ? { ...d, state: old.state } : d);
      });
      out.result(d, () => describeDevice(d));
    }),
  );
  const describeDevice = (d: DeviceRecord): string => `device ${d.id}: gateway ${d.gateway}, ${d.conntype} ${d.connstring}${Object.keys(d.labels).length ? `, ${Object.entries(d.labels).map(([k, v]) => `${k}=${v}`).join(',')}` : ''}`;

  storeFlags(devices.command('remove').description('remove devices').argument('<ids...>', 'device ids')).action((ids: string[], o: StoreFlags) =>
    ctx.run(async (out) => {
      await withStore(o, async (store) => {
        // All or nothing: every id is checked before one is removed.
        const missing: string[] = [];
        for (const id of ids) if (!(await store.getDevice(id))) missing.push(id);
        if (missing.length > 0) throw new McuMgrError('FLEET_UNKNOWN_DEVICE', `unknown device${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: not in the inventory; nothing was removed`);
        for (const id of ids) await store.deleteDevice(id);
      });
      out.result({ removed: ids }, () => `removed ${ids.join(', ')}`);
    }),
  );

  storeFlags(devices.command('list').description('list the inventory with the last known state').option('--select <selector>', 'only devices matching label=value,...')).action((o: StoreFlags & { select?: string }) =>
    ctx.run(async (out) => {
      const all = await withStore(o, (store) => store.listDevices());
      const list = o.select ? selectDevices(all, o.select) : all;
      out.result(list, () =>
        list.length === 0
          ? 'no devices (add some with `mcumgr fleet devices add ID --connstring HOST:PORT` or `fleet devices import FILE`)'
          : list
              .map((d) => `${d.id.padEnd(12)} ${d.gateway.padEnd(10)} ${`${d.conntype} ${d.connstring}`.padEnd(24)} ${runningOf(d).padEnd(14)} ${Object.entries(d.labels).map(([k, v]) => `${k}=${v}`).join(',')}${d.state?.lastError ? `  last error: ${d.state.lastError.code}` : ''}`)
              .join('\n'),
      );
    }),
  );

  storeFlags(devices.command('import').description('add devices from a CSV (id,gateway,conntype,connstring,labels) or JSON (array of records) file').argument('<file>', 'FILE.csv or FILE.json')).action((file: string, o: StoreFlags) =>
    ctx.run(async (out) => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
      }
      let records: DeviceRecord[];
      if (file.endsWith('.json') || text.trimStart().startsWith('[')) {
        let raw: unknown;
        try {
          raw = JSON.parse(text);
        } catch (e) {
          throw new UsageError(`${file}: not JSON: ${(e as Error).message}`);
        }
        if (!Array.isArray(raw)) throw new UsageError(`${file}: expected an array of devices`);
        records = raw.map((r, i) => deviceRecord(r as Record<string, unknown>, `${file} [${i}]`));
      } else records = parseCsv(text, file);
      const dup = records.find((r, i) => records.findIndex((q) => q.id === r.id) !== i);
      if (dup) throw new UsageError(`${file}: device ${dup.id} appears twice; nothing was imported`);
      // Everything is checked before the first record is written.
      await withStore(o, async (store) => {
        for (const d of records) await store.putDevice(d);
      });
      out.result({ imported: records.length }, () => `imported ${records.length} device${records.length === 1 ? '' : 's'}`);
    }),
  );

  const images = fleet.command('images').description('firmware images in the fleet store, by hash');
  storeFlags(images.command('add').description('verify an MCUboot image and store it').argument('<file>', 'image file')).action((file: string, o: StoreFlags) =>
    ctx.run(async (out) => {
      const rec = await withStore(o, (store) => addImage(store, file));
      out.result(rec, () => `image ${rec.version} ${rec.hash} (${rec.size} bytes) stored`);
    }),
  );
  storeFlags(images.command('list').description('list stored images')).action((o: StoreFlags) =>
    ctx.run(async (out) => {
      const list = await withStore(o, (store) => store.listImages());
      out.result(list, () => list.map((i) => `${i.hash}  ${i.version.padEnd(10)} ${String(i.size).padStart(9)} B  ${i.name}`).join('\n') || 'no images');
    }),
  );

  const rollout = storeFlags(
    fleet
      .command('rollout')
      .description('upgrade the selected devices in waves, halting when failures exceed the budget; `rollout pause|resume|abort ID`')
      .argument('<image>', 'image file (verified and stored) or the hash of a stored image')
      .option('--select <selector>', "devices: label=value,... (all must match; a|b alternatives; id= and gateway= too)", 'all')
      .option('--waves <list>', 'cumulative shares per wave, e.g. 1%,10%,50%,100%', '100%')
      .option('--max-failures <n|p%>', 'failures allowed over the rollout; more halts it', '0')
      .option('--parallel <n>', 'devices upgraded at once', '4')
      .option('--confirm', 'confirm the new image (default)')
      .option('--test-only', 'leave the new image in test: it reverts at the next reset unless confirmed')
      .option('--id <id>', 'rollout id (default: generated)')
      .option('--gateway-timeout <seconds>', 'how long to wait for the gateways the rollout needs (default 30)'),
  ).action((file: string, o: StoreFlags & { select: string; waves: string; maxFailures: string; parallel: string; confirm?: boolean; testOnly?: boolean; id?: string; gatewayTimeout?: string }) =>
    ctx.run(async (out) => {
      if (o.confirm && o.testOnly) throw new UsageError('--confirm and --test-only exclude each other');
      const parallel = Math.round(numberOption('--parallel', o.parallel, 4));
      if (o.id !== undefined) checkName('rollout id', o.id);
      await withStore(o, async (store) => {
        if (o.id !== undefined && (await store.getRollout(o.id))) throw new McuMgrError('FLEET_ROLLOUT', `rollout ${o.id} exists already (\`fleet rollout resume ${o.id}\` continues it)`);
        // Devices, image and gateways are checked before the rollout is stored or anything is sent.
        const chosen = selectDevices(await store.listDevices(), o.select);
        const image = await resolveImage(store, file);
        const check = store.executor({ parallel, openClient: clientOpener(ctx) });
        try {
          await check.ensureGateways(gatewaysOf(chosen), gatewayTimeoutMs(o));
        } finally {
          await check.close();
        }
        const r = await createRollout(store, { image, selector: o.select, waves: o.waves, maxFailures: o.maxFailures, parallel, confirm: o.testOnly !== true, ...(o.id !== undefined ? { id: o.id } : {}) });
        out.info(`rollout ${r.id}: ${r.waves.reduce((n, w) => n + w.devices.length, 0)} devices in ${r.waves.length} wave${r.waves.length > 1 ? 's' : ''} (${r.waves.map((w) => w.devices.length).join(', ')}), image ${image.version}, budget ${r.budget.allowed} failure${r.budget.allowed === 1 ? '' : 's'}`);
        await drive(ctx, out, store, r.id, o);
      });
    }),
  );
  // `fleet rollout pause ID --nats URL`: commander gives --nats to `rollout`, which has it too.
  const withParent = <T extends StoreFlags>(o: T): T => {
    const p = rollout.opts<StoreFlags & { gatewayTimeout?: string }>();
    return { ...o, nats: o.nats ?? p.nats, natsCreds: o.natsCreds ?? p.natsCreds, fleetDir: o.fleetDir ?? p.fleetDir, ...('gatewayTimeout' in o || p.gatewayTimeout === undefined ? {} : { gatewayTimeout: p.gatewayTimeout }) };
  };
  storeFlags(rollout.command('pause').description('stop dispatching (jobs in flight finish); `resume` continues').argument('<id>')).action((id: string, flags: StoreFlags) =>
    ctx.run(async (out) => {
      const o = withParent(flags);
      await withStore(o, async (store) => {
        const r = await requireRollout(store, id);
        if (r.status !== 'running') throw new McuMgrError('FLEET_ROLLOUT', `rollout ${id} is ${r.status}, not running`);
        await store.setControl(id, 'pause');
      });
      out.result({ id, control: 'pause' }, () => `rollout ${id}: pause requested (jobs in flight finish)`);
    }),
  );
  storeFlags(rollout.command('resume').description('continue a paused, halted or interrupted rollout here (a killed controller resumes where it stopped)').argument('<id>').option('--gateway-timeout <seconds>', 'how long to wait for gateways (default 30)')).action(
    (id: string, flags: StoreFlags & { gatewayTimeout?: string }) =>
      ctx.run(async (out) => {
        const o = withParent(flags);
        await withStore(o, async (store) => {
          const r = await requireRollout(store, id);
          if (r.status === 'completed' || r.status === 'aborted') throw new McuMgrError('FLEET_ROLLOUT', `rollout ${id} is ${r.status}: nothing to resume`);
          if ((await store.getControl(id)) === 'abort') {
            await store.putRollout({ ...r, status: 'aborted', reason: 'aborted', updatedAt: new Date().toISOString() });
            throw new McuMgrError('FLEET_ROLLOUT', `rollout ${id} was aborted`);
          }
          await store.setControl(id, 'run');
          // A halted rollout resumes with its failures: allow them, as an operator who resumes does.
          if (r.status === 'halted') {
            const failed = (await store.getRolloutDevices(id)).filter((d) => d.status === 'failed').length;
            await store.putRollout({ ...r, budget: { ...r.budget, allowed: Math.max(r.budget.allowed, failed) } });
          }
          await drive(ctx, out, store, id, o);
        });
      }),
  );
  storeFlags(rollout.command('abort').description('stop a rollout for good (jobs in flight finish)').argument('<id>')).action((id: string, flags: StoreFlags) =>
    ctx.run(async (out) => {
      const o = withParent(flags);
      await withStore(o, async (store) => {
        const r = await requireRollout(store, id);
        await store.setControl(id, 'abort');
        if (r.status !== 'running') await store.putRollout({ ...r, status: 'aborted', reason: 'aborted', updatedAt: new Date().toISOString() });
      });
      out.result({ id, control: 'abort' }, () => `rollout ${id}: abort requested`);
    }),
  );

  storeFlags(fleet.command('status').description('rollouts, or one rollout: progress per wave and per gateway, rate, failures').argument('[id]').option('--watch', 'print again on every change until the rollout ends')).action(
    (id: string | undefined, o: StoreFlags & { watch?: boolean }) =>
      ctx.run(async (out) => {
        await withStore(o, async (store) => {
          if (id === undefined) {
            const list: RolloutSummary[] = [];
            for (const r of await store.listRollouts()) list.push(summarize(r, await store.getRolloutDevices(r.id)));
            out.result(list, () => list.map((s) => `${s.id}  ${s.status.padEnd(9)} ${s.image.version.padEnd(10)} ${s.done}/${s.devices} done, ${s.failed} failed`).join('\n') || 'no rollouts');
            return;
          }
          let last = '';
          for (;;) {
            const r = await requireRollout(store, id);
            const s = summarize(r, await store.getRolloutDevices(id));
            const text = formatSummary(s);
            if (!o.watch || r.status !== 'running') {
              out.result(s, () => text);
              return;
            }
            if (text !== last) process.stdout.write(text + '\n');
            last = text;
            await new Promise((res) => setTimeout(res, 1000));
          }
        });
      }),
  );

  storeFlags(fleet.command('report').description("a rollout's outcome per device: before/after version, duration, bytes, retries").argument('<id>')).action((id: string, o: StoreFlags) =>
    ctx.run(async (out) => {
      await withStore(o, async (store) => {
        const r = await requireRollout(store, id);
        const devices = await store.getRolloutDevices(id);
        const rows = report(devices);
        const s = summarize(r, devices);
        out.result({ rollout: s, devices: rows }, () =>
          [
            formatSummary(s),
            'device       gateway    wave outcome    before     after      confirmed duration  bytes     retries error',
            ...rows.map(
              (d) =>
                `${d.device.padEnd(12)} ${d.gateway.padEnd(10)} ${String(d.wave).padEnd(4)} ${d.outcome.padEnd(10)} ${(d.before ?? '-').padEnd(10)} ${(d.after ?? '-').padEnd(10)} ${String(d.confirmed ?? '-').padEnd(9)} ${d.durationMs === undefined ? '-'.padEnd(9) : `${(d.durationMs / 1000).toFixed(1)} s`.padEnd(9)} ${String(d.bytes ?? '-').padEnd(9)} ${String(d.retries ?? '-').padEnd(7)} ${d.error ?? ''}`,
            ),
          ].join('\n'),
        );
      });
    }),
  );

  jobFlags(fleet.command('scan').description("read every selected device's image state (through its gateway) into the inventory")).action((o: StoreFlags & { select: string; parallel: string; gatewayTimeout?: string }) => ctx.run((out) => runJobs(ctx, out, o, 'scan')));

  const TEXT: Record<string, [string, string | undefined]> = { echo: ['text to echo', 'hello'], info: ['os info format (default a: everything)', 'a'], stat: ['statistics group (default: the list of groups)', undefined] };
  for (const kind of ['echo', 'list', 'reset', 'info', 'stat'] as const) {
    const text = TEXT[kind];
    const cmd = fleet
      .command(kind === 'list' ? 'image-list' : kind)
      .description(`run \`${kind === 'list' ? 'image list' : kind === 'stat' ? 'stat show|list' : kind}\` on the selected devices (through their gateways)`);
    if (text) cmd.option('--text <text>', text[0], text[1]);
    jobFlags(cmd).action((o: StoreFlags & { select: string; parallel: string; text: string; gatewayTimeout?: string }) => ctx.run((out) => runJobs(ctx, out, o, kind)));
  }
  registerJobCommands(fleet, ctx);
}

interface JobFlags extends StoreFlags {
  select: string;
  parallel: string;
  text?: string;
  gatewayTimeout?: string;
}

/** What a kind adds to the generic job run: its job fields, its line per device, what to do with each result here. */
interface JobSpec {
  fields?: Partial<Job>;
  describe?: (r: JobResult) => string;
  /** Runs here for each result as it comes (fs download writes the device's file); a throw fails that device. */
  onResult?: (r: JobResult, store: FleetStore) => Promise<void>;
  /** Text before the summary line, from all results (sorted by device). */
  details?: (results: JobResult[]) => string;
}

const errorText = (r: JobResult): string => `${r.error?.name ?? r.error?.code}: ${r.error?.message}`;

/** One job per selected device (scan, echo, image list, reset, shell, fs ...), results into the inventory; exit 1 when one failed. */
async function runJobs(ctx: CliContext, out: Output, o: JobFlags, kind: JobKind, spec: JobSpec = {}): Promise<void> {
  const parallel = Math.round(numberOption('--parallel', o.parallel, 8));
  await withStore(o, async (store) => {
    const devices = selectDevices(await store.listDevices(), o.select);
    const executor = store.executor({ parallel, openClient: clientOpener(ctx) });
    const results: JobResult[] = [];
    try {
      await executor.ensureGateways(gatewaysOf(devices), gatewayTimeoutMs(o));
      const group = `${kind}-${Date.now().toString(36)}`;
      await pool(devices, parallel, async (d) => {
        const job: Job = { id: `${group}.${d.id}`, kind, group, device: d.id, gateway: d.gateway, conntype: d.conntype, connstring: d.connstring, ...(o.text !== undefined ? { text: o.text } : {}), ...spec.fields };
        let r = await executor.run(job);
        if (r.outcome === 'ok' && spec.onResult) {
          try {
            await spec.onResult(r, store);
          } catch (e) {
            r = { ...r, outcome: 'failed', error: errorInfo(e) };
          }
        }
        const latest = (await store.getDevice(d.id)) ?? d;
        const state = stateAfterJob(latest.state, r);
        if (state) await store.putDevice({ ...latest, state });
        results.push(r);
        const detail = spec.describe ? spec.describe(r) : r.outcome === 'ok' ? `ok ${kind === 'echo' || kind === 'info' || kind === 'stat' ? JSON.stringify(r.output) : (r.after ?? '')}` : `FAILED ${errorText(r)}`;
        out.info(`${d.id}: ${detail}`);
      });
    } finally {
      await executor.close();
    }
    results.sort((a, b) => (a.device < b.device ? -1 : 1));
    const failed = results.filter((r) => r.outcome === 'failed');
    const label = kind.replace('-', ' ');
    out.result(results, () => `${spec.details ? spec.details(results) : ''}${label}: ${results.length - failed.length}/${results.length} ok${failed.length ? `; failed: ${failed.map((r) => `${r.device} (${errorText(r)})`).join(', ')}` : ''}`);
    if (failed.length > 0) process.exitCode = 1;
  });
}

/** `fleet shell` and `fleet fs upload|download|stat`: the client's `shell exec` and fs transfers, per device through its gateway. */
function registerJobCommands(fleet: Command, ctx: CliContext): void {
  jobFlags(
    fleet
      .command('shell')
      .description('run a shell command on the selected devices (`shell exec` through their gateways): output and return code per device; exit 1 when one returned non-zero')
      .argument('<words...>', 'the command and its arguments (after --)'),
  ).action((words: string[], o: JobFlags) =>
    ctx.run(async (out) => {
      // As `shell exec` sends them: a quoted argument with spaces is split as the device would.
      const argv = words.flatMap((w) => w.split(/\s+/)).filter((w) => w !== '');
      if (argv.length === 0) throw new UsageError('fleet shell: no command to run (give it after --)');
      await runJobs(ctx, out, o, 'shell', {
        fields: { argv },
        describe: (r) => {
          const sh = r.output as ShellOutput | undefined;
          return sh ? (sh.ret === 0 ? 'ok' : `FAILED returned ${sh.ret}`) : `FAILED ${errorText(r)}`;
        },
        // Each device's output on stdout, under its name and return code.
        details: (results) =>
          results
            .map((r) => {
              const sh = r.output as ShellOutput | undefined;
              const text = sh ? sh.o.replace(/\n$/, '') : errorText(r);
              return `== ${r.device}${sh ? ` (returned ${sh.ret})` : ' (FAILED)'}\n${text ? `${text.replace(/^/gm, '  ')}\n` : ''}`;
            })
            .join(''),
      });
    }),
  );

  const fs = fleet.command('fs').description('files on the selected devices (through their gateways): upload, download, stat');
  const fsLine = (verb: string) => (r: JobResult) => {
    const f = r.output as FsOutput | undefined;
    if (r.outcome !== 'ok' || !f) return `FAILED ${errorText(r)}`;
    return `${verb} ${f.path} ${f.size} bytes${f.verified ? `, ${f.verified.type} verified` : ''}`;
  };
  jobFlags(fs.command('upload').description("upload a local file to the selected devices (verified with each device's fs hash when it has one)").argument('<local>').argument('<remote>', 'device path, e.g. /lfs/file.txt')).action(
    (local: string, remote: string, o: JobFlags) =>
      ctx.run(async (out) => {
        let data: Uint8Array;
        try {
          data = new Uint8Array(await readFile(local));
        } catch (e) {
          throw new UsageError(`cannot read ${local}: ${(e as Error).message}`);
        }
        // Into the store first (NATS: the object store), by hash: each gateway fetches it from there.
        const file = await withStore(o, (store) => store.putFile(data));
        await runJobs(ctx, out, o, 'fs-upload', { fields: { path: remote, file }, describe: fsLine('uploaded') });
      }),
  );
  jobFlags(
    fs
      .command('download')
      .description('download a device file from each selected device into DIR/<device-id> (each written whole or not at all)')
      .argument('<remote>', 'device path')
      .requiredOption('--out <dir>', 'directory for the files, one per device'),
  ).action((remote: string, o: JobFlags & { out: string }) =>
    ctx.run(async (out) => {
      try {
        await mkdir(o.out, { recursive: true });
      } catch (e) {
        throw new UsageError(`cannot write into ${o.out}: ${(e as Error).message}`);
      }
      await runJobs(ctx, out, o, 'fs-download', {
        fields: { path: remote },
        describe: (r) => (r.outcome === 'ok' ? `${fsLine('downloaded')(r)} → ${join(o.out, r.device)}` : fsLine('downloaded')(r)),
        onResult: async (r, store) => {
          const f = r.output as FsOutput;
          const bytes = f.sha256 === undefined ? undefined : await store.getFileBytes(f.sha256);
          if (!bytes || bytes.length !== f.size || localHash('sha256', bytes) !== f.sha256) throw new McuMgrError('FLEET_FILE', `${r.device}: the downloaded ${f.path} is not (whole) in the fleet store ${store.where}`);
          // Written beside the destination and renamed over it: a reader sees the whole file or none.
          const dest = join(o.out, r.device);
          const tmp = `${dest}.part-${process.pid}`;
          await writeFile(tmp, bytes);
          await rename(tmp, dest);
        },
      });
    }),
  );
  jobFlags(fs.command('stat').description('size of a device file on the selected devices').argument('<remote>', 'device path')).action((remote: string, o: JobFlags) =>
    ctx.run((out) => runJobs(ctx, out, o, 'fs-stat', { fields: { path: remote }, describe: fsLine('stat') })),
  );
}

export function registerGatewayCommand(program: Command, ctx: CliContext): void {
  program
    .command('gateway')
    .description('fleet gateway agent: runs the jobs NATS holds for this gateway on the devices it reaches, publishes progress and results')
    .requiredOption('--nats <url>', 'NATS server with JetStream (nats://[user:pass@]host:4222)')
    .option('--nats-creds <file>', 'NATS credentials file')
    .requiredOption('--name <name>', 'gateway name (devices name it as their gateway)')
    .option('--parallel <n>', 'devices worked on at once', '4')
    .option('--ack-wait <seconds>', 'how long NATS waits for a job before redelivering it when this gateway dies (default 30)', '30')
    .option('--scan-interval <seconds>', "refresh its devices' state in the inventory this often (default 0: only on `fleet scan`)", '0')
    .action((o: { nats: string; natsCreds?: string; name: string; parallel: string; ackWait: string; scanInterval: string }) =>
      ctx.run(async (out) => {
        checkName('gateway', o.name);
        const parallel = Math.round(numberOption('--parallel', o.parallel, 4));
        const ackWaitMs = numberOption('--ack-wait', o.ackWait, 30) * 1000;
        const scan = Number(o.scanInterval);
        if (!(scan >= 0)) throw new UsageError('--scan-interval must be a number of seconds >= 0');
        const { NatsStore, runGateway } = await import('../../fleet/nats-store.ts');
        const store = await NatsStore.open({ url: o.nats, ...(o.natsCreds !== undefined ? { creds: o.natsCreds } : {}), name: `mcumgr gateway ${o.name}` });
        const stop = new AbortController();
        const onSignal = (): void => stop.abort();
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
        try {
          await runGateway(store, { name: o.name, parallel, ackWaitMs, scanIntervalMs: scan * 1000, openClient: clientOpener(ctx), signal: stop.signal, log: (line) => process.stdout.write(`${line}\n`) });
        } finally {
          await store.close();
        }
        void out;
      }),
    );
}
