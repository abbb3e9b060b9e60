/**
 * SMP over BLE through BlueZ's D-Bus API served by a mock (test/bluez-mock.ts: a private
 * dbus-daemon and python3-dbusmock's bluez5 template; no radio, no bluetoothd). node-ble and
 * dbus-next run unmodified; the emulated parts are named in each test.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createEmulator } from '../src/server/emulator.ts';
import { SmpClient } from '../src/client/client.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { readImageState } from '../src/client/upgrade.ts';
import { commands } from '../src/core/commands/index.ts';
import { buildImage } from '../src/image/build.ts';
import { bytesEqual } from '../src/core/bytes.ts';
import { openBleTransport } from '../src/transport/ble/index.ts';
import { nodeBleConnector, scanBluez } from '../src/transport/ble/node/central.ts';
import { createBluezServerTransport } from '../src/transport/ble/node/bluez-peripheral.ts';
import { startBluezMock, type BluezMock } from './bluez-mock.ts';
import { payload, tempDir } from './helpers.ts';

let mock: BluezMock;
before(async () => {
  mock = await startBluezMock();
});
after(async () => {
  await mock?.close();
});

test('node-ble over the BlueZ D-Bus mock (device emulated behind the mock): scan, connect, params, echo, image upload with the right hash', async () => {
  const dir = await tempDir('mcumgr-ble-');
  const { server: gatt } = await mock.addSmpPeripheral('Zephyr-A', 'C0:FF:EE:00:00:0A', { attMtu: 185 });
  const server = await createEmulator({ dataDir: dir.path, resetDelayMs: 20, bootTimeMs: 20, transports: [gatt] });
  let client: SmpClient | undefined;
  try {
    const found = await scanBluez({ timeoutMs: 2000, until: (d) => d.name === 'Zephyr-A' });
    assert.ok(found.some((d) => d.name === 'Zephyr-A' && d.address === 'C0:FF:EE:00:00:0A' && d.rssi === -52), JSON.stringify(found));
    const transport = await openBleTransport(nodeBleConnector({ name: 'Zephyr-A', connectTimeoutMs: 5000 }));
    assert.equal(transport.attMtu, 185, 'MTU from GattCharacteristic1.MTU');
    assert.equal(transport.writeLength, 182);
    client = new SmpClient(transport, { timeoutMs: 3000, tries: 2 });
    const long = 'BLE '.repeat(150);
    assert.deepEqual(await client.request(commands.os.echo, { d: long }), { r: long });
    const img = await buildImage({ payload: payload(20 * 1024, 5), version: '3.0.0' });
    const r = await uploadImage(client, img.bytes, { chunkTimeoutMs: 3000 });
    assert.equal(r.match, true);
    const s1 = (await readImageState(client)).find((s) => s.slot === 1);
    assert.ok(s1?.hash && bytesEqual(s1.hash, img.hash));
    assert.ok(gatt.stats.writes > gatt.stats.packets, 'packets arrived in several writes and were reassembled');
  } finally {
    await client?.close();
    await server.close();
    await dir.remove();
  }
});

test('serve over BlueZ (GattManager1 / LEAdvertisingManager1 on the D-Bus mock, bridged as BlueZ would) answers a node-ble central', async () => {
  const dir = await tempDir('mcumgr-ble-');
  await mock.bridgePeripheralApplications({ attMtu: 247, peripheralAddress: 'C0:FF:EE:00:00:0B' });
  const statuses: string[] = [];
  const gatt = createBluezServerTransport({ name: 'Agent-B', onStatus: (m) => statuses.push(m) });
  const server = await createEmulator({ dataDir: dir.path, resetDelayMs: 20, bootTimeMs: 20, transports: [gatt] });
  let client: SmpClient | undefined;
  try {
    assert.match(statuses.join('\n'), /registered with BlueZ on \/org\/bluez\/hci0, advertising as "Agent-B"/);
    const transport = await openBleTransport(nodeBleConnector({ name: 'Agent-B', connectTimeoutMs: 5000 }));
    client = new SmpClient(transport, { timeoutMs: 3000, tries: 2 });
    assert.deepEqual(transport.params, { bufSize: 2048, bufCount: 4 });
    assert.deepEqual(await client.request(commands.os.echo, { d: 'x'.repeat(700) }), { r: 'x'.repeat(700) });
    assert.ok(gatt.stats.writes >= 3, 'a 700-byte request came in MTU − 3 writes');
    await client.close();
    client = undefined;
  } finally {
    await client?.close();
    await server.close();
    await dir.remove();
  }
});
