/** The client side: SmpClient, file transfers, image upload and upgrade. Portable (no Node built-ins). */
export * from './client.ts';
export * from './params.ts';
export * from './fs-transfer.ts';
export * from './image-upload.ts';
export * from './transfer-engine.ts';
export * from './upgrade.ts';
