/** Shared test helpers: an emulator on an ephemeral UDP port, temp dirs, spawning the CLI. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createEmulator, type Emulator, type EmulatorOptions } from '../src/server/emulator.ts';
import { createUdpServer } from '../src/transport/udp.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { SmpClient, type SmpClientOptions } from '../src/client/client.ts';
import { DeviceError } from '../src/core/errors.ts';
import assert from 'node:assert/strict';
import { cliBuildIsStale } from '../bin/freshness.mjs';
import { buildCli } from '../scripts/build-cli.mjs';

export const ROOT = new URL('..', import.meta.url).pathname;
export const CLI = join(ROOT, 'bin', 'mcumgr');

// Tests spawn bin/mcumgr, which runs the sources through tsx when dist/cli is older than them
// (never a stale build): correct, but each process then compiles on start, several times slower
// on a busy machine. A stale CLI bundle is rebuilt once here instead (a second or two).
if (cliBuildIsStale(ROOT)) await buildCli(ROOT);

export async function tempDir(prefix = 'mcumgr-test-'): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export interface TestEmulator {
  server: Emulator;
  port: number;
  dataDir: string;
  /** A new client on UDP to this emulator. */
  client(options?: SmpClientOptions): Promise<SmpClient>;
  close(): Promise<void>;
}

/** Starts an emulator on 127.0.0.1 with an ephemeral port and a temp data dir (unless given). */
export async function startEmulator(options: Partial<EmulatorOptions> & { port?: number } = {}): Promise<TestEmulator> {
  const dir = options.dataDir ? undefined : await tempDir();
  const dataDir = options.dataDir ?? dir!.path;
  const udp = createUdpServer({ host: '127.0.0.1', port: options.port ?? 0, mtu: options.bufSize ? Math.max(1500, options.bufSize) : 2048 });
  const server = await createEmulator({ resetDelayMs: 20, bootTimeMs: 20, ...options, dataDir, transports: [udp] });
  const clients: SmpClient[] = [];
  return {
    server,
    port: udp.port,
    dataDir,
    async client(clientOptions = {}) {
      const t = await openUdpClient({ host: '127.0.0.1', port: udp.port, mtu: 2048 });
      const c = new SmpClient(t, { timeoutMs: 1000, tries: 2, ...clientOptions });
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await server.close();
      await dir?.remove();
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI as a process and collects its output. `timeoutMs` (default 120 s) only guards against
 * a hang (the process is killed): no test asserts on how fast a process finishes.
 */
export function runCli(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI ${args.join(' ')} did not finish in ${options.timeoutMs ?? 120_000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Starts `mcumgr serve` as a process on an ephemeral port and waits for its "listening" line.
 * Returns the port and a stop function (SIGTERM, or SIGKILL with `kill(true)`). The device is
 * instant (`--fast`) unless `timing` asks for the emulator's default device timing.
 */
export async function startServeProcess(args: string[], options: { timing?: boolean } = {}): Promise<{ port: number; child: ChildProcess; output: () => string; stop(kill?: boolean): Promise<void> }> {
  const child = spawn(CLI, ['serve', '--udp', '127.0.0.1:0', ...(options.timing ? [] : ['--fast']), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    // A serve that does not come up is killed, never left running (it would keep the test file alive).
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start: ${out}`));
    }, 60000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on udp [^\s]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
  return {
    port,
    child,
    output: () => out,
    stop(kill = false) {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(kill ? 'SIGKILL' : 'SIGTERM');
      });
    },
  };
}

/** The DeviceError a request fails with; fails the test when it succeeds or fails otherwise. */
export async function deviceError(p: Promise<unknown>): Promise<DeviceError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DeviceError) return e;
    throw e;
  }
  assert.fail('expected a device error');
}

/** Deterministic pseudo-random bytes (xorshift32) for image and file payloads. */
export function payload(size: number, seed: number): Uint8Array {
  const p = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    p[i] = x & 0xff;
  }
  return p;
}
