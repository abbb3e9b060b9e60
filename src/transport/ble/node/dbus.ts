/**
 * Thin helpers over dbus-next (pure JS, the D-Bus library node-ble uses) for BlueZ: the system bus
 * (`DBUS_SYSTEM_BUS_ADDRESS` is honoured, which is how the tests point us at a mock), method calls
 * with explicit signatures, and match rules. Loaded lazily, with a clear error when absent.
 */
import type * as DbusNext from 'dbus-next';
import type { MessageBus, Message as DbusMessage } from 'dbus-next';
import { TransportError } from '../../../core/errors.ts';

export type DbusModule = typeof DbusNext;

let loaded: Promise<DbusModule> | undefined;

export function loadDbus(): Promise<DbusModule> {
  loaded ??= import('dbus-next').then(
    (m) => ((m as unknown as { default?: DbusModule }).default ?? m) as DbusModule,
    (e: unknown) => {
      loaded = undefined;
      throw new TransportError('TRANSPORT_IO', 'Bluetooth LE on Linux needs the npm package dbus-next (npm install dbus-next)', { cause: e });
    },
  );
  return loaded;
}

export const BLUEZ = 'org.bluez';
export const OBJECT_MANAGER = 'org.freedesktop.DBus.ObjectManager';
export const PROPERTIES = 'org.freedesktop.DBus.Properties';

/** Connects to the system bus, failing clearly when there is none. */
export async function systemBus(): Promise<MessageBus> {
  const dbus = await loadDbus();
  const bus = dbus.systemBus();
  await new Promise<void>((resolve, reject) => {
    const onError = (e: unknown): void => reject(new TransportError('TRANSPORT_IO', `Bluetooth LE: cannot reach the system D-Bus (${e instanceof Error ? e.message : String(e)}); BlueZ needs it`, { cause: e }));
    bus.once('error', onError);
    bus.once('connect', () => {
      bus.off('error', onError);
      bus.on('error', () => {}); // later errors end calls, which report them
      resolve();
    });
  });
  return bus;
}

export interface Call {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

/** A method call; resolves with the reply's body, rejects with the D-Bus error. */
export async function call(bus: MessageBus, c: Call): Promise<unknown[]> {
  const dbus = await loadDbus();
  const reply: DbusMessage | null = await bus.call(new dbus.Message({ destination: c.destination, path: c.path, interface: c.interface, member: c.member, signature: c.signature ?? '', body: c.body ?? [] }));
  return reply?.body ?? [];
}

export function addMatch(bus: MessageBus, rule: string): Promise<unknown[]> {
  return call(bus, { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'AddMatch', signature: 's', body: [rule] });
}

/** The D-Bus error name of a failed call (`org.freedesktop.DBus.Error.ServiceUnknown`, ...). */
export function dbusErrorName(e: unknown): string {
  return typeof e === 'object' && e !== null && 'type' in e ? String((e as { type: unknown }).type) : '';
}

/** Managed objects of BlueZ: path → interface → property → value (variants unwrapped). */
export async function bluezObjects(bus: MessageBus): Promise<Map<string, Map<string, Record<string, unknown>>>> {
  let body: unknown[];
  try {
    body = await call(bus, { destination: BLUEZ, path: '/', interface: OBJECT_MANAGER, member: 'GetManagedObjects' });
  } catch (e) {
    if (dbusErrorName(e) === 'org.freedesktop.DBus.Error.ServiceUnknown') throw new TransportError('TRANSPORT_IO', 'Bluetooth LE: BlueZ (org.bluez) is not on the system D-Bus: is bluetoothd running?', { cause: e });
    throw new TransportError('TRANSPORT_IO', `Bluetooth LE: cannot list BlueZ objects: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const out = new Map<string, Map<string, Record<string, unknown>>>();
  const objects = (body[0] ?? {}) as Record<string, Record<string, Record<string, { value: unknown }>>>;
  for (const [path, ifaces] of Object.entries(objects)) {
    const m = new Map<string, Record<string, unknown>>();
    for (const [iface, props] of Object.entries(ifaces)) {
      const p: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(props)) p[k] = v?.value;
      m.set(iface, p);
    }
    out.set(path, m);
  }
  return out;
}

/** The adapter to use: `hciN` by name, else the first powered one. */
export async function findAdapter(bus: MessageBus, name?: string): Promise<string> {
  const objects = await bluezObjects(bus);
  const adapters = [...objects].filter(([, ifaces]) => ifaces.has('org.bluez.Adapter1'));
  if (adapters.length === 0) throw new TransportError('TRANSPORT_IO', 'Bluetooth LE: no Bluetooth adapter (BlueZ lists none)');
  if (name) {
    const a = adapters.find(([path]) => path.endsWith(`/${name}`));
    if (!a) throw new TransportError('TRANSPORT_IO', `Bluetooth LE: no adapter ${name} (have ${adapters.map(([p]) => p.split('/').pop()).join(', ')})`);
    return a[0];
  }
  const powered = adapters.find(([, ifaces]) => ifaces.get('org.bluez.Adapter1')?.['Powered'] === true);
  return (powered ?? adapters[0]!)[0];
}
