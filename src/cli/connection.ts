/**
 * Connection options shared by the client commands, in the Go mcumgr CLI's syntax
 * (`--conntype udp --connstring [HOST]:PORT`, `-t` seconds, `-r` tries) plus short forms
 * (`--udp HOST:PORT`). Other link kinds register an opener in {@link connectionOpeners}.
 */
import { UsageError } from '../core/errors.ts';
import { SmpClient } from '../client/client.ts';
import { checkUdpMtu, openUdpClient, parseUdpConnstring } from '../transport/udp.ts';
import type { SmpTransport } from '../transport/types.ts';
import { toHex } from '../core/bytes.ts';

export interface GlobalOptions {
  conntype?: string;
  connstring?: string;
  udp?: string;
  timeout?: string;
  tries?: string;
  json?: boolean;
  verbose?: boolean;
  smpV1?: boolean;
  [key: string]: unknown;
}

/** Opens a transport for a conntype from a connstring. Serial and others add theirs here. */
export const connectionOpeners = new Map<string, (connstring: string, options: GlobalOptions) => Promise<SmpTransport>>([
  [
    'udp',
    async (connstring, o) => {
      const { host, port, mtu } = parseUdpConnstring(connstring);
      // --mtu wins over the connstring's mtu=N; both default to 1500 (Zephyr's UDP MTU).
      const flag = typeof o['mtu'] === 'string' ? checkUdpMtu(Number(o['mtu']), '--mtu') : undefined;
      const chosen = flag ?? mtu;
      return openUdpClient({ host, port, ...(chosen !== undefined ? { mtu: chosen } : {}) });
    },
  ],
]);

/** Short flags that imply a conntype: `--udp HOST:PORT` = `--conntype udp --connstring HOST:PORT`. */
export const shortConnectionFlags: Array<{ flag: string; conntype: string }> = [{ flag: 'udp', conntype: 'udp' }];

export function resolveConnection(o: GlobalOptions): { conntype: string; connstring: string } {
  for (const { flag, conntype } of shortConnectionFlags) {
    const v = o[flag];
    if (typeof v === 'string') return { conntype, connstring: v };
  }
  const conntype = o.conntype ?? process.env['MCUMGR_CONNTYPE'];
  const connstring = o.connstring ?? process.env['MCUMGR_CONNSTRING'];
  if (!conntype) {
    if (connstring) return { conntype: 'udp', connstring };
    throw new UsageError('no connection given: use --conntype udp --connstring HOST:PORT (or --udp HOST:PORT)');
  }
  return { conntype, connstring: connstring ?? '' };
}

export function numberOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number, got ${JSON.stringify(text)}`);
  return n;
}

export async function connect(o: GlobalOptions): Promise<SmpClient> {
  const { conntype, connstring } = resolveConnection(o);
  const opener = connectionOpeners.get(conntype);
  if (!opener) throw new UsageError(`unsupported --conntype ${JSON.stringify(conntype)} (supported: ${[...connectionOpeners.keys()].join(', ')})`);
  const timeoutMs = numberOption('--timeout', o.timeout, 3) * 1000;
  const tries = Math.round(numberOption('--tries', o.tries, 3));
  const transport = await opener(connstring, o);
  return new SmpClient(transport, {
    timeoutMs,
    tries,
    version: o.smpV1 ? 0 : 1,
    ...(o.verbose ? { onPacket: (dir: 'tx' | 'rx', p: Uint8Array) => process.stderr.write(`${dir} ${toHex(p, ' ')}\n`) } : {}),
  });
}
