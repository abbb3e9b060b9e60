/**
 * The device side of SMP over BLE on Linux: the SMP GATT service and its advertisement registered
 * with BlueZ over D-Bus (org.bluez.GattManager1.RegisterApplication,
 * org.bluez.LEAdvertisingManager1.RegisterAdvertisement), so that a Linux box is managed by nRF
 * Connect Device Manager, mcumgr-web, smpmgr, the Go mcumgr or this package's CLI.
 *
 * Objects exported on our connection (BlueZ's example-gatt-server layout):
 *   /org/mcumgr/smp                    org.freedesktop.DBus.ObjectManager
 *   /org/mcumgr/smp/service0           org.bluez.GattService1 (SMP service, primary)
 *   /org/mcumgr/smp/service0/char0     org.bluez.GattCharacteristic1 (SMP characteristic:
 *                                      write-without-response, notify; WriteValue, StartNotify, StopNotify)
 *   /org/mcumgr/smp/advertisement0     org.bluez.LEAdvertisement1 (peripheral, SMP service UUID, local name)
 *
 * BlueZ calls WriteValue with options `device` (the central's object path: our connection id),
 * `mtu` and `type: command`; writes go to {@link BleServerTransport} (Zephyr's reassembly).
 * StartNotify/StopNotify are BlueZ's CCC (one subscription state for all centrals); responses
 * are sent as PropertiesChanged of `Value`, which BlueZ turns into notifications of at most
 * MTU − 3 bytes. A central's Device1 `Connected` going false ends its connection (partial
 * request dropped).
 */
import type { MessageBus, Message as DbusMessage } from 'dbus-next';
import { TransportError } from '../../../core/errors.ts';
import { SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID } from '../gatt.ts';
import { BleServerTransport } from '../server.ts';
import { addMatch, BLUEZ, call, dbusErrorName, findAdapter, loadDbus, OBJECT_MANAGER, PROPERTIES, systemBus } from './dbus.ts';

export interface BluezPeripheralOptions {
  /** Advertised local name (default `mcumgr`). */
  name?: string;
  /** Adapter name, e.g. `hci0` (default: the first powered adapter). */
  adapter?: string;
  /** MCUmgr buffer size (default 2048). */
  bufSize?: number;
  /** Object path root (default /org/mcumgr/smp). */
  root?: string;
  onStatus?: (message: string) => void;
}

const GATT_SERVICE = 'org.bluez.GattService1';
const GATT_CHARACTERISTIC = 'org.bluez.GattCharacteristic1';
const ADVERTISEMENT = 'org.bluez.LEAdvertisement1';

/** A BLE server transport for the emulator, served through BlueZ. */
export function createBluezServerTransport(options: BluezPeripheralOptions = {}): BleServerTransport {
  const name = options.name ?? 'mcumgr';
  const root = options.root ?? '/org/mcumgr/smp';
  const servicePath = `${root}/service0`;
  const charPath = `${servicePath}/char0`;
  const advPath = `${root}/advertisement0`;
  let bus: MessageBus | undefined;
  let adapterPath = '';
  let notifying = false;
  let value = new Uint8Array(0);
  let handler: ((msg: DbusMessage) => boolean) | undefined;
  let onSignal: ((msg: DbusMessage) => void) | undefined;

  const transport: BleServerTransport = new BleServerTransport({
    bufSize: options.bufSize ?? 2048,
    description: `ble "${name}"`,
    notify: async (_conn, piece) => {
      const dbus = await loadDbus();
      if (!bus) throw new TransportError('TRANSPORT_CLOSED', 'BlueZ connection closed');
      value = piece.slice();
      // BlueZ sends a notification to every subscribed central when Value changes.
      bus.send(dbus.Message.newSignal(charPath, PROPERTIES, 'PropertiesChanged', 'sa{sv}as', [GATT_CHARACTERISTIC, { Value: new dbus.Variant('ay', Buffer.from(value)) }, []]));
    },
    onStart: async () => {
      const dbus = await loadDbus();
      const { Variant, Message } = dbus;
      bus = await systemBus();
      const b = bus;
      adapterPath = await findAdapter(b, options.adapter);
      const props: Record<string, Record<string, Record<string, InstanceType<typeof Variant>>>> = {
        [servicePath]: { [GATT_SERVICE]: { UUID: new Variant('s', SMP_SERVICE_UUID), Primary: new Variant('b', true), Characteristics: new Variant('ao', [charPath]) } },
        [charPath]: {
          [GATT_CHARACTERISTIC]: {
            UUID: new Variant('s', SMP_CHARACTERISTIC_UUID),
            Service: new Variant('o', servicePath),
            Flags: new Variant('as', ['write-without-response', 'notify']),
          },
        },
      };
      const advProps: Record<string, InstanceType<typeof Variant>> = {
        Type: new Variant('s', 'peripheral'),
        ServiceUUIDs: new Variant('as', [SMP_SERVICE_UUID]),
        LocalName: new Variant('s', name),
      };
      const charProps = (): Record<string, InstanceType<typeof Variant>> => ({ ...props[charPath]![GATT_CHARACTERISTIC]!, Value: new Variant('ay', Buffer.from(value)), Notifying: new Variant('b', notifying) });
      const propsOf = (path: string, iface: string): Record<string, InstanceType<typeof Variant>> | undefined =>
        path === charPath && iface === GATT_CHARACTERISTIC ? charProps() : path === advPath && iface === ADVERTISEMENT ? advProps : props[path]?.[iface];
      const reply = (msg: DbusMessage, signature = '', body: unknown[] = []): boolean => {
        b.send(Message.newMethodReturn(msg, signature, body));
        return true;
      };
      // dbus-next's typings say newError takes a string; it takes the message being answered.
      const fail = (msg: DbusMessage, errorName: string, text: string): boolean => {
        b.send(Message.newError(msg as unknown as string, errorName, text));
        return true;
      };
      handler = (msg) => {
        if (!msg.path?.startsWith(root)) return false;
        const m = msg.member;
        if (msg.interface === OBJECT_MANAGER && m === 'GetManagedObjects' && msg.path === root) {
          return reply(msg, 'a{oa{sa{sv}}}', [{ [servicePath]: props[servicePath], [charPath]: { [GATT_CHARACTERISTIC]: charProps() } }]);
        }
        if (msg.interface === PROPERTIES && (m === 'GetAll' || m === 'Get')) {
          const p = propsOf(msg.path, String(msg.body[0]));
          if (!p) return false;
          if (m === 'GetAll') return reply(msg, 'a{sv}', [p]);
          const v = p[String(msg.body[1])];
          if (!v) return fail(msg, 'org.freedesktop.DBus.Error.InvalidArgs', 'no such property');
          return reply(msg, 'v', [v]);
        }
        if (msg.path === charPath && msg.interface === GATT_CHARACTERISTIC) {
          if (m === 'WriteValue') {
            const data = new Uint8Array(msg.body[0] as Buffer);
            const opts = (msg.body[1] ?? {}) as Record<string, { value: unknown }>;
            const device = typeof opts['device']?.value === 'string' ? opts['device'].value : 'central';
            const mtu = typeof opts['mtu']?.value === 'number' ? opts['mtu'].value : undefined;
            if (!transport.connection(device)) {
              transport.connect(device, { address: device.split('/').pop()?.replace(/^dev_/, '').replace(/_/g, ':') ?? device, ...(mtu ? { attMtu: mtu } : {}) });
              transport.setNotifying(device, notifying);
            }
            transport.write(device, data, mtu ? { attMtu: mtu } : {});
            return reply(msg);
          }
          if (m === 'StartNotify' || m === 'StopNotify') {
            notifying = m === 'StartNotify';
            for (const id of transport.connectionIds()) transport.setNotifying(id, notifying);
            return reply(msg);
          }
          if (m === 'ReadValue') return fail(msg, 'org.bluez.Error.NotPermitted', 'the SMP characteristic is not readable');
        }
        if (msg.path === advPath && msg.interface === ADVERTISEMENT && m === 'Release') return reply(msg);
        return false;
      };
      b.addMethodHandler(handler);
      // Centrals going away: Device1.Connected false, or the device object removed.
      onSignal = (msg) => {
        if (msg.type !== dbus.MessageType.SIGNAL) return;
        if (msg.interface === PROPERTIES && msg.member === 'PropertiesChanged' && msg.body[0] === 'org.bluez.Device1') {
          const changed = msg.body[1] as Record<string, { value: unknown }>;
          if (changed['Connected']?.value === false) transport.disconnect(msg.path);
        } else if (msg.interface === OBJECT_MANAGER && msg.member === 'InterfacesRemoved') transport.disconnect(String(msg.body[0]));
      };
      b.on('message', onSignal);
      await addMatch(b, `type='signal',sender='${BLUEZ}',interface='${PROPERTIES}',member='PropertiesChanged',arg0='org.bluez.Device1'`);
      await addMatch(b, `type='signal',sender='${BLUEZ}',interface='${OBJECT_MANAGER}',member='InterfacesRemoved'`);
      const register = async (iface: string, member: string, path: string, what: string): Promise<void> => {
        try {
          await call(b, { destination: BLUEZ, path: adapterPath, interface: iface, member, signature: 'oa{sv}', body: [path, {}] });
        } catch (e) {
          const n = dbusErrorName(e);
          const hint = n === 'org.freedesktop.DBus.Error.UnknownMethod' || n === 'org.freedesktop.DBus.Error.UnknownInterface' ? ` (${adapterPath} has no ${iface}: BlueZ too old, or LE not supported)` : '';
          throw new TransportError('TRANSPORT_IO', `Bluetooth LE: BlueZ refused to register the ${what}: ${e instanceof Error ? e.message : String(e)}${hint}`, { cause: e });
        }
      };
      await register('org.bluez.GattManager1', 'RegisterApplication', root, 'SMP GATT service');
      await register('org.bluez.LEAdvertisingManager1', 'RegisterAdvertisement', advPath, 'advertisement');
      options.onStatus?.(`SMP service registered with BlueZ on ${adapterPath}, advertising as "${name}"`);
    },
    onClose: async () => {
      const b = bus;
      bus = undefined;
      if (!b) return;
      await call(b, { destination: BLUEZ, path: adapterPath, interface: 'org.bluez.LEAdvertisingManager1', member: 'UnregisterAdvertisement', signature: 'o', body: [advPath] }).catch(() => {});
      await call(b, { destination: BLUEZ, path: adapterPath, interface: 'org.bluez.GattManager1', member: 'UnregisterApplication', signature: 'o', body: [root] }).catch(() => {});
      if (handler) b.removeMethodHandler(handler);
      if (onSignal) b.off('message', onSignal);
      b.disconnect();
    },
  });
  return transport;
}
