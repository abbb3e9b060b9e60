/**
 * The noble adapter (`@stoprocent/noble`, an optional dependency loaded only when asked for with
 * `adapter=noble`): raw HCI on Linux, CoreBluetooth on macOS, WinRT on Windows, HCI over UART
 * dongles. It is not exercised by the tests (no HCI controller here); it follows noble's
 * documented promise API: `waitForPoweredOnAsync`, `startScanningAsync`, `discover` events,
 * `connectAsync`, `discoverSomeServicesAndCharacteristicsAsync`, `writeAsync(data, true)`,
 * `subscribeAsync` and `data` events, `peripheral.mtu`.
 */
import { TransportError } from '../../../core/errors.ts';
import { SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID, type GattConnector, type GattLink, type GattLinkEvent } from '../gatt.ts';
import type { CentralOptions, ScannedDevice } from './central.ts';

interface NobleCharacteristic {
  writeAsync(data: Buffer, withoutResponse: boolean): Promise<void>;
  subscribeAsync(): Promise<void>;
  unsubscribeAsync(): Promise<void>;
  on(event: 'data', listener: (data: Buffer, isNotification: boolean) => void): void;
  removeAllListeners(event: 'data'): void;
}
interface NoblePeripheral {
  id: string;
  address: string;
  rssi: number;
  mtu?: number | null;
  advertisement: { localName?: string; serviceUuids?: string[] };
  connectAsync(): Promise<void>;
  disconnectAsync(): Promise<void>;
  discoverSomeServicesAndCharacteristicsAsync(services: string[], characteristics: string[]): Promise<{ characteristics: NobleCharacteristic[] }>;
  once(event: 'disconnect', listener: () => void): void;
}
interface Noble {
  waitForPoweredOnAsync(timeoutMs?: number): Promise<void>;
  startScanningAsync(serviceUuids?: string[], allowDuplicates?: boolean): Promise<void>;
  stopScanningAsync(): Promise<void>;
  on(event: 'discover', listener: (p: NoblePeripheral) => void): void;
  removeListener(event: 'discover', listener: (p: NoblePeripheral) => void): void;
}

const NOBLE_PACKAGE = '@stoprocent/noble';
const compact = (uuid: string): string => uuid.replace(/-/g, '').toLowerCase();

async function loadNoble(): Promise<Noble> {
  let m: unknown;
  try {
    // A variable specifier: bundlers and the type checker leave the optional package alone.
    const name = NOBLE_PACKAGE;
    m = await import(name);
  } catch (e) {
    throw new TransportError('TRANSPORT_IO', `Bluetooth LE adapter noble needs the optional npm package ${NOBLE_PACKAGE} (npm install ${NOBLE_PACKAGE}); or use adapter=node-ble on Linux`, { cause: e });
  }
  const noble = ((m as { default?: Noble }).default ?? m) as Noble;
  try {
    await noble.waitForPoweredOnAsync(5000);
  } catch (e) {
    throw new TransportError('TRANSPORT_IO', `Bluetooth LE (noble): no powered-on Bluetooth controller: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return noble;
}

async function scan(noble: Noble, timeoutMs: number, until?: (p: NoblePeripheral) => boolean): Promise<NoblePeripheral[]> {
  const found = new Map<string, NoblePeripheral>();
  let stop: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    stop = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  const onDiscover = (p: NoblePeripheral): void => {
    found.set(p.id, p);
    if (until?.(p)) stop();
  };
  noble.on('discover', onDiscover);
  await noble.startScanningAsync([compact(SMP_SERVICE_UUID)], false);
  await done;
  noble.removeListener('discover', onDiscover);
  await noble.stopScanningAsync().catch(() => {});
  return [...found.values()];
}

export async function scanNoble(options: { timeoutMs?: number } = {}): Promise<ScannedDevice[]> {
  const noble = await loadNoble();
  return (await scan(noble, options.timeoutMs ?? 5000)).map((p) => ({ name: p.advertisement.localName, address: p.address || p.id, rssi: p.rssi }));
}

export function nobleConnector(options: CentralOptions): GattConnector {
  return async () => {
    const noble = await loadNoble();
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const matches = (p: NoblePeripheral): boolean =>
      options.address ? p.address.toUpperCase() === options.address.toUpperCase() || p.id === options.address : p.advertisement.localName === options.name;
    const peripheral = (await scan(noble, timeoutMs, matches)).find(matches);
    if (!peripheral) throw new TransportError('TRANSPORT_TIMEOUT', `Bluetooth LE (noble): ${options.address ?? JSON.stringify(options.name)} not found in ${timeoutMs / 1000} s`);
    await peripheral.connectAsync();
    const { characteristics } = await peripheral.discoverSomeServicesAndCharacteristicsAsync([compact(SMP_SERVICE_UUID)], [compact(SMP_CHARACTERISTIC_UUID)]);
    const characteristic = characteristics[0];
    if (!characteristic) {
      await peripheral.disconnectAsync().catch(() => {});
      throw new TransportError('TRANSPORT_IO', `Bluetooth LE (noble): ${peripheral.address} has no SMP characteristic`);
    }
    const listeners = new Set<(e: GattLinkEvent) => void>();
    let connected = true;
    peripheral.once('disconnect', () => {
      connected = false;
      for (const l of [...listeners]) l({ type: 'disconnected' });
    });
    const link: GattLink = {
      // noble reports the negotiated MTU once exchanged; Windows may report 20-byte values only.
      get attMtu() {
        return peripheral.mtu && peripheral.mtu >= 23 ? peripheral.mtu : 23;
      },
      address: peripheral.address || peripheral.id,
      ...(peripheral.advertisement.localName ? { name: peripheral.advertisement.localName } : {}),
      get connected() {
        return connected;
      },
      writeWithoutResponse: (value) => characteristic.writeAsync(Buffer.from(value.buffer, value.byteOffset, value.byteLength), true),
      async startNotifications(cb) {
        characteristic.removeAllListeners('data');
        characteristic.on('data', (data) => cb(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
        await characteristic.subscribeAsync();
      },
      async stopNotifications() {
        characteristic.removeAllListeners('data');
        if (connected) await characteristic.unsubscribeAsync();
      },
      onEvent(l) {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      async disconnect() {
        if (connected) await peripheral.disconnectAsync().catch(() => {});
        connected = false;
      },
    };
    return link;
  };
}
