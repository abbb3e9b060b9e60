/** The portable core: header, CBOR, errors, schemas and the command table. */
export * from './errors.ts';
export * from './error-codes.ts';
export * from './header.ts';
export * from './cbor.ts';
export * from './bytes.ts';
export * as schema from './schema.ts';
export { SchemaError, type Schema, type Infer } from './schema.ts';
export * from './commands/index.ts';
export * from './message.ts';
