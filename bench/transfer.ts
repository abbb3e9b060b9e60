/**
 * `npm run bench -- transfer`: the transfer engine at the limit of each link, every figure beside
 * its limit (issue 14). Emulators run as `mcumgr serve` processes.
 *
 * 1. Serial over a pty into a device with Zephyr's timing and its 2 receive line buffers
 *    (buf_size 2475, buf_count 4), unpaced and through a relay paced to 115200 baud: image
 *    upload rate at mtu 256, 512, 1024, 2048, each beside the best rate at any smaller mtu
 *    (target ≥ 0.9: a larger mtu never makes the upload slower).
 * 2. UDP through the impairment relay at 20 ms and 100 ms round trip with 0%, 1% and 5% loss each
 *    way (device with --fast, so that the link is the limit; then once more at 20 ms into a device
 *    with Zephyr's timing), each run several times (median): the windowed rate beside the
 *    window-limited ceiling at the round trip measured right before it and at the relay's
 *    configured one (target ≥ 0.85 at 0%), with the counters that split the gap (chunk RTT,
 *    window occupancy), and the 5% figure beside the 0% one (target ≥ 0.5). See
 *    {@link benchUdpRelay} and {@link windowCeiling}.
 * 3. Loopback with --fast: client and server CPU time per chunk, and the 1 MiB upload rate
 *    through the CLI beside the slot file's raw write speed.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SmpClient } from '../src/client/client.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { commands } from '../src/core/commands/index.ts';
import { buildImage } from '../src/image/build.ts';
import { openSerialClient } from '../src/transport/serial.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { startUdpRelay } from '../src/transport/udp-relay.ts';
import { ZEPHYR_DEVICE_TIMING } from '../src/server/agent.ts';
import { CLI, startServeProcess, tempDir } from '../test/helpers.ts';
import { rawWriteSpeed } from './image-upload.ts';
import { printFigure, section } from './report.ts';
import { BYTES_PER_SECOND, pacedRelay, servePty } from './serial.ts';

function image(size: number, seed: number): Promise<Uint8Array> {
  return buildImage({ payload: new Uint8Array(size).map((_, i) => ((i * 2654435761) >>> 24) ^ seed), version: '2.0.0' }).then((b) => b.bytes);
}

interface Run {
  /** Whole upload, bytes/s: the `params` request, the first chunk alone (the device erases), the windowed rest. */
  rate: number;
  /** The windowed part, bytes/s: from the first chunk's answer to the last answer. */
  windowedRate: number;
  chunk: number;
  /** Most chunks in flight allowed (the device's buf_count − 1), and the largest reached. */
  maxWindow: number;
  window: number;
  retransmissions: number;
  /** Mean round trip of the chunks answered to their only send, ms. */
  meanRttMs: number | undefined;
}

/** One fresh upload (the slot erased first, so no resume and no instant match). */
async function uploadOnce(client: SmpClient, bytes: Uint8Array): Promise<Run> {
  await client.request(commands.image.erase, {});
  let first: { t: number; off: number } | undefined;
  const t0 = performance.now();
  const r = await uploadImage(client, bytes, { onProgress: (p) => void (first ??= p.offset > 0 ? { t: performance.now(), off: p.offset } : undefined) });
  const t1 = performance.now();
  if (r.match !== true) throw new Error('upload did not match');
  const windowed = first && t1 > first.t ? (bytes.length - first.off) / ((t1 - first.t) / 1000) : NaN;
  return { rate: bytes.length / ((t1 - t0) / 1000), windowedRate: windowed, chunk: r.chunkSize, maxWindow: r.maxWindow, window: r.windowReached, retransmissions: r.retransmissions, meanRttMs: r.meanRttMs };
}

/**
 * Round trip of a chunk-sized request over the link with nothing else in flight, ms: the median
 * of `n` echoes whose request is as long as a full upload frame, so that it includes what the
 * link adds to every datagram on this host (the relay's timers fire late under load, each process
 * needs the CPU to forward) and the device's time to answer a request that does not write.
 */
async function chunkRoundTripMs(client: SmpClient, frame: number, n = 15): Promise<number> {
  const d = 'x'.repeat(Math.max(0, frame - 16));
  await client.request(commands.os.echo, { d });
  const rtts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await client.request(commands.os.echo, { d });
    rtts.push(performance.now() - t0);
  }
  rtts.sort((a, b) => a - b);
  return rtts[Math.floor(n / 2)]!;
}

/**
 * The highest rate of a windowed upload, bytes/s. Each chunk is limited by the slowest of:
 * - the window: `window` chunks per round trip, where a chunk's round trip is the link's (with the
 *   device's processing, `rttMs` as measured by {@link chunkRoundTripMs}) plus its flash write
 *   (`writeMs`), so `(rttMs + writeMs) / window` per chunk;
 * - the device: it handles one request at a time, `processingMs + writeMs` per chunk, however many
 *   are in flight;
 * - the link's bandwidth: `frame` bytes each way per chunk at `linkBytesPerSecond` (none on the
 *   relay, which only delays).
 * The window is the device's `buf_count − 1`: with Zephyr's default of 4 buffers, 3 chunks. The
 * params request and the first chunk (sent alone: the device erases the slot first) are outside
 * it; the figure to compare is the windowed rate, and the whole upload's is shown beside it.
 */
export function windowCeiling(c: { window: number; chunk: number; frame: number; rttMs: number; processingMs?: number; writeMs?: number; linkBytesPerSecond?: number }): number {
  const write = c.writeMs ?? 0;
  const perChunkMs = Math.max((c.rttMs + write) / c.window, (c.processingMs ?? 0) + write, c.linkBytesPerSecond ? (c.frame / c.linkBytesPerSecond) * 1000 : 0);
  return (c.chunk / perChunkMs) * 1000;
}

async function serialRates(link: string, bytes: Uint8Array, label: string, limit: { value: number; label: string } | undefined): Promise<void> {
  const best: number[] = [];
  for (const mtu of [256, 512, 1024, 2048]) {
    const client = new SmpClient(await openSerialClient({ path: link, mtu }), { timeoutMs: 5000, tries: 3 });
    try {
      const r = await uploadOnce(client, bytes);
      const unit = 'KiB/s';
      const detail = `chunk ${r.chunk}, window ≤ ${r.window}, ${r.retransmissions} retx`;
      printFigure({ name: `${label}, mtu ${mtu} (${detail})`, value: r.rate / 1024, unit, ...(limit ? { limit } : {}) });
      if (best.length > 0) printFigure({ name: `  mtu ${mtu} vs best at a smaller mtu (target ≥ 0.9)`, value: r.rate / 1024, unit, limit: { value: Math.max(...best) / 1024, label: 'best smaller mtu' } });
      best.push(r.rate);
    } finally {
      await client.close();
    }
  }
}

async function benchSerialLinks(): Promise<void> {
  section('Serial into `mcumgr serve --pty` with Zephyr-like timing and 2 receive line buffers (buf_size 2475, buf_count 4)');
  const tmp = await tempDir('mcumgr-bench-transfer-');
  const deviceLink = join(tmp.path, 'device');
  const device = await servePty(['--data', join(tmp.path, 'data'), '--buf-size', '2475', '--buf-count', '4'], deviceLink);
  try {
    await serialRates(deviceLink, await image(96 * 1024, 1), '96 KiB, unpaced pty', undefined);
    const clientLink = join(tmp.path, 'paced');
    const relay = await pacedRelay(deviceLink, clientLink, BYTES_PER_SECOND);
    try {
      await serialRates(clientLink, await image(16 * 1024, 2), '16 KiB at 115200 baud', { value: BYTES_PER_SECOND / 1024, label: 'raw 115200 baud' });
    } finally {
      await relay.stop();
    }
  } finally {
    await device.stop();
    await tmp.remove();
  }
}

interface UdpRun {
  windowed: number;
  whole: number;
  /** Ceiling from the echo round trip measured right before the upload, and from the relay's configured one. */
  ceiling: number;
  nominalCeiling: number;
  echoMs: number;
  /** Mean round trip of the upload's own chunks, ms, and the mean chunks in flight it implies (Little's law), as a share of the window. */
  chunkRttMs: number;
  occupancy: number;
  /** Relay counters over the upload: mean lateness of its delay timers per datagram, mean device turnaround per request (ms). */
  timerLateMs: number;
  deviceMs: number;
  retransmissions: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * UDP through the relay. Each link is run `MCUMGR_BENCH_REPS` times (default 3), the loss levels
 * of a repetition back to back so that they see the same host load, and each figure is the median
 * of its runs: on this 2-core host, shared with other work, one upload's rate varies by a third
 * from one run to the next. Every upload is compared with two ceilings (see {@link windowCeiling}):
 * - the measured one, from the round trip of an echo through the same relay (without loss) right
 *   before the upload: what the link and the host give one request; the engine's figure;
 * - the nominal one, from the relay's configured round trip: what an idle host would give.
 * Beside them, the counters that split the gap between the two: the mean round trip of the
 * upload's own chunks and the mean chunks in flight it implies (occupancy of the window, by
 * Little's law: windowed rate × chunk RTT / chunk, over the window). Rate ≈ occupancy × window ×
 * chunk / chunk RTT, so a window left empty shows as occupancy below 1, and a slow link or host as
 * a chunk RTT above the configured one; the relay's counters split that RTT into the configured
 * delay, its timers' lateness, the device's turnaround (from forwarding a request to its answer)
 * and the rest (the client process and the hops between it and the relay).
 */
async function benchUdpRelay(): Promise<void> {
  const reps = Math.max(1, Number(process.env['MCUMGR_BENCH_REPS'] ?? 3));
  section(`UDP through the relay into \`mcumgr serve\` (buf_count 4: window ≤ 3, 1474-byte chunks); windowed part, median of ${reps} runs`);
  const data = await tempDir();
  const fast = await startServeProcess(['--data', join(data.path, 'fast')]);
  const zephyr = await startServeProcess(['--data', join(data.path, 'zephyr')], { timing: true });
  try {
    for (const [rtt, size, device, losses] of [
      [20, 256 * 1024, fast, [0, 0.01, 0.05]],
      [100, 96 * 1024, fast, [0, 0.01, 0.05]],
      [20, 256 * 1024, zephyr, [0]],
    ] as const) {
      const bytes = await image(size, rtt);
      const timed = device === zephyr;
      const deviceLabel = timed ? 'Zephyr-timed device' : '--fast';
      const runs = new Map<number, UdpRun[]>(losses.map((l) => [l, []]));
      for (let rep = 0; rep < reps; rep++) {
        for (const loss of losses) {
          // The round trip of this link with nothing in flight, right before the upload (the host's load changes).
          const clean = await startUdpRelay({ target: { host: '127.0.0.1', port: device.port }, toDevice: { delayMs: rtt / 2 }, toClient: { delayMs: rtt / 2 } });
          const probe = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: clean.port }), { timeoutMs: 3000, tries: 3 });
          const echoMs = await chunkRoundTripMs(probe, probe.mtu, rtt >= 100 ? 9 : 15).finally(() => probe.close().then(() => clean.close()));
          const relay = await startUdpRelay({ target: { host: '127.0.0.1', port: device.port }, toDevice: { delayMs: rtt / 2, drop: loss }, toClient: { delayMs: rtt / 2, drop: loss } });
          const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: relay.port }), { timeoutMs: 3000, tries: 3 });
          try {
            const r = await uploadOnce(client, bytes);
            const limits = { window: r.maxWindow, chunk: r.chunk, frame: client.mtu, ...(timed ? { processingMs: ZEPHYR_DEVICE_TIMING.processingUs / 1000, writeMs: (r.chunk * ZEPHYR_DEVICE_TIMING.flash.writeUsPerByte) / 1000 } : {}) };
            const chunkRttMs = r.meanRttMs ?? NaN;
            runs.get(loss)!.push({
              windowed: r.windowedRate,
              whole: r.rate,
              ceiling: windowCeiling({ ...limits, rttMs: echoMs }),
              nominalCeiling: windowCeiling({ ...limits, rttMs: rtt + (timed ? ZEPHYR_DEVICE_TIMING.processingUs / 1000 : 0) }),
              echoMs,
              chunkRttMs,
              occupancy: (r.windowedRate * chunkRttMs) / 1000 / r.chunk / r.maxWindow,
              timerLateMs: relay.stats.timing.lateMs / relay.stats.timing.delayed,
              deviceMs: relay.stats.timing.deviceMs / relay.stats.timing.answered,
              retransmissions: r.retransmissions,
            });
          } finally {
            await client.close();
            await relay.close();
          }
        }
      }
      let clean = NaN;
      for (const loss of losses) {
        const rs = runs.get(loss)!;
        const m = (f: (r: UdpRun) => number): number => median(rs.map(f));
        const kb = (v: number): string => (v / 1e3).toFixed(0);
        const name = `${size / 1024} KiB, ${rtt} ms, ${loss * 100}% loss, ${deviceLabel} (runs ${rs.map((r) => kb(r.windowed)).join('/')} kB/s)`;
        printFigure({ name, value: m((r) => r.windowed) / 1e3, unit: 'kB/s', limit: { value: m((r) => r.ceiling) / 1e3, label: 'ceiling at measured RTT' } });
        printFigure({ name: '  same, beside the configured RTT', value: m((r) => r.windowed) / 1e3, unit: 'kB/s', limit: { value: m((r) => r.nominalCeiling) / 1e3, label: `ceiling at ${rtt} ms` } });
        const ms = (f: (r: UdpRun) => number): string => m(f).toFixed(1);
        process.stdout.write(
          `    echo RTT ${ms((r) => r.echoMs)} ms; chunk RTT ${ms((r) => r.chunkRttMs)} ms = ${rtt} configured + relay timers late ${ms((r) => 2 * r.timerLateMs)} + device turnaround ${ms((r) => r.deviceMs)} + client side ${ms((r) => r.chunkRttMs - rtt - 2 * r.timerLateMs - r.deviceMs)}\n` +
            `    window occupancy ${m((r) => r.occupancy).toFixed(2)}, retx ${rs.map((r) => r.retransmissions).join('/')}, whole upload ${kb(m((r) => r.whole))} kB/s\n`,
        );
        if (loss === 0) clean = m((r) => r.windowed);
        if (loss === 0.05) printFigure({ name: '  5% loss vs 0% (target ≥ 0.5)', value: m((r) => r.windowed) / 1e3, unit: 'kB/s', limit: { value: clean / 1e3, label: '0% loss' } });
      }
    }
  } finally {
    await fast.stop();
    await zephyr.stop();
    await data.remove();
  }
}

/** utime + stime of a process, ms (Linux /proc). */
async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks of 10 ms
}

async function benchLoopback(): Promise<void> {
  section('Loopback UDP into `mcumgr serve --fast`: where the time per chunk goes, and the CLI');
  const data = await tempDir();
  const serve = await startServeProcess(['--data', data.path]);
  try {
    const bytes = await image(1024 * 1024 - 4096, 3);
    const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: serve.port }), { timeoutMs: 3000, tries: 3 });
    try {
      await uploadOnce(client, bytes); // warm up both processes
      const runs = 3;
      let chunks = 0;
      const server0 = await cpuMs(serve.child.pid!);
      const client0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < runs; i++) {
        await client.request(commands.image.erase, {});
        chunks += (await uploadImage(client, bytes)).chunks;
      }
      const wall = performance.now() - t0;
      const clientCpu = process.cpuUsage(client0);
      const serverCpu = (await cpuMs(serve.child.pid!)) - server0;
      const perChunk = (wall * 1000) / chunks;
      printFigure({ name: 'wall time per chunk (library client, 1 MiB, window ≤ 3)', value: perChunk, unit: 'µs' });
      printFigure({ name: '  client CPU per chunk', value: ((clientCpu.user + clientCpu.system) / chunks), unit: 'µs', limit: { value: perChunk, label: 'wall per chunk' } });
      printFigure({ name: '  server CPU per chunk (emulator process)', value: (serverCpu * 1000) / chunks, unit: 'µs', limit: { value: perChunk, label: 'wall per chunk' } });
      printFigure({ name: '  library upload rate', value: (runs * bytes.length) / (wall / 1000) / 1e6, unit: 'MB/s' });
    } finally {
      await client.close();
    }
    const file = join(data.path, 'app.bin');
    await writeFile(file, bytes);
    await runCli(['--udp', `127.0.0.1:${serve.port}`, 'image', 'erase']);
    const out = await runCli(['--udp', `127.0.0.1:${serve.port}`, '--json', 'image', 'upload', file]);
    const r = JSON.parse(out) as { elapsedMs: number; chunkSize: number; match: boolean };
    if (!r.match) throw new Error('CLI upload did not match');
    const raw = await rawWriteSpeed(bytes, r.chunkSize);
    printFigure({ name: '1 MiB through the CLI (upload itself, after start-up)', value: bytes.length / (r.elapsedMs / 1000) / 1e6, unit: 'MB/s', limit: { value: raw / 1e6, label: 'raw slot file write' } });
  } finally {
    await serve.stop();
    await data.remove();
  }
}

function runCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`mcumgr ${args.join(' ')} exited with ${code}`))));
  });
}

/** The transfer benchmark (registered in bench/run.ts as `transfer`). */
export async function benchTransfer(): Promise<void> {
  const only = process.env['MCUMGR_BENCH_TRANSFER'];
  if (!only || only.includes('loopback')) await benchLoopback();
  if (!only || only.includes('udp')) await benchUdpRelay();
  if (!only || only.includes('serial')) await benchSerialLinks();
}
