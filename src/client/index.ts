/** The client side: SmpClient and its helpers. Portable (no Node built-ins). */
export * from './client.ts';
