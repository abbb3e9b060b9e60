/**
 * BlueZ's D-Bus API without a radio, for the BLE tests: a private `dbus-daemon` standing in for the
 * system bus, Debian's python3-dbusmock serving org.bluez from its `bluez5` template (loaded through
 * test/fixtures/bluez5_gatt.py, which declares PropertiesChanged so dbus-next receives it), and
 * two roles played by this module on top of it:
 *
 * - {@link BluezMock.addSmpPeripheral}: a remote device advertising the SMP service whose
 *   characteristic (added with AddObject: the template has no GATT helpers) is backed by a
 *   {@link BleServerTransport}: writes seen as the mock's MethodCalled signals go into it, its
 *   notifications go out as UpdateProperties(Value), i.e. PropertiesChanged, to the central.
 * - {@link BluezMock.bridgePeripheralApplications}: BlueZ's part between a central and a local
 *   GATT application (`mcumgr serve --ble`). When the application calls
 *   GattManager1.RegisterApplication and LEAdvertisingManager1.RegisterAdvertisement (stub
 *   methods on the mock adapter), the bridge reads its objects (GetManagedObjects, the
 *   advertisement's properties), creates the advertised device as a mock Device1 with the SMP
 *   service and characteristic, and forwards: the central's WriteValue calls to the
 *   application's WriteValue (options `type: command`, `device`, `mtu`, `link`, as BlueZ passes
 *   them), StartNotify/StopNotify (BlueZ's CCC handling), the application's PropertiesChanged of
 *   Value back as notifications, and a disconnect as the central's Device1 going `Connected: false`.
 *
 * What is emulated: the radio, advertising and scanning (devices appear at once), connection and
 * service discovery (ServicesResolved set on Connect), the ATT MTU (a fixed `MTU` property and
 * `mtu` option). What is real: the D-Bus daemon and wire format, node-ble and dbus-next unmodified,
 * our D-Bus code on both sides.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import dbus from 'dbus-next';
import type { MessageBus, Message } from 'dbus-next';
import { stopChild } from './pty.ts';
import { ROOT } from './helpers.ts';
import { SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID } from '../src/transport/ble/gatt.ts';
import { BleServerTransport } from '../src/transport/ble/server.ts';

const { Variant } = dbus;
const MOCK = 'org.freedesktop.DBus.Mock';
const BLUEZ = 'org.bluez';

export interface BluezMock {
  /** The bus address (what DBUS_SYSTEM_BUS_ADDRESS is set to). */
  address: string;
  bus: MessageBus;
  adapterPath: string;
  call(path: string, iface: string, member: string, signature?: string, body?: unknown[]): Promise<unknown[]>;
  /** A remote SMP device named `name` whose characteristic is served by `server`. */
  addSmpPeripheral(name: string, address: string, options?: { attMtu?: number; bufSize?: number }): Promise<{ server: BleServerTransport; devicePath: string }>;
  /** Plays BlueZ for local GATT applications (serve --ble) on the mock adapter. */
  bridgePeripheralApplications(options?: { attMtu?: number; centralAddress?: string }): Promise<void>;
  close(): Promise<void>;
}

function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      rl.close();
      resolve(l.trim());
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code})`)));
  });
}

async function callOn(bus: MessageBus, destination: string, path: string, iface: string, member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
  const reply = await bus.call(new dbus.Message({ destination, path, interface: iface, member, signature, body }));
  return reply?.body ?? [];
}

function addMatch(bus: MessageBus, rule: string): Promise<unknown[]> {
  return callOn(bus, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'AddMatch', 's', [rule]);
}

/** MethodCalled signals of the mock, by object path. */
type MethodCalled = (member: string, args: unknown[]) => void;

export async function startBluezMock(): Promise<BluezMock> {
  const children: ChildProcess[] = [];
  const daemon = spawn('dbus-daemon', ['--session', '--nofork', '--print-address=1'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(daemon);
  let bus: MessageBus | undefined;
  try {
    const address = await firstLine(daemon, 'dbus-daemon');
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = address;
    const mock = spawn('/usr/bin/python3', ['-m', 'dbusmock', '--system', '-t', join(ROOT, 'test/fixtures/bluez5_gatt.py')], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: address } });
    children.push(mock);
    let mockErr = '';
    mock.stderr!.on('data', (d: Buffer) => (mockErr += d.toString()));
    bus = dbus.systemBus();
    const b = bus;
    // The mock owns org.bluez once its template is loaded: wait for NameOwnerChanged (or find it owned).
    await addMatch(b, "type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.bluez'");
    await new Promise<void>((resolve, reject) => {
      const onMsg = (m: Message): void => {
        if (m.member === 'NameOwnerChanged' && m.body[0] === BLUEZ && m.body[2]) done();
      };
      const done = (): void => {
        b.off('message', onMsg);
        resolve();
      };
      b.on('message', onMsg);
      mock.once('exit', (code) => reject(new Error(`dbusmock exited (${code}): ${mockErr}`)));
      void callOn(b, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'NameHasOwner', 's', [BLUEZ]).then((r) => r[0] === true && done());
    });
    await addMatch(b, `type='signal',sender='${BLUEZ}',interface='${MOCK}',member='MethodCalled'`);
    const handlers = new Map<string, MethodCalled>();
    b.on('message', (m: Message) => {
      if (m.interface === MOCK && m.member === 'MethodCalled') handlers.get(m.path)?.(String(m.body[0]), (m.body[1] as Array<{ value: unknown }>).map((v) => v.value));
    });
    const call = (path: string, iface: string, member: string, signature = '', body: unknown[] = []): Promise<unknown[]> => callOn(b, BLUEZ, path, iface, member, signature, body);
    const [adapterPath] = (await call('/org/bluez', 'org.bluez.Mock', 'AddAdapter', 'ss', ['hci0', 'mcumgr-test'])) as [string];

    const addDevice = async (address: string, name: string, props: Record<string, unknown>): Promise<string> => {
      const [path] = (await call('/org/bluez', 'org.bluez.Mock', 'AddDevice', 'sss', ['hci0', address, name])) as [string];
      await call(path, MOCK, 'UpdateProperties', 'sa{sv}', ['org.bluez.Device1', props]);
      return path;
    };
    /** The SMP service and characteristic under a device; returns the characteristic's path. */
    const addSmpGatt = async (devicePath: string, attMtu: number): Promise<string> => {
      const svc = `${devicePath}/service0010`;
      const chr = `${svc}/char0011`;
      await call('/', MOCK, 'AddObject', 'ssa{sv}a(ssss)', [svc, 'org.bluez.GattService1', { UUID: new Variant('s', SMP_SERVICE_UUID), Primary: new Variant('b', true), Device: new Variant('o', devicePath) }, []]);
      await call('/', MOCK, 'AddObject', 'ssa{sv}a(ssss)', [
        chr,
        'org.bluez.GattCharacteristic1',
        {
          UUID: new Variant('s', SMP_CHARACTERISTIC_UUID),
          Service: new Variant('o', svc),
          Flags: new Variant('as', ['write-without-response', 'notify']),
          Value: new Variant('ay', Buffer.alloc(0)),
          Notifying: new Variant('b', false),
          MTU: new Variant('q', attMtu),
        },
        [
          ['WriteValue', 'aya{sv}', '', ''],
          ['StartNotify', '', '', ''],
          ['StopNotify', '', '', ''],
        ],
      ]);
      return chr;
    };
    const setValue = (chr: string, value: Uint8Array): Promise<unknown[]> => call(chr, MOCK, 'UpdateProperties', 'sa{sv}', ['org.bluez.GattCharacteristic1', { Value: new Variant('ay', Buffer.from(value)) }]);
    /** Connect resolves services at once; Disconnect (already flips Connected in the template) reports `onDisconnect`. */
    const onDeviceCalls = (devicePath: string, onDisconnect: () => void): void => {
      handlers.set(devicePath, (member) => {
        if (member === 'Connect') void call(devicePath, MOCK, 'UpdateProperties', 'sa{sv}', ['org.bluez.Device1', { ServicesResolved: new Variant('b', true) }]);
        if (member === 'Disconnect') {
          void call(devicePath, MOCK, 'UpdateProperties', 'sa{sv}', ['org.bluez.Device1', { ServicesResolved: new Variant('b', false) }]);
          onDisconnect();
        }
      });
    };
    const deviceProps = (rssi: number): Record<string, unknown> => ({ UUIDs: new Variant('as', [SMP_SERVICE_UUID]), RSSI: new Variant('n', rssi) });

    return {
      address,
      bus: b,
      adapterPath,
      call,
      async addSmpPeripheral(name, address, options = {}) {
        const attMtu = options.attMtu ?? 247;
        const devicePath = await addDevice(address, name, deviceProps(-52));
        const chr = await addSmpGatt(devicePath, attMtu);
        // The device side: Zephyr's rules in the server transport, notifications as Value changes.
        const server = new BleServerTransport({ bufSize: options.bufSize ?? 2048, description: `ble mock ${name}`, notify: async (_c, v) => void (await setValue(chr, v)) });
        onDeviceCalls(devicePath, () => server.disconnect(devicePath));
        handlers.set(chr, (member, args) => {
          if (member === 'WriteValue') server.write(devicePath, new Uint8Array(args[0] as number[]), { attMtu });
          else if (member === 'StartNotify' || member === 'StopNotify') {
            if (!server.connection(devicePath)) server.connect(devicePath, { address, attMtu });
            server.setNotifying(devicePath, member === 'StartNotify');
          }
        });
        return { server, devicePath };
      },
      async bridgePeripheralApplications(options = {}) {
        const attMtu = options.attMtu ?? 247;
        const apps = new Map<string, { owner: string; charPath?: string }>();
        let advertised: { owner: string; name: string } | undefined;
        await call(adapterPath, MOCK, 'AddMethods', 'sa(ssss)', ['org.bluez.GattManager1', [['RegisterApplication', 'oa{sv}', '', ''], ['UnregisterApplication', 'o', '', '']]]);
        await call(adapterPath, MOCK, 'AddMethods', 'sa(ssss)', ['org.bluez.LEAdvertisingManager1', [['RegisterAdvertisement', 'oa{sv}', '', ''], ['UnregisterAdvertisement', 'o', '', '']]]);
        const mockOwner = String((await callOn(b, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'GetNameOwner', 's', [BLUEZ]))[0]);
        /** The connection that exports `path` with `iface` (the caller of a registration: MethodCalled does not name it). */
        const ownerOf = async (path: string, iface: string, member: string, signature = '', body: unknown[] = []): Promise<{ owner: string; reply: unknown[] }> => {
          const [names] = (await callOn(b, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'ListNames')) as [string[]];
          for (const n of names) {
            if (!n.startsWith(':') || n === mockOwner || n === (b as unknown as { name: string }).name) continue;
            try {
              return { owner: n, reply: await callOn(b, n, path, iface, member, signature, body) };
            } catch {
              // not this one
            }
          }
          throw new Error(`no connection exports ${path}`);
        };
        let central: string | undefined;
        let published = 0;
        const publish = async (app: { owner: string; charPath?: string }): Promise<void> => {
          if (!advertised || !app.charPath || advertised.owner !== app.owner) return;
          const owner = app.owner;
          const appChar = app.charPath;
          central ??= await addDevice(options.centralAddress ?? 'CE:00:00:00:00:01', 'central', { Connected: new Variant('b', false) });
          const centralPath = central;
          // One device per registered application: C0:FF:EE:00:01:01, C0:FF:EE:00:01:02, ...
          const devicePath = await addDevice(`C0:FF:EE:00:01:${(++published).toString(16).padStart(2, '0').toUpperCase()}`, advertised.name, deviceProps(-60));
          const chr = await addSmpGatt(devicePath, attMtu);
          const toApp = (member: string, signature = '', body: unknown[] = []): void => void callOn(b, owner, appChar, 'org.bluez.GattCharacteristic1', member, signature, body).catch(() => {});
          const setCentralConnected = (v: boolean): Promise<unknown[]> => call(centralPath, MOCK, 'UpdateProperties', 'sa{sv}', ['org.bluez.Device1', { Connected: new Variant('b', v) }]);
          onDeviceCalls(devicePath, () => {
            toApp('StopNotify');
            void setCentralConnected(false);
          });
          handlers.set(chr, (member, args) => {
            if (member === 'WriteValue') {
              toApp('WriteValue', 'aya{sv}', [Buffer.from(args[0] as number[]), { type: new Variant('s', 'command'), device: new Variant('o', centralPath), mtu: new Variant('q', attMtu), link: new Variant('s', 'LE') }]);
            } else if (member === 'StartNotify') {
              void setCentralConnected(true).then(() => toApp('StartNotify'));
            } else if (member === 'StopNotify') toApp('StopNotify');
          });
          // The application's Value changes are notifications to the central.
          await addMatch(b, `type='signal',sender='${owner}',path='${appChar}',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'`);
          b.on('message', (m: Message) => {
            if (m.sender !== owner || m.path !== appChar || m.member !== 'PropertiesChanged') return;
            const value = (m.body[1] as Record<string, { value: Buffer }>)['Value']?.value;
            if (value) void setValue(chr, new Uint8Array(value));
          });
        };
        handlers.set(adapterPath, (member, args) => {
          void (async () => {
            if (member === 'RegisterApplication') {
              const path = String(args[0]);
              const { owner, reply } = await ownerOf(path, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects');
              const objects = reply[0] as Record<string, Record<string, Record<string, { value: unknown }>>>;
              const charPath = Object.keys(objects).find((p) => String(objects[p]?.['org.bluez.GattCharacteristic1']?.['UUID']?.value).toLowerCase() === SMP_CHARACTERISTIC_UUID);
              const app = { owner, ...(charPath ? { charPath } : {}) };
              apps.set(path, app);
              await publish(app);
            } else if (member === 'RegisterAdvertisement') {
              const path = String(args[0]);
              const { owner, reply } = await ownerOf(path, 'org.freedesktop.DBus.Properties', 'GetAll', 's', ['org.bluez.LEAdvertisement1']);
              const props = reply[0] as Record<string, { value: unknown }>;
              advertised = { owner, name: String(props['LocalName']?.value ?? '') };
              for (const app of apps.values()) await publish(app);
            }
          })();
        });
      },
      async close() {
        b.disconnect();
        for (const c of children.reverse()) await stopChild(c);
      },
    };
  } catch (e) {
    bus?.disconnect();
    for (const c of children.reverse()) await stopChild(c);
    throw e;
  }
}
