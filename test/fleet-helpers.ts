/**
 * Emulated devices and CLI processes for the fleet tests. The devices are emulators in this
 * process, each on its own UDP port and data directory ({@link startDevices}); once
 * `mcumgr serve --devices N` exists it replaces them here, in this one function.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, ROOT, payload, startEmulator, tempDir, type TestEmulator } from './helpers.ts';
import { buildImage, loadSigningKey, parsePublicKey } from '../src/image/index.ts';
import { readImageState } from '../src/client/upgrade.ts';

export interface Devices {
  ports: number[];
  emulators: TestEmulator[];
  /** The running image of device i: version and confirmed. */
  running(i: number): Promise<{ version: string; confirmed: boolean }>;
  close(): Promise<void>;
}

/**
 * N emulated devices on loopback UDP. Devices whose index is in `signedOnly` trust a key: they boot
 * only signed images, so an unsigned upgrade reverts on them (the bootloader keeps the old image).
 */
export async function startDevices(n: number, options: { signedOnly?: readonly number[] } = {}): Promise<Devices> {
  const dir = await tempDir('mcumgr-fleet-devices-');
  const fixtures = join(ROOT, 'test', 'fixtures', 'imgtool');
  const signedOnly = new Set(options.signedOnly ?? []);
  let factory: Uint8Array | undefined;
  let keys;
  if (signedOnly.size > 0) {
    const key = await loadSigningKey(await readFile(join(fixtures, 'ecdsa-p256.pem'), 'utf8'));
    factory = (await buildImage({ payload: payload(20000, 1), version: '1.0.0', signingKey: key })).bytes;
    keys = [parsePublicKey(await readFile(join(fixtures, 'ecdsa-p256.pub.pem'), 'utf8'))];
  }
  const emulators: TestEmulator[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const signed = signedOnly.has(i);
      emulators.push(await startEmulator({ dataDir: join(dir.path, String(i)), ...(signed ? { image: { keys: keys!, factoryImage: () => factory! } } : {}) }));
    }
  } catch (e) {
    for (const em of emulators) await em.close();
    await dir.remove();
    throw e;
  }
  return {
    ports: emulators.map((e) => e.port),
    emulators,
    async running(i) {
      const c = await emulators[i]!.client();
      const s = (await readImageState(c)).find((x) => (x.image ?? 0) === 0 && x.active)!;
      return { version: s.version, confirmed: s.confirmed === true };
    },
    async close() {
      for (const em of emulators) await em.close();
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
