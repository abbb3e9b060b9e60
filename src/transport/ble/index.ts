/** SMP over Bluetooth LE GATT: the portable layer (link interface, transport, device side, emulated link). */
export * from './gatt.ts';
export * from './reassembly.ts';
export * from './transport.ts';
export * from './open.ts';
export * from './server.ts';
export * from './emulated.ts';
export * from './web-bluetooth.ts';
