/**
 * The whole stack over a real pseudo-terminal: SmpClient → serial client transport → pty (socat)
 * → serial server transport → emulator. One basic command per group, big transfers, and the
 * shell answering text typed on the same line.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SmpClient } from '../src/client/client.ts';
import { downloadFile, uploadFile } from '../src/client/fs-transfer.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { buildImage } from '../src/image/build.ts';
import { commands } from '../src/core/commands/index.ts';
import { createEmulator } from '../src/server/emulator.ts';
import type { SmpServer } from '../src/server/server.ts';
import { openRawSerialPort } from '../src/transport/serial-link.ts';
import { openSerialClient, type SerialClientTransport } from '../src/transport/serial.ts';
import { createSerialServer, type SerialServerTransport } from '../src/transport/serial-server.ts';
import { tempDir } from './helpers.ts';
import { ptyPair, socatMissing } from './pty.ts';

let data: Awaited<ReturnType<typeof tempDir>>;
let server: SmpServer;
let serial: SerialServerTransport;
let link: string;

before(async () => {
  if (socatMissing) return;
  data = await tempDir('mcumgr-serial-emu-');
  link = join(data.path, 'tty');
  // A default Zephyr serial device: 384-byte net_buf, 256-byte MTU, 128-byte line buffer.
  serial = createSerialServer({ pty: link, shellOverSmp: true });
  server = await createEmulator({ dataDir: join(data.path, 'device'), bufSize: 384, bufCount: 4, resetDelayMs: 20, bootTimeMs: 20, transports: [serial] });
});
after(async () => {
  if (socatMissing) return;
  await server.close();
  await data.remove();
});

async function withClient(run: (client: SmpClient, transport: SerialClientTransport) => Promise<void>, mtu?: number): Promise<void> {
  const transport = await openSerialClient({ path: link, ...(mtu ? { mtu } : {}) });
  const client = new SmpClient(transport, { timeoutMs: 2000, tries: 3 });
  try {
    await run(client, transport);
  } finally {
    await client.close();
  }
}

describe('emulator over a pty: one basic command per group', { skip: socatMissing }, () => {
  it('os: echo, params, info, datetime', async () => {
    await withClient(async (client) => {
      assert.deepEqual(await client.request(commands.os.echo, { d: 'hello over serial' }), { r: 'hello over serial' });
      assert.deepEqual(await client.request(commands.os.params, {}), { buf_size: 384, buf_count: 4 });
      assert.match((await client.request(commands.os.info, { format: 's' })).output, /Zephyr/);
      await client.request(commands.os.datetimeSet, { datetime: '2026-05-04T03:02:01' });
      assert.match((await client.request(commands.os.datetimeGet, {})).datetime, /^2026-05-04T03:02:0\d/);
    });
  });

  it('stat, settings, shell, enum', async () => {
    await withClient(async (client) => {
      const { stat_list } = await client.request(commands.stat.list, {});
      assert.ok(stat_list.length > 0);
      const shown = await client.request(commands.stat.show, { name: stat_list[0]! });
      assert.equal(shown.name, stat_list[0]);
      await client.request(commands.settings.write, { name: 'app/serial', val: Uint8Array.of(1, 2, 3) });
      assert.deepEqual((await client.request(commands.settings.read, { name: 'app/serial' })).val, Uint8Array.of(1, 2, 3));
      const sh = await client.request(commands.shell.exec, { argv: ['kernel', 'version'] });
      assert.match(sh.o, /Zephyr version/);
      const { count } = await client.request(commands.enum.count, {});
      const { groups } = await client.request(commands.enum.list, {});
      assert.equal(groups.length, count);
      assert.ok(groups.includes(0) && groups.includes(8) && groups.includes(9));
    });
  });

  it('fs: a small file up and down, verified by the device hash', async () => {
    await withClient(async (client) => {
      const body = new TextEncoder().encode('serial file contents\n'.repeat(40));
      const up = await uploadFile(client, '/lfs/serial.txt', body);
      assert.equal(up.bytes, body.length);
      assert.ok(up.verified);
      const down = await downloadFile(client, '/lfs/serial.txt');
      assert.deepEqual(down.data, body);
    });
  });

  it('image: slot state', async () => {
    await withClient(async (client) => {
      const state = await client.request(commands.image.state, {});
      assert.ok(Array.isArray(state.images));
    });
  });
});

describe('emulator over a pty: big transfers', { skip: socatMissing }, () => {
  it('uploads and downloads 1 MiB through the fs group at the default 256-byte MTU', async () => {
    await withClient(async (client, transport) => {
      const file = new Uint8Array(randomBytes(1 << 20));
      const up = await uploadFile(client, '/lfs/big.bin', file);
      assert.equal(up.bytes, file.length);
      assert.ok(up.verified, 'device hash checked');
      const down = await downloadFile(client, '/lfs/big.bin');
      assert.deepEqual(down.data, file);
      // Every request fit the device: nothing was dropped for length or line size.
      const st = serial.stats.decoder as { badLength: number; lineTooLong: number; badCrc: number };
      assert.deepEqual([st.badLength, st.lineTooLong, st.badCrc], [0, 0, 0]);
      assert.ok(transport.stats.packetsSent > 4000);
    });
  });
});

describe('emulator over a pty: 1 MiB image upload', { skip: socatMissing }, () => {
  it('uploads a 1 MiB MCUboot image into slot 1 and the device reports its hash', async () => {
    await withClient(async (client, transport) => {
      const built = await buildImage({ payload: new Uint8Array(randomBytes((1 << 20) - 0x200)), version: '1.2.3' });
      assert.ok(built.bytes.length >= 1 << 20);
      const result = await uploadImage(client, built.bytes);
      // A fresh upload: nothing resumed, every byte taken from this call (exact, whatever was
      // retransmitted or acknowledged only by a later answer).
      assert.equal(result.resumedAt, 0);
      assert.equal(result.bytesSent, built.bytes.length);
      assert.equal(result.match, true);
      const { images } = await client.request(commands.image.state, {});
      const slot1 = images.find((i) => i.slot === 1);
      assert.ok(slot1, 'slot 1 holds the upload');
      assert.deepEqual(slot1.hash, built.hash);
      assert.ok(transport.stats.bytesSent > built.bytes.length, 'framing overhead is on the wire');
    });
  });
});

describe('emulator over a pty: shell text and SMP on the same line', { skip: socatMissing }, () => {
  it('answers a typed shell line with output and a prompt, then SMP still works', async () => {
    const port = await openRawSerialPort(link);
    let text = '';
    port.on('data', (d: Buffer) => (text += d.toString('latin1')));
    try {
      await new Promise<void>((resolve, reject) => port.write('kernel version\r', (e) => (e ? reject(e) : resolve())));
      const end = Date.now() + 3000;
      while (!text.includes('uart:~$ ') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      assert.match(text, /^Zephyr version [\d.]+\r\nuart:~\$ $/);
      text = '';
      await new Promise<void>((resolve, reject) => port.write('\r', (e) => (e ? reject(e) : resolve())));
      while (!text.includes('uart:~$ ') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      assert.equal(text, 'uart:~$ ');
    } finally {
      await new Promise<void>((resolve) => port.close(() => resolve()));
    }
    // After a prompt without newline, the next SMP answer starts on a new line for line-based clients.
    await withClient(async (client) => {
      assert.deepEqual(await client.request(commands.os.echo, { d: 'after shell' }), { r: 'after shell' });
    });
  });
});

describe('an image upload when the serial port vanishes and comes back (USB re-enumeration)', { skip: socatMissing }, () => {
  it('both ends reopen the port and the upload carries on from the device offset to a matching image', async () => {
    const host = join(data.path, 'usb-host');
    const device = join(data.path, 'usb-device');
    const cable = async (): Promise<() => Promise<void>> => (await ptyPair(host, device)).stop;
    let unplug = await cable();
    const devSerial = createSerialServer({ path: device });
    const dev = await createEmulator({ dataDir: join(data.path, 'usb-dev'), bufSize: 384, resetDelayMs: 20, bootTimeMs: 20, transports: [devSerial] });
    const events: string[] = [];
    const transport = await openSerialClient({ path: host, reopen: { timeoutMs: 10000, intervalMs: 50 }, onEvent: (e) => events.push(e) });
    const client = new SmpClient(transport, { timeoutMs: 1000, tries: 3 });
    try {
      const image = await buildImage({ payload: randomBytes(48 * 1024), version: '5.0.0' });
      let unplugged = false;
      const upload = uploadImage(client, image.bytes, {
        chunkTimeoutMs: 500,
        chunkTries: 30,
        onProgress: (p) => {
          if (!unplugged && p.offset > image.bytes.length / 3) {
            unplugged = true;
            void (async () => {
              await unplug();
              await new Promise((r) => setTimeout(r, 400));
              unplug = await cable();
            })();
          }
        },
      });
      const r = await upload;
      assert.ok(unplugged);
      assert.equal(r.match, true);
      assert.ok(events.includes('lost') && events.includes('reopened'), events.join(','));
      const state = await client.request(commands.image.state, {});
      assert.equal(state.images.find((s) => s.slot === 1)?.version, '5.0.0');
    } finally {
      await client.close();
      await dev.close();
      await unplug();
    }
  });
});
