/**
 * Zephyr's Network Management API (net_mgmt) in TypeScript, portable part: codes, NET_EVENT_*
 * names, event info structures, the event/request core, the interface registry, the
 * connectivity monitor (conn_mgr) and the local-address watcher. The host's real network is
 * observed by the Node-only code in ./host/.
 */
export * from './codes.ts';
export * from './events.ts';
export * from './info.ts';
export * from './ip.ts';
export * from './errors.ts';
export * from './net-mgmt.ts';
export * from './net-if.ts';
export * from './conn-mgr.ts';
export * from './address-watch.ts';
export * from './format.ts';
export * from './event-log.ts';
export * from './shell-text.ts';
