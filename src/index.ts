/**
 * mcumgr: the portable entry point (Node and browsers). Core codec, command table, errors, the
 * client and the in-memory loopback transport. Node-only parts have their own subpaths:
 * `mcumgr/transport/udp`, `mcumgr/server`.
 */
export * from './core/index.ts';
export * from './client/index.ts';
export { createLoopbackPair } from './transport/loopback.ts';
export type { SmpTransport, ServerTransport, SmpPeer } from './transport/types.ts';
