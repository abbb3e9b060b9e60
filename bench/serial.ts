/**
 * Serial figures, against `mcumgr serve --pty` in its own process:
 *
 * 1. Overhead: bytes on the wire per image byte for a 1 MiB image upload over a pty (client to
 *    device), beside the limit of the console framing alone (base64 4/3 × line 127/124 ≈ 1.366):
 *    what SMP headers, CBOR keys and offsets add on top, at the default 256-byte MTU and at 380
 *    (the most a default 384-byte net_buf takes).
 * 2. Throughput through a relay that paces each direction to 115200 baud (8N1: 10 bits a byte,
 *    11 520 bytes/s), beside that raw capacity. A real UART at 115200 cannot do better than the
 *    pace; the ratio shows what framing, protocol and round trips leave of it.
 * 3. Framing codec speed (encode and decode in this process), beside 115200 baud.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { SmpClient } from '../src/client/client.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { commands } from '../src/core/commands/index.ts';
import { ConsoleDecoder, consoleFrameSize, encodeConsoleFrame, encodeConsoleFrameZephyr } from '../src/framing/console.ts';
import { buildImage } from '../src/image/build.ts';
import { openRawSerialPort } from '../src/transport/serial-link.ts';
import { openSerialClient } from '../src/transport/serial.ts';
import { CLI, tempDir } from '../test/helpers.ts';
import { printFigure, section } from './report.ts';
import { startSocat, stopChild } from '../test/pty.ts';

const BAUD = 115200;
/** 8N1: a start bit, 8 data bits, a stop bit. */
export const BYTES_PER_SECOND = BAUD / 10;

/** `mcumgr serve --pty` as a process; resolves once the pty link exists. */
export async function servePty(args: string[], link: string): Promise<{ stop(): Promise<void> }> {
  const child = spawn(CLI, ['serve', '--pty', '--pty-link', link, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 20000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (/listening on pty/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
  return { stop: () => stopChild(child) };
}

/** Sends queued bytes no faster than `bytesPerSecond` (a token bucket refilled every millisecond). */
class Pacer {
  private queue: Uint8Array[] = [];
  private budget = 0;
  private last = performance.now();
  private readonly timer: ReturnType<typeof setInterval>;
  constructor(
    private readonly bytesPerSecond: number,
    private readonly write: (bytes: Uint8Array) => void,
  ) {
    this.timer = setInterval(() => this.tick(), 1);
  }
  push(bytes: Uint8Array): void {
    this.queue.push(bytes);
  }
  private tick(): void {
    const now = performance.now();
    // An idle line does not bank time: at most one millisecond of bytes carries over.
    this.budget = Math.min(this.budget + ((now - this.last) / 1000) * this.bytesPerSecond, this.queue.length ? Infinity : this.bytesPerSecond / 1000);
    this.last = now;
    while (this.queue.length > 0 && this.budget >= 1) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, Math.floor(this.budget));
      this.write(head.subarray(0, n));
      this.budget -= n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * A serial cable at `bytesPerSecond` each way: a new pty (at `clientLink`) whose traffic is paced
 * to and from the device's pty (`deviceLink`).
 */
export async function pacedRelay(deviceLink: string, clientLink: string, bytesPerSecond: number): Promise<{ stop(): Promise<void> }> {
  const socat = await startSocat([`PTY,raw,echo=0,link=${clientLink}`, 'STDIO'], 'pipe');
  const device = await openRawSerialPort(deviceLink);
  const toDevice = new Pacer(bytesPerSecond, (b) => device.write(Buffer.from(b)));
  const toClient = new Pacer(bytesPerSecond, (b) => socat.stdin!.write(b));
  socat.stdout!.on('data', (d: Buffer) => toDevice.push(new Uint8Array(d)));
  device.on('data', (d: Buffer) => toClient.push(new Uint8Array(d)));
  return {
    async stop() {
      toDevice.stop();
      toClient.stop();
      await new Promise<void>((resolve) => device.close(() => resolve()));
      await stopChild(socat);
    },
  };
}

/** Uploads `image` over the serial port at `path`; returns wire bytes each way and the time. */
async function upload(path: string, image: Uint8Array, mtu: number): Promise<{ sent: number; received: number; seconds: number; chunk: number; smpSent: number; framedSmp: number }> {
  const transport = await openSerialClient({ path, mtu });
  let smpSent = 0;
  let framedSmp = 0;
  let counting = false;
  const client = new SmpClient(transport, {
    timeoutMs: 5000,
    tries: 3,
    // SMP packets sent, and what the console framing alone makes of each (the framing's limit).
    onPacket: (dir, p) => {
      if (dir !== 'tx' || !counting) return;
      smpSent += p.length;
      framedSmp += consoleFrameSize(p.length);
    },
  });
  try {
    await client.request(commands.image.erase, {});
    const sent0 = transport.stats.bytesSent;
    const received0 = transport.stats.bytesReceived;
    const t0 = performance.now();
    counting = true;
    const r = await uploadImage(client, image, { chunkTimeoutMs: 5000 });
    counting = false;
    const seconds = (performance.now() - t0) / 1000;
    if (r.bytesSent !== image.length) throw new Error(`upload sent ${r.bytesSent} of ${image.length} bytes`);
    return { sent: transport.stats.bytesSent - sent0, received: transport.stats.bytesReceived - received0, seconds, chunk: r.chunkSize, smpSent, framedSmp };
  } finally {
    await client.close();
  }
}

function codecSpeed(): { encode: number; zephyrEncode: number; decode: number } {
  const packet = Uint8Array.from({ length: 380 }, (_, i) => (i * 7) & 0xff);
  const rounds = 20000;
  let t0 = performance.now();
  let framed: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < rounds; i++) framed = encodeConsoleFrame(packet);
  const encode = (rounds * packet.length) / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < rounds; i++) encodeConsoleFrameZephyr(packet);
  const zephyrEncode = (rounds * packet.length) / ((performance.now() - t0) / 1000);
  const decoder = new ConsoleDecoder();
  t0 = performance.now();
  for (let i = 0; i < rounds; i++) decoder.push(framed);
  const decode = (rounds * packet.length) / ((performance.now() - t0) / 1000);
  if (decoder.stats.packets !== rounds) throw new Error('decoder lost packets');
  return { encode, zephyrEncode, decode };
}

/** The serial benchmark (registered in bench/run.ts as `serial`). */
export async function benchSerial(): Promise<void> {
  section('Serial (console framing over a pty, mcumgr serve --pty --fast --buf-size 384 in its own process)');
  const tmp = await tempDir('mcumgr-bench-serial-');
  const deviceLink = join(tmp.path, 'device');
  // --fast: these figures are about the framing; bench/transfer.ts measures the device's timing.
  const device = await servePty(['--fast', '--data', join(tmp.path, 'data'), '--buf-size', '384', '--buf-count', '4'], deviceLink);
  try {
    const framingLimit = consoleFrameSize(124 * 3 * 100 - 4) / (124 * 3 * 100 - 4); // long packets: 4/3 × 127/124
    const big = await buildImage({ payload: new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff) });
    for (const mtu of [256, 380]) {
      const r = await upload(deviceLink, big.bytes, mtu);
      printFigure({ name: `1 MiB image, MTU ${mtu} (chunk ${r.chunk} B): wire bytes out per image byte`, value: r.sent / big.bytes.length, unit: 'B/B', limit: { value: framingLimit, label: 'console framing alone' } });
      printFigure({ name: `  wire bytes out per SMP packet byte`, value: r.sent / r.smpSent, unit: 'B/B', limit: { value: r.framedSmp / r.smpSent, label: 'console framing of these packets' } });
      printFigure({ name: `  answers: wire bytes in per image byte`, value: r.received / big.bytes.length, unit: 'B/B' });
      printFigure({ name: `  unpaced pty throughput`, value: big.bytes.length / r.seconds / 1024, unit: 'KiB/s' });
    }

    const clientLink = join(tmp.path, 'paced');
    const relay = await pacedRelay(deviceLink, clientLink, BYTES_PER_SECOND);
    try {
      const small = await buildImage({ payload: new Uint8Array(32 * 1024).map((_, i) => (i * 17) & 0xff) });
      for (const mtu of [256, 380]) {
        const r = await upload(clientLink, small.bytes, mtu);
        printFigure({
          name: `32 KiB image at 115200 baud (paced relay), MTU ${mtu}`,
          value: small.bytes.length / r.seconds / 1024,
          unit: 'KiB/s',
          limit: { value: BYTES_PER_SECOND / 1024, label: 'raw 115200 baud = bits/10' },
        });
        printFigure({ name: `  wire bytes out per second (line use)`, value: r.sent / r.seconds / 1024, unit: 'KiB/s', limit: { value: BYTES_PER_SECOND / 1024, label: 'line capacity' } });
      }
    } finally {
      await relay.stop();
    }
  } finally {
    await device.stop();
    await tmp.remove();
  }

  const speed = codecSpeed();
  printFigure({ name: 'framing: client encoder, SMP bytes per second', value: speed.encode / 1e6, unit: 'MB/s', limit: { value: BYTES_PER_SECOND / 1e6, label: '115200 baud' } });
  printFigure({ name: 'framing: Zephyr-exact encoder', value: speed.zephyrEncode / 1e6, unit: 'MB/s' });
  printFigure({ name: 'framing: decoder', value: speed.decode / 1e6, unit: 'MB/s' });
}
