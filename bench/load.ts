/**
 * The emulator under load (`npm run bench -- load`), `mcumgr serve` in its own process on UDP and
 * a pty:
 * - a serial client's echo round trip, idle and while a UDP client floods `fs hash sha256` of an
 *   8 MiB file (the request that once made the emulator queue 38,860 requests and grow to 200 MB),
 *   p50 and p99 against the idle p50 (target p99 ≤ 10×). Two floods: the same request again and
 *   again (the hash is kept, as Zephyr keeps upload state), and a different offset each time
 *   (nothing to keep: every request hashes up to 8 MiB);
 * - the emulator's peak resident memory during each flood against its idle RSS (target ≤ 1.3×);
 * - echo throughput over UDP with 16 requests in flight in total, from 1, 4 and 16 clients.
 */
import { commands } from '../src/core/commands/index.ts';
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { tempDir } from '../test/helpers.ts';
import { dataDirWithBigFile, hashRequest, rssOf, sampleRss, serialClient, startFlood, startServe, type ServeProcess } from '../test/load-helpers.ts';
import { printFigure, section } from './report.ts';

/** 100 echoes per flood: the p99 is the 99th of 100, not the worst of 50. */
const FLOOD_MS = 10_000;
const THROUGHPUT_MS = 2000;

/** The nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function echoRtts(client: SmpClient, count: number, gapMs: number): Promise<number[]> {
  const rtts: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await client.request(commands.os.echo, { d: 'ping' });
    rtts.push(performance.now() - t0);
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  }
  return rtts;
}

async function underFlood(serve: ServeProcess, echo: SmpClient, idleP50: number, idleRss: number, label: string, request: (seq: number) => Uint8Array): Promise<void> {
  const rss = sampleRss(serve.pid, 25);
  const flood = await startFlood(serve.port, request);
  const rtts = await echoRtts(echo, FLOOD_MS / 100, 100);
  await flood.stop();
  const peak = await rss.stop();
  const stats = (await echo.request(commands.stat.show, { name: 'smp_udp' })).fields;
  await flood.close();
  printFigure({ name: `${label}: echo p50`, value: percentile(rtts, 50), unit: 'ms', limit: { value: idleP50, label: 'idle p50' } });
  printFigure({ name: `${label}: echo p99`, value: percentile(rtts, 99), unit: 'ms', limit: { value: 10 * idleP50, label: 'target 10× idle p50' } });
  printFigure({ name: `${label}: emulator peak RSS`, value: peak / 1e6, unit: 'MB', limit: { value: idleRss / 1e6, label: 'idle RSS' } });
  process.stdout.write(`    (flooder sent ${flood.sent}, answered ${flood.answered}; emulator UDP counters so far: ${stats['requests']} requests, ${stats['dropped']} dropped)\n`);
}

async function throughput(port: number, clients: number, inFlight: number): Promise<{ rate: number; failed: number }> {
  const list = await Promise.all(Array.from({ length: clients }, async () => new SmpClient(await openUdpClient({ host: '127.0.0.1', port }), { timeoutMs: 2000, tries: 3 })));
  await Promise.all(list.map((c) => c.request(commands.os.echo, { d: 'warm' })));
  let done = 0;
  let failed = 0;
  const end = Date.now() + THROUGHPUT_MS;
  const worker = async (c: SmpClient): Promise<void> => {
    while (Date.now() < end) {
      // A request the device dropped (its buffers full) and never answered counts as a failure.
      const ok = await c.request(commands.os.echo, { d: 'hello' }).then(
        () => true,
        () => false,
      );
      if (ok) done++;
      else failed++;
    }
  };
  const t0 = performance.now();
  await Promise.all(list.flatMap((c) => Array.from({ length: Math.max(1, inFlight / clients) }, () => worker(c))));
  const rate = done / ((performance.now() - t0) / 1000);
  await Promise.all(list.map((c) => c.close()));
  return { rate, failed };
}

export async function benchLoad(): Promise<void> {
  section('The emulator under a UDP flood of fs hash sha256 (8 MiB file); echo from a serial client (pty)');
  const data = await tempDir();
  await dataDirWithBigFile(data.path);
  const serve = await startServe(['--data', data.path, '--pty']);
  let echo: SmpClient | undefined;
  try {
    if (!serve.pty) throw new Error(`serve printed no pty: ${serve.output()}`);
    echo = await serialClient(serve.pty, 10000, 1);
    await echoRtts(echo, 20, 0);
    await new Promise((r) => setTimeout(r, 500));
    const idleRss = await rssOf(serve.pid);
    const idle = await echoRtts(echo, 100, 10);
    const idleP50 = percentile(idle, 50);
    printFigure({ name: 'idle: serial echo p50', value: idleP50, unit: 'ms' });
    printFigure({ name: 'idle: serial echo p99', value: percentile(idle, 99), unit: 'ms', limit: { value: idleP50, label: 'idle p50' } });
    await underFlood(serve, echo, idleP50, idleRss, 'flood, same request', (seq) => hashRequest(seq));
    await underFlood(serve, echo, idleP50, idleRss, 'flood, new offset each', (seq) => hashRequest(seq, 1 + (seq % 4096)));
  } finally {
    await echo?.close();
    await serve.stop();
    await data.remove();
  }

  // 16 requests in flight need a device with 16 buffers: with the default 4, the device drops
  // what does not fit (as Zephyr does) and the figure would measure the clients' retry timers.
  section('Echo throughput over loopback UDP, 16 requests in flight in total (serve --buf-count 17)');
  const fresh = await tempDir();
  const s2 = await startServe(['--data', fresh.path, '--buf-count', '17']);
  try {
    let one = 0;
    for (const clients of [1, 4, 16]) {
      const { rate, failed } = await throughput(s2.port, clients, 16);
      if (clients === 1) one = rate;
      printFigure({ name: `16 in flight from ${clients} client${clients > 1 ? 's' : ''}${failed ? ` (${failed} unanswered)` : ''}`, value: rate, unit: 'req/s', limit: { value: one, label: '1 client' } });
    }
  } finally {
    await s2.stop();
    await fresh.remove();
  }
}
