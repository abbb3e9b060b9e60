/**
 * The management queue: one for every transport, one request at a time in arrival order, at
 * most buf_count packets held per transport, drops counted and reported (UDP on 127.0.0.1, and
 * the in-memory loopback transport or a pty as a second link).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCbor, encodeCbor } from '../src/core/cbor.ts';
import { commands } from '../src/core/commands/index.ts';
import { SmpClient } from '../src/client/client.ts';
import { createAgent, ZEPHYR_DEVICE_TIMING, type Agent } from '../src/server/agent.ts';
import type { SerialServerTransport } from '../src/transport/serial-server.ts';
import { openSerialClient } from '../src/transport/serial.ts';
import { encodePacket, Op } from '../src/core/header.ts';
import { createEmulator } from '../src/server/emulator.ts';
import type { ServerEvent } from '../src/server/server.ts';
import { formatServerEvent } from '../src/server/request-log.ts';
import { createUdpServer } from '../src/transport/udp.ts';
import { createLoopbackPair } from '../src/transport/loopback.ts';

const USER_GROUP = 64;

function request(seq: number, tag: string): Uint8Array {
  return encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: USER_GROUP, seq, id: 0 }, encodeCbor({ tag }));
}

test('queue: requests of UDP and loopback run one at a time in arrival order; each transport holds at most buf_count packets, the rest are dropped and counted', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcumgr-queue-'));
  const udp = createUdpServer({ host: '127.0.0.1', port: 0 });
  const loop = createLoopbackPair();
  const events: ServerEvent[] = [];
  const server = await createEmulator({ dataDir: dir, bufCount: 4, transports: [udp, loop.server], onEvent: (e) => events.push(e) });
  const log: string[] = [];
  let running = 0;
  let open: () => void = () => {};
  const gate = new Promise<void>((r) => (open = r));
  server.registerGroup({
    id: USER_GROUP,
    name: 'queue test',
    handlers: [
      {
        write: {
          fn: async ({ body }) => {
            const tag = (body as { tag: string }).tag;
            running++;
            assert.equal(running, 1, 'handlers never overlap');
            log.push(`start ${tag}`);
            if (tag === 'u0') await gate;
            await new Promise((r) => setImmediate(r));
            log.push(`end ${tag}`);
            running--;
            return { tag };
          },
        },
      },
    ],
  });
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.connect(udp.port, '127.0.0.1', () => r()));
  const answers: string[] = [];
  const udpAnswered = new Promise<void>((resolve) => {
    socket.on('message', () => {
      answers.push('udp');
      if (answers.filter((a) => a === 'udp').length === 4) resolve();
    });
  });
  loop.client.setReceiver(() => answers.push('loopback'));
  try {
    const sendUdp = (seq: number, tag: string): Promise<void> => new Promise((r) => socket.send(request(seq, tag), () => r()));
    await sendUdp(0, 'u0');
    while (log.length === 0) await new Promise((r) => setImmediate(r));
    await loop.client.send(request(1, 'l1'));
    while (server.queueLength < 1) await new Promise((r) => setImmediate(r));
    for (let i = 1; i <= 6; i++) await sendUdp(10 + i, `u${i}`);
    // u0 is processed, u1..u3 wait: 4 held. u4..u6 find no buffer.
    while (events.filter((e) => e.type === 'drop').length < 3) await new Promise((r) => setTimeout(r, 5));
    assert.equal(server.freeBuffers('udp'), 0);
    assert.equal(server.freeBuffers('loopback'), 3);
    open();
    await udpAnswered;
    while (!answers.includes('loopback')) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(log, ['start u0', 'end u0', 'start l1', 'end l1', 'start u1', 'end u1', 'start u2', 'end u2', 'start u3', 'end u3']);
    const c = server.counterFor('udp');
    assert.deepEqual([c.requests, c.responses, c.dropped], [4, 4, 3]);
    const drops = events.filter((e) => e.type === 'drop');
    assert.ok(drops.every((e) => e.type === 'drop' && e.transport === 'udp' && /buffers full \(4 held\)/.test(e.reason)));
    assert.match(formatServerEvent(drops[0]!), /^udp 127\.0\.0\.1:\d+ dropped \d+ bytes: buffers full \(4 held\)$/);
    const req = events.find((e) => e.type === 'request' && e.transport === 'loopback')!;
    assert.match(formatServerEvent(req), /^loopback loopback \(64\/0 write\) seq 1: ok in \d+\.\d ms$/);
    while (server.freeBuffers('udp') < 4) await new Promise((r) => setTimeout(r, 5));
  } finally {
    socket.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('queue: a truncated header and an oversize datagram are counted as undecodable and reported', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcumgr-queue-'));
  const udp = createUdpServer({ host: '127.0.0.1', port: 0, mtu: 64 });
  const events: ServerEvent[] = [];
  const server = await createEmulator({ dataDir: dir, transports: [udp], onEvent: (e) => events.push(e) });
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((r) => socket.connect(udp.port, '127.0.0.1', () => r()));
    socket.send(new Uint8Array([1, 2, 3]));
    socket.send(new Uint8Array(100));
    while (events.length < 2) await new Promise((r) => setTimeout(r, 5));
    assert.equal(server.counterFor('udp').undecodable, 2);
    const lines = events.map(formatServerEvent).sort();
    assert.match(lines[0]!, /^udp 127\.0\.0\.1:\d+ undecodable \(100 bytes\): datagram of 100 bytes exceeds the MTU 64$/);
    assert.match(lines[1]!, /^udp 127\.0\.0\.1:\d+ undecodable \(3 bytes\): truncated header \(3 bytes\)$/);
  } finally {
    socket.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('queue: a long fs hash lets the waiting requests of another transport run; its own transport waits its turn', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcumgr-queue-'));
  await mkdir(join(dir, 'fs', 'lfs'), { recursive: true });
  await writeFile(join(dir, 'fs', 'lfs', 'big.bin'), new Uint8Array(16 * 1024 * 1024));
  const udp = createUdpServer({ host: '127.0.0.1', port: 0 });
  const loop = createLoopbackPair();
  const order: string[] = [];
  const server = await createEmulator({ dataDir: dir, transports: [udp, loop.server], onEvent: (e) => void (e.type === 'request' && order.push(`${e.transport} ${e.group}/${e.id}`)) });
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((r) => socket.connect(udp.port, '127.0.0.1', () => r()));
    const hash = encodePacket({ op: Op.READ, version: 1, flags: 0, group: 8, seq: 1, id: 2 }, encodeCbor({ name: '/lfs/big.bin', type: 'sha256' }));
    const echo = (seq: number): Uint8Array => encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: 0, seq, id: 0 }, encodeCbor({ d: 'x' }));
    socket.send(hash);
    socket.send(echo(2));
    while (server.queueLength < 1) await new Promise((r) => setImmediate(r));
    const answered = new Promise<void>((resolve) => loop.client.setReceiver(() => resolve()));
    await loop.client.send(echo(3));
    await answered;
    // The loopback echo was answered while the hash ran; the UDP echo behind the hash was not.
    assert.deepEqual(order, ['loopback 0/0']);
    while (order.length < 3) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(order, ['loopback 0/0', 'udp 8/2', 'udp 0/0']);
  } finally {
    socket.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('queue: serial lines held in the receive line buffers (Zephyr timing) are taken when a long UDP request lets others run, not after it (pty)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mcumgr-queue-'));
  const link = join(dir, 'pty');
  let agent: Agent;
  try {
    agent = await createAgent({ dataDir: join(dir, 'device'), udp: { host: '127.0.0.1', port: 0 }, serial: { pty: link }, hostNetwork: false, deviceTiming: ZEPHYR_DEVICE_TIMING });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    if (/socat not found/.test(String(e))) return t.skip('socat is not installed');
    throw e;
  }
  let echoDone = false;
  agent.server.hooks.on('cmd_done', ({ group, id }) => {
    if (group === 0 && id === 0) echoDone = true;
  });
  let started: () => void = () => {};
  const longStarted = new Promise<void>((r) => (started = r));
  // A long request that yields until the serial echo has been processed, or 5 s.
  agent.server.registerGroup({
    id: USER_GROUP,
    name: 'long',
    handlers: [
      {
        write: {
          fn: async ({ letOthersRun }) => {
            started();
            const deadline = performance.now() + 5000;
            while (!echoDone && performance.now() < deadline) {
              await letOthersRun?.();
              await new Promise((r) => setImmediate(r));
            }
            return { during: echoDone };
          },
        },
      },
    ],
  });
  const client = new SmpClient(await openSerialClient({ path: link }), { timeoutMs: 10_000, tries: 1 });
  const socket = dgram.createSocket('udp4');
  try {
    await client.request(commands.os.echo, { d: 'warm' });
    echoDone = false;
    await new Promise<void>((r) => socket.connect(agent.udp!.port, '127.0.0.1', () => r()));
    const answer = new Promise<Uint8Array>((resolve) => socket.once('message', (m) => resolve(new Uint8Array(m))));
    socket.send(request(1, 'long'));
    await longStarted;
    assert.equal((await client.request(commands.os.echo, { d: 'meanwhile' })).r, 'meanwhile');
    const rsp = decodeCbor((await answer).subarray(8)) as { during?: boolean };
    assert.equal(rsp.during, true, 'the echo was answered while the long request ran');
    const serial = agent.listening().find((x) => x.kind === 'serial') as SerialServerTransport;
    assert.equal(serial.stats.linesDropped, 0);
  } finally {
    socket.close();
    await client.close();
    await agent.close();
    await rm(dir, { recursive: true, force: true });
  }
});
