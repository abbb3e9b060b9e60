/**
 * Serial transports over real pseudo-terminals (socat). The device side here is a tiny echo
 * harness (every packet is sent back as it came) so the transports are tested on their own; the
 * full emulator over serial is tested in cli-serial.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openRawSerialPort } from '../src/transport/serial-link.ts';
import { concatBytes, utf8Encode } from '../src/core/bytes.ts';
import { encodePacket } from '../src/core/header.ts';
import { McuMgrError } from '../src/core/errors.ts';
import { base64Encode, encodeConsoleFrame } from '../src/framing/index.ts';
import { openSerialClient, parseSerialConnstring, type SerialClientTransport } from '../src/transport/serial.ts';
import { createSerialServer, type SerialServerTransport } from '../src/transport/serial-server.ts';
import type { ConsoleDecoderStats } from '../src/framing/console.ts';
import { ptyPair as sharedPtyPair, socatMissing } from './pty.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcumgr-serial-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let linkCounter = 0;
const linkPath = (): string => join(dir, `tty${linkCounter++}`);

/** Two ptys joined by socat (new link paths unless given). */
function ptyPair(links?: { a: string; b: string }): ReturnType<typeof sharedPtyPair> {
  return sharedPtyPair(links?.a ?? linkPath(), links?.b ?? linkPath());
}

/** A packet with a valid SMP header and `size` bytes in all. */
function packetOfSize(size: number, seq = 0): Uint8Array {
  const payload = Uint8Array.from({ length: size - 8 }, (_, i) => (i * 13 + seq) & 0xff);
  return encodePacket({ op: 2, version: 1, flags: 0, group: 64, seq: seq & 0xff, id: 1 }, payload);
}

/** Device-side echo harness: answers every packet with itself. */
async function echoServer(options: Parameters<typeof createSerialServer>[0]): Promise<SerialServerTransport> {
  const server = createSerialServer(options);
  await server.start((packet, peer) => {
    void peer.reply(packet).catch(() => {});
  });
  return server;
}

/** Sends a packet and waits for the next packet back. */
function roundTrip(client: SerialClientTransport, packet: Uint8Array, timeoutMs = 3000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer')), timeoutMs);
    client.setReceiver((p) => {
      clearTimeout(timer);
      resolve(p);
    });
    client.send(packet).catch(reject);
  });
}

/** Opens the far end of a pty pair as a bare port, to write crafted bytes and read what comes. */
async function rawPort(path: string): Promise<{ received: () => Uint8Array; write: (b: Uint8Array) => Promise<void>; close: () => Promise<void> }> {
  const port = await openRawSerialPort(path);
  const chunks: Uint8Array[] = [];
  port.on('data', (d: Buffer) => chunks.push(new Uint8Array(d)));
  return {
    received: () => concatBytes(...chunks),
    write: (b) => new Promise((resolve, reject) => port.write(b, (e) => (e ? reject(e) : resolve()))),
    close: () => new Promise((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('serial connstring (Go mcumgr syntax)', () => {
  it('parses dev=PATH,baud=N,mtu=N, the legacy bare PATH and PATH,baud=N', () => {
    assert.deepEqual(parseSerialConnstring('dev=/dev/ttyACM0,baud=921600,mtu=380'), { path: '/dev/ttyACM0', baudRate: 921600, mtu: 380, framing: 'console' });
    assert.deepEqual(parseSerialConnstring('/dev/ttyUSB1'), { path: '/dev/ttyUSB1', baudRate: 115200, mtu: 256, framing: 'console' });
    assert.deepEqual(parseSerialConnstring('COM3,baud=9600'), { path: 'COM3', baudRate: 9600, mtu: 256, framing: 'console' });
    assert.deepEqual(parseSerialConnstring('dev=/dev/pts/3,framing=raw,linelength=128'), { path: '/dev/pts/3', baudRate: 115200, mtu: 256, framing: 'raw', lineLength: 128 });
  });

  it('refuses unknown keys, bad numbers and a missing device with UsageError', () => {
    for (const bad of ['dev=/x,speed=5', 'dev=/x,baud=fast', 'dev=/x,mtu=4', 'baud=115200', '', 'dev=/x,framing=slip', 'dev=/x,mtu=70000']) {
      assert.throws(() => parseSerialConnstring(bad), (e: unknown) => e instanceof McuMgrError && e.code === 'USAGE', bad);
    }
  });
});

describe('serial transports over a socat pty pair (echo harness)', { skip: socatMissing }, () => {
  it('round-trips packets of 8..256 bytes, each frame spread over several lines', async () => {
    const pair = await ptyPair();
    const server = await echoServer({ path: pair.b });
    const client = await openSerialClient({ path: pair.a });
    try {
      for (const size of [8, 9, 50, 91, 92, 93, 94, 120, 200, 255, 256]) {
        const p = packetOfSize(size, size & 0xff);
        assert.deepEqual(await roundTrip(client, p), p, `size ${size}`);
      }
      assert.equal(client.stats.packetsSent, 11);
      assert.equal(client.frameOverhead, 4);
      assert.equal(server.stats.packetsReceived, 11);
      assert.equal(server.stats.decoder.packets, 11);
    } finally {
      await client.close();
      await server.close();
      await pair.stop();
    }
  });

  it('carries a 4 KiB packet over 45 lines each way when both sides are configured for it', async () => {
    const pair = await ptyPair();
    const server = await echoServer({ path: pair.b, mtu: 4096, netbufSize: 4100 });
    const client = await openSerialClient({ path: pair.a, mtu: 4096 });
    try {
      const p = packetOfSize(4096, 7);
      assert.deepEqual(await roundTrip(client, p), p);
      assert.ok(client.stats.bytesSent > 4096 * 4 / 3);
      // Sending past the MTU is refused before anything is written.
      await assert.rejects(client.send(packetOfSize(4097)), (e: unknown) => e instanceof McuMgrError && e.code === 'TRANSPORT_TOO_LARGE');
    } finally {
      await client.close();
      await server.close();
      await pair.stop();
    }
  });

  it('device responses are Zephyr-framed: lines of 127 then 123 bytes at most', async () => {
    const pair = await ptyPair();
    const server = await echoServer({ path: pair.b });
    const far = await rawPort(pair.a);
    try {
      const p = packetOfSize(256, 1);
      await far.write(encodeConsoleFrame(p));
      await until(() => far.received().filter((b) => b === 0x0a).length >= 3, 'response lines');
      const bytes = far.received();
      const lengths: number[] = [];
      let start = 0;
      bytes.forEach((b, i) => {
        if (b === 0x0a) {
          lengths.push(i + 1 - start);
          start = i + 1;
        }
      });
      // 256 + 4 framing bytes = 260 raw bytes: 93 + 90 + 77 → lines of 127, 123, 107.
      assert.deepEqual(lengths, [127, 123, 107]);
    } finally {
      await far.close();
      await server.close();
      await pair.stop();
    }
  });

  it('raw framing (Zephyr raw UART transport) round-trips back-to-back packets', async () => {
    const pair = await ptyPair();
    const server = await echoServer({ path: pair.b, framing: 'raw' });
    const client = await openSerialClient({ path: pair.a, framing: 'raw' });
    try {
      const got: Uint8Array[] = [];
      client.setReceiver((p) => got.push(p));
      const sent = [8, 100, 256, 33].map((n, i) => packetOfSize(n, i));
      await Promise.all(sent.map((p) => client.send(p)));
      await until(() => got.length === sent.length, 'raw echoes');
      assert.deepEqual(got, sent);
    } finally {
      await client.close();
      await server.close();
      await pair.stop();
    }
  });
});

describe('serial server on its own pseudo-terminal (--pty)', { skip: socatMissing }, () => {
  it('creates a pty, reports its path and a link, and serves client after client', async () => {
    const link = linkPath();
    const server = await echoServer({ pty: link });
    try {
      assert.match(server.path ?? '', /^\/dev\/pts\/\d+$/);
      assert.ok(existsSync(link));
      assert.match(server.describe(), /^pty \/dev\/pts\/\d+ \(link .*\), console framing$/);
      for (let session = 0; session < 3; session++) {
        const client = await openSerialClient({ path: session === 1 ? server.path! : link });
        const p = packetOfSize(150, session);
        assert.deepEqual(await roundTrip(client, p), p, `session ${session}`);
        await client.close();
      }
    } finally {
      await server.close();
    }
    await until(() => !existsSync(link), 'the link to go away');
  });

  it('fails with a typed error when socat cannot be run', async () => {
    const server = createSerialServer({ pty: true, socatPath: join(dir, 'no-such-socat') });
    await assert.rejects(server.start(() => {}), (e: unknown) => e instanceof McuMgrError && e.code === 'TRANSPORT_IO' && /socat not found/.test(e.message));
  });
});

describe('serial: text and SMP share the line (shell transport multiplexing)', { skip: socatMissing }, () => {
  it('device side: shell lines go to the shell, frames to SMP, garbage and log noise between frame lines are skipped', async () => {
    const shell: string[] = [];
    const received: Uint8Array[] = [];
    const link = linkPath();
    const server = createSerialServer({ pty: link, onShellLine: (l) => shell.push(l) });
    await server.start((p) => received.push(p));
    const far = await rawPort(link);
    try {
      const p = packetOfSize(256, 9);
      const lines = encodeConsoleFrame(p);
      const parts: Uint8Array[] = [];
      let start = 0;
      lines.forEach((b, i) => {
        if (b === 0x0a) {
          parts.push(lines.subarray(start, i + 1));
          start = i + 1;
        }
      });
      const noise = [utf8Encode('kernel uptime\r'), Uint8Array.of(0xff, 0xfe, 0x00, 0x41, 0x0a), utf8Encode('help\r\n')];
      await far.write(concatBytes(utf8Encode('os echo hi\r'), parts[0]!, noise[0]!, parts[1]!, noise[1]!, parts[2]!, noise[2]!));
      await until(() => received.length === 1 && shell.length === 4, 'packet and shell lines');
      assert.deepEqual(received, [p]);
      assert.deepEqual(shell.slice(0, 2).concat(shell.slice(3)), ['os echo hi', 'kernel uptime', 'help']);
      assert.equal(server.stats.shellLines, 4);
    } finally {
      await far.close();
      await server.close();
    }
  });

  it('client side: device log lines and shell output around and between frames are ignored and reported as text', async () => {
    const pair = await ptyPair();
    const text: string[] = [];
    const client = await openSerialClient({ path: pair.a, onText: (l) => text.push(l) });
    const device = createSerialServer({ path: pair.b });
    await device.start((packet, peer) => {
      void (async () => {
        await device.writeText('[00:00:01.000,000] <inf> smp: got a request\r\n');
        await device.writeText('uart:~$ '); // a prompt without newline right before the frame
        await peer.reply(packet);
        await device.writeText('[00:00:01.010,000] <inf> smp: answered\r\n');
      })();
    });
    try {
      const p = packetOfSize(200, 3);
      assert.deepEqual(await roundTrip(client, p), p);
      await until(() => text.length === 3, 'log lines');
      assert.deepEqual(text, ['[00:00:01.000,000] <inf> smp: got a request', 'uart:~$ ', '[00:00:01.010,000] <inf> smp: answered']);
    } finally {
      await client.close();
      await device.close();
      await pair.stop();
    }
  });
});

describe('serial: bad frames are dropped and counted, good ones keep flowing', { skip: socatMissing }, () => {
  async function withRawClient(run: (far: Awaited<ReturnType<typeof rawPort>>, server: SerialServerTransport, received: Uint8Array[]) => Promise<void>): Promise<void> {
    const received: Uint8Array[] = [];
    const link = linkPath();
    const server = createSerialServer({ pty: link });
    await server.start((p, peer) => {
      received.push(p);
      void peer.reply(p).catch(() => {});
    });
    const far = await rawPort(link);
    try {
      await run(far, server, received);
    } finally {
      await far.close();
      await server.close();
    }
  }
  const stat = (s: SerialServerTransport, k: keyof ConsoleDecoderStats): number => (s.stats.decoder as ConsoleDecoderStats)[k];

  it('a line too long for the device line buffer (128 bytes) is dropped', async () => {
    await withRawClient(async (far, server, received) => {
      const p = packetOfSize(200, 4);
      await far.write(encodeConsoleFrame(p, { lineLength: 131 }));
      await until(() => stat(server, 'lineTooLong') > 0, 'the drop');
      await far.write(encodeConsoleFrame(p));
      await until(() => received.length === 1, 'the good packet');
      assert.deepEqual(received, [p]);
    });
  });

  it('a frame with a bad CRC is dropped silently (no answer)', async () => {
    await withRawClient(async (far, server, received) => {
      const p = packetOfSize(40, 5);
      const body = new Uint8Array(p.length + 4);
      body[0] = 0;
      body[1] = p.length + 2;
      body.set(p, 2);
      body[body.length - 1] = 0x55; // not the CRC
      await far.write(concatBytes(Uint8Array.of(6, 9), utf8Encode(base64Encode(body)), Uint8Array.of(10)));
      await until(() => stat(server, 'badCrc') === 1, 'the CRC drop');
      await sleep(50);
      assert.equal(received.length, 0);
      assert.equal(far.received().length, 0, 'the device does not answer a bad frame');
      await far.write(encodeConsoleFrame(p));
      await until(() => received.length === 1, 'the good packet');
    });
  });

  it('a packet larger than the device net_buf (380 + 4) is dropped', async () => {
    await withRawClient(async (far, server, received) => {
      await far.write(encodeConsoleFrame(packetOfSize(381)));
      await until(() => stat(server, 'badLength') === 1, 'the length drop');
      const ok = packetOfSize(380);
      await far.write(encodeConsoleFrame(ok));
      await until(() => received.length === 1, 'the 380-byte packet');
      assert.deepEqual(received, [ok]);
    });
  });
});

describe('serial: the port going away', { skip: socatMissing }, () => {
  it('closing the client during a transfer fails pending sends with TRANSPORT_CLOSED and reports the close once', async () => {
    const pair = await ptyPair();
    const server = await echoServer({ path: pair.b });
    const client = await openSerialClient({ path: pair.a });
    let closes = 0;
    client.onClose(() => closes++);
    try {
      const echoes: Uint8Array[] = [];
      client.setReceiver((p) => echoes.push(p));
      // Outcomes are collected as they happen (a rejection nobody waits for yet is an error).
      const sends = Array.from({ length: 200 }, (_, i) => client.send(packetOfSize(256, i)).then(() => undefined, (e: unknown) => e));
      await until(() => echoes.length >= 3, 'the transfer to be under way');
      await client.close();
      const failed = (await Promise.all(sends)).filter((r) => r !== undefined);
      for (const e of failed) assert.ok(e instanceof McuMgrError && e.code === 'TRANSPORT_CLOSED');
      assert.ok(failed.length > 0, 'some sends were still queued');
      assert.equal(closes, 1);
      assert.equal(client.closed, true);
      await assert.rejects(client.send(packetOfSize(8)), (e: unknown) => e instanceof McuMgrError && e.code === 'TRANSPORT_CLOSED');
      const n = echoes.length;
      await sleep(100);
      assert.equal(echoes.length, n, 'nothing is delivered after close');
    } finally {
      await server.close();
      await pair.stop();
    }
  });

  it('the device side going away mid-transfer closes a client that may not reopen, with the cause', async () => {
    const pair = await ptyPair();
    const server = await echoServer({ path: pair.b });
    const client = await openSerialClient({ path: pair.a, reopen: false });
    const closed = new Promise<Error | undefined>((resolve) => client.onClose(resolve));
    try {
      client.setReceiver(() => {});
      const sending = (async () => {
        for (let i = 0; i < 1000 && !client.closed; i++) await client.send(packetOfSize(256, i)).catch(() => {});
      })();
      await sleep(50);
      await pair.stop(); // both ptys vanish
      const error = await closed;
      assert.ok(error instanceof McuMgrError && error.code === 'TRANSPORT_CLOSED');
      await sending;
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('reopens after the port disappears and comes back (device reset / USB re-enumeration)', async () => {
    const link = linkPath();
    let server = await echoServer({ pty: link });
    const events: string[] = [];
    const client = await openSerialClient({ path: link, reopen: { timeoutMs: 5000, intervalMs: 50 }, onEvent: (e) => events.push(e) });
    try {
      assert.deepEqual(await roundTrip(client, packetOfSize(100, 1)), packetOfSize(100, 1));
      await server.close(); // the pty and its link vanish
      await until(() => events.includes('lost'), 'the loss to be noticed');
      // A send while the port is gone waits for it to come back.
      const p = packetOfSize(200, 2);
      const answer = roundTrip(client, p, 5000);
      await sleep(300);
      server = await echoServer({ pty: link });
      assert.deepEqual(await answer, p);
      assert.deepEqual(events, ['lost', 'reopened']);
      assert.equal(client.stats.reopens, 1);
      assert.equal(client.closed, false);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('the device side (serve --serial PATH) gets its port back after it disappears, for as long as it runs', async () => {
    let pair = await ptyPair();
    const status: string[] = [];
    const server = await echoServer({ path: pair.b, onStatus: (m) => status.push(m) });
    const clientOptions = { path: pair.a, reopen: { timeoutMs: 5000, intervalMs: 50 } };
    let client = await openSerialClient(clientOptions);
    try {
      assert.deepEqual(await roundTrip(client, packetOfSize(60, 1)), packetOfSize(60, 1));
      await pair.stop(); // the cable is unplugged: both ends vanish
      await until(() => status.some((m) => /went away/.test(m)), 'the device to notice');
      await client.close();
      await sleep(600); // the device retries every 500 ms meanwhile
      pair = await ptyPair({ a: pair.a, b: pair.b });
      await until(() => status.some((m) => /is back/.test(m)), 'the device to reopen', 5000);
      client = await openSerialClient(clientOptions);
      assert.deepEqual(await roundTrip(client, packetOfSize(90, 2)), packetOfSize(90, 2));
    } finally {
      await client.close();
      await server.close();
      await pair.stop();
    }
  });

  it('gives up after the bounded reopen time and closes with TRANSPORT_CLOSED', async () => {
    const link = linkPath();
    const server = await echoServer({ pty: link });
    const events: string[] = [];
    const client = await openSerialClient({ path: link, reopen: { timeoutMs: 400, intervalMs: 50 }, onEvent: (e) => events.push(e) });
    const closed = new Promise<Error | undefined>((resolve) => client.onClose(resolve));
    await server.close();
    await until(() => events.includes('lost'), 'the loss to be noticed');
    // Sent while the port is gone: waits, then fails when the transport gives up.
    const pending = client.send(packetOfSize(8));
    const error = await closed;
    // The message names the 400 ms bound the transport gave up after (no wall clock).
    assert.ok(error instanceof McuMgrError && error.code === 'TRANSPORT_CLOSED' && /did not come back within 400 ms/.test(error.message));
    await assert.rejects(pending, (e: unknown) => e instanceof McuMgrError && e.code === 'TRANSPORT_CLOSED');
  });

  it('opening a missing port fails with TRANSPORT_IO naming the path', async () => {
    const missing = join(dir, 'nothing-here');
    await assert.rejects(openSerialClient({ path: missing }), (e: unknown) => e instanceof McuMgrError && e.code === 'TRANSPORT_IO' && e.message.includes(missing));
  });
});
