/**
 * UDP for both sides (smp-spec.md §4.3): one SMP packet per datagram, IPv4 and IPv6.
 * Node-only (node:dgram).
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { TransportError, UsageError } from '../core/errors.ts';
import type { ServerTransport, SmpPeer, SmpTransport } from './types.ts';

export const DEFAULT_UDP_PORT = 1337;
/** Zephyr's CONFIG_MCUMGR_TRANSPORT_UDP_MTU: the largest datagram a device reads. */
export const DEFAULT_UDP_MTU = 1500;

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT`, `:PORT` (localhost), `HOST` (port 1337) and a bare IPv6
 * address, as the Go mcumgr `--connstring` for UDP accepts.
 */
export function parseHostPort(text: string, defaultHost = '127.0.0.1', defaultPort = DEFAULT_UDP_PORT): HostPort {
  const s = text.trim();
  let host: string;
  let portText: string | undefined;
  const bracket = /^\[([^\]]*)\](?::(\d*))?$/.exec(s);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2];
  } else if (s.indexOf(':') !== s.lastIndexOf(':') && isIP(s) === 6) {
    // (An IPv6 address has at least two colons; the check spares HOST:PORT the IPv6 regular
    // expression, whose first use costs a one-shot command several milliseconds.)
    host = s;
  } else {
    const i = s.lastIndexOf(':');
    if (i >= 0) {
      host = s.slice(0, i);
      portText = s.slice(i + 1);
    } else host = s;
  }
  if (host === '') host = defaultHost;
  let port = defaultPort;
  if (portText !== undefined && portText !== '') {
    port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`invalid UDP port in ${JSON.stringify(text)}`);
  }
  return { host, port };
}

export interface UdpConnstring extends HostPort {
  /** Largest datagram to send, when the connstring sets it (`mtu=N`). */
  mtu?: number;
}

/** Largest UDP payload over IPv4 (65535 − 20 − 8); SMP's 16-bit length allows no more either. */
export const MAX_UDP_MTU = 65507;

/** Checks an MTU given by a user: a whole number from 64 (an SMP header and a small body) to {@link MAX_UDP_MTU}. */
export function checkUdpMtu(text: string, what: string): number {
  const value = text.trim() === '' ? NaN : Number(text);
  if (!Number.isInteger(value) || value < 64 || value > MAX_UDP_MTU) throw new UsageError(`${what} must be a whole number from 64 to ${MAX_UDP_MTU}, got ${JSON.stringify(text)}`);
  return value;
}

/**
 * Parses a UDP connstring: an address as {@link parseHostPort} takes it, then optional
 * `,key=value` settings: `mtu=N` (the largest datagram; default 1500, Zephyr's
 * CONFIG_MCUMGR_TRANSPORT_UDP_MTU; raise it for a device whose IP stack reassembles fragments
 * and whose buffers take more). `127.0.0.1:1337,mtu=2500`.
 */
export function parseUdpConnstring(text: string): UdpConnstring {
  const [address = '', ...settings] = text.split(',');
  const out: UdpConnstring = parseHostPort(address);
  for (const kv of settings) {
    const eq = kv.indexOf('=');
    const key = (eq < 0 ? kv : kv.slice(0, eq)).trim();
    const value = eq < 0 ? '' : kv.slice(eq + 1).trim();
    if (key === 'mtu') out.mtu = checkUdpMtu(value, 'mtu in the UDP connstring');
    else throw new UsageError(`unknown setting ${JSON.stringify(key)} in the UDP connstring ${JSON.stringify(text)} (known: mtu)`);
  }
  return out;
}

async function resolve(host: string): Promise<{ address: string; family: 4 | 6 }> {
  const fam = isIP(host);
  if (fam === 4 || fam === 6) return { address: host, family: fam };
  try {
    const r = await lookup(host);
    return { address: r.address, family: r.family === 6 ? 6 : 4 };
  } catch (e) {
    throw new TransportError('TRANSPORT_IO', `cannot resolve host ${host}`, { cause: e });
  }
}

export interface UdpClientOptions extends HostPort {
  /** Largest datagram sent (default 1500, Zephyr's UDP MTU). */
  mtu?: number;
  /**
   * End the link when the host answers with ICMP port unreachable (ECONNREFUSED on the connected
   * socket) before the device ever answered: nothing is listening there, so waiting for timeouts
   * is pointless. The link then closes with TransportError `TRANSPORT_IO` "nothing is listening
   * on HOST:PORT". Default false: a device that is restarting refuses for a moment, and requests
   * time out and retry as for a lost datagram. The CLI sets it for its one-shot commands.
   */
  failWhenRefused?: boolean;
}

/** A client transport to one device over UDP. */
export async function openUdpClient(options: UdpClientOptions): Promise<SmpTransport> {
  const { address, family } = await resolve(options.host);
  const mtu = options.mtu ?? DEFAULT_UDP_MTU;
  const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
  let receiver: ((packet: Uint8Array) => void) | undefined;
  let closed = false;
  const closeListeners = new Set<(error?: Error) => void>();
  const finish = (error?: Error): void => {
    if (closed) return;
    closed = true;
    for (const l of closeListeners) l(error);
  };
  await new Promise<void>((res, rej) => {
    socket.once('error', rej);
    socket.connect(options.port, address, () => {
      socket.off('error', rej);
      res();
    });
  }).catch((e: unknown) => {
    socket.close();
    throw new TransportError('TRANSPORT_IO', `cannot open UDP socket to ${address}:${options.port}`, { cause: e });
  });
  let answered = false;
  socket.on('message', (msg) => {
    answered = true;
    if (!closed) receiver?.(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
  });
  // A connected UDP socket reports ICMP port-unreachable as ECONNREFUSED on the next operation:
  // the device is simply not there (yet). By default requests time out and retry and the link
  // stays usable; with failWhenRefused, a refusal before any answer ends the link.
  let failure: Error | undefined;
  socket.on('error', (e: NodeJS.ErrnoException) => {
    if (!options.failWhenRefused || answered || closed || e.code !== 'ECONNREFUSED') return;
    const where = family === 6 ? `[${address}]:${options.port}` : `${address}:${options.port}`;
    failure = new TransportError('TRANSPORT_IO', `nothing is listening on ${where} (the host answered: port unreachable)`, { cause: e });
    socket.close();
  });
  socket.on('close', () => finish(failure));
  return {
    mtu,
    kind: 'udp',
    get closed() {
      return closed;
    },
    send(packet: Uint8Array): Promise<void> {
      if (closed) return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'UDP socket closed'));
      if (packet.length > mtu) return Promise.reject(new TransportError('TRANSPORT_TOO_LARGE', `packet of ${packet.length} bytes exceeds the UDP MTU ${mtu}`));
      return new Promise((res) => {
        socket.send(packet, (err) => {
          // Send errors (ECONNREFUSED from an earlier ICMP) are not fatal on UDP: the request
          // will time out and be retried like a lost datagram.
          void err;
          res();
        });
      });
    },
    setReceiver(r) {
      receiver = r;
    },
    onClose(listener) {
      closeListeners.add(listener);
      return () => closeListeners.delete(listener);
    },
    close(): Promise<void> {
      if (closed) return Promise.resolve();
      return new Promise((res) => {
        socket.close(() => res());
        finish();
      });
    },
  };
}

export interface UdpServerOptions extends HostPort {
  /** Largest datagram accepted; longer ones are dropped (default 1500, Zephyr's UDP MTU). */
  mtu?: number;
  /** Called for each dropped datagram (oversize), for counters. */
  onDrop?: (reason: string, bytes: number) => void;
}

/** Senders whose peer object the UDP server keeps (more: it starts over). */
const PEERS_KEPT = 1024;

/** The device side over UDP: answers each datagram's sender. */
export function createUdpServer(options: UdpServerOptions): ServerTransport & { readonly port: number; readonly address: string } {
  const mtu = options.mtu ?? DEFAULT_UDP_MTU;
  let socket: dgram.Socket | undefined;
  let boundPort = options.port;
  let boundAddress = options.host;
  return {
    kind: 'udp',
    get port() {
      return boundPort;
    },
    get address() {
      return boundAddress;
    },
    async start(onPacket, context) {
      const family = isIP(options.host) === 6 ? 'udp6' : 'udp4';
      const s = dgram.createSocket({ type: family, ipv6Only: family === 'udp6' ? false : undefined } as dgram.SocketOptions);
      socket = s;
      // Started again after close(): the same port, also when the first start chose it (port 0).
      const port = boundPort;
      await new Promise<void>((res, rej) => {
        s.once('error', rej);
        s.bind(port, options.host, () => {
          s.off('error', rej);
          res();
        });
      }).catch((e: unknown) => {
        if (socket === s) socket = undefined;
        s.close();
        throw new TransportError('TRANSPORT_IO', `cannot listen on UDP ${options.host}:${port}: ${(e as Error).message}`, { cause: e });
      });
      const a = s.address();
      boundPort = a.port;
      boundAddress = a.address;
      s.on('error', () => {});
      // One peer per sender, kept while it keeps sending (at most PEERS_KEPT senders): a client,
      // or a flood of thousands of datagrams a second, costs no new peer per datagram.
      const peers = new Map<string, SmpPeer>();
      const peerOf = (address: string, port: number, family: string): SmpPeer => {
        const key = `${address}|${port}`;
        let peer = peers.get(key);
        if (peer) return peer;
        const host = family === 'IPv6' ? `[${address}]` : address;
        peer = {
          address: `udp:${host}:${port}`,
          transport: 'udp',
          mtu,
          reply(packet: Uint8Array): Promise<void> {
            // The socket this request came in on was closed (close(), or a restart opened a new one).
            if (socket !== s) return Promise.reject(new TransportError('TRANSPORT_CLOSED', `UDP socket ${options.host}:${boundPort} closed before the answer`));
            return new Promise((res) => {
              s.send(packet, port, address, () => res());
            });
          },
        };
        if (peers.size >= PEERS_KEPT) peers.clear();
        peers.set(key, peer);
        return peer;
      };
      s.on('message', (msg, rinfo) => {
        const peer = peerOf(rinfo.address, rinfo.port, rinfo.family);
        if (msg.length > mtu) {
          options.onDrop?.('oversize', msg.length);
          context?.undecodable(`datagram of ${msg.length} bytes exceeds the MTU ${mtu}`, peer.address, msg.length);
          return;
        }
        onPacket(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), peer);
      });
    },
    describe() {
      const host = boundAddress.includes(':') ? `[${boundAddress}]` : boundAddress;
      return `udp ${host}:${boundPort}`;
    },
    close(): Promise<void> {
      const s = socket;
      socket = undefined;
      if (!s) return Promise.resolve();
      return new Promise((res) => s.close(() => res()));
    },
  };
}
