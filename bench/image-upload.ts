/**
 * Image upload throughput over loopback UDP into `mcumgr serve` (its own process, default
 * parameters): 256 KiB and 1 MiB images, one chunk in flight against the adaptive window, direct and
 * through a relay adding 20 ms of round-trip latency. Each figure is set beside the emulator's raw
 * write speed for the same bytes in the same chunk size (the limit of the device side), and the
 * windowed figure beside the one-in-flight one. Memory: the emulator's RSS growth across uploads.
 */
import { open, mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmpClient } from '../src/client/client.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { startUdpRelay } from '../src/transport/udp-relay.ts';
import { buildImage } from '../src/image/build.ts';
import { commands } from '../src/core/commands/index.ts';
import { startServeProcess, tempDir } from '../test/helpers.ts';
import { printFigure, section } from './report.ts';

export async function rawWriteSpeed(bytes: Uint8Array, chunk: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'mcumgr-bench-'));
  try {
    const t0 = performance.now();
    const h = await open(join(dir, 'slot.bin'), 'w');
    for (let off = 0; off < bytes.length; off += chunk) await h.write(bytes, off, Math.min(chunk, bytes.length - off), off);
    await h.sync();
    await h.close();
    return bytes.length / ((performance.now() - t0) / 1000);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function rssMb(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

/** Median of `runs` fresh uploads (the slot erased before each: no resume, no instant match). */
async function uploadRate(port: number, image: Uint8Array, maxWindow: number | undefined, runs = 3): Promise<{ rate: number; chunk: number }> {
  const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port }), { timeoutMs: 3000, tries: 3 });
  try {
    const rates: number[] = [];
    let chunk = 0;
    for (let i = 0; i < runs; i++) {
      await client.request(commands.image.erase, {});
      const t0 = performance.now();
      const r = await uploadImage(client, image, maxWindow === undefined ? {} : { maxWindow });
      if (r.match !== true) throw new Error('upload did not match');
      rates.push(image.length / ((performance.now() - t0) / 1000));
      chunk = r.chunkSize;
    }
    rates.sort((a, b) => a - b);
    return { rate: rates[Math.floor(rates.length / 2)]!, chunk };
  } finally {
    await client.close();
  }
}

export async function benchImageUpload(): Promise<void> {
  section('Image upload over loopback UDP into `mcumgr serve` (default parameters: buf_size 2048, buf_count 4, UDP MTU 1500)');
  const data = await tempDir();
  const serve = await startServeProcess(['--data', data.path]);
  try {
    const images = new Map<string, Uint8Array>();
    for (const [name, size] of [['256 KiB', 256 * 1024], ['1 MiB', 1024 * 1024 - 4096]] as const) {
      const payload = new Uint8Array(size).map((_, i) => (i * 2654435761) >>> 24);
      images.set(name, (await buildImage({ payload, version: '2.0.0' })).bytes);
    }
    await uploadRate(serve.port, images.get('256 KiB')!, undefined, 2); // warm up both processes' JIT
    const rssStart = await rssMb(serve.child.pid);
    for (const [name, image] of images) {
      const single = await uploadRate(serve.port, image, 1);
      const windowed = await uploadRate(serve.port, image, undefined);
      const raw = await rawWriteSpeed(image, windowed.chunk);
      printFigure({ name: `${name}, 1 chunk in flight`, value: single.rate / 1e6, unit: 'MB/s', limit: { value: raw / 1e6, label: 'raw slot write speed' } });
      printFigure({ name: `${name}, adaptive window`, value: windowed.rate / 1e6, unit: 'MB/s', limit: { value: raw / 1e6, label: 'raw slot write speed' } });
      printFigure({ name: `${name}, adaptive window vs target`, value: windowed.rate / 1e6, unit: 'MB/s', limit: { value: 10, label: 'target' } });
      printFigure({ name: `${name}, emulator RSS after upload`, value: await rssMb(serve.child.pid), unit: 'MB', limit: { value: rssStart, label: 'RSS before any upload' } });
    }
    // Through 20 ms of round trip the window is what counts; it is bounded by the device's
    // buf_count - 1. Measured with the default (4 buffers) and with a device reporting 8.
    const data8 = await tempDir();
    const serve8 = await startServeProcess(['--data', data8.path, '--buf-count', '8']);
    try {
      for (const [device, port] of [['buf_count 4 (default)', serve.port], ['buf_count 8', serve8.port]] as const) {
        const relay = await startUdpRelay({ target: { host: '127.0.0.1', port }, toDevice: { delayMs: 10 }, toClient: { delayMs: 10 } });
        try {
          const image = images.get('256 KiB')!;
          const single = await uploadRate(relay.port, image, 1, 1);
          const windowed = await uploadRate(relay.port, image, undefined, 1);
          printFigure({ name: `256 KiB via 20 ms RTT relay, ${device}, 1 in flight`, value: single.rate / 1e3, unit: 'KB/s' });
          printFigure({ name: `256 KiB via 20 ms RTT relay, ${device}, adaptive window`, value: windowed.rate / 1e3, unit: 'KB/s', limit: { value: single.rate / 1e3, label: '1 in flight' } });
        } finally {
          await relay.close();
        }
      }
    } finally {
      await serve8.stop();
      await data8.remove();
    }
  } finally {
    await serve.stop();
    await data.remove();
  }
}
