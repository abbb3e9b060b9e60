/** SMP over Bluetooth LE in Node: BlueZ over D-Bus (node-ble, dbus-next) and the optional noble adapter. */
export { bleConnector, nodeBleConnector, parseBleConnstring, scanBluez, scanSmpDevices, type BlePeer, type CentralOptions, type ScannedDevice } from './central.ts';
export { createBluezServerTransport, type BluezPeripheralOptions } from './bluez-peripheral.ts';
