/**
 * `npm run bench -- fleet`: a rollout through NATS JetStream. A nats-server (JetStream, temporary
 * store), emulated devices on loopback UDP, 2 `mcumgr gateway` processes and the `mcumgr fleet
 * rollout` controller as a process; a 256 KiB image in 4 waves (1%, 10%, 50%, 100%). Prints the
 * rollout's wall time, devices per minute, the fleet overhead per device (wall time × parallelism /
 * devices) beside one direct upgrade and beside direct upgrades of the same devices at the same
 * parallelism from one process (target ≤ 1.25×), the NATS
 * messages per device (every message on the server, counted by a `>` subscriber), and the
 * emulator's memory per device (target ≤ 2 MB).
 *
 * Devices: FLEET_BENCH_DEVICES (default 100); parallelism per gateway: FLEET_BENCH_PARALLEL
 * (default 8). The devices are emulators in this process until `mcumgr serve --devices N` exists
 * (the 1,000 devices are meant for that); their memory is this process's RSS growth.
 */
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { upgradeImage } from '../src/client/upgrade.ts';
import { readFile, writeFile } from 'node:fs/promises';
import { natsServerPath, startNatsServer } from '../test/nats.ts';
import { spawnCli, startDevices, writeImage } from '../test/fleet-helpers.ts';
import { runCli, tempDir } from '../test/helpers.ts';
import { printFigure, section } from './report.ts';

const rssMb = (): number => process.memoryUsage().rss / (1024 * 1024);

export async function benchFleet(): Promise<void> {
  const n = Number(process.env['FLEET_BENCH_DEVICES'] ?? 100);
  const parallel = Number(process.env['FLEET_BENCH_PARALLEL'] ?? 8);
  section(`fleet: rollout of a 256 KiB image to ${n} emulated devices behind 2 gateways (NATS JetStream), ${parallel} at once per gateway`);
  if (!natsServerPath()) {
    process.stdout.write('  skipped: nats-server is not installed (apt-get install nats-server)\n');
    return;
  }
  const dir = await tempDir('mcumgr-bench-fleet-');
  const nats = await startNatsServer();
  const rss0 = rssMb();
  const devices = await startDevices(n + 1);
  const memPerDevice = (rssMb() - rss0) / (n + 1);
  const gateways = ['gw-a', 'gw-b'].map((name) => spawnCli(['gateway', '--nats', nats.url, '--name', name, '--parallel', String(parallel), '-t', '2', '-r', '5']));
  try {
    for (const [i, g] of gateways.entries()) await g.waitFor(new RegExp(`gateway gw-${'ab'[i]} ready`));
    const image = await writeImage(join(dir.path, 'v2.bin'), '2.0.0', 7, 256 * 1024 - 1024);
    const bytes = new Uint8Array(await readFile(image));

    // One direct upgrade of the same image to one device (the last one, kept out of the fleet).
    const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: devices.ports[n]! }), { timeoutMs: 2000, tries: 5 });
    const t0 = performance.now();
    await upgradeImage(client, bytes);
    const direct = (performance.now() - t0) / 1000;
    await client.close();

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
    const r = await runCli(['fleet', 'rollout', image, '--select', 'bench=1', '--waves', '1%,10%,50%,100%', '--max-failures', '0', '--parallel', String(2 * parallel), '--id', 'bench', '--nats', nats.url], { timeoutMs: 3_600_000 });
    const wall = (performance.now() - t1) / 1000;
    all.unsubscribe();
    await nc.close();
    if (r.code !== 0) throw new Error(`rollout failed: ${r.stderr}`);

    // The same devices upgraded directly from this process, as many at once: the baseline at the same parallelism.
    const v3 = new Uint8Array(await readFile(await writeImage(join(dir.path, 'v3.bin'), '3.0.0', 8, 256 * 1024 - 1024)));
    const queue = devices.ports.slice(0, n);
    const t2 = performance.now();
    await Promise.all(
      Array.from({ length: 2 * parallel }, async () => {
        for (let port = queue.shift(); port !== undefined; port = queue.shift()) {
          const c = new SmpClient(await openUdpClient({ host: '127.0.0.1', port }), { timeoutMs: 2000, tries: 5 });
          try {
            await upgradeImage(c, v3);
          } finally {
            await c.close();
          }
        }
      }),
    );
    const directParallel = ((performance.now() - t2) / 1000) * 2 * parallel / n;

    // One wave: the fleet machinery alone, without the waits between waves.
    const v4 = await writeImage(join(dir.path, 'v4.bin'), '4.0.0', 9, 256 * 1024 - 1024);
    const t3 = performance.now();
    const one = await runCli(['fleet', 'rollout', v4, '--select', 'bench=1', '--waves', '100%', '--max-failures', '0', '--parallel', String(2 * parallel), '--id', 'bench1', '--nats', nats.url], { timeoutMs: 3_600_000 });
    const wallOne = (performance.now() - t3) / 1000;
    if (one.code !== 0) throw new Error(`rollout failed: ${one.stderr}`);
    const overheadOne = (wallOne * 2 * parallel) / n;

    const overhead = (wall * 2 * parallel) / n;
    printFigure({ name: 'rollout wall time', value: wall, unit: 's' });
    printFigure({ name: 'devices per minute', value: (n / wall) * 60, unit: 'dev/min', limit: { value: (60 / direct) * 2 * parallel, label: `direct upgrades, ${2 * parallel} at once` } });
    printFigure({ name: 'one direct upgrade (same image, one device)', value: direct, unit: 's' });
    printFigure({ name: 'fleet time per device × parallelism', value: overhead, unit: 's', limit: { value: direct * 1.25, label: 'target 1.25× a direct upgrade' } });
    printFigure({ name: `direct upgrades, ${2 * parallel} at once: time per device × parallelism`, value: directParallel, unit: 's' });
    printFigure({ name: 'fleet overhead at the same parallelism, 4 waves', value: overhead / directParallel, unit: '×', limit: { value: 1.25, label: 'target' } });
    printFigure({ name: 'one-wave rollout wall time', value: wallOne, unit: 's' });
    printFigure({ name: 'fleet overhead at the same parallelism, one wave', value: overheadOne / directParallel, unit: '×', limit: { value: 1.25, label: 'target' } });
    printFigure({ name: 'NATS messages per device', value: messages / n, unit: 'msg' });
    printFigure({ name: 'emulator memory per device (in-process emulators)', value: memPerDevice, unit: 'MB', limit: { value: 2, label: 'target' } });
  } finally {
    for (const g of gateways) await g.kill('SIGTERM');
    await devices.close();
    await nats.stop();
    await dir.remove();
  }
}
