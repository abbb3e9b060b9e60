/**
 * Emulated devices and CLI processes for the fleet tests. The devices are one real
 * `mcumgr serve --devices N` process (N devices on consecutive loopback UDP ports, each with its own
 * data directory, {@link startDevices}); the gateways, controller and fleet commands are CLI
 * processes ({@link spawnCli}).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { CLI, payload, tempDir } from './helpers.ts';
import { buildImage } from '../src/image/index.ts';
import { readImageState } from '../src/client/upgrade.ts';
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient } from '../src/transport/udp.ts';

export interface Devices {
  /** UDP port of device i. */
  ports: number[];
  /** The `serve --devices` process. */
  pid: number;
  /** The running image of device i: version and confirmed. */
  running(i: number): Promise<{ version: string; confirmed: boolean }>;
  /** Resident memory of the serve process now and at its peak, in bytes (Linux /proc). */
  memory(): Promise<{ rss: number; peak: number }>;
  close(): Promise<void>;
}

/**
 * N emulated devices in one `mcumgr serve --devices N --fast` process. Devices whose index is in
 * `revert` misbehave with serve's `revert` fault (a new image never confirms itself, so MCUboot
 * reverts it at the next boot): serve picks the faulty devices by seed, and the returned `ports`
 * are ordered so that device i of the caller is a reverting one exactly when i is in `revert`.
 */
export async function startDevices(n: number, options: { revert?: readonly number[] } = {}): Promise<Devices> {
  const revert = new Set(options.revert ?? []);
  for (const i of revert) if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new RangeError(`revert index ${i} is not a device of ${n}`);
  const dir = await tempDir('mcumgr-fleet-devices-');
  const faultArgs = revert.size > 0 ? ['--fail-rate', String(revert.size / n), '--fail-seed', '1', '--fail-kinds', 'revert'] : [];
  const serve = spawnCli(['serve', '--devices', String(n), '--udp', '127.0.0.1:0', '--data', dir.path, '--fast', '--json', ...faultArgs]);
  let line: { basePort: number; faults?: { revert: number[] } };
  try {
    // One JSON line once every device listens.
    line = JSON.parse((await serve.waitFor(/^(\{.*"basePort".*\})\n/m, 300_000))[1]!) as typeof line;
  } catch (e) {
    await serve.kill('SIGKILL');
    await dir.remove();
    throw e;
  }
  const farm = Array.from({ length: n }, (_, i) => line.basePort + i);
  const faulty = new Set(line.faults?.revert ?? []);
  const good = farm.filter((_, i) => !faulty.has(i));
  const bad = farm.filter((_, i) => faulty.has(i));
  if (bad.length !== revert.size) {
    await serve.kill('SIGKILL');
    await dir.remove();
    throw new Error(`serve made ${bad.length} devices revert, not ${revert.size}: ${serve.stdout()}`);
  }
  const ports = Array.from({ length: n }, (_, i) => (revert.has(i) ? bad.shift()! : good.shift()!));
  const pid = serve.child.pid!;
  return {
    ports,
    pid,
    async running(i) {
      const c = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: ports[i]!, mtu: 2048 }), { timeoutMs: 2000, tries: 3 });
      try {
        const s = (await readImageState(c)).find((x) => (x.image ?? 0) === 0 && x.active)!;
        return { version: s.version, confirmed: s.confirmed === true };
      } finally {
        await c.close();
      }
    },
    async memory() {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
      return { rss: kb('VmRSS'), peak: kb('VmHWM') };
    },
    async close() {
      await serve.kill('SIGTERM');
      await dir.remove();
    },
  };
}

/** An unsigned MCUboot image file of `version`. */
export async function writeImage(path: string, version: string, seed: number, size = 48 * 1024): Promise<string> {
  await writeFile(path, (await buildImage({ payload: payload(size, seed), version })).bytes);
  return path;
}

/** A CLI process whose output lines can be waited for (no sleeps: the test waits for what it prints). */
export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout or stderr has matched `re` (at any point so far). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  exited(): Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(CLI, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const l of listeners) l();
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(re, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = re.exec(out) ?? re.exec(err);
          if (m) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
          return m !== null;
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`${args.join(' ')}: no ${re} in ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`));
        }, timeoutMs);
        listeners.add(check);
        if (!check()) void exit.then(() => listeners.has(check) && (listeners.delete(check), clearTimeout(timer), reject(new Error(`${args.join(' ')} exited without ${re}\nstdout: ${out}\nstderr: ${err}`))));
      });
    },
    exited: () => exit,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exit;
    },
  };
}
