/** The client against the emulator and against scripted devices, over real UDP sockets on 127.0.0.1. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { startEmulator } from './helpers.ts';
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { startUdpRelay } from '../src/transport/udp-relay.ts';
import { commands } from '../src/core/commands/index.ts';
import { DeviceError, ProtocolError, TransportError } from '../src/core/errors.ts';
import { decodeHeader, encodePacket, type SmpHeader } from '../src/core/header.ts';
import { decodeCbor, encodeCbor } from '../src/core/cbor.ts';

/** A scripted device on UDP: `answer` returns the packets to send back for each request. */
async function fakeDevice(answer: (h: SmpHeader, body: unknown) => Uint8Array[]): Promise<{ port: number; requests: SmpHeader[]; close(): Promise<void> }> {
  const s = dgram.createSocket('udp4');
  const requests: SmpHeader[] = [];
  s.on('message', (msg, rinfo) => {
    const h = decodeHeader(msg);
    requests.push(h);
    for (const p of answer(h, decodeCbor(msg.subarray(8)))) s.send(p, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return { port: s.address().port, requests, close: () => new Promise((r) => s.close(() => r())) };
}

const reply = (h: SmpHeader, body: unknown, over: Partial<SmpHeader> = {}): Uint8Array =>
  encodePacket({ op: (h.op + 1) as 1 | 3, version: h.version, flags: 0, group: h.group, seq: h.seq, id: h.id, ...over }, encodeCbor(body));

async function clientTo(port: number, options: ConstructorParameters<typeof SmpClient>[1] = {}): Promise<SmpClient> {
  return new SmpClient(await openUdpClient({ host: '127.0.0.1', port }), { timeoutMs: 300, tries: 2, ...options });
}

test('client/udp: echo, params and info against the emulator', async () => {
  const emu = await startEmulator();
  try {
    const c = await emu.client();
    assert.deepEqual(await c.request(commands.os.echo, { d: 'hello' }), { r: 'hello' });
    assert.deepEqual(await c.request(commands.os.echoRead, { d: '' }), { r: '' });
    assert.deepEqual(await c.request(commands.os.params, {}), { buf_size: 2048, buf_count: 4 });
    assert.equal((await c.request(commands.os.info, { format: 's' })).output, 'Zephyr');
    assert.equal(c.version, 1);
  } finally {
    await emu.close();
  }
});

test('client/udp: device errors by name, v2 and v1', async () => {
  const emu = await startEmulator();
  try {
    const v2 = await emu.client();
    await assert.rejects(v2.request(commands.os.info, { format: 'q' }), (e: unknown) => {
      assert.ok(e instanceof DeviceError);
      assert.equal(e.code, 'DEVICE_ERROR');
      assert.equal(e.group, 0);
      assert.equal(e.rc, 2);
      assert.equal(e.errorName, 'OS_MGMT_ERR_INVALID_FORMAT');
      assert.equal(e.message, 'os: invalid format (err 0/2)');
      return true;
    });
    const v1 = await emu.client({ version: 0 });
    await assert.rejects(v1.request(commands.os.info, { format: 'q' }), (e: unknown) => e instanceof DeviceError && e.group === undefined && e.rc === 3 && e.message === 'invalid value in request (rc 3)');
    await assert.rejects(v1.requestRaw(0, 99, 'read', {}).then((r) => { throw new Error(JSON.stringify(r.body)); }), /"rc":8/);
  } finally {
    await emu.close();
  }
});

test('client/udp: many requests in flight, sequence numbers wrap and are never reused while in flight', async () => {
  const emu = await startEmulator();
  try {
    const c = await emu.client({ timeoutMs: 5000 });
    // 300 at once: more than the 256 sequence numbers, so some wait for a free one.
    const texts = Array.from({ length: 300 }, (_, i) => `m${i}`);
    const out = await Promise.all(texts.map((d) => c.request(commands.os.echo, { d })));
    assert.deepEqual(out.map((r) => r.r), texts);
    for (let i = 0; i < 600; i++) assert.equal((await c.request(commands.os.echo, { d: `s${i}` })).r, `s${i}`);
    assert.equal(c.stats.retransmissions, 0);
  } finally {
    await emu.close();
  }
});

test('client/udp: no device → TRANSPORT_TIMEOUT after every try', async () => {
  const silent = await fakeDevice(() => []);
  try {
    const c = await clientTo(silent.port, { timeoutMs: 100, tries: 3, noFallback: true });
    const t0 = Date.now();
    await assert.rejects(c.request(commands.os.echo, { d: 'x' }), (e: unknown) => e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT');
    assert.ok(Date.now() - t0 >= 280);
    assert.equal(silent.requests.length, 3);
    assert.ok(silent.requests.every((h) => h.seq === silent.requests[0]!.seq), 'a retransmission keeps its seq');
    assert.equal(c.stats.retransmissions, 2);
    await c.close();
  } finally {
    await silent.close();
  }
});

test('client/udp: dropped requests and responses are retransmitted; duplicates are ignored', async () => {
  const emu = await startEmulator();
  const relay = await startUdpRelay({
    target: { host: '127.0.0.1', port: emu.port },
    toDevice: { dropWhen: (n) => n % 5 === 0, duplicate: 0.3 },
    toClient: { dropWhen: (n) => n % 7 === 3, duplicate: 0.3 },
  });
  try {
    const c = await clientTo(relay.port, { timeoutMs: 150, tries: 6 });
    for (let i = 0; i < 60; i++) assert.equal((await c.request(commands.os.echo, { d: `r${i}` })).r, `r${i}`);
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => c.request(commands.os.echo, { d: `b${i}` })));
    assert.deepEqual(burst.map((r) => r.r), Array.from({ length: 40 }, (_, i) => `b${i}`));
    assert.ok(relay.stats.dropped > 10, `dropped ${relay.stats.dropped}`);
    assert.ok(relay.stats.duplicated > 5);
    assert.ok(c.stats.retransmissions > 0);
    assert.ok(c.stats.ignored > 0, 'duplicated responses were ignored');
    await c.close();
  } finally {
    await relay.close();
    await emu.close();
  }
});

test('relay: its timing counters count every delayed datagram and split each round trip at the device', async () => {
  const emu = await startEmulator();
  const relay = await startUdpRelay({ target: { host: '127.0.0.1', port: emu.port }, toDevice: { delayMs: 3 }, toClient: { delayMs: 3 } });
  try {
    const c = await clientTo(relay.port, { timeoutMs: 5000, tries: 3 });
    let roundTrips = 0;
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      assert.equal((await c.request(commands.os.echo, { d: `t${i}` })).r, `t${i}`);
      roundTrips += performance.now() - t0;
    }
    await c.close();
    const t = relay.stats.timing;
    assert.equal(t.delayed, 20, 'both ways of every echo were delayed');
    assert.equal(t.answered, 10, 'every answer matched its request by sequence number');
    assert.ok(t.lateMs >= 0);
    // The device's part lies inside the client's round trip (from the relay forwarding the request to the answer reaching it).
    assert.ok(t.deviceMs > 0 && t.deviceMs < roundTrips, `device ${t.deviceMs} ms of ${roundTrips} ms`);
  } finally {
    await relay.close();
    await emu.close();
  }
});

test('client/udp: stale and foreign responses are ignored', async () => {
  const dev = await fakeDevice((h, body) => [
    reply(h, { r: 'stale' }, { seq: (h.seq + 1) & 255 }), // wrong seq
    reply(h, { r: 'wrong id' }, { id: h.id + 1 }),
    reply(h, { r: 'wrong op' }, { op: 1 }),
    Uint8Array.of(1, 2, 3), // garbage
    reply(h, { r: (body as { d: string }).d }),
  ]);
  try {
    const c = await clientTo(dev.port);
    assert.equal((await c.request(commands.os.echo, { d: 'real' })).r, 'real');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(c.stats.ignored, 3);
    assert.equal(c.stats.malformed, 1);
    await c.close();
  } finally {
    await dev.close();
  }
});

test('client/udp: a response of the wrong shape is PROTOCOL_BAD_RESPONSE', async () => {
  const dev = await fakeDevice((h) => [reply(h, { r: 5 })]);
  try {
    const c = await clientTo(dev.port);
    await assert.rejects(c.request(commands.os.echo, { d: 'x' }), (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_BAD_RESPONSE' && /r: expected tstr, got uint/.test(e.message));
    await c.close();
  } finally {
    await dev.close();
  }
});

test('client/udp: falls back to v1 for an old device that answers with v1 headers', async () => {
  const old = await fakeDevice((h) => [reply(h, { r: 'old', rc: 0 }, { version: 0 })]);
  try {
    const c = await clientTo(old.port);
    assert.equal((await c.request(commands.os.echo, { d: 'x' })).r, 'old');
    assert.equal(c.version, 0);
    await c.request(commands.os.echo, { d: 'y' });
    assert.deepEqual(old.requests.map((h) => h.version), [1, 0]);
    await c.close();
  } finally {
    await old.close();
  }
});

test('client/udp: rc 13 (too new) makes the client resend in v1', async () => {
  const dev = await fakeDevice((h) => [h.version === 1 ? reply(h, { rc: 13 }) : reply(h, { r: 'v1 ok' })]);
  try {
    const c = await clientTo(dev.port);
    assert.equal((await c.request(commands.os.echo, { d: 'x' })).r, 'v1 ok');
    assert.equal(c.version, 0);
    assert.deepEqual(dev.requests.map((h) => h.version), [1, 0]);
    await c.close();
  } finally {
    await dev.close();
  }
});

test('client/udp: a device that ignores v2 entirely is reached in v1', async () => {
  const dev = await fakeDevice((h) => (h.version === 0 ? [reply(h, { r: 'v1 only' })] : []));
  try {
    const c = await clientTo(dev.port, { timeoutMs: 100, tries: 2 });
    assert.equal((await c.request(commands.os.echo, { d: 'x' })).r, 'v1 only');
    assert.equal(c.version, 0);
    await c.close();
  } finally {
    await dev.close();
  }
});

test('client/udp: AbortSignal cancels a request in flight', async () => {
  const silent = await fakeDevice(() => []);
  try {
    // A 10-minute timeout: only the abort (sent once the request is on the wire) can end it, and
    // the error says which ended it (no wall clock).
    const ac = new AbortController();
    const c = await clientTo(silent.port, { timeoutMs: 600_000, tries: 1, onPacket: (dir) => dir === 'tx' && setImmediate(() => ac.abort()) });
    await assert.rejects(c.request(commands.os.echo, { d: 'x' }, { signal: ac.signal }), (e: unknown) => e instanceof TransportError && e.code === 'TRANSPORT_ABORTED');
    await c.close();
    await assert.rejects(c.request(commands.os.echo, { d: 'x' }), (e: unknown) => e instanceof TransportError && e.code === 'TRANSPORT_CLOSED');
  } finally {
    await silent.close();
  }
});

test('client/udp: a request larger than the link MTU fails before sending', async () => {
  const emu = await startEmulator();
  try {
    const c = await emu.client();
    await assert.rejects(c.request(commands.os.echo, { d: 'x'.repeat(3000) }), (e: unknown) => e instanceof TransportError && e.code === 'TRANSPORT_TOO_LARGE');
  } finally {
    await emu.close();
  }
});

test('client/udp: reset — the device goes away briefly and answers again', async () => {
  const emu = await startEmulator();
  try {
    const c = await emu.client({ timeoutMs: 100, tries: 10 });
    let resets = 0;
    emu.server.hooks.on('reset', () => void resets++);
    assert.deepEqual(await c.request(commands.os.reset, {}), {});
    assert.equal((await c.request(commands.os.echo, { d: 'back' })).r, 'back');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(resets, 1);
    // a reset hook can refuse
    emu.server.hooks.on('os_reset', ({ force }) => (force ? undefined : { rc: 10 }));
    await assert.rejects(c.request(commands.os.reset, {}), (e: unknown) => e instanceof DeviceError && e.rc === 10);
    assert.deepEqual(await c.request(commands.os.reset, { force: true }), {});
  } finally {
    await emu.close();
  }
});

test('client/udp: IPv6 loopback', async (t) => {
  const { createUdpServer } = await import('../src/transport/udp.ts');
  const { createEmulator } = await import('../src/server/emulator.ts');
  const { tempDir } = await import('./helpers.ts');
  const udp = createUdpServer({ host: '::1', port: 0 });
  const dir = await tempDir();
  let server;
  try {
    server = await createEmulator({ dataDir: dir.path, transports: [udp] });
  } catch (e) {
    t.skip(`no IPv6 loopback on this machine: ${(e as Error).message}`);
    await dir.remove();
    return;
  }
  try {
    const c = new SmpClient(await openUdpClient({ host: '::1', port: udp.port }), { timeoutMs: 500 });
    assert.equal((await c.request(commands.os.echo, { d: 'v6' })).r, 'v6');
    assert.match(udp.describe(), /^udp \[::1\]:\d+$/);
    await c.close();
  } finally {
    await server.close();
    await dir.remove();
  }
});
