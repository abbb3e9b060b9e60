/**
 * A real nats-server with JetStream for the fleet tests: on a free loopback port, its store in a
 * temporary directory, stopped (and the directory removed) at the end. Debian installs it as
 * /usr/sbin/nats-server; {@link natsServerPath} is undefined when it is absent (the tests then skip,
 * saying why).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { tempDir } from './helpers.ts';

export function natsServerPath(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    const p = join(d, 'nats-server');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

export const NATS_SKIP = natsServerPath() === undefined ? 'nats-server is not installed (apt-get install nats-server)' : false;

export interface NatsServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM) and starts it again on the same port and store: JetStream keeps its file storage. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function startProcess(bin: string, port: number, store: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['-js', '-sd', store, '-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nats-server did not start:\n${out}`));
    }, 60000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /Listening for client connections on [^\s]+:(\d+)/.exec(out);
      if (m && /Server is ready/.test(out)) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stderr!.off('data', onData);
        resolve({ child, port: Number(m[1]) });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${out}`));
    });
  });
}

function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Starts nats-server with JetStream on a free loopback port (`-p -1`: the server picks it). */
export async function startNatsServer(): Promise<NatsServer> {
  const bin = natsServerPath();
  if (!bin) throw new Error('nats-server is not installed');
  const dir = await tempDir('mcumgr-nats-');
  let { child, port } = await startProcess(bin, -1, dir.path);
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    async restart() {
      await stopProcess(child);
      ({ child, port } = await startProcess(bin, port, dir.path));
    },
    async stop() {
      await stopProcess(child);
      await dir.remove();
    },
  };
}
