/**
 * Echo round trips per second over loopback UDP, client in this process and the emulator in its
 * own (`mcumgr serve`), with 1 and with 16 requests in flight. The limit beside each figure is a
 * bare UDP ping-pong between two Node processes with the same payload size and concurrency: what
 * the sockets allow before any SMP work.
 */
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { commands } from '../src/core/commands/index.ts';
import { startServeProcess, tempDir } from '../test/helpers.ts';
import { printFigure, section } from './report.ts';

const DURATION_MS = 2000;

async function smpRate(port: number, inFlight: number): Promise<number> {
  const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port }), { timeoutMs: 2000, tries: 3 });
  await client.request(commands.os.echo, { d: 'warm' });
  let done = 0;
  const end = Date.now() + DURATION_MS;
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      await client.request(commands.os.echo, { d: 'hello' });
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const rate = done / ((performance.now() - t0) / 1000);
  await client.close();
  return rate;
}

/** A bare UDP echo server in a child process, answering each datagram as is. */
async function rawEchoServer(): Promise<{ port: number; stop(): void }> {
  const code = `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(m,r.port,r.address));s.bind(0,'127.0.0.1',()=>console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((res) => child.stdout!.once('data', (d: Buffer) => res(Number(d.toString().trim()))));
  return { port, stop: () => child.kill() };
}

async function rawRate(port: number, inFlight: number, size: number): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.connect(port, '127.0.0.1', () => r()));
  const msg = new Uint8Array(size);
  let done = 0;
  let outstanding = 0;
  const end = Date.now() + DURATION_MS;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (outstanding < inFlight && Date.now() < end) {
        outstanding++;
        s.send(msg);
      }
      if (outstanding === 0) resolve();
    };
    s.on('message', () => {
      outstanding--;
      done++;
      pump();
    });
    pump();
  });
  const rate = done / ((performance.now() - t0) / 1000);
  s.close();
  return rate;
}

export async function benchEcho(): Promise<void> {
  section('Echo round trips over loopback UDP (emulator in its own process)');
  const data = await tempDir();
  const serve = await startServeProcess(['--data', data.path]);
  const raw = await rawEchoServer();
  try {
    for (const n of [1, 16]) {
      const smp = await smpRate(serve.port, n);
      const bare = await rawRate(raw.port, n, 17);
      printFigure({ name: `SMP echo, ${n} in flight`, value: smp, unit: 'req/s', limit: { value: bare, label: 'bare UDP ping-pong' } });
      if (n === 16) printFigure({ name: `SMP echo, ${n} in flight vs target`, value: smp, unit: 'req/s', limit: { value: 20000, label: 'target' } });
    }
    // Idle memory of the emulator process.
    await new Promise((r) => setTimeout(r, 500));
    const status = await import('node:fs/promises').then((fs) => fs.readFile(`/proc/${serve.child.pid}/status`, 'utf8')).catch(() => '');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    if (Number.isFinite(rssKb)) printFigure({ name: 'emulator resident memory after the runs (idle)', value: rssKb / 1024, unit: 'MB', limit: { value: 80, label: 'target ceiling' } });
  } finally {
    raw.stop();
    await serve.stop();
    await data.remove();
  }
  // Idle memory of a fresh emulator that has served nothing.
  const fresh = await tempDir();
  const idle = await startServeProcess(['--data', fresh.path]);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const status = await import('node:fs/promises').then((fs) => fs.readFile(`/proc/${idle.child.pid}/status`, 'utf8')).catch(() => '');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    if (Number.isFinite(rssKb)) printFigure({ name: 'emulator resident memory, fresh and idle', value: rssKb / 1024, unit: 'MB', limit: { value: 80, label: 'target ceiling' } });
  } finally {
    await idle.stop();
    await fresh.remove();
  }
}
