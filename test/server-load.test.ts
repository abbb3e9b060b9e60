/**
 * The emulator under load and hostile peers, with real processes, UDP sockets and a pty:
 * a flood of expensive requests on UDP while a serial client echoes every 100 ms; the data
 * directory lock; SIGTERM during a flood.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commands } from '../src/core/commands/index.ts';
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { createEmulator } from '../src/server/emulator.ts';
import { McuMgrError } from '../src/core/errors.ts';
import dgram from 'node:dgram';
import { encodeCbor } from '../src/core/cbor.ts';
import { encodePacket, Op } from '../src/core/header.ts';
import { deviceError, runCli, tempDir } from './helpers.ts';
import { dataDirWithBigFile, kernelUdpDrops, rssOf, sampleRss, serialClient, startFlood, startServe } from './load-helpers.ts';

const FLOOD_MS = 3000;

test('flood: fs hash requests flood UDP for 3 s while a serial client echoes every 100 ms: every echo answered, memory bounded, drops counted exactly', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  await dataDirWithBigFile(dir.path);
  const serve = await startServe(['--data', dir.path, '--pty']);
  let echo: SmpClient | undefined;
  try {
    assert.ok(serve.pty, serve.output());
    const client = await serialClient(serve.pty, 5000, 1);
    echo = client;
    await client.request(commands.os.echo, { d: 'warm' });
    const idleRss = await rssOf(serve.pid);
    const rss = sampleRss(serve.pid);
    const flood = await startFlood(serve.port);
    const rtts: number[] = [];
    let failures = 0;
    const started = performance.now();
    while (performance.now() - started < FLOOD_MS) {
      const t0 = performance.now();
      try {
        const want = `e${rtts.length}`;
        const answer = await client.request(commands.os.echo, { d: want });
        assert.equal(answer.r, want);
        rtts.push(performance.now() - t0);
      } catch (e) {
        failures++;
        assert.fail(`echo ${rtts.length} not answered under the flood: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await flood.stop();
    const peakRss = await rss.stop();
    // Every datagram the flooder sent is accounted for by the server: processed or dropped.
    const counters = async (): Promise<Record<string, number>> => (await client.request(commands.stat.show, { name: 'smp_udp' })).fields;
    let c = await counters();
    const kernelDrops = (await kernelUdpDrops(serve.port)) + (await kernelUdpDrops(flood.localPort));
    for (let i = 0; i < 100 && c['requests']! + c['dropped']! + kernelDrops < flood.sent; i++) {
      await new Promise((r) => setTimeout(r, 50));
      c = await counters();
    }
    // ... and the answers the server sent all arrive.
    await flood.answeredAtLeast(c['responses']!, 5000);
    await flood.close();
    const unanswered = flood.sent - flood.answered;
    process.stderr.write(
      `flood: sent ${flood.sent}, answered ${flood.answered}, server dropped ${c['dropped']}, kernel drops ${kernelDrops}; echo ${rtts.length} answered, max ${Math.max(...rtts).toFixed(1)} ms; RSS idle ${(idleRss / 1e6).toFixed(1)} MB, peak ${(peakRss / 1e6).toFixed(1)} MB\n`,
    );
    assert.equal(failures, 0);
    assert.ok(rtts.length >= 5, `only ${rtts.length} echoes in ${FLOOD_MS} ms`);
    assert.ok(flood.sent > 1000, `the flooder sent only ${flood.sent}`);
    assert.ok(c['dropped']! > 0, 'a flood past buf_count drops packets');
    assert.equal(unanswered, c['dropped']! + kernelDrops, `unanswered ${unanswered} = server drops ${c['dropped']} + kernel drops ${kernelDrops}`);
    assert.equal(c['requests'], c['responses']);
    assert.ok(peakRss < idleRss * 1.5, `peak RSS ${peakRss} vs idle ${idleRss}`);
  } finally {
    await echo?.close();
    await serve.stop('SIGKILL');
    await dir.remove();
  }
});

test('SIGTERM during a flood: the server stops while the flood goes on and the data directory is usable at once', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  await dataDirWithBigFile(dir.path);
  const serve = await startServe(['--data', dir.path]);
  const flood = await startFlood(serve.port, undefined, 64);
  try {
    await flood.answeredAtLeast(50, 20000);
    // The flood never ends by itself: a server that waited for its queue to drain would never stop (the test's timeout).
    const { code, signal } = await serve.stop('SIGTERM');
    assert.equal(signal, null, serve.output());
    assert.equal(code, 0, serve.output());
    // The lock is gone and the stores open: a new device starts on the same directory.
    const again = await startServe(['--data', dir.path]);
    const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: again.port }), { timeoutMs: 2000, tries: 2 });
    try {
      const r = await client.request(commands.fs.hash, { name: '/lfs/big.bin', type: 'sha256' });
      assert.equal(r.len, 8 * 1024 * 1024);
    } finally {
      await client.close();
      await again.stop('SIGKILL');
    }
  } finally {
    await flood.stop();
    await flood.close();
    await serve.stop('SIGKILL');
    await dir.remove();
  }
});

test('lock: a second serve on the same data directory is refused, naming the holder pid', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  const first = await startServe(['--data', dir.path]);
  try {
    const r = await runCli(['serve', '--udp', '127.0.0.1:0', '--data', dir.path]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`data directory .* is in use by another emulator \\(pid ${first.pid}\\)`));
  } finally {
    await first.stop('SIGKILL');
    await dir.remove();
  }
});

test('lock: the stale lock of a SIGKILLed holder is taken over', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  try {
    const first = await startServe(['--data', dir.path]);
    const killed = await first.stop('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    const second = await startServe(['--data', dir.path]);
    const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: second.port }), { timeoutMs: 2000, tries: 2 });
    try {
      assert.equal((await client.request(commands.os.echo, { d: 'x' })).r, 'x');
    } finally {
      await client.close();
      await second.stop();
    }
  } finally {
    await dir.remove();
  }
});

test('lock: two emulators in one process on one directory: the second is refused until the first closes', async () => {
  const dir = await tempDir();
  try {
    const a = await createEmulator({ dataDir: dir.path });
    await assert.rejects(createEmulator({ dataDir: dir.path }), (e: unknown) => e instanceof McuMgrError && e.code === 'DATA_DIR_LOCKED' && e.message.includes(`pid ${process.pid}`));
    await a.close();
    const b = await createEmulator({ dataDir: dir.path });
    await b.close();
  } finally {
    await dir.remove();
  }
});

test('serve -v logs each request (transport, peer, command, seq, result, time) and each dropped or undecodable packet with its reason', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  const serve = await startServe(['-v', '--data', dir.path, '--buf-count', '1']);
  const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: serve.port }), { timeoutMs: 2000, tries: 2 });
  const raw = dgram.createSocket('udp4');
  try {
    await client.request(commands.os.echo, { d: 'hi' });
    await serve.waitFor(/serve: udp 127\.0\.0\.1:\d+ os\.echo \(0\/0 write\) seq \d+: ok in \d+\.\d ms/);
    await deviceError(client.request(commands.fs.status, { name: '/lfs/none' }));
    await serve.waitFor(/serve: udp 127\.0\.0\.1:\d+ fs\.status \(8\/1 read\) seq \d+: err 8\/3 in \d+\.\d ms/);
    await new Promise<void>((r) => raw.connect(serve.port, '127.0.0.1', () => r()));
    raw.send(new Uint8Array([1, 2, 3]));
    await serve.waitFor(/serve: udp 127\.0\.0\.1:\d+ undecodable \(3 bytes\): truncated header \(3 bytes\)/);
    // One buffer: a burst of requests that wait for the disk finds it taken.
    for (let i = 0; i < 8; i++) raw.send(encodePacket({ op: Op.READ, version: 1, flags: 0, group: 8, seq: i, id: 1 }, encodeCbor({ name: '/lfs/none' })));
    await serve.waitFor(/serve: udp 127\.0\.0\.1:\d+ dropped \d+ bytes: buffers full \(1 held\)/);
  } finally {
    raw.close();
    await client.close();
    await serve.stop('SIGKILL');
    await dir.remove();
  }
});
