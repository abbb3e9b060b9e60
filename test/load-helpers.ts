/**
 * Helpers for the load tests and the load benchmark: a `mcumgr serve` process on UDP and a pty,
 * a UDP flooder of expensive requests, the process's resident memory, the kernel's drop counter
 * of a UDP socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
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
  /** Stops sending; resolves with the datagrams sent. */
  stop(): Promise<void>;
  readonly sent: number;
  readonly answered: number;
  /** The flooder's own local port (for its kernel drop counter). */
  readonly localPort: number;
  /** Resolves once `answered` reaches `n` (or never). */
  answeredAtLeast(n: number, timeoutMs: number): Promise<boolean>;
  close(): void;
}

/**
 * Floods a UDP port with requests: `burst` datagrams every millisecond, as fast as the loop
 * allows, each built by `request(seq)`. Counts the answers.
 */
export async function startFlood(port: number, request: (seq: number) => Uint8Array = (seq) => hashRequest(seq), burst = 16): Promise<Flood> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', () => resolve()));
  let sent = 0;
  let answered = 0;
  let seq = 0;
  const waiters = new Set<() => void>();
  socket.on('message', () => {
    answered++;
    for (const w of [...waiters]) w();
  });
  socket.on('error', () => {});
  let pending = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < burst; i++) {
      pending++;
      socket.send(request(seq++), () => {
        pending--;
        sent++;
      });
    }
  }, 1);
  return {
    get sent() {
      return sent;
    },
    get answered() {
      return answered;
    },
    localPort: socket.address().port,
    async stop() {
      clearInterval(timer);
      while (pending > 0) await new Promise((r) => setImmediate(r));
    },
    answeredAtLeast(n, timeoutMs) {
      return new Promise((resolve) => {
        const check = (): void => {
          if (answered >= n) {
            waiters.delete(check);
            clearTimeout(t);
            resolve(true);
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          resolve(false);
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {
      socket.close();
    },
  };
}

/** An SMP client on a pty served by `mcumgr serve --pty`. */
export async function serialClient(path: string, timeoutMs = 5000, tries = 1): Promise<SmpClient> {
  return new SmpClient(await openSerialClient({ path }), { timeoutMs, tries });
}
