/**
 * Helpers for the load tests and the load benchmark: a `mcumgr serve` process on UDP and a pty,
 * a UDP flooder of expensive requests, the process's resident memory, the kernel's drop counter
 * of a UDP socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { encodeCbor } from '../src/core/cbor.ts';
import { encodePacket, Op } from '../src/core/header.ts';
import { SmpClient } from '../src/client/client.ts';
import { openSerialClient } from '../src/transport/serial.ts';
import { CLI } from './helpers.ts';

export interface ServeProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  /** The pty's path when started with `--pty`. */
  pty: string | undefined;
  output(): string;
  /** Resolves when the output (stdout and stderr) matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM (or the given signal); resolves with the exit code or signal and the time it took. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** Starts `mcumgr serve --udp 127.0.0.1:0 ARGS` and waits for its listening line. */
export async function startServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(CLI, ['serve', '--udp', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 4_000_000) out = out.slice(-1_000_000);
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const waitFor = (pattern: RegExp, timeoutMs = 20000): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = pattern.exec(out);
        if (m) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`serve did not print ${pattern} in ${timeoutMs} ms:\n${out.slice(-4000)}`));
      }, timeoutMs);
      void exited.then(({ code, signal }) => {
        if (!waiters.has(check)) return;
        waiters.delete(check);
        clearTimeout(timer);
        reject(new Error(`serve exited (${signal ?? code}) before printing ${pattern}:\n${out.slice(-4000)}`));
      });
      waiters.add(check);
      check();
    });
  let m: RegExpExecArray;
  try {
    m = await waitFor(/listening on udp [^\s,]+:(\d+)/);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  const pty = /pty (\/dev\/pts\/\d+)/.exec(out)?.[1];
  return {
    child,
    pid: child.pid!,
    port: Number(m[1]),
    pty,
    output: () => out,
    waitFor,
    async stop(signal = 'SIGTERM') {
      const t0 = performance.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const r = await exited;
      return { ...r, ms: performance.now() - t0 };
    },
  };
}

/** Resident memory of a process in bytes (Linux /proc). */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Samples a process's RSS every `everyMs` until stopped; returns the peak. */
export function sampleRss(pid: number, everyMs = 50): { stop(): Promise<number> } {
  let peak = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      peak = Math.max(peak, await rssOf(pid).catch(() => 0));
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return peak;
    },
  };
}

/** The kernel's count of datagrams dropped on a local UDP (IPv4) port's socket (/proc/net/udp `drops`). */
export async function kernelUdpDrops(port: number): Promise<number> {
  const text = await readFile('/proc/net/udp', 'utf8').catch(() => '');
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let drops = 0;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hexPort}`)) drops += Number(f[12] ?? 0);
  }
  return drops;
}

/** Creates the data directory with an 8 MiB file at /lfs/big.bin (the expensive thing to hash). */
export async function dataDirWithBigFile(dir: string, bytes = 8 * 1024 * 1024): Promise<void> {
  await mkdir(join(dir, 'fs', 'lfs'), { recursive: true });
  await writeFile(join(dir, 'fs', 'lfs', 'big.bin'), randomBytes(bytes));
}

/** An `fs hash sha256` request for /lfs/big.bin, optionally from an offset (defeats any cache). */
export function hashRequest(seq: number, off = 0): Uint8Array {
  return encodePacket({ op: Op.READ, version: 1, flags: 0, group: 8, seq: seq & 0xff, id: 2 }, encodeCbor(off === 0 ? { name: '/lfs/big.bin', type: 'sha256' } : { name: '/lfs/big.bin', type: 'sha256', off }));
}

export interface Flood {
  /** Stops sending; resolves once every datagram handed to the socket is sent. */
  stop(): Promise<void>;
  readonly sent: number;
  readonly answered: number;
  /** The flooder's own local port (for its kernel drop counter). */
  readonly localPort: number;
  /** Resolves once `answered` reaches `n` (true), or false after `timeoutMs`. */
  answeredAtLeast(n: number, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Atomics.waitAsync (Node 16+; its type is in TypeScript's ES2024 library, beyond this project's ES2023). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, index: number, value: number, timeoutMs: number): { value: Promise<string> | string } }).waitAsync;

/** Slots of the flooder's shared counters. */
const SENT = 0;
const ANSWERED = 1;

/**
 * The flooder, in plain JavaScript so that it runs in a worker thread without a loader: sends
 * `burst` datagrams every millisecond, cycling through the prepared requests, and counts sends
 * and answers in shared memory (the answer count is notified, for answeredAtLeast).
 */
const FLOOD_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const dgram = require('node:dgram');
const { port, requests, burst, counters } = workerData;
const c = new Int32Array(counters);
const socket = dgram.createSocket('udp4');
socket.on('message', () => { Atomics.add(c, ${ANSWERED}, 1); Atomics.notify(c, ${ANSWERED}); });
socket.on('error', () => {});
socket.connect(port, '127.0.0.1', () => {
  let seq = 0;
  let pending = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < burst; i++) {
      pending++;
      socket.send(requests[seq++ % requests.length], () => { pending--; Atomics.add(c, ${SENT}, 1); });
    }
  }, 1);
  parentPort.on('message', (m) => {
    if (m !== 'stop') return;
    clearInterval(timer);
    const drained = () => (pending > 0 ? setImmediate(drained) : parentPort.postMessage('stopped'));
    drained();
  });
  parentPort.postMessage({ localPort: socket.address().port });
});
`;

/**
 * Floods a UDP port with requests from a worker thread (its own event loop, as another client
 * device would have: the flood's sends never delay the echo client's reads in this thread):
 * `burst` datagrams every millisecond, the i-th built by `request(i)` (4096 are prepared and sent
 * in turn). Counts the answers.
 */
export async function startFlood(port: number, request: (seq: number) => Uint8Array = (seq) => hashRequest(seq), burst = 16): Promise<Flood> {
  const requests = Array.from({ length: 4096 }, (_, i) => request(i));
  const counters = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(FLOOD_WORKER, { eval: true, workerData: { port, requests, burst, counters: counters.buffer }, execArgv: [] });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const localPort = await new Promise<number>((resolve, reject) => {
    worker.once('message', (m: { localPort: number }) => resolve(m.localPort));
    worker.once('error', reject);
  });
  return {
    get sent() {
      return Atomics.load(counters, SENT);
    },
    get answered() {
      return Atomics.load(counters, ANSWERED);
    },
    localPort,
    async stop() {
      const stopped = new Promise<void>((resolve) => worker.once('message', () => resolve()));
      worker.postMessage('stop');
      await Promise.race([stopped, exited]);
    },
    async answeredAtLeast(n, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const now = Atomics.load(counters, ANSWERED);
        if (now >= n) return true;
        const left = deadline - performance.now();
        if (left <= 0) return false;
        await waitAsync(counters, ANSWERED, now, left).value;
      }
    },
    async close() {
      await worker.terminate();
    },
  };
}

/** An SMP client on a pty served by `mcumgr serve --pty`. */
export async function serialClient(path: string, timeoutMs = 5000, tries = 1): Promise<SmpClient> {
  return new SmpClient(await openSerialClient({ path }), { timeoutMs, tries });
}
