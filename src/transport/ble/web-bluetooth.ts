/**
 * Web Bluetooth adapter (browsers: Chromium-based, on a secure page, after a user gesture), on the
 * portable core: the same SMP client, transfer engines and transport as in Node.
 *
 * ```ts
 * const device = await requestSmpDevice(navigator.bluetooth);            // the browser's chooser
 * const transport = await openBleTransport(webBluetoothConnector(device));
 * const client = new SmpClient(transport);
 * ```
 *
 * Web Bluetooth does not tell the ATT MTU. Writes start at `attMtu − 3` bytes (option, default
 * 247, which browsers negotiate with most devices); a write the browser refuses is split in two
 * and the smaller size kept (down to 20 bytes), which a device that reassembles takes alike.
 */
import { TransportError } from '../../core/errors.ts';
import { ATT_MTU_MIN, ATT_OVERHEAD, SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID, type GattConnector, type GattLink, type GattLinkEvent } from './gatt.ts';

/** The parts of the Web Bluetooth API used here (lib.dom has no Web Bluetooth types). */
export interface WebBluetoothCharacteristic extends EventTarget {
  readonly value?: DataView | null;
  writeValueWithoutResponse(value: BufferSource): Promise<void>;
  startNotifications(): Promise<unknown>;
  stopNotifications(): Promise<unknown>;
}
export interface WebBluetoothDevice extends EventTarget {
  readonly id: string;
  readonly name?: string | undefined;
  readonly gatt?: {
    readonly connected: boolean;
    connect(): Promise<{ getPrimaryService(uuid: string): Promise<{ getCharacteristic(uuid: string): Promise<WebBluetoothCharacteristic> }> }>;
    disconnect(): void;
  };
}
export interface WebBluetooth {
  requestDevice(options: { filters?: Array<{ services?: string[]; name?: string; namePrefix?: string }>; optionalServices?: string[]; acceptAllDevices?: boolean }): Promise<WebBluetoothDevice>;
}

/** Opens the browser's device chooser for devices advertising the SMP service (optionally by name). */
export function requestSmpDevice(bluetooth: WebBluetooth, options: { name?: string; namePrefix?: string } = {}): Promise<WebBluetoothDevice> {
  const filter = { services: [SMP_SERVICE_UUID], ...(options.name ? { name: options.name } : {}), ...(options.namePrefix ? { namePrefix: options.namePrefix } : {}) };
  return bluetooth.requestDevice({ filters: [filter], optionalServices: [SMP_SERVICE_UUID] });
}

export interface WebBluetoothLinkOptions {
  /** Assumed ATT MTU (default 247). */
  attMtu?: number;
}

/** Connects (and reconnects) to the SMP characteristic of a chosen device. */
export function webBluetoothConnector(device: WebBluetoothDevice, options: WebBluetoothLinkOptions = {}): GattConnector {
  let writeMax = Math.max(ATT_MTU_MIN, options.attMtu ?? 247) - ATT_OVERHEAD;
  return async () => {
    if (!device.gatt) throw new TransportError('TRANSPORT_IO', 'this Bluetooth device has no GATT server');
    const server = await device.gatt.connect();
    const service = await server.getPrimaryService(SMP_SERVICE_UUID).catch((e: unknown) => {
      throw new TransportError('TRANSPORT_IO', `the device has no SMP service (${SMP_SERVICE_UUID})`, { cause: e });
    });
    const characteristic = await service.getCharacteristic(SMP_CHARACTERISTIC_UUID).catch((e: unknown) => {
      throw new TransportError('TRANSPORT_IO', `the device has no SMP characteristic (${SMP_CHARACTERISTIC_UUID})`, { cause: e });
    });
    const listeners = new Set<(e: GattLinkEvent) => void>();
    let connected = true;
    let onValue: ((e: Event) => void) | undefined;
    const onDisconnected = (): void => {
      if (!connected) return;
      connected = false;
      device.removeEventListener('gattserverdisconnected', onDisconnected);
      for (const l of [...listeners]) l({ type: 'disconnected' });
    };
    device.addEventListener('gattserverdisconnected', onDisconnected);
    const write = async (value: Uint8Array): Promise<void> => {
      try {
        await characteristic.writeValueWithoutResponse(value as Uint8Array<ArrayBuffer>);
      } catch (e) {
        if (!connected || !device.gatt?.connected) throw new TransportError('TRANSPORT_CLOSED', 'Bluetooth LE link closed', { cause: e });
        if (value.length <= ATT_MTU_MIN - ATT_OVERHEAD) throw new TransportError('TRANSPORT_IO', `Bluetooth LE write failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        // Too long for this link: halve, remember, and send the halves.
        const half = Math.max(ATT_MTU_MIN - ATT_OVERHEAD, Math.ceil(value.length / 2));
        writeMax = Math.min(writeMax, half);
        await write(value.subarray(0, half));
        await write(value.subarray(half));
      }
    };
    const link: GattLink = {
      attMtu: writeMax + ATT_OVERHEAD,
      get maxWriteLength() {
        return writeMax;
      },
      address: device.id,
      ...(device.name ? { name: device.name } : {}),
      get connected() {
        return connected;
      },
      writeWithoutResponse: write,
      async startNotifications(cb) {
        if (onValue) characteristic.removeEventListener('characteristicvaluechanged', onValue);
        onValue = () => {
          const v = characteristic.value;
          if (v) cb(new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
        };
        characteristic.addEventListener('characteristicvaluechanged', onValue);
        await characteristic.startNotifications();
      },
      async stopNotifications() {
        if (onValue) characteristic.removeEventListener('characteristicvaluechanged', onValue);
        onValue = undefined;
        if (connected) await characteristic.stopNotifications().catch(() => {});
      },
      onEvent(l) {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      disconnect() {
        if (onValue) characteristic.removeEventListener('characteristicvaluechanged', onValue);
        connected = false;
        device.removeEventListener('gattserverdisconnected', onDisconnected);
        device.gatt?.disconnect();
        return Promise.resolve();
      },
    };
    return link;
  };
}
