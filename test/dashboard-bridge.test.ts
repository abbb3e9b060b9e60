/**
 * The dashboard's host side without a browser: the WebSocket bridge carrying raw SMP packets from
 * the page's transport (src/transport/websocket.ts, here driven by the `ws` package in Node) to an
 * emulator on real UDP; who the bridge refuses (wrong token, foreign or missing origin, another
 * Host, link kinds the CLI does not open); the static server; and the Web Serial transport.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { Readable, Writable } from 'node:stream';
import { build } from 'esbuild';
import fc from 'fast-check';
import { WebSocket as NodeWebSocket } from 'ws';
import { SmpClient } from '../src/client/client.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { commands } from '../src/core/commands/index.ts';
import { McuMgrError } from '../src/core/errors.ts';
import { buildImage } from '../src/image/build.ts';
import { startDashboardServer, type DashboardServer } from '../src/dashboard/server.ts';
import { openConnection, parseConnection } from '../src/dashboard/connections.ts';
import { RequestPacer } from '../src/dashboard/pacer.ts';
import { Op } from '../src/core/header.ts';
import { encodeMessage } from '../src/core/message.ts';
import type { SmpTransport } from '../src/transport/types.ts';
import { ConntypeRegistry, udpConntype } from '../src/cli/conntypes.ts';
import { serialConntype } from '../src/cli/serial.ts';
import { isWholeSmpMessage, openBridgeTransport, PacketBatcher, splitBridgeMessage, type WebSocketConstructor } from '../src/transport/websocket.ts';
import { openWebSerialTransport, type SerialPortLike } from '../src/transport/web-serial.ts';
import { createSerialServer } from '../src/transport/serial-server.ts';
import { openRawSerialPort } from '../src/transport/serial-link.ts';
import { createEmulator } from '../src/server/emulator.ts';
import { startEmulator, tempDir, ROOT, type TestEmulator } from './helpers.ts';

/** The `ws` client as the page's WebSocket, sending the Origin header a browser would. */
function wsWithOrigin(origin: string | undefined): WebSocketConstructor {
  return class extends NodeWebSocket {
    constructor(url: string) {
      super(url, origin === undefined ? {} : { origin });
    }
  } as unknown as WebSocketConstructor;
}

function httpGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function refusal(p: Promise<unknown>): Promise<McuMgrError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof McuMgrError, `expected an McuMgrError, got ${String(e)}`);
    return e;
  }
  assert.fail('the bridge accepted a connection it must refuse');
}

const conntypes = new ConntypeRegistry().register(udpConntype).register(serialConntype);

describe('dashboard bridge (ws package standing in for the browser WebSocket)', () => {
  let emulator: TestEmulator;
  let dashboard: DashboardServer;
  let web: Awaited<ReturnType<typeof tempDir>>;
  const log: string[] = [];

  before(async () => {
    emulator = await startEmulator();
    web = await tempDir('mcumgr-dash-web-');
    await writeFile(join(web.path, 'index.html'), '<!doctype html><title>test</title>');
    await mkdir(join(web.path, 'sub'));
    dashboard = await startDashboardServer({ webRoot: web.path, port: 0, conntypes, devices: [`udp:127.0.0.1:${emulator.port}`], log: (l) => log.push(l) });
  });
  after(async () => {
    await dashboard.close();
    await emulator.close();
    await web.remove();
  });

  const open = (options: { token?: string; origin?: string | undefined; connection?: string } = {}) =>
    openBridgeTransport({
      url: `ws://127.0.0.1:${dashboard.port}`,
      token: options.token ?? dashboard.token,
      connection: options.connection ?? `udp:127.0.0.1:${emulator.port}`,
      WebSocket: wsWithOrigin('origin' in options ? options.origin : dashboard.origin),
      openTimeoutMs: 5000,
    });

  it('prints a loopback URL with the token and the devices in the fragment', () => {
    assert.equal(dashboard.host, '127.0.0.1');
    const u = new URL(dashboard.url);
    assert.equal(u.hostname, '127.0.0.1');
    const fragment = new URLSearchParams(u.hash.slice(1));
    assert.equal(fragment.get('token'), dashboard.token);
    assert.deepEqual(fragment.getAll('device'), [`udp:127.0.0.1:${emulator.port}`]);
    assert.ok(dashboard.token.length >= 32);
  });

  it('carries SMP packets both ways: echo, image list, a windowed image upload', async () => {
    const transport = await open();
    assert.equal(transport.kind, 'bridge/udp');
    assert.equal(transport.link.kind, 'udp');
    const client = new SmpClient(transport, { timeoutMs: 2000, tries: 2 });
    try {
      assert.deepEqual(await client.request(commands.os.echo, { d: 'through the bridge' }), { r: 'through the bridge' });
      const state = await client.request(commands.image.state, {});
      assert.equal(state.images[0]?.active, true);
      const image = await buildImage({ payload: new Uint8Array(100_000).fill(7), version: '3.2.1' });
      const r = await uploadImage(client, image.bytes);
      assert.ok(r.bytesSent >= image.bytes.length);
      const after = await client.request(commands.image.state, {});
      assert.ok(after.images.some((s) => s.version === '3.2.1' && !s.active));
    } finally {
      await client.close();
    }
  });

  it('refuses a wrong token before the socket opens', async () => {
    const e = await refusal(open({ token: 'not-the-token' }));
    assert.equal(e.code, 'TRANSPORT_IO');
    assert.match(e.message, /refused/);
    assert.ok(log.some((l) => /refused \(401/.test(l)));
  });

  it('refuses a foreign origin and a missing origin', async () => {
    const foreign = await refusal(open({ origin: 'http://evil.example' }));
    assert.equal(foreign.code, 'TRANSPORT_IO');
    const none = await refusal(open({ origin: undefined }));
    assert.equal(none.code, 'TRANSPORT_IO');
    assert.ok(log.filter((l) => /refused \(403/.test(l)).length >= 2);
  });

  it('refuses a link kind the CLI does not open, and says which it opens', async () => {
    const e = await refusal(open({ connection: 'tcp:192.0.2.1:80' }));
    assert.equal(e.code, 'USAGE');
    assert.match(e.message, /opens udp, serial, profile connections only/);
    assert.throws(() => parseConnection('file:/etc/passwd', conntypes), /refused "file"/);
    assert.throws(() => parseConnection('127.0.0.1:1337', conntypes), /refused "127.0.0.1"/);
    const profile = await refusal(open({ connection: 'profile:no-such-profile-here' }));
    assert.match(profile.message, /connection profile "no-such-profile-here" doesn't exist/);
  });

  it('serves the app with a strict CSP, only to its own Host, and nothing outside its folder', async () => {
    const ok = await httpGet(dashboard.port, '/', { host: `127.0.0.1:${dashboard.port}` });
    assert.equal(ok.status, 200);
    assert.match(String(ok.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(ok.headers['x-frame-options'], 'DENY');
    const rebound = await httpGet(dashboard.port, '/', { host: `attacker.example:${dashboard.port}` });
    assert.equal(rebound.status, 421);
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/sub', '/missing.js']) {
      assert.equal((await httpGet(dashboard.port, path, { host: `localhost:${dashboard.port}` })).status, 404, path);
    }
    const config = await httpGet(dashboard.port, '/api/config', { host: `127.0.0.1:${dashboard.port}` });
    assert.equal(config.status, 401);
    const withToken = await httpGet(dashboard.port, '/api/config', { host: `127.0.0.1:${dashboard.port}`, 'x-dashboard-token': dashboard.token });
    assert.deepEqual(JSON.parse(withToken.body).devices, [`udp:127.0.0.1:${emulator.port}`]);
  });

  it('opens a Go mcumgr connection profile (profile:NAME)', async () => {
    const home = await tempDir('mcumgr-dash-home-');
    const saved = process.env['HOME'];
    process.env['HOME'] = home.path;
    try {
      await writeFile(join(home.path, '.mcumgr.cp.json'), JSON.stringify([{ MyName: 'emu', MyType: 'udp', MyConnString: `127.0.0.1:${emulator.port}` }]));
      const transport = await open({ connection: 'profile:emu' });
      const client = new SmpClient(transport, { timeoutMs: 2000, tries: 2 });
      try {
        assert.equal(transport.link.kind, 'udp');
        assert.deepEqual(await client.request(commands.os.echo, { d: 'profile' }), { r: 'profile' });
      } finally {
        await client.close();
      }
    } finally {
      process.env['HOME'] = saved;
      await home.remove();
    }
  });

  it('tells the page when the device link cannot be opened', async () => {
    const e = await refusal(open({ connection: 'serial:dev=/nonexistent/tty' }));
    assert.match(e.message, /nonexistent/);
  });
});

/** Counts, at the bridge's side of the device link, the requests outstanding at the device (distinct op/group/id/seq sent and not yet answered). */
function countingLink(inner: SmpTransport): { transport: SmpTransport; max: () => number; sends: () => number } {
  const outstanding = new Set<string>();
  let max = 0;
  let sends = 0;
  const key = (p: Uint8Array, response: boolean): string => `${(p[0]! & 7) - (response ? 1 : 0)}/${(p[4]! << 8) | p[5]!}/${p[7]}/${p[6]}`;
  return {
    max: () => max,
    sends: () => sends,
    transport: {
      kind: inner.kind,
      mtu: inner.mtu,
      frameOverhead: inner.frameOverhead ?? 0,
      get closed() {
        return inner.closed;
      },
      send(packet) {
        sends++;
        if (packet.length >= 8 && (packet[0]! & 1) === 0) {
          outstanding.add(key(packet, false));
          max = Math.max(max, outstanding.size);
        }
        return inner.send(packet);
      },
      setReceiver(receiver) {
        inner.setReceiver((packet) => {
          if (packet.length >= 8 && (packet[0]! & 1) === 1) outstanding.delete(key(packet, true));
          receiver(packet);
        });
      },
      onClose: (listener) => inner.onClose(listener),
      close: () => inner.close(),
    },
  };
}

describe('the bridge paces a UDP device: the page keeps 8× its window in flight, the device never more than buf_count − 1', () => {
  let emulator: TestEmulator;
  let web: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    emulator = await startEmulator();
    web = await tempDir('mcumgr-dash-pace-');
    await writeFile(join(web.path, 'index.html'), '<!doctype html><title>test</title>');
  });
  after(async () => {
    await emulator.close();
    await web.remove();
  });

  async function uploadThrough(pace: boolean): Promise<{ link: ReturnType<typeof countingLink>; upload: Awaited<ReturnType<typeof uploadImage>>; dropped: number; pacer: RequestPacer | undefined; pacedWindow: number | undefined; log: string[] }> {
    let link: ReturnType<typeof countingLink> | undefined;
    const log: string[] = [];
    let pacerClosed: (p: RequestPacer | undefined) => void = () => {};
    const closedPacer = new Promise<RequestPacer | undefined>((resolve) => (pacerClosed = resolve));
    const server = await startDashboardServer({
      webRoot: web.path,
      port: 0,
      conntypes,
      pace,
      openDevice: async (c) => (link = countingLink(await openConnection(c, conntypes))).transport,
      onPacerClosed: (_c, p) => pacerClosed(p),
      log: (line) => log.push(line),
    });
    const droppedBefore = emulator.server.counterFor('udp').dropped;
    try {
      const transport = await openBridgeTransport({ url: `ws://127.0.0.1:${server.port}`, token: server.token, connection: `udp:127.0.0.1:${emulator.port}`, WebSocket: wsWithOrigin(server.origin), openTimeoutMs: 5000 });
      const client = new SmpClient(transport, { timeoutMs: 2000, tries: 3 });
      const image = await buildImage({ payload: new Uint8Array(150_000).map((_, i) => (i * 7) & 0xff), version: pace ? '4.0.0' : '4.0.1' });
      // Unpaced, the page is given the same window by hand: the control, where the device must overflow.
      const upload = await uploadImage(client, image.bytes, pace ? {} : { maxWindow: 9 });
      await client.close();
      const pacer = pace ? await closedPacer : undefined;
      return { link: link!, upload, dropped: emulator.server.counterFor('udp').dropped - droppedBefore, pacer, pacedWindow: transport.pacedWindow, log };
    } finally {
      await server.close();
    }
  }

  it('paced: the page reaches a window above the device’s, the device holds at most 3 (buf_count 4) and drops nothing', async () => {
    const r = await uploadThrough(true);
    assert.equal(r.pacedWindow, 24, 'the open reply says the bridge paces at 3 and the page may keep 24');
    assert.equal(r.upload.maxWindow, 24);
    assert.ok(r.upload.windowReached > 3, `the page kept ${r.upload.windowReached} in flight`);
    assert.ok(r.link.max() <= 3, `the device had ${r.link.max()} requests outstanding`);
    assert.equal(r.link.max(), 3, 'the bridge kept the device’s window full');
    assert.equal(r.dropped, 0, 'the emulator dropped packets');
    assert.ok(r.pacer, 'the bridge paced the link');
    assert.ok(r.pacer.stats.maxOutstanding <= 3);
    assert.ok(r.pacer.stats.maxQueued > 0, 'requests waited in the bridge’s queue');
    // Both ways, packets of one task travelled in one WebSocket message, and all of them arrived.
    const m = /(\d+) packets from the page in (\d+) messages, (\d+) to it in (\d+)\)/.exec(r.log.join('\n'));
    assert.ok(m, r.log.join('\n'));
    const [fromPage, fromMessages, toPage, toMessages] = m.slice(1).map(Number) as [number, number, number, number];
    assert.ok(fromPage >= r.upload.chunks, `${fromPage} packets from the page, ${r.upload.chunks} chunks`);
    assert.ok(fromMessages < fromPage, `the page batched: ${fromPage} packets in ${fromMessages} messages`);
    assert.ok(toMessages <= toPage);
  });

  it('not paced (--no-pace), the same page window overflows the device: the counters above can fail', async () => {
    const r = await uploadThrough(false);
    assert.equal(r.pacedWindow, undefined);
    assert.equal(r.pacer, undefined);
    assert.ok(r.link.max() > 3, `the device had at most ${r.link.max()} outstanding`);
  });
});

describe('RequestPacer with a scripted device standing in (the test decides when each answer comes)', () => {
  const packet = (seq: number, op = Op.WRITE, group = 1, id = 1): Uint8Array => encodeMessage({ op, version: 1, flags: 0, group, seq, id }, { off: seq });
  const answer = (p: Uint8Array): Uint8Array => {
    const a = p.slice();
    a[0] = (a[0]! & ~7) | ((a[0]! & 7) + 1);
    return a;
  };
  const seqs = (sent: Uint8Array[]): number[] => sent.map((p) => p[6]!);

  it('forwards at most the window, releases the next on each answer, and drops a queued repeat and a repeat of an answered one', () => {
    const sent: Uint8Array[] = [];
    const pacer = new RequestPacer({ window: 3, send: (p) => sent.push(p) });
    try {
      const reqs = [10, 11, 12, 13, 14, 15].map((s) => packet(s));
      for (const r of reqs) pacer.fromPage(r);
      assert.deepEqual(seqs(sent), [10, 11, 12]);
      assert.equal(pacer.waiting, 3);
      pacer.fromPage(packet(14)); // the page sends a queued one again
      assert.equal(pacer.stats.duplicatesDropped, 1);
      assert.equal(pacer.waiting, 3);
      pacer.fromDevice(answer(reqs[1]!));
      assert.deepEqual(seqs(sent), [10, 11, 12, 13]);
      // An answer of another group or id with the same seq releases nothing.
      pacer.fromDevice(answer(packet(10, Op.WRITE, 8, 0)));
      assert.equal(sent.length, 4);
      for (const r of [reqs[0]!, reqs[2]!, reqs[3]!]) pacer.fromDevice(answer(r));
      assert.deepEqual(seqs(sent), [10, 11, 12, 13, 14, 15]);
      assert.equal(pacer.stats.maxOutstanding, 3);
      // The page's timer fired before it read the answer: the same request again is not sent to the device.
      pacer.fromPage(packet(12));
      assert.equal(sent.length, 6);
      assert.equal(pacer.stats.answeredDropped, 1);
      // A new request reusing the sequence number (other bytes) goes.
      const reused = encodeMessage({ op: Op.WRITE, version: 1, flags: 0, group: 1, seq: 12, id: 1 }, { off: 999 });
      pacer.fromPage(reused);
      assert.equal(sent.length, 7);
      assert.equal(sent[6], reused);
      // Not a request (a response op, a runt): forwarded as it is.
      pacer.fromPage(new Uint8Array([1, 2, 3]));
      assert.equal(sent.length, 8);
    } finally {
      pacer.close();
    }
  });

  it('a repeat of an outstanding request takes its place (never a fourth), and goes out once the first has had the timeout', async () => {
    const sent: Uint8Array[] = [];
    let repeatSent: () => void = () => {};
    const repeated = new Promise<void>((resolve) => (repeatSent = resolve));
    const pacer = new RequestPacer({
      window: 3,
      floorMs: 50,
      send: (p) => {
        sent.push(p);
        if (sent.length === 4) repeatSent();
      },
    });
    try {
      for (const s of [1, 2, 3, 4]) pacer.fromPage(packet(s));
      assert.deepEqual(seqs(sent), [1, 2, 3]);
      pacer.fromPage(packet(2)); // the page's engine timed out on seq 2 and sends it again
      assert.equal(pacer.inFlight, 3);
      assert.equal(pacer.waiting, 1);
      await repeated; // after the bridge's timeout (no round trip measured yet: 1 s)
      assert.deepEqual(seqs(sent), [1, 2, 3, 2]);
      assert.equal(pacer.inFlight, 3, 'the repeat took the first one’s place');
      assert.equal(pacer.stats.repeatsForwarded, 1);
      pacer.fromDevice(answer(packet(2)));
      assert.deepEqual(seqs(sent), [1, 2, 3, 2, 4]);
      assert.equal(pacer.stats.maxOutstanding, 3);
    } finally {
      pacer.close();
    }
  });
});

describe('page-side transports are portable', () => {
  it('websocket.ts, web-serial.ts and the web app bundle for the browser with no Node built-in', async () => {
    for (const entry of ['src/transport/websocket.ts', 'src/transport/web-serial.ts', 'web/src/main.tsx']) {
      const result = await build({ entryPoints: [join(ROOT, entry)], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', metafile: true, jsx: 'automatic', jsxImportSource: 'preact', loader: { '.css': 'empty' } });
      assert.ok(!Object.keys(result.metafile.inputs).some((i) => i.startsWith('node:')), `${entry} pulls in a Node built-in`);
    }
  });
});

describe('Web Serial transport: headless Chromium has no serial port to choose, so its adapter runs here on Node streams over the same pty byte stream the serial tests use', () => {
  it('talks SMP console framing to the emulator on a pseudo-terminal', async (t) => {
    const data = await tempDir('mcumgr-web-serial-');
    const link = join(data.path, 'tty');
    let server: Awaited<ReturnType<typeof createEmulator>> | undefined;
    try {
      server = await createEmulator({ dataDir: join(data.path, 'device'), bufSize: 384, bufCount: 4, resetDelayMs: 20, bootTimeMs: 20, transports: [createSerialServer({ pty: link, shellOverSmp: true })] });
    } catch (e) {
      if (/socat/.test(String(e))) return t.skip('needs socat');
      throw e;
    }
    const port = await openRawSerialPort(link);
    const portLike: SerialPortLike = {
      readable: Readable.toWeb(port) as unknown as ReadableStream<Uint8Array>,
      writable: Writable.toWeb(port) as WritableStream<Uint8Array>,
      close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
    };
    const text: string[] = [];
    const transport = openWebSerialTransport(portLike, { mtu: 256, onText: (l) => text.push(l) });
    const client = new SmpClient(transport, { timeoutMs: 2000, tries: 3 });
    try {
      assert.equal(transport.frameOverhead, 4);
      assert.deepEqual(await client.request(commands.os.echo, { d: 'web serial' }), { r: 'web serial' });
      assert.deepEqual(await client.request(commands.os.params, {}), { buf_size: 384, buf_count: 4 });
      // A multi-line frame both ways: a 1 KiB fs round trip in chunks that fill the 380-byte buffer.
      const payload = new Uint8Array(1024).map((_, i) => (i * 31) & 0xff);
      const { uploadFile, downloadFile } = await import('../src/client/fs-transfer.ts');
      await uploadFile(client, '/lfs/web-serial.bin', payload);
      assert.deepEqual((await downloadFile(client, '/lfs/web-serial.bin')).data, payload);
      assert.equal(transport.dropped, 0);
    } finally {
      await client.close();
      await server.close();
      await data.remove();
    }
  });
});

describe('bridge batching: whole SMP messages of one task share a WebSocket message (fast-check)', () => {
  /** A whole message (header length = payload length) or a malformed packet (its header claims more than it holds). */
  const packetArb = fc.oneof(
    fc.record({ seq: fc.integer({ min: 0, max: 255 }), payload: fc.uint8Array({ maxLength: 300 }) }).map(({ seq, payload }) => {
      const p = new Uint8Array(8 + payload.length);
      p.set([Op.WRITE_RSP, 0, payload.length >> 8, payload.length & 0xff, 0, 1, seq, 1]);
      p.set(payload, 8);
      return p;
    }),
    fc.uint8Array({ minLength: 8, maxLength: 40 }).map((p) => {
      const q = p.slice();
      const claimed = q.length - 8 + 1 + (q[3]! % 16);
      q[2] = claimed >> 8;
      q[3] = claimed & 0xff;
      return q;
    }),
    fc.uint8Array({ minLength: 1, maxLength: 7 }),
  );

  it('splitting what the batcher wrote gives back every packet, in order; a malformed packet travels alone; no message exceeds the limit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(packetArb, { maxLength: 40 }), fc.integer({ min: 64, max: 4096 }), async (packets, maxBytes) => {
        const messages: Uint8Array[] = [];
        let tasks: Array<() => void> = [];
        const batcher = new PacketBatcher((m) => messages.push(m.slice()), (fn) => tasks.push(fn), maxBytes);
        for (const p of packets) batcher.push(p);
        const pending = tasks;
        tasks = [];
        for (const fn of pending) fn();
        const out = messages.flatMap((m) => splitBridgeMessage(m));
        assert.deepEqual(out.map((p) => [...p]), packets.map((p) => [...p]));
        for (const m of messages) if (splitBridgeMessage(m).length > 1) assert.ok(m.length <= maxBytes);
        for (const p of packets) if (!isWholeSmpMessage(p)) assert.ok(messages.some((m) => m.length === p.length && m.every((b, i) => b === p[i])), 'a malformed packet goes alone');
        assert.equal(batcher.stats.packets, packets.length);
      }),
      { numRuns: 300 },
    );
  });

  it('a packet pushed in a later task starts a new message', () => {
    const messages: Uint8Array[] = [];
    const tasks: Array<() => void> = [];
    const batcher = new PacketBatcher((m) => messages.push(m), (fn) => tasks.push(fn));
    const whole = (seq: number): Uint8Array => encodeMessage({ op: Op.WRITE_RSP, version: 1, flags: 0, group: 1, seq, id: 1 }, { off: seq });
    batcher.push(whole(1));
    batcher.push(whole(2));
    tasks.shift()!();
    batcher.push(whole(3));
    tasks.shift()!();
    assert.deepEqual(messages.map((m) => splitBridgeMessage(m).map((p) => p[6])), [[1, 2], [3]]);
    assert.equal(tasks.length, 0);
  });
});
