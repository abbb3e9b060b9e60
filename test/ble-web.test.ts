/**
 * The Web Bluetooth adapter in Debian's Chromium, through Chromium's Bluetooth emulation (DevTools
 * protocol domain BluetoothEmulation, on the browser session) with the emulator behind it: the
 * device chooser, connect, service discovery, notifications on, write sizes, params, echo and an
 * image upload with the right hash. The page runs the portable client bundled by esbuild.
 *
 * Emulated: the adapter and the peripheral (Chromium's fake central). Deviation: the emulation has
 * no command that pushes a notification, so the emulated characteristic also has `read`, the page
 * keeps one readValue() outstanding, and the test answers each read with the next notification
 * the device (BleServerTransport, Zephyr's rules) sent. By the Web Bluetooth spec a read fires
 * `characteristicvaluechanged`, the event notifications fire, so the adapter's notification path
 * is what receives them; what is not exercised is real notification timing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser, CDPSession } from 'playwright-core';
import { createEmulator } from '../src/server/emulator.ts';
import type { SmpServer } from '../src/server/server.ts';
import { readImageState } from '../src/client/upgrade.ts';
import { buildImage } from '../src/image/build.ts';
import { bytesEqual } from '../src/core/bytes.ts';
import { SmpClient } from '../src/client/client.ts';
import { createLoopbackPair } from '../src/transport/loopback.ts';
import { BleServerTransport, SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID } from '../src/transport/ble/index.ts';
import { chromiumMissing, launchChromium } from './chromium.ts';
import { servePage } from './page-server.ts';
import { payload, tempDir, ROOT } from './helpers.ts';

const skip = chromiumMissing();
let browser: Browser | undefined;
before(async () => {
  // Web Bluetooth is behind a feature flag in Chromium on Linux.
  if (!skip) browser = await launchChromium({ args: ['--enable-features=WebBluetooth'] });
});
after(async () => {
  await browser?.close();
});

const ADDRESS = '09:09:09:09:09:09';

test('Web Bluetooth in Chromium (BluetoothEmulation CDP; notifications delivered as answered reads): chooser, connect, params, echo, image upload with the right hash', { skip }, async () => {
  const dir = await tempDir('mcumgr-ble-web-');
  const page = await servePage(join(ROOT, 'test/fixtures/ble-web-page.ts'), 'mcumgr BLE');
  let server: SmpServer | undefined;
  let cdp: CDPSession | undefined;
  try {
    // The device: our emulator behind a BLE server transport whose notifications wait for reads.
    const waitingReads: Array<() => void> = [];
    const notifications: Array<{ data: Uint8Array; sent: () => void }> = [];
    let characteristicId = '';
    const answerReads = (): void => {
      while (waitingReads.length > 0 && notifications.length > 0) {
        const n = notifications.shift()!;
        waitingReads.shift()!();
        void cdp!.send('BluetoothEmulation.simulateCharacteristicOperationResponse', { characteristicId, type: 'read', code: 0, data: Buffer.from(n.data).toString('base64') }).then(n.sent);
      }
    };
    const gatt = new BleServerTransport({
      bufSize: 2048,
      notify: (_c, data) =>
        new Promise<void>((sent) => {
          notifications.push({ data: data.slice(), sent });
          answerReads();
        }),
    });
    server = await createEmulator({ dataDir: dir.path, resetDelayMs: 20, bootTimeMs: 20, transports: [gatt] });

    cdp = await browser!.newBrowserCDPSession();
    await cdp.send('BluetoothEmulation.enable', { state: 'powered-on', leSupported: true });
    await cdp.send('BluetoothEmulation.simulatePreconnectedPeripheral', { address: ADDRESS, name: 'Zephyr-W', manufacturerData: [], knownServiceUuids: [SMP_SERVICE_UUID] });
    const { serviceId } = await cdp.send('BluetoothEmulation.addService', { address: ADDRESS, serviceUuid: SMP_SERVICE_UUID });
    ({ characteristicId } = await cdp.send('BluetoothEmulation.addCharacteristic', { serviceId, characteristicUuid: SMP_CHARACTERISTIC_UUID, properties: { writeWithoutResponse: true, notify: true, read: true } }));
    const ops: string[] = [];
    // The CCC descriptor, as Zephyr's BT_GATT_CCC (Chromium refuses notifications without one).
    await cdp.send('BluetoothEmulation.addDescriptor', { characteristicId, descriptorUuid: '00002902-0000-1000-8000-00805f9b34fb' });
    cdp.on('BluetoothEmulation.descriptorOperationReceived', (e) => {
      ops.push(`descriptor:${e.type}`);
      void cdp!.send('BluetoothEmulation.simulateDescriptorOperationResponse', { descriptorId: e.descriptorId, type: e.type, code: 0, ...(e.type === 'read' ? { data: Buffer.from([0, 0]).toString('base64') } : {}) });
    });
    const writeSizes: number[] = [];
    cdp.on('BluetoothEmulation.gattOperationReceived', (e) => {
      ops.push(`gatt:${e.type}`);
      if (e.type === 'connection') gatt.connect(ADDRESS, { address: ADDRESS, attMtu: 247 });
      void cdp!.send('BluetoothEmulation.simulateGATTOperationResponse', { address: e.address, type: e.type, code: 0 });
    });
    cdp.on('BluetoothEmulation.characteristicOperationReceived', (e) => {
      ops.push(`${e.type}${e.writeType ? `:${e.writeType}` : ''}`);
      if (e.type === 'read') {
        waitingReads.push(() => {});
        answerReads();
        return;
      }
      if (e.type === 'write') {
        const data = new Uint8Array(Buffer.from(e.data ?? '', 'base64'));
        writeSizes.push(data.length);
        gatt.write(ADDRESS, data);
      } else gatt.setNotifying(ADDRESS, e.type === 'subscribe-to-notifications');
      void cdp!.send('BluetoothEmulation.simulateCharacteristicOperationResponse', { characteristicId: e.characteristicId, type: e.type, code: 0 });
    });

    const ctx = await browser!.newContext();
    const tab = await ctx.newPage();
    const pageCdp = await ctx.newCDPSession(tab);
    await pageCdp.send('DeviceAccess.enable');
    // The chooser: the prompt is updated as devices are found (the emulated one shows no name); pick ours once.
    const prompts = new Set<string>();
    pageCdp.on('DeviceAccess.deviceRequestPrompted', (e) => {
      const d = e.devices.find((x) => x.id === ADDRESS);
      if (!d || prompts.has(e.id)) return;
      prompts.add(e.id);
      void pageCdp.send('DeviceAccess.selectPrompt', { id: e.id, deviceId: d.id });
    });
    await tab.goto(page.url);
    await tab.waitForFunction(() => 'smp' in globalThis);
    type Smp = { connect(n: string): Promise<{ attMtu: number; mtu: number; params: { bufSize: number; bufCount: number } }>; echo(t: string): Promise<string>; upload(b: number[]): Promise<{ match: boolean | undefined; chunks: number }>; close(): Promise<void> };
    const info = await tab.evaluate(() => (globalThis as unknown as { smp: Smp }).smp.connect('Zephyr-W'));
    assert.deepEqual(info, { attMtu: 247, mtu: 1952, params: { bufSize: 2048, bufCount: 4 } });
    assert.ok(ops.includes('gatt:connection') && ops.includes('subscribe-to-notifications'), ops.join(' '));
    const long = 'web '.repeat(200);
    assert.equal(await tab.evaluate((t) => (globalThis as unknown as { smp: Smp }).smp.echo(t), long), long);
    const img = await buildImage({ payload: payload(12 * 1024, 11), version: '4.0.0' });
    const r = await tab.evaluate((b) => (globalThis as unknown as { smp: Smp }).smp.upload(b), [...img.bytes]);
    assert.equal(r.match, true);
    assert.ok(writeSizes.length > 0 && Math.max(...writeSizes) === 244, `writes of at most MTU − 3 = 244 bytes: ${Math.max(...writeSizes)}`);
    assert.ok(ops.some((o) => o === 'write:write-without-response'), ops.slice(0, 20).join(' '));
    await tab.evaluate(() => (globalThis as unknown as { smp: Smp }).smp.close());
    // Check the device from outside the browser.
    const { client: ct, server: st } = createLoopbackPair();
    await server.listen(st);
    const check = new SmpClient(ct);
    const s1 = (await readImageState(check)).find((s) => s.slot === 1);
    assert.ok(s1?.hash && bytesEqual(s1.hash, img.hash));
    await check.close();
    await ctx.close();
  } finally {
    await cdp?.detach().catch(() => {});
    await server?.close();
    await page.close();
    await dir.remove();
  }
});
