/**
 * SMP over BLE against the emulator through the in-process emulated GATT link (no radio, no
 * Bluetooth stack: src/transport/ble/emulated.ts says what is emulated). Every upload must land
 * with the right hash whatever the link does: small and large ATT MTU, small notification
 * pieces, lost notifications, notifications disabled mid-packet, disconnects, pacing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEmulator } from '../src/server/emulator.ts';
import { SmpClient } from '../src/client/client.ts';
import { uploadImage, type ImageUploadOptions } from '../src/client/image-upload.ts';
import { readImageState } from '../src/client/upgrade.ts';
import { uploadFile, downloadFile } from '../src/client/fs-transfer.ts';
import { commands } from '../src/core/commands/index.ts';
import { buildImage } from '../src/image/build.ts';
import { bytesEqual } from '../src/core/bytes.ts';
import { createEmulatedGatt, openBleTransport, type EmulatedGattOptions } from '../src/transport/ble/index.ts';
import { payload, tempDir } from './helpers.ts';

interface Rig {
  client: SmpClient;
  transport: Awaited<ReturnType<typeof openBleTransport>>;
  gatt: ReturnType<typeof createEmulatedGatt>;
  close(): Promise<void>;
}

async function rig(link: EmulatedGattOptions, device: { bufSize?: number; bufCount?: number } = {}): Promise<Rig> {
  const dir = await tempDir('mcumgr-ble-');
  const gatt = createEmulatedGatt({ ...link, bufSize: device.bufSize ?? 2048 });
  const server = await createEmulator({ dataDir: dir.path, bufSize: device.bufSize ?? 2048, bufCount: device.bufCount ?? 4, resetDelayMs: 20, bootTimeMs: 20, transports: [gatt.server] });
  const transport = await openBleTransport(gatt.connect, { reconnectTries: 3 });
  const client = new SmpClient(transport, { timeoutMs: 1500, tries: 3 });
  return {
    client,
    transport,
    gatt,
    async close() {
      await client.close();
      gatt.close();
      await server.close();
      await dir.remove();
    },
  };
}

async function uploadAndCheck(r: Rig, size: number, options: ImageUploadOptions = {}): Promise<void> {
  const img = await buildImage({ payload: payload(size, size), version: '2.0.0' });
  const result = await uploadImage(r.client, img.bytes, { chunkTimeoutMs: 1500, ...options });
  assert.equal(result.match, true, 'the device reports the hash matches');
  const s1 = (await readImageState(r.client)).find((s) => (s.image ?? 0) === 0 && s.slot === 1);
  assert.ok(s1?.hash && bytesEqual(s1.hash, img.hash), 'the secondary slot holds the image');
}

test('emulated GATT link, ATT MTU 247: params size packets to buf_size (fragmented writes), upload lands with the right hash', async () => {
  const r = await rig({ attMtu: 247 });
  try {
    assert.equal(r.transport.mtu, 8 * 244, 'packets up to buf_size, in whole writes');
    assert.equal(r.transport.writeLength, 244);
    assert.deepEqual(r.transport.params, { bufSize: 2048, bufCount: 4 });
    await uploadAndCheck(r, 48 * 1024);
    assert.ok(r.gatt.stats.writes > (48 * 1024) / 244, 'every packet went in MTU − 3 pieces');
    assert.equal(r.gatt.server.stats.droppedRequests, 0);
  } finally {
    await r.close();
  }
});

test('emulated GATT link, ATT MTU 23 and 5-byte notification pieces: reassembly on both sides, echo and upload', async () => {
  const r = await rig({ attMtu: 23, notifySize: 5 }, { bufSize: 512 });
  try {
    assert.equal(r.transport.writeLength, 20);
    assert.equal(r.transport.mtu, 500);
    const long = 'x'.repeat(400);
    assert.deepEqual(await r.client.request(commands.os.echo, { d: long }), { r: long });
    await uploadAndCheck(r, 8 * 1024);
  } finally {
    await r.close();
  }
});

test('emulated GATT link, device without reassembly: no params means one write per packet, which still works', async () => {
  const dir = await tempDir('mcumgr-ble-');
  const gatt = createEmulatedGatt({ attMtu: 185, reassembly: false, bufSize: 2048 });
  // A device whose os group lacks params: the transport keeps packets within one write.
  const server = await createEmulator({ dataDir: dir.path, resetDelayMs: 20, bootTimeMs: 20, transports: [gatt.server] });
  server.hooks.on('cmd_recv', ({ group, id }) => (group === 0 && id === 6 ? { rc: 8 } : undefined));
  const transport = await openBleTransport(gatt.connect);
  const client = new SmpClient(transport, { timeoutMs: 1500, tries: 3 });
  try {
    assert.equal(transport.mtu, 182, 'one write per packet');
    const img = await buildImage({ payload: payload(6000, 7), version: '1.1.0' });
    const res = await uploadImage(client, img.bytes, { chunkTimeoutMs: 1500 });
    assert.equal(res.match, true);
    assert.equal(gatt.server.stats.droppedRequests, 0);
  } finally {
    await client.close();
    gatt.close();
    await server.close();
    await dir.remove();
  }
});

test('emulated GATT link with lost notifications (every 7th during the upload, responses in 16-byte pieces): the upload recovers and lands with the right hash', async () => {
  // Loss only while uploading: a 200-byte image list answer in 13 pieces would lose one on every try.
  let lossy = false;
  const r = await rig({ attMtu: 64, notifySize: 16, dropNotification: (n) => lossy && n % 7 === 0 }, { bufSize: 1024 });
  try {
    const img = await buildImage({ payload: payload(24 * 1024, 24), version: '2.0.0' });
    lossy = true;
    const result = await uploadImage(r.client, img.bytes, { chunkTimeoutMs: 300, chunkTries: 20 });
    lossy = false;
    assert.equal(result.match, true);
    assert.ok(result.retransmissions > 0);
    assert.ok(r.gatt.stats.droppedNotifications > 0);
    const s = r.transport.stats.reassembly;
    assert.ok(s.droppedPackets + s.droppedFragments > 0, 'responses missing a piece were dropped, not handed up');
    const s1 = (await readImageState(r.client)).find((x) => (x.image ?? 0) === 0 && x.slot === 1);
    assert.ok(s1?.hash && bytesEqual(s1.hash, img.hash));
  } finally {
    await r.close();
  }
});

test('emulated GATT link with notifications disabled mid-packet: partial request and partial response are dropped, the upload completes', async () => {
  const r = await rig({ attMtu: 100, notificationsOffAtWrite: [40, 41, 90, 200, 201, 202] });
  try {
    await uploadAndCheck(r, 32 * 1024, { chunkTimeoutMs: 300, chunkTries: 20 });
    assert.ok(r.gatt.server.stats.droppedRequests > 0, 'the device dropped partial requests');
  } finally {
    await r.close();
  }
});

test('emulated GATT link with disconnects mid-upload: the transport reconnects and the upload resumes at the device offset', async () => {
  const r = await rig({ attMtu: 247, disconnectAtWrite: [60, 150] });
  try {
    await uploadAndCheck(r, 64 * 1024, { chunkTimeoutMs: 300, chunkTries: 20 });
    assert.equal(r.transport.stats.reconnects, 2);
    assert.equal(r.gatt.stats.connections, 3);
  } finally {
    await r.close();
  }
});

test('emulated GATT link with pacing (7.5 ms interval, 4 packets per event, MTU 247): upload with the window, fs round trip', async () => {
  const r = await rig({ attMtu: 247, pacing: { connectionIntervalMs: 7.5, packetsPerEvent: 4 } });
  try {
    await uploadAndCheck(r, 32 * 1024, { chunkTimeoutMs: 3000 });
    assert.ok(r.gatt.stats.connectionEvents > 0);
    const data = payload(10_000, 3);
    await uploadFile(r.client, '/lfs/ble.bin', data);
    const back = await downloadFile(r.client, '/lfs/ble.bin');
    assert.ok(bytesEqual(back.data, data));
  } finally {
    await r.close();
  }
});

test('emulated GATT link: a disconnect without reconnect closes the transport with TRANSPORT_CLOSED', async () => {
  const gatt = createEmulatedGatt({});
  const dir = await tempDir('mcumgr-ble-');
  const server = await createEmulator({ dataDir: dir.path, transports: [gatt.server] });
  const transport = await openBleTransport(gatt.connect, { reconnect: false });
  const client = new SmpClient(transport, { timeoutMs: 1000, tries: 1 });
  try {
    const closed = new Promise<Error | undefined>((res) => transport.onClose(res));
    gatt.disconnect();
    const err = await closed;
    assert.match(String(err?.message), /lost/);
    await assert.rejects(client.request(commands.os.echo, { d: 'x' }), { code: 'TRANSPORT_CLOSED' });
  } finally {
    await client.close();
    await server.close();
    await dir.remove();
  }
});
