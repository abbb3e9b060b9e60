/**
 * The transfer engine: the RTO estimator against RFC 6298 arithmetic and recorded RTT series, the
 * window, and uploads that complete with the right hash through every impairment of the issue:
 * loss, duplication, reordering (a real UDP relay on loopback), a device that stalls for 3 s in
 * the middle of an upload, and a serial device whose receive line buffers overrun (a real pty).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RtoEstimator, WindowControl, chunkRetryPolicy, firstChunkRetryPolicy, runOffsetTransfer } from '../src/client/transfer-engine.ts';
import { startEmulator, tempDir, ROOT } from './helpers.ts';
import { startUdpRelay, type LinkImpairment } from '../src/transport/udp-relay.ts';
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient, parseUdpConnstring } from '../src/transport/udp.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { downloadFile, uploadFile } from '../src/client/fs-transfer.ts';
import { readImageState } from '../src/client/upgrade.ts';
import { buildImage } from '../src/image/build.ts';
import { bytesEqual } from '../src/core/bytes.ts';
import { Group } from '../src/core/commands/command.ts';
import { createAgent, ZEPHYR_DEVICE_TIMING } from '../src/server/agent.ts';
import { openSerialClient } from '../src/transport/serial.ts';
import type { SerialServerTransport } from '../src/transport/serial-server.ts';
import { UsageError } from '../src/core/errors.ts';

function series(name: string): number[] {
  return (JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', name), 'utf8')) as { rttMs: number[] }).rttMs;
}

test('RTO: RFC 6298 arithmetic, floor, ceiling and backoff', () => {
  const rto = new RtoEstimator({ floorMs: 30, ceilingMs: 3000 });
  assert.equal(rto.timeoutMs, 1000, 'before any sample: 1 s');
  rto.sample(100);
  assert.equal(rto.srtt, 100);
  assert.equal(rto.rttvar, 50);
  assert.equal(rto.timeoutMs, 300, 'SRTT + 4 RTTVAR');
  rto.sample(200);
  // RTTVAR = 3/4·50 + 1/4·|100−200| = 62.5; SRTT = 7/8·100 + 1/8·200 = 112.5
  assert.equal(rto.rttvar, 62.5);
  assert.equal(rto.srtt, 112.5);
  assert.equal(rto.timeoutMs, 362.5);
  rto.backoff();
  assert.equal(rto.timeoutMs, 725);
  rto.backoff();
  rto.backoff();
  assert.equal(rto.timeoutMs, 2900);
  rto.backoff();
  assert.equal(rto.timeoutMs, 3000, 'backoff stops at the ceiling (-t)');
  rto.sample(112.5);
  assert.ok(rto.timeoutMs < 400, 'a fresh sample ends the backoff');
  const fast = new RtoEstimator({ floorMs: 30 });
  for (let i = 0; i < 50; i++) fast.sample(0.2);
  assert.equal(fast.timeoutMs, 30, 'never below the floor');
});

for (const [file, label] of [
  ['rtt-udp-20ms.json', 'UDP, 20 ms RTT, 1% loss'],
  ['rtt-serial-512.json', 'serial pty, mtu 512, Zephyr-like device'],
] as const) {
  test(`RTO on a recorded RTT series (${label}): few spurious timeouts, no gross over-wait`, () => {
    const rtts = series(file);
    assert.ok(rtts.length >= 100);
    const rto = new RtoEstimator({ floorMs: 30, ceilingMs: 3000 });
    let spurious = 0;
    const timeouts: number[] = [];
    for (const [i, r] of rtts.entries()) {
      // The timeout in force when this chunk was sent (after the first few samples settle it).
      if (i >= 5) {
        timeouts.push(rto.timeoutMs);
        if (r > rto.timeoutMs) spurious++;
      }
      rto.sample(r);
      assert.ok(rto.timeoutMs >= 30 && rto.timeoutMs <= 3000);
    }
    const sorted = [...rtts].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const meanTimeout = timeouts.reduce((a, b) => a + b, 0) / timeouts.length;
    assert.ok(spurious / timeouts.length <= 0.03, `${spurious} of ${timeouts.length} samples exceeded the RTO`);
    assert.ok(meanTimeout <= 30 + 6 * median, `mean RTO ${meanTimeout.toFixed(1)} ms against a median RTT of ${median} ms`);
  });
}

test('retry policy: backoff to the ceiling, patience of tries × ceiling', () => {
  const p = chunkRetryPolicy(50, { tries: 3, ceilingMs: 1000 });
  // 50+100+200+400+1000+1000+1000 = 3750 ≥ 3000
  assert.deepEqual({ ...p }, { timeoutMs: 50, tries: 7, backoffMaxMs: 1000 });
  assert.equal(chunkRetryPolicy(3000, { tries: 3, ceilingMs: 3000 }).tries, 3, 'an RTO at the ceiling: exactly -r tries');
  // The first chunk: sent every ceiling, for as long as tries × the erase allowance.
  assert.deepEqual({ ...firstChunkRetryPolicy({ tries: 3, ceilingMs: 3000, firstChunkTimeoutMs: 30000 }) }, { timeoutMs: 3000, tries: 30 });
  assert.deepEqual({ ...firstChunkRetryPolicy({ tries: 2, ceilingMs: 1000, firstChunkTimeoutMs: 1000 }) }, { timeoutMs: 1000, tries: 2 }, 'fs: -r tries of -t');
});

test('window: slow start, halving (rounded up) on loss, rarer probes of a size that keeps losing', () => {
  const w = new WindowControl(3);
  assert.equal(w.size, 1);
  w.ack();
  w.ack();
  assert.equal(w.size, 3, 'slow start to buf_count − 1');
  w.loss();
  assert.equal(w.size, 2, 'halved, rounded up: 3 → 2');
  const acksTo = (size: number): number => {
    let n = 0;
    while (w.size < size && n < 10000) {
      w.ack();
      n++;
    }
    return n;
  };
  const first = acksTo(3);
  assert.ok(first >= 30, `the size that lost (3) right after growing to it is probed again after ${first} acks`);
  w.loss();
  assert.equal(w.size, 2);
  const second = acksTo(3);
  assert.ok(second >= 120, `and after it lost again, only after ${second}`);
  w.loss();
  w.loss();
  assert.equal(w.size, 1, '2 → 1');
});

test('window without probes (UDP: the device announced its buffers): starts full, a loss only halves, the size comes back within a few acks', () => {
  const w = new WindowControl(3, false);
  assert.equal(w.size, 3, 'no slow start: the device announced buf_count − 1 buffers');
  for (let round = 0; round < 5; round++) {
    w.loss();
    assert.equal(w.size, 2);
    let n = 0;
    while (w.size < 3 && n < 100) {
      w.ack();
      n++;
    }
    assert.ok(n <= 2, `round ${round}: back to 3 after ${n} acks`);
  }
});

test('first chunk policy: resent after 1 s, doubling to -t, waiting tries × the erase timeout in all', () => {
  const p = chunkRetryPolicy(1000, { tries: 3, ceilingMs: 3000 }, 3 * 30000);
  assert.equal(p.timeoutMs, 1000);
  assert.equal(p.backoffMaxMs, 3000);
  // 1000 + 2000 + 3000 × 29 = 90000
  assert.equal(p.tries, 31);
});

test('UDP connstring: mtu=N, and clear errors', () => {
  assert.deepEqual(parseUdpConnstring('127.0.0.1:1337,mtu=2500'), { host: '127.0.0.1', port: 1337, mtu: 2500 });
  assert.deepEqual(parseUdpConnstring('[::1]:9'), { host: '::1', port: 9 });
  assert.throws(() => parseUdpConnstring('127.0.0.1:1337,mtu=abc'), UsageError);
  assert.throws(() => parseUdpConnstring('127.0.0.1:1337,mtu=70000'), UsageError);
  assert.throws(() => parseUdpConnstring('127.0.0.1:1337,baud=9'), /unknown setting "baud"/);
});

function payload(size: number, seed: number): Uint8Array {
  const p = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    p[i] = x >>> 24;
  }
  return p;
}

/** Uploads an image and a file and downloads the file back through a relay with `impairment` on both ways. */
async function throughRelay(impairment: LinkImpairment, seed: number): Promise<void> {
  const emu = await startEmulator();
  const relay = await startUdpRelay({ target: { host: '127.0.0.1', port: emu.port }, toDevice: impairment, toClient: impairment });
  const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: relay.port, mtu: 1500 }), { timeoutMs: 2000, tries: 3 });
  try {
    const img = await buildImage({ payload: payload(160 * 1024, seed), version: '3.1.4' });
    const r = await uploadImage(client, img.bytes);
    assert.equal(r.match, true);
    const slot1 = (await readImageState(client)).find((s) => s.slot === 1);
    assert.ok(slot1?.hash && bytesEqual(slot1.hash, img.hash), 'the secondary slot holds the image');
    const file = payload(96 * 1024, seed + 1);
    const up = await uploadFile(client, '/lfs/impaired.bin', file);
    assert.equal(up.verified?.type, 'sha256');
    const down = await downloadFile(client, '/lfs/impaired.bin');
    assert.ok(bytesEqual(down.data, file));
    assert.equal(down.verified?.type, 'sha256');
  } finally {
    await client.close();
    await relay.close();
    await emu.close();
  }
}

test('engine: 5% datagram loss each way, image and fs transfers complete with the right hash', () => throughRelay({ delayMs: 2, drop: 0.05 }, 11));
test('engine: 10% duplicated datagrams each way', () => throughRelay({ delayMs: 2, duplicate: 0.1 }, 12));
test('engine: 10% of datagrams reordered (held back 5 ms) each way', () => throughRelay({ delayMs: 2, reorder: 0.1, reorderMs: 5 }, 13));

test('engine: the chunks of a window that time out together back the RTO off once (handler without a device: it reports each chunk sent twice, then answers)', async () => {
  const timeouts = new Map<number, number>();
  let sent = 0;
  let retransmitted = 0;
  let allSent!: () => void;
  let allRetransmitted!: () => void;
  const windowSent = new Promise<void>((r) => (allSent = r));
  const barrier = new Promise<void>((r) => (allRetransmitted = r));
  const stats = await runOffsetTransfer(
    {
      chunkLength: (off, limit) => Math.min(limit, 1000 - off),
      async send(off, len, request) {
        if (!timeouts.has(off)) timeouts.set(off, request.timeoutMs);
        if (off >= 100 && off < 400) {
          // The three chunks of the first window are all sent, then all time out once, before any answer.
          if (++sent === 3) allSent();
          await windowSent;
          request.onRetransmit?.(2);
          if (++retransmitted === 3) allRetransmitted();
          await barrier;
        }
        return { kind: 'offset', off: off + len };
      },
    },
    { total: 1000, start: 0, maxWindow: 3, maxChunk: 100, probeLostWindows: false, timing: { ceilingMs: 60_000, tries: 3, firstChunkTimeoutMs: 30_000 } },
  );
  assert.equal(stats.off, 1000);
  assert.equal(stats.retransmissions, 3);
  assert.deepEqual([100, 200, 300].map((o) => timeouts.get(o)), [1000, 1000, 1000], 'no sample yet: the initial RTO of 1 s');
  assert.equal(timeouts.get(400), 2000, 'one loss event: one doubling (not 8 s)');
});

test('engine: the params request is lost: sent again after about a second, not after -t', { timeout: 120_000 }, async () => {
  const emu = await startEmulator();
  let params = 0;
  // The first OS params request (group 0, id 6) is dropped.
  const isParams = (p: Uint8Array): boolean => p.length >= 8 && ((p[4]! << 8) | p[5]!) === Group.OS && p[7] === 6;
  const relay = await startUdpRelay({ target: { host: '127.0.0.1', port: emu.port }, toDevice: { dropWhen: (_n, p) => isParams(p) && ++params === 1 } });
  // A request that waited for -t would wait 10 minutes: the test's timeout fails it first.
  const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: relay.port }), { timeoutMs: 600_000, tries: 1 });
  try {
    const img = await buildImage({ payload: payload(8 * 1024, 41), version: '1.2.4' });
    const r = await uploadImage(client, img.bytes, { firstChunkTimeoutMs: 600_000 });
    assert.equal(r.match, true);
    assert.equal(relay.stats.dropped, 1);
    assert.equal(params, 2, 'the params request was sent twice');
  } finally {
    await client.close();
    await relay.close();
    await emu.close();
  }
});

for (const direction of ['toDevice', 'toClient'] as const) {
  test(`engine: the first image chunk's ${direction === 'toDevice' ? 'request' : 'answer'} is lost: sent again after about a second (same upload resumed), not after the erase timeout`, { timeout: 120_000 }, async () => {
    const emu = await startEmulator();
    let firstChunks = 0;
    // The first image upload datagram (group 1, id 1) in that direction is dropped.
    const isUpload = (p: Uint8Array): boolean => p.length >= 8 && ((p[4]! << 8) | p[5]!) === Group.IMAGE && p[7] === 1;
    const impairment: LinkImpairment = { dropWhen: (_n, p) => isUpload(p) && ++firstChunks === 1 };
    const relay = await startUdpRelay({ target: { host: '127.0.0.1', port: emu.port }, [direction]: impairment });
    // A first chunk that waited for its timeout would wait 10 minutes: the test's timeout fails it first.
    const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: relay.port }), { timeoutMs: 2000, tries: 1 });
    try {
      const img = await buildImage({ payload: payload(40 * 1024, 31), version: '1.2.3' });
      const r = await uploadImage(client, img.bytes, { firstChunkTimeoutMs: 600_000 });
      assert.equal(r.match, true);
      assert.equal(relay.stats.dropped, 1);
      assert.ok(r.retransmissions >= 1, 'the first chunk was sent again');
      assert.equal(r.resumedAt, 0, 'the answer to the repeat is not taken for a resume');
      const slot1 = (await readImageState(client)).find((s) => s.slot === 1);
      assert.ok(slot1?.hash && bytesEqual(slot1.hash, img.hash), 'the secondary slot holds the image');
    } finally {
      await client.close();
      await relay.close();
      await emu.close();
    }
  });
}

test('engine: a device that stalls for 3 s in the middle of an upload is waited for (no failure, -t 1 s, -r 3)', async () => {
  const emu = await startEmulator();
  let stalled = false;
  let uploads = 0;
  // The 40th upload request holds the management queue for 3 s (a device busy with something else).
  emu.server.hooks.on('cmd_recv', async ({ group, id }) => {
    if (group !== Group.IMAGE || id !== 1 || ++uploads !== 40) return;
    stalled = true;
    await new Promise((r) => setTimeout(r, 3000));
  });
  const client = await emu.client({ timeoutMs: 1000, tries: 3 });
  try {
    const img = await buildImage({ payload: payload(200 * 1024, 21), version: '1.0.1' });
    const t0 = Date.now();
    const r = await uploadImage(client, img.bytes);
    assert.equal(r.match, true);
    assert.ok(stalled, 'the device stalled');
    assert.ok(Date.now() - t0 >= 3000);
  } finally {
    await emu.close();
  }
});

test('engine: a serial device whose 2 receive line buffers overrun (pty, no baud limit, mtu 1024): every lost frame is recovered, right hash', async (t) => {
  const dir = await tempDir();
  const link = join(dir.path, 'pty');
  let agent;
  try {
    agent = await createAgent({ dataDir: join(dir.path, 'device'), bufSize: 2475, serial: { pty: link }, hostNetwork: false, deviceTiming: ZEPHYR_DEVICE_TIMING });
  } catch (e) {
    if (/socat not found/.test(String(e))) {
      t.skip('socat is not installed');
      await dir.remove();
      return;
    }
    throw e;
  }
  const client = new SmpClient(await openSerialClient({ path: link, mtu: 1024 }), { timeoutMs: 3000, tries: 3 });
  try {
    const img = await buildImage({ payload: payload(120 * 1024, 31), version: '1.2.0' });
    const r = await uploadImage(client, img.bytes);
    assert.equal(r.match, true);
    const serial = agent.listening().find((x) => x.kind === 'serial') as SerialServerTransport;
    assert.ok(serial.stats.linesDropped > 0, 'the window overran the line buffers at least once');
    const slot1 = (await readImageState(client)).find((s) => s.slot === 1);
    assert.ok(slot1?.hash && bytesEqual(slot1.hash, img.hash));
  } finally {
    await client.close();
    await agent.close();
    await dir.remove();
  }
});
