/**
 * `mcumgr dashboard`'s host side: one HTTP server on loopback that serves the built web app
 * (dist/web) and the WebSocket bridge (`/bridge`, protocol in src/transport/websocket.ts) through
 * which the page's SMP client reaches devices the host opens (UDP, serial, BLE).
 *
 * Who may use it:
 * - It binds 127.0.0.1 unless told otherwise.
 * - Every request must name this server in its Host header (127.0.0.1, localhost or [::1] with our
 *   port, or the bound host): a page on another site that resolves its name to 127.0.0.1 (DNS
 *   rebinding) is refused.
 * - The bridge requires the per-run token (printed in the URL the command shows, carried in the
 *   URL fragment so it never reaches logs or Referer headers) and an Origin header that is this
 *   server's own; anything else gets 401 / 403 and no socket.
 * - The bridge opens only the link kinds the CLI opens (connections.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { McuMgrError } from '../core/errors.ts';
import type { SmpTransport } from '../transport/types.ts';
import type { ConntypeRegistry } from '../cli/conntypes.ts';
import { bridgeKinds, openConnection, parseConnection } from './connections.ts';
import { RequestPacer } from './pacer.ts';
import { PacketBatcher, splitBridgeMessage } from '../transport/websocket.ts';
import { Op } from '../core/header.ts';
import { decodeBody, encodeMessage, splitMessages } from '../core/message.ts';
import { isCborMap } from '../core/cbor.ts';

export interface DashboardServerOptions {
  /** Built web app (index.html and its assets). */
  webRoot: string;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Port (default 8080; 0 picks a free one). */
  port?: number;
  /** The per-run token (default: 24 random bytes, base64url). */
  token?: string;
  /** Devices the page lists when it opens (connection strings). */
  devices?: readonly string[];
  /** The link kinds the bridge opens: the CLI's conntypes. */
  conntypes: ConntypeRegistry;
  /** Opens a device for the bridge (default: as the CLI opens it, see connections.ts). */
  openDevice?: (connection: string) => Promise<SmpTransport>;
  /** Bridge events, one line each (opened, closed, refused). */
  log?: (line: string) => void;
  /**
   * Pace each UDP device (pacer.ts): read its MCUmgr params at open and keep at most `buf_count − 1`
   * requests outstanding at it, queueing the rest, so the page may keep more in flight (default true).
   */
  pace?: boolean;
  /** Told every paced link's pacer when the link closes (tests, the bench). */
  onPacerClosed?: (connection: string, pacer: RequestPacer) => void;
}

export interface DashboardServer {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  /** The address to open: origin, token and devices in the fragment. */
  readonly url: string;
  /** Bridge links open now. */
  readonly links: number;
  close(): Promise<void>;
}

/** Largest WebSocket message: one SMP packet (64 KiB payload + header). */
const MAX_MESSAGE = 0x10000 + 8;

/**
 * Requests the page may keep in flight on a paced link, per place in the device's window: the
 * device's window plus a queue seven times as deep, so that the bridge has the next requests at
 * hand while the page's answers and new requests cross the WebSocket and Chromium's processes
 * (several milliseconds on a busy host). Measured with a 1 MiB upload to `serve` on 2 cores:
 * 3 per place (queue 6) 1.4-1.7 MB/s, the queue found empty by a fifth of the answers;
 * 4 per place 1.5-1.8; 6 per place 1.6-2.5; 8 per place 2.1-2.9, against the CLI's 2.45. The
 * device never holds more than its window; the queue only adds waiting time (at most 21 chunks
 * for a buf_count of 4) for other requests the page sends during an upload.
 */
const PACED_IN_FLIGHT_PER_PLACE = 8;

/** Sequence number of the bridge's own params read (answers to it are kept from the page). */
const BRIDGE_SEQ = 0xff;

/**
 * Longest time the bridge holds the device's answers for the page while its queue is deep. With
 * a 1 MiB upload to `serve` on 2 cores while the test suite ran beside it: answers held 2 ms went
 * in 450 messages instead of 1,250 (and the page's chunks in 380 instead of 940), and the page's
 * rate was 1.4-2.6 MB/s against 0.7-1.8 MB/s without the hold.
 */
const BATCH_HOLD_MS = 2;

/**
 * Reads the device's buf_count (os 0/6) before the page uses the link: sent after 0.5 s again,
 * given up after 1.5 s (the link is then not paced). Resolves undefined when the device does not
 * say.
 */
function readBufCount(transport: SmpTransport): Promise<number | undefined> {
  const request = encodeMessage({ op: Op.READ, version: 1, flags: 0, group: 0, seq: BRIDGE_SEQ, id: 6 }, {});
  return new Promise((resolve) => {
    const timers: Array<ReturnType<typeof setTimeout>> = [];
    const done = (v: number | undefined): void => {
      for (const t of timers) clearTimeout(t);
      transport.setReceiver(() => {});
      resolve(v);
    };
    transport.setReceiver((packet) => {
      try {
        for (const { header, payload } of splitMessages(packet)) {
          if (header.op !== Op.READ_RSP || header.group !== 0 || header.id !== 6 || header.seq !== BRIDGE_SEQ) continue;
          const body = decodeBody(payload);
          const count = isCborMap(body) ? body['buf_count'] : undefined;
          done(typeof count === 'number' && Number.isInteger(count) && count >= 2 ? count : undefined);
          return;
        }
      } catch {
        // not an answer to us
      }
    });
    const send = (): void => void transport.send(request).catch(() => undefined);
    send();
    timers.push(setTimeout(send, 500), setTimeout(() => done(undefined), 1500));
  });
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

function sameToken(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Starts the dashboard server; resolves when it listens. */
export async function startDashboardServer(options: DashboardServerOptions): Promise<DashboardServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(24).toString('base64url');
  const openDevice = options.openDevice ?? ((c: string) => openConnection(c, options.conntypes));
  const log = options.log ?? (() => {});
  const webRoot = normalize(options.webRoot);
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE });
  const sockets = new Set<WebSocket>();
  let port = 0;

  const hostNames = (): Set<string> => {
    const names = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
    names.add(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
    return names;
  };
  const origins = (): Set<string> => new Set([...hostNames()].map((h) => `http://${h}`));

  const refuse = (res: ServerResponse, status: number, text: string): void => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`${text}\n`);
  };

  const securityHeaders = (): Record<string, string> => ({
    'content-security-policy': `default-src 'self'; connect-src 'self' ${[...hostNames()].filter((h) => !h.startsWith('[')).map((h) => `ws://${h}`).join(' ')}; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
  });

  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      if (!hostNames().has(req.headers.host ?? '')) return refuse(res, 421, 'this server answers only to its own address');
      if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'method not allowed');
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/api/config') {
        const given = req.headers['x-dashboard-token'];
        if (typeof given !== 'string' || !sameToken(given, token)) return refuse(res, 401, 'wrong or missing token');
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', ...securityHeaders() });
        res.end(JSON.stringify({ kinds: bridgeKinds(options.conntypes), devices: options.devices ?? [] }));
        return;
      }
      let path: string;
      try {
        path = decodeURIComponent(url.pathname);
      } catch {
        return refuse(res, 400, 'bad path');
      }
      if (path.endsWith('/')) path += 'index.html';
      const file = normalize(join(webRoot, path));
      if (!file.startsWith(webRoot + sep)) return refuse(res, 404, 'not found');
      try {
        const st = await stat(file);
        if (!st.isFile()) return refuse(res, 404, 'not found');
        const body = await readFile(file);
        res.writeHead(200, {
          'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
          'content-length': String(body.length),
          'cache-control': extname(file) === '.html' ? 'no-store' : 'no-cache',
          ...securityHeaders(),
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      } catch {
        refuse(res, 404, 'not found');
      }
    })();
  });

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const deny = (status: number, text: string): void => {
      log(`bridge: refused (${status} ${text}) from origin ${JSON.stringify(req.headers.origin ?? '')}`);
      socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    const url = new URL(req.url ?? '/', 'http://x');
    if (!hostNames().has(req.headers.host ?? '')) return deny(421, 'Misdirected Request');
    if (url.pathname !== '/bridge') return deny(404, 'Not Found');
    if (!origins().has(req.headers.origin ?? '')) return deny(403, 'Forbidden');
    const given = url.searchParams.get('token') ?? '';
    if (!sameToken(given, token)) return deny(401, 'Unauthorized');
    const connection = url.searchParams.get('connection') ?? '';
    wss.handleUpgrade(req, socket, head, (ws) => void bridge(ws, connection));
  });

  async function bridge(ws: WebSocket, connection: string): Promise<void> {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    let transport: SmpTransport;
    try {
      parseConnection(connection, options.conntypes);
      transport = await openDevice(connection);
    } catch (e) {
      const code = e instanceof McuMgrError ? e.code : 'TRANSPORT_IO';
      const message = e instanceof Error ? e.message : String(e);
      log(`bridge: cannot open ${connection}: ${message}`);
      ws.send(JSON.stringify({ type: 'error', code, message }));
      ws.close(4002, 'device not opened');
      return;
    }
    if (ws.readyState !== ws.OPEN) {
      await transport.close();
      return;
    }
    // Paced: UDP links, where the device's buffers are all that bounds the window. A serial line's
    // receive buffers may overrun below it (the CLI's engine probes there), which a fixed pace
    // could not back off from: serial and BLE links are relayed as they come.
    const pace = options.pace !== false && transport.kind === 'udp';
    const bufCount = pace ? await readBufCount(transport) : undefined;
    if (ws.readyState !== ws.OPEN) {
      await transport.close();
      return;
    }
    const toDevice = (packet: Uint8Array): void => {
      transport.send(packet).catch((e: unknown) => {
        // A packet lost on the host side is like one lost on the link: the page's client retransmits.
        log(`bridge: send to ${connection} failed: ${(e as Error).message}`);
      });
    };
    const pacer = bufCount === undefined ? undefined : new RequestPacer({ window: bufCount - 1, send: toDevice });
    log(`bridge: opened ${connection}${pacer ? `, paced at ${pacer.window} outstanding (buf_count ${bufCount})` : ''}`);
    /** Answers to the bridge's own params read are kept from the page until the page uses that sequence number itself. */
    let ownSeqFiltered = pace;
    // The device's answers go to the page one or more to a WebSocket message (the page splits
    // them: `batch` in the open message): on a link not paced, those of one turn of the event loop;
    // on a paced link, each at once while the pacer's queue is shallow, and while it holds at least
    // a window of the page's requests (a transfer, the page well ahead) held up to BATCH_HOLD_MS or
    // until the queue runs low: the device stays busy meanwhile, and the page gets fewer, larger
    // messages and answers them with fewer, larger ones.
    const deepQueue = (): boolean => pacer !== undefined && pacer.waiting >= pacer.window;
    const toPage = new PacketBatcher(
      (message) => {
        if (ws.readyState === ws.OPEN) ws.send(message, { binary: true });
      },
      (fn) => {
        if (deepQueue()) setTimeout(fn, BATCH_HOLD_MS);
        else setImmediate(fn);
      },
    );
    const fromPage = { messages: 0, packets: 0 };
    transport.setReceiver((packet) => {
      if (ownSeqFiltered && packet.length >= 8 && packet[6] === BRIDGE_SEQ && packet[4] === 0 && packet[5] === 0 && packet[7] === 6 && (packet[0]! & 7) === Op.READ_RSP) return;
      pacer?.fromDevice(packet);
      toPage.push(packet);
      if (pacer && !deepQueue()) toPage.flush();
    });
    transport.onClose((error) => {
      if (ws.readyState !== ws.OPEN) return;
      toPage.flush();
      ws.send(JSON.stringify({ type: 'closed', message: error ? error.message : 'the device link closed' }));
      ws.close(4001, 'device link closed');
    });
    ws.on('message', (data, isBinary) => {
      if (!isBinary) return;
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      const packets = splitBridgeMessage(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      fromPage.messages++;
      fromPage.packets += packets.length;
      for (const packet of packets) {
        if (packet.length >= 8 && packet[6] === BRIDGE_SEQ) ownSeqFiltered = false;
        if (pacer) pacer.fromPage(packet);
        else toDevice(packet);
      }
    });
    ws.on('close', () => {
      const st = pacer?.stats;
      toPage.discard();
      const batches = toPage.stats.messages > 0 || fromPage.messages > 0 ? `; ${fromPage.packets} packets from the page in ${fromPage.messages} messages, ${toPage.stats.packets} to it in ${toPage.stats.messages}` : '';
      log(`bridge: closed ${connection}${st ? ` (paced: ${st.forwarded} forwarded, at most ${st.maxOutstanding} outstanding and ${st.maxQueued} queued, ${st.duplicatesDropped} repeats dropped, ${st.repeatsForwarded} sent again, ${st.answeredDropped} repeats of answered ones dropped, ${st.released} released unanswered, ${st.starved} answers found the queue empty${batches})` : batches ? ` (${batches.slice(2)})` : ''}`);
      if (pacer) {
        pacer.close();
        options.onPacerClosed?.(connection, pacer);
      }
      void transport.close();
    });
    ws.send(
      JSON.stringify({
        type: 'open',
        kind: transport.kind,
        mtu: transport.mtu,
        frameOverhead: transport.frameOverhead ?? 0,
        description: connection,
        ...(pacer ? { pacing: { window: pacer.window, inFlight: pacer.window * PACED_IN_FLIGHT_PER_PLACE } } : {}),
        batch: true,
      }),
    );
  }

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 8080, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const address = http.address();
  port = typeof address === 'object' && address ? address.port : 0;
  const shownHost = isLoopback(host) || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const origin = `http://${shownHost}:${port}`;
  const fragment = new URLSearchParams({ token });
  for (const d of options.devices ?? []) fragment.append('device', d);
  return {
    host,
    port,
    token,
    origin,
    url: `${origin}/#${fragment.toString()}`,
    get links() {
      return sockets.size;
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
    },
  };
}
