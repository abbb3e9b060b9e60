/**
 * The client side of SMP over BLE in Node: finding a device that advertises the SMP service
 * (BlueZ discovery over D-Bus) and connecting to it with one of two adapters, both loaded only
 * when used:
 *
 * - `node-ble` (default, Linux): BlueZ over D-Bus, pure JS (dbus-next). BlueZ's GATT client
 *   fragments nothing for write-without-response: each write carries at most MTU − 3 bytes, the
 *   MTU read from the characteristic's `MTU` property (BlueZ ≥ 5.62; 23 when absent).
 * - `noble` (`@stoprocent/noble`, optional: macOS, Windows, HCI sockets and HCI-over-UART
 *   dongles): installed separately (`npm install @stoprocent/noble`).
 *
 * Both give a {@link GattConnector} for {@link openBleTransport}.
 */
import type * as NodeBleModule from 'node-ble';
import { TransportError, UsageError } from '../../../core/errors.ts';
import { SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID, type GattConnector, type GattLink, type GattLinkEvent } from '../gatt.ts';
import { BLUEZ, PROPERTIES, addMatch, bluezObjects, call, findAdapter, loadDbus, systemBus } from './dbus.ts';

export interface BlePeer {
  /** Advertised name (peer_name). */
  name?: string;
  /** Address (peer_id): `AA:BB:CC:DD:EE:FF` (or a noble peripheral id). */
  address?: string;
}

export interface CentralOptions extends BlePeer {
  /** `node-ble` (default) or `noble`. */
  adapter?: 'node-ble' | 'noble';
  /** Controller: `hci0` (ctlr_name). */
  controller?: string;
  /** Time to find the device and connect (default 10 s). */
  connectTimeoutMs?: number;
}

export interface ScannedDevice {
  name: string | undefined;
  address: string;
  rssi: number | undefined;
}

function normaliseAddress(a: string): string {
  return a.toUpperCase().replace(/-/g, ':');
}

/** Parses a Go mcumgr BLE connstring: `peer_name=NAME` or `peer_id=ADDRESS`, `ctlr_name=hci0`, `conn_timeout=SECONDS`, `adapter=noble`. */
export function parseBleConnstring(connstring: string): CentralOptions {
  const out: CentralOptions = {};
  const parts = connstring.split(',').map((p) => p.trim()).filter((p) => p !== '');
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      // A bare value: an address if it looks like one, else a name (the short --ble form).
      if (/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(part)) out.address = normaliseAddress(part);
      else out.name = part;
      continue;
    }
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    switch (key) {
      case 'peer_name':
        out.name = value;
        break;
      case 'peer_id':
        out.address = /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(value) ? normaliseAddress(value) : value;
        break;
      case 'ctlr_name':
        out.controller = value;
        break;
      case 'conn_timeout': {
        const s = Number(value);
        if (!Number.isFinite(s) || s <= 0) throw new UsageError(`conn_timeout must be a positive number of seconds, got ${JSON.stringify(value)}`);
        out.connectTimeoutMs = s * 1000;
        break;
      }
      case 'adapter':
        if (value !== 'node-ble' && value !== 'noble') throw new UsageError(`adapter must be node-ble or noble, got ${JSON.stringify(value)}`);
        out.adapter = value;
        break;
      case 'own_addr_type':
        break; // the Go tool's; BlueZ chooses the own address
      default:
        throw new UsageError(`unknown BLE connstring key ${JSON.stringify(key)} (peer_name, peer_id, ctlr_name, conn_timeout, adapter)`);
    }
  }
  if (!out.name && !out.address) throw new UsageError('BLE connection needs peer_name=NAME or peer_id=ADDRESS');
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * BlueZ discovery of SMP devices: starts LE discovery filtered on the SMP service, waits, and
 * lists the devices BlueZ knows that advertise it (name, address, RSSI).
 */
export async function scanBluez(options: { timeoutMs?: number; controller?: string; until?: (d: ScannedDevice) => boolean } = {}): Promise<ScannedDevice[]> {
  const bus = await systemBus();
  try {
    const adapter = await findAdapter(bus, options.controller);
    const { Variant } = await loadDbus();
    await call(bus, { destination: BLUEZ, path: adapter, interface: 'org.bluez.Adapter1', member: 'SetDiscoveryFilter', signature: 'a{sv}', body: [{ UUIDs: new Variant('as', [SMP_SERVICE_UUID]), Transport: new Variant('s', 'le') }] }).catch(() => {});
    await call(bus, { destination: BLUEZ, path: adapter, interface: 'org.bluez.Adapter1', member: 'StartDiscovery' }).catch((e: unknown) => {
      if (!/InProgress/.test(String((e as { type?: string }).type))) throw new TransportError('TRANSPORT_IO', `Bluetooth LE: cannot start discovery: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    });
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    let found: ScannedDevice[] = [];
    for (;;) {
      const objects = await bluezObjects(bus);
      found = [];
      for (const [path, ifaces] of objects) {
        const d = ifaces.get('org.bluez.Device1');
        if (!d || !path.startsWith(adapter + '/')) continue;
        const uuids = (d['UUIDs'] as string[] | undefined) ?? [];
        if (!uuids.some((u) => u.toLowerCase() === SMP_SERVICE_UUID)) continue;
        found.push({ name: (d['Name'] as string | undefined) ?? (d['Alias'] as string | undefined), address: String(d['Address']), rssi: typeof d['RSSI'] === 'number' ? d['RSSI'] : undefined });
      }
      if ((options.until && found.some(options.until)) || Date.now() >= deadline) break;
      await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
    }
    await call(bus, { destination: BLUEZ, path: adapter, interface: 'org.bluez.Adapter1', member: 'StopDiscovery' }).catch(() => {});
    return found;
  } finally {
    bus.disconnect();
  }
}

type NodeBle = typeof NodeBleModule;

/** `p`, or a TRANSPORT_TIMEOUT naming `step` once `deadline` (epoch ms) passes. */
function bounded<T>(p: Promise<T>, deadline: number, step: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransportError('TRANSPORT_TIMEOUT', `Bluetooth LE: ${step} took too long (connect timeout)`)), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Resolves once BlueZ reports the device's GATT services resolved (`Device1.ServicesResolved`):
 * subscribes to the property's changes first, then reads it, so no change is missed.
 */
async function servicesResolved(address: string, controller: string | undefined, deadline: number): Promise<void> {
  const bus = await systemBus();
  try {
    const adapter = await findAdapter(bus, controller);
    const path = `${adapter}/dev_${address.replace(/:/g, '_')}`;
    const resolved = new Promise<void>((resolve) => {
      bus.on('message', (m) => {
        if (m.path !== path || m.member !== 'PropertiesChanged' || m.body[0] !== 'org.bluez.Device1') return;
        const changed = m.body[1] as Record<string, { value: unknown } | undefined>;
        if (changed['ServicesResolved']?.value === true) resolve();
      });
    });
    await addMatch(bus, `type='signal',sender='${BLUEZ}',path='${path}',interface='${PROPERTIES}',member='PropertiesChanged'`);
    const [now] = await call(bus, { destination: BLUEZ, path, interface: PROPERTIES, member: 'Get', signature: 'ss', body: ['org.bluez.Device1', 'ServicesResolved'] });
    if ((now as { value?: unknown } | undefined)?.value === true) return;
    await bounded(resolved, deadline, `waiting for ${address}'s GATT services`);
  } finally {
    bus.disconnect();
  }
}

async function loadNodeBle(): Promise<NodeBle> {
  try {
    const m = await import('node-ble');
    return ((m as unknown as { default?: NodeBle }).default ?? m) as NodeBle;
  } catch (e) {
    throw new TransportError('TRANSPORT_IO', 'Bluetooth LE on Linux needs the npm package node-ble (npm install node-ble)', { cause: e });
  }
}

function describeBluezError(e: unknown, doing: string): TransportError {
  if (e instanceof TransportError) return e;
  const text = e instanceof Error ? e.message : String(e);
  const type = String((e as { type?: unknown }).type ?? '');
  if (/ServiceUnknown|was not provided/.test(type + text)) return new TransportError('TRANSPORT_IO', 'Bluetooth LE: BlueZ (org.bluez) is not on the system D-Bus: is bluetoothd running?', { cause: e });
  if (/ENOENT|ECONNREFUSED/.test(text)) return new TransportError('TRANSPORT_IO', `Bluetooth LE: no system D-Bus (${text}); BlueZ needs it`, { cause: e });
  return new TransportError('TRANSPORT_IO', `Bluetooth LE: ${doing} failed: ${text}`, { cause: e });
}

/** A connector through BlueZ with node-ble (unmodified). Finds the device by address or name first. */
export function nodeBleConnector(options: CentralOptions): GattConnector {
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  let address = options.address;
  return async () => {
    const { createBluetooth } = await loadNodeBle();
    if (!address) {
      const wanted = options.name;
      const found = await scanBluez({ timeoutMs, ...(options.controller ? { controller: options.controller } : {}), until: (d) => d.name === wanted });
      const hit = found.find((d) => d.name === wanted);
      if (!hit) throw new TransportError('TRANSPORT_TIMEOUT', `Bluetooth LE: no device named ${JSON.stringify(wanted)} advertising the SMP service found in ${timeoutMs / 1000} s${found.length ? ` (found: ${found.map((d) => d.name ?? d.address).join(', ')})` : ''}`);
      address = hit.address;
    }
    const { bluetooth, destroy } = createBluetooth();
    let step = 'finding the adapter';
    try {
      const adapter = options.controller ? await bluetooth.getAdapter(options.controller) : await bluetooth.defaultAdapter();
      step = `finding ${address}`;
      const known = (await adapter.devices()).map(normaliseAddress);
      if (!known.includes(address)) {
        const found = await scanBluez({ timeoutMs, ...(options.controller ? { controller: options.controller } : {}), until: (d) => normaliseAddress(d.address) === address });
        if (!found.some((d) => normaliseAddress(d.address) === address)) throw new TransportError('TRANSPORT_TIMEOUT', `Bluetooth LE: device ${address} not found in ${timeoutMs / 1000} s`);
      }
      const device = await adapter.getDevice(address);
      // Every step from here on is bounded: a device that connects but never resolves its services
      // (or a BlueZ that never answers) is a timeout naming the step, never a hang.
      const deadline = Date.now() + timeoutMs;
      step = `connecting to ${address}`;
      await bounded(device.connect(), deadline, step);
      step = `waiting for ${address}'s GATT services`;
      // node-ble's gatt() reads ServicesResolved and then subscribes to its change: a change that
      // lands between the two is missed and gatt() waits forever. Wait for it here without that gap.
      await servicesResolved(address, options.controller, deadline);
      step = 'discovering the SMP service';
      const gatt = await bounded(device.gatt(), deadline, step);
      const service = await bounded(gatt.getPrimaryService(SMP_SERVICE_UUID), deadline, step).catch((e: unknown) => {
        if (e instanceof TransportError) throw e;
        throw new TransportError('TRANSPORT_IO', `Bluetooth LE: ${address} has no SMP service (${SMP_SERVICE_UUID})`);
      });
      const characteristic = await bounded(service.getCharacteristic(SMP_CHARACTERISTIC_UUID), deadline, step).catch((e: unknown) => {
        if (e instanceof TransportError) throw e;
        throw new TransportError('TRANSPORT_IO', `Bluetooth LE: ${address} has no SMP characteristic (${SMP_CHARACTERISTIC_UUID})`);
      });
      // node-ble has no MTU accessor; BlueZ (>= 5.62) has GattCharacteristic1.MTU.
      const helper = (characteristic as unknown as { helper?: { prop(name: string): Promise<unknown> } }).helper;
      const mtu = await helper?.prop('MTU').catch(() => undefined);
      const name = await device.getName().catch(() => undefined);
      return nodeBleLink({ device, characteristic, destroy, address: address, name, attMtu: typeof mtu === 'number' && mtu >= 23 ? mtu : 23 });
    } catch (e) {
      destroy();
      throw describeBluezError(e, step);
    }
  };
}

type NbDevice = Awaited<ReturnType<Awaited<ReturnType<ReturnType<NodeBle['createBluetooth']>['bluetooth']['defaultAdapter']>>['getDevice']>>;
type NbCharacteristic = Awaited<ReturnType<Awaited<ReturnType<Awaited<ReturnType<NbDevice['gatt']>>['getPrimaryService']>>['getCharacteristic']>>;

function nodeBleLink(p: { device: NbDevice; characteristic: NbCharacteristic; destroy: () => void; address: string; name: string | undefined; attMtu: number }): GattLink {
  const listeners = new Set<(e: GattLinkEvent) => void>();
  let connected = true;
  let onValue: ((buffer: Buffer) => void) | undefined;
  const gone = (): void => {
    if (!connected) return;
    connected = false;
    p.destroy();
    for (const l of [...listeners]) l({ type: 'disconnected' });
  };
  p.device.on('disconnect', gone);
  return {
    attMtu: p.attMtu,
    address: p.address,
    ...(p.name ? { name: p.name } : {}),
    get connected() {
      return connected;
    },
    async writeWithoutResponse(value) {
      if (!connected) throw new TransportError('TRANSPORT_CLOSED', 'Bluetooth LE link closed');
      await p.characteristic.writeValueWithoutResponse(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    },
    async startNotifications(cb) {
      if (onValue) p.characteristic.off('valuechanged', onValue);
      onValue = (b: Buffer) => cb(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
      p.characteristic.on('valuechanged', onValue);
      await p.characteristic.startNotifications();
    },
    async stopNotifications() {
      if (onValue) p.characteristic.off('valuechanged', onValue);
      onValue = undefined;
      if (connected) await p.characteristic.stopNotifications();
    },
    onEvent(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    async disconnect() {
      if (!connected) return;
      connected = false;
      await p.device.disconnect().catch(() => {});
      p.destroy();
    },
  };
}

/** The connector for the options: node-ble (default) or noble. */
export async function bleConnector(options: CentralOptions): Promise<GattConnector> {
  if (options.adapter === 'noble') {
    const { nobleConnector } = await import('./noble.ts');
    return nobleConnector(options);
  }
  return nodeBleConnector(options);
}

/** Scans with the chosen adapter. */
export async function scanSmpDevices(options: { timeoutMs?: number; controller?: string; adapter?: 'node-ble' | 'noble' } = {}): Promise<ScannedDevice[]> {
  if (options.adapter === 'noble') {
    const { scanNoble } = await import('./noble.ts');
    return scanNoble(options);
  }
  return scanBluez(options);
}

