/**
 * Connection options shared by the client commands, in the Go mcumgr CLI's syntax
 * (`--conntype udp --connstring [HOST]:PORT`, `-c PROFILE`, `-t` seconds, `-r` tries) plus short
 * forms (`--udp HOST:PORT`). Link kinds are {@link Conntype}s registered in main.ts.
 */
import { UsageError } from '../core/errors.ts';
import { SmpClient } from '../client/client.ts';
import { toHex } from '../core/bytes.ts';
import type { ConntypeRegistry } from './conntypes.ts';
import { findProfile } from './profiles.ts';

/** The program's options (commander's `program.opts()`), wherever they stood on the line. */
export interface GlobalOptions {
  conntype?: string;
  connstring?: string;
  connextra?: string;
  conn?: string;
  udp?: string;
  timeout?: string;
  tries?: string;
  loglevel?: string;
  json?: boolean;
  verbose?: boolean;
  smpV1?: boolean;
  /** Options that conntypes add (`serial`, `pty`, `ptyLink`). */
  [key: string]: unknown;
}

export interface ResolvedConnection {
  conntype: string;
  connstring: string;
  /** Where it came from, for messages: `--udp`, `--conntype`, `profile NAME`, the environment. */
  source: string;
}

/**
 * Which link to open: a conntype's short option (`--udp HOST:PORT`), else `--conntype` /
 * `--connstring`, else the profile `-c NAME`, else MCUMGR_CONNTYPE / MCUMGR_CONNSTRING.
 */
export async function resolveConnection(o: GlobalOptions, conntypes: ConntypeRegistry): Promise<ResolvedConnection> {
  for (const c of conntypes.all()) {
    const connstring = c.shortConnstring?.(o);
    if (connstring === undefined) continue;
    // The short form names the whole link: a profile given too would be silently ignored.
    if (o.conn !== undefined) throw new UsageError(`-c ${o.conn} and --${c.name} both name the link: give one of them`);
    return { conntype: c.name, connstring, source: `--${c.name}` };
  }
  let conntype = o.conntype;
  let connstring = o.connstring;
  let source = '--conntype';
  if (o.conn !== undefined) {
    if (conntype !== undefined && connstring !== undefined) throw new UsageError(`-c ${o.conn} and --conntype/--connstring both name the link: give one of them`);
    // As Go mcumgr: the profile gives what --conntype / --connstring do not.
    const profile = await findProfile(o.conn);
    conntype ??= profile.type;
    connstring ??= profile.connstring;
    source = `profile ${o.conn}`;
  }
  if (conntype === undefined && connstring === undefined) source = 'MCUMGR_CONNTYPE';
  conntype ??= process.env['MCUMGR_CONNTYPE'] || undefined;
  connstring ??= process.env['MCUMGR_CONNSTRING'] || undefined;
  if (!conntype) {
    if (connstring) return { conntype: 'udp', connstring, source: '--connstring' };
    throw new UsageError('no connection given: use --conntype udp --connstring HOST:PORT (or --udp HOST:PORT, or -c PROFILE)');
  }
  if (!conntypes.get(conntype)) throw new UsageError(`unsupported --conntype ${JSON.stringify(conntype)} (supported: ${conntypes.names().join(', ')})`);
  if (!connstring) throw new UsageError(`--conntype ${conntype} needs --connstring (${conntype === 'udp' ? 'HOST:PORT, e.g. 127.0.0.1:1337' : 'dev=PATH[,baud=N][,mtu=N]'})`);
  return { conntype, connstring, source };
}

export function numberOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number, got ${JSON.stringify(text)}`);
  return n;
}

/** A client on the link the options name, and a description of that link for messages. */
export async function connect(o: GlobalOptions, conntypes: ConntypeRegistry): Promise<{ client: SmpClient; where: string }> {
  const { conntype, connstring, source } = await resolveConnection(o, conntypes);
  const timeoutMs = numberOption('--timeout', o.timeout, 3) * 1000;
  const tries = Math.round(numberOption('--tries', o.tries, 3));
  const transport = await conntypes.get(conntype)!.open(connstring, o);
  const where = `${conntype} ${connstring}${source.startsWith('profile') ? ` (${source})` : ''}`;
  const client = new SmpClient(transport, {
    timeoutMs,
    tries,
    version: o.smpV1 ? 0 : 1,
    ...(o.verbose ? { onPacket: (dir: 'tx' | 'rx', p: Uint8Array) => process.stderr.write(`${dir} ${toHex(p, ' ')}\n`) } : {}),
  });
  return { client, where };
}
