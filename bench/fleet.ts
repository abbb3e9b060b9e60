/**
 * `npm run bench -- fleet`: a rollout through NATS JetStream, as the issue sets it: 1,000 emulated
 * devices in one `mcumgr serve --devices N --fast` process, a nats-server (JetStream, temporary
 * store), 2 `mcumgr gateway` processes and the `mcumgr fleet rollout` controller as a process; a
 * 256 KiB image in 4 waves (1%, 10%, 50%, 100%).
 *
 * Prints the rollout's wall time, devices per minute, and the fleet overhead per device: rollout
 * wall time × parallelism / devices, against direct upgrades of the same image at the same
 * parallelism — P = 2 gateways × per-gateway parallelism devices at once, from this process, to
 * 4P more devices of the same serve process kept out of the fleet (wall time × P / 4P: one direct
 * upgrade's share of the machine at that parallelism). Target ≤ 1.25×. Also one direct upgrade
 * alone, the NATS messages per device (every message on the server, counted by a `>` subscriber),
 * and the serve process's memory per device (its RSS / devices; target ≤ 2 MB).
 *
 * FLEET_BENCH_DEVICES (default 1000) lowers the device count; FLEET_BENCH_PARALLEL (default 8) is
 * the parallelism per gateway; FLEET_BENCH_ONE_WAVE=1 adds a second rollout in one wave (100%), to
 * tell the waves' tails from the per-job cost.
 */
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { connect } from '@nats-io/transport-node';
import { spawn } from 'node:child_process';
import { directUpgrades } from './fleet-upgrades.ts';
import { readFile, writeFile } from 'node:fs/promises';
import { natsServerPath, startNatsServer } from '../test/nats.ts';
import { spawnCli, startDevices, writeImage } from '../test/fleet-helpers.ts';
import { ROOT, runCli, tempDir } from '../test/helpers.ts';
import { printFigure, section } from './report.ts';

const MB = 1024 * 1024;

/** Direct upgrades of `ports` from 2 processes (half each, `perProcess` at once), started together; the wall time of the slower, the mean upgrade time. */
async function directInTwoProcesses(image: string, perProcess: number, ports: readonly number[]): Promise<{ wall: number; mean: number }> {
  const halves = [ports.filter((_, i) => i % 2 === 0), ports.filter((_, i) => i % 2 === 1)];
  const children = halves.map((h) => spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'fleet-direct.ts'), image, String(perProcess), ...h.map(String)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] }));
  const outputs = children.map((c) => {
    let out = '';
    const ready = new Promise<void>((resolve, reject) => {
      c.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.startsWith('ready\n')) resolve();
      });
      c.once('exit', (code) => reject(new Error(`direct upgrade process exited with ${code}: ${out}`)));
    });
    const done = new Promise<{ wall: number; mean: number; upgrades: number }>((resolve, reject) =>
      c.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.split('\n')[1]!) as { wall: number; mean: number; upgrades: number }) : reject(new Error(`direct upgrade process exited with ${code}: ${out}`)))),
    );
    return { ready, done };
  });
  await Promise.all(outputs.map((o) => o.ready));
  for (const c of children) c.stdin!.end('go\n');
  const rs = await Promise.all(outputs.map((o) => o.done));
  return { wall: Math.max(...rs.map((r) => r.wall)), mean: rs.reduce((a, r) => a + r.mean * r.upgrades, 0) / rs.reduce((a, r) => a + r.upgrades, 0) };
}

export async function benchFleet(): Promise<void> {
  const n = Number(process.env['FLEET_BENCH_DEVICES'] ?? 1000);
  const perGateway = Number(process.env['FLEET_BENCH_PARALLEL'] ?? 8);
  const parallel = 2 * perGateway;
  const extra = 8 * parallel + 1;
  section(`fleet: rollout of a 256 KiB image to ${n} emulated devices (one serve --devices process) behind 2 gateways (NATS JetStream), ${perGateway} at once per gateway`);
  if (!natsServerPath()) {
    process.stdout.write('  skipped: nats-server is not installed (apt-get install nats-server)\n');
    return;
  }
  const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
  const dir = await tempDir('mcumgr-bench-fleet-');
  const nats = await startNatsServer();
  // The fleet's n devices, then `extra` for the direct upgrades, all in one serve process.
  const devices = await startDevices(n + extra);
  const memStart = await devices.memory();
  const gateways = ['gw-a', 'gw-b'].map((name) => spawnCli(['gateway', '--nats', nats.url, '--name', name, '--parallel', String(perGateway), '-t', '2', '-r', '5']));
  try {
    for (const [i, g] of gateways.entries()) await g.waitFor(new RegExp(`gateway gw-${'ab'[i]} ready`));
    const image = await writeImage(join(dir.path, 'v2.bin'), '2.0.0', 7, 256 * 1024 - 1024);
    const bytes = new Uint8Array(await readFile(image));

    // One direct upgrade alone, then 4P at P at once: the same image, devices of the same serve process.
    const direct = (await directUpgrades([devices.ports[n]!], bytes, 1)).wall;
    const loadDirect = load();
    // In this one process, P at once; then as the gateways run them: 2 processes, P/2 at once each.
    const baselineOne = await directUpgrades(devices.ports.slice(n + 1, n + 1 + 4 * parallel), bytes, parallel);
    const baseline = await directInTwoProcesses(image, perGateway, devices.ports.slice(n + 1 + 4 * parallel, n + extra));
    const directParallel = (baseline.wall * parallel) / (4 * parallel);
    const directParallelOne = (baselineOne.wall * parallel) / (4 * parallel);

    const rows = ['id,gateway,conntype,connstring,labels', ...devices.ports.slice(0, n).map((p, i) => `dev${i},${i % 2 ? 'gw-b' : 'gw-a'},udp,127.0.0.1:${p},bench=1`)];
    await writeFile(join(dir.path, 'fleet.csv'), rows.join('\n'));
    const imp = await runCli(['fleet', 'devices', 'import', join(dir.path, 'fleet.csv'), '--nats', nats.url]);
    if (imp.code !== 0) throw new Error(imp.stderr);
    const added = await runCli(['fleet', 'images', 'add', image, '--nats', nats.url]);
    if (added.code !== 0) throw new Error(added.stderr);

    const nc = await connect({ servers: nats.url });
    let messages = 0;
    const all = nc.subscribe('>', { callback: () => void messages++ });
    const t1 = performance.now();
    const r = await runCli(['fleet', 'rollout', image, '--select', 'bench=1', '--waves', '1%,10%,50%,100%', '--max-failures', '0', '--parallel', String(parallel), '--id', 'bench', '--nats', nats.url], { timeoutMs: 3_600_000 });
    const wall = (performance.now() - t1) / 1000;
    const loadRollout = load();
    all.unsubscribe();
    await nc.close();
    if (r.code !== 0) throw new Error(`rollout failed: ${r.stderr}`);
    const mem = await devices.memory();
    // Where the time goes: each job's own duration at its gateway, against the rollout's slots.
    const rep = JSON.parse((await runCli(['fleet', 'report', 'bench', '--json', '--nats', nats.url])).stdout) as { devices: { durationMs?: number }[] };
    const jobSeconds = rep.devices.reduce((a, d) => a + (d.durationMs ?? 0), 0) / 1000;

    let wallOne: number | undefined;
    if (process.env['FLEET_BENCH_ONE_WAVE'] === '1') {
      const v3 = await writeImage(join(dir.path, 'v3.bin'), '3.0.0', 9, 256 * 1024 - 1024);
      const t3 = performance.now();
      const one = await runCli(['fleet', 'rollout', v3, '--select', 'bench=1', '--waves', '100%', '--max-failures', '0', '--parallel', String(parallel), '--id', 'bench1', '--nats', nats.url], { timeoutMs: 3_600_000 });
      wallOne = (performance.now() - t3) / 1000;
      if (one.code !== 0) throw new Error(`rollout failed: ${one.stderr}`);
    }

    const overhead = (wall * parallel) / n;
    process.stdout.write(`  load average (1, 5, 15 min): ${loadDirect} after the direct upgrades, ${loadRollout} after the rollout\n`);
    printFigure({ name: 'rollout wall time, 4 waves', value: wall, unit: 's' });
    printFigure({ name: 'devices per minute', value: (n / wall) * 60, unit: 'dev/min', limit: { value: (60 / directParallel) * parallel, label: `direct upgrades, 2 processes × ${perGateway}` } });
    printFigure({ name: 'one direct upgrade alone (same image, one device)', value: direct, unit: 's' });
    printFigure({ name: `direct, ${parallel} at once in 1 process: time per device × ${parallel}`, value: directParallelOne, unit: 's' });
    printFigure({ name: `direct, 2 processes × ${perGateway} (as the gateways): × ${parallel}`, value: directParallel, unit: 's' });
    printFigure({ name: `fleet: rollout time × ${parallel} / devices`, value: overhead, unit: 's', limit: { value: directParallel * 1.25, label: 'target 1.25× direct at the same parallelism' } });
    printFigure({ name: 'fleet overhead per device, same parallelism, 4 waves', value: overhead / directParallel, unit: '×', limit: { value: 1.25, label: 'target' } });
    if (wallOne !== undefined) {
      printFigure({ name: 'rollout wall time, one wave', value: wallOne, unit: 's' });
      printFigure({ name: 'fleet overhead per device, same parallelism, one wave', value: (wallOne * parallel) / n / directParallel, unit: '×', limit: { value: 1.25, label: 'target' } });
    }
    printFigure({ name: 'mean upgrade time, direct, 1 process', value: baselineOne.mean, unit: 's' });
    printFigure({ name: 'mean upgrade time, direct, 2 processes', value: baseline.mean, unit: 's' });
    printFigure({ name: 'mean job time at the gateway (report durations)', value: jobSeconds / n, unit: 's', limit: { value: baseline.mean, label: 'direct' } });
    printFigure({ name: `rollout slots busy: job time / (wall × ${parallel})`, value: (100 * jobSeconds) / (wall * parallel), unit: '%' });
    printFigure({ name: 'NATS messages per device', value: messages / n, unit: 'msg' });
    printFigure({ name: `emulator memory per device (serve RSS / ${n + extra}) at start`, value: memStart.rss / MB / (n + extra), unit: 'MB', limit: { value: 2, label: 'target' } });
    printFigure({ name: 'emulator memory per device after the rollout', value: mem.rss / MB / (n + extra), unit: 'MB', limit: { value: 2, label: 'target' } });
    printFigure({ name: 'emulator memory per device at its peak', value: mem.peak / MB / (n + extra), unit: 'MB', limit: { value: 2, label: 'target' } });
  } finally {
    for (const g of gateways) await g.kill('SIGTERM');
    await devices.close();
    await nats.stop();
    await dir.remove();
  }
}
