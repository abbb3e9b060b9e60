/**
 * An in-memory client/server link: `createLoopbackPair()` returns a client transport and a server
 * transport that deliver each other's packets asynchronously (a macrotask later), as a real link
 * would. For tests, examples and the browser: no sockets involved.
 */
import { TransportError } from '../core/errors.ts';
import type { ServerTransport, SmpPeer, SmpTransport } from './types.ts';

export interface LoopbackOptions {
  mtu?: number;
}

export function createLoopbackPair(options: LoopbackOptions = {}): { client: SmpTransport; server: ServerTransport } {
  const mtu = options.mtu ?? 2048;
  let serverHandler: ((packet: Uint8Array, peer: SmpPeer) => void) | undefined;
  let clientReceiver: ((packet: Uint8Array) => void) | undefined;
  let closed = false;
  const closeListeners = new Set<(error?: Error) => void>();
  const later = (f: () => void): void => void setTimeout(f, 0);

  const peer: SmpPeer = {
    address: 'loopback',
    transport: 'loopback',
    mtu,
    reply(packet: Uint8Array): Promise<void> {
      if (closed) return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'loopback closed'));
      const copy = packet.slice();
      later(() => {
        if (!closed) clientReceiver?.(copy);
      });
      return Promise.resolve();
    },
  };

  const client: SmpTransport = {
    mtu,
    kind: 'loopback',
    get closed() {
      return closed;
    },
    send(packet: Uint8Array): Promise<void> {
      if (closed) return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'loopback closed'));
      if (packet.length > mtu) return Promise.reject(new TransportError('TRANSPORT_TOO_LARGE', `packet of ${packet.length} bytes exceeds the loopback MTU ${mtu}`));
      const copy = packet.slice();
      later(() => {
        if (!closed) serverHandler?.(copy, peer);
      });
      return Promise.resolve();
    },
    setReceiver(receiver) {
      clientReceiver = receiver;
    },
    onClose(listener) {
      closeListeners.add(listener);
      return () => closeListeners.delete(listener);
    },
    close(): Promise<void> {
      if (!closed) {
        closed = true;
        for (const l of closeListeners) l();
      }
      return Promise.resolve();
    },
  };

  const server: ServerTransport = {
    kind: 'loopback',
    start(onPacket) {
      serverHandler = onPacket;
      return Promise.resolve();
    },
    describe: () => 'loopback',
    close: () => client.close(),
  };
  return { client, server };
}
