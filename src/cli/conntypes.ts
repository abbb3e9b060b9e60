/**
 * Connection types of the CLI (`--conntype NAME`). Each link kind registers itself explicitly in
 * main.ts with {@link ConntypeRegistry.register}: its name, the global options it adds (`--udp
 * HOST:PORT`, `--serial DEV`, ...), how it opens a client transport from a connstring and,
 * optionally, what it adds to `serve`'s agent. Transports are imported when a link is opened, so a
 * command that does not use one never loads it (nor its native packages).
 */
import { Option } from 'commander';
import type { SmpTransport } from '../transport/types.ts';
import type { AgentOptions } from '../server/agent.ts';
import type { GlobalOptions } from './connection.ts';

/**
 * What a link adds to `serve`'s agent: its description (`serial`), which the agent completes with
 * the device's buffer sizes (from --buf-size or the --kconfig .config) before opening it.
 */
export type ServeLinkOptions = Pick<AgentOptions, 'serial'>;

export interface Conntype {
  /** The `--conntype` value, as the Go mcumgr CLI names it. */
  readonly name: string;
  /** Global options this link adds; they stand anywhere on the line like the others. */
  readonly options?: readonly Option[];
  /** The connstring given by this link's own short option (`--udp HOST:PORT`), if any. */
  shortConnstring?(globals: GlobalOptions): string | undefined;
  /** Opens a client transport. */
  open(connstring: string, globals: GlobalOptions): Promise<SmpTransport>;
  /** The agent options of this link for `serve` when the command line asks for one, else undefined. */
  serve?(serveOptions: Record<string, unknown>, globals: GlobalOptions): Promise<ServeLinkOptions | undefined>;
}

export class ConntypeRegistry {
  private readonly byName = new Map<string, Conntype>();

  register(conntype: Conntype): this {
    if (this.byName.has(conntype.name)) throw new Error(`conntype ${conntype.name} registered twice`);
    this.byName.set(conntype.name, conntype);
    return this;
  }

  get(name: string): Conntype | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  all(): Conntype[] {
    return [...this.byName.values()];
  }
}

/** UDP: `--conntype udp --connstring [HOST]:PORT`, or `--udp HOST:PORT`. */
export const udpConntype: Conntype = {
  name: 'udp',
  options: [
    new Option('--udp <host:port>', 'short for --conntype udp --connstring <host:port> (serve: where to listen, default 127.0.0.1:1337)'),
    new Option('--mtu <bytes>', 'largest UDP datagram (default 1500, Zephyr\'s; also mtu=N in the UDP connstring, e.g. 127.0.0.1:1337,mtu=2500)'),
  ],
  shortConnstring: (globals) => (typeof globals.udp === 'string' ? globals.udp : undefined),
  async open(connstring, globals) {
    const { openUdpClient, parseUdpConnstring, checkUdpMtu } = await import('../transport/udp.ts');
    const { host, port, mtu } = parseUdpConnstring(connstring);
    // --mtu wins over the connstring's mtu=N; both default to 1500 (Zephyr's UDP MTU).
    const chosen = typeof globals['mtu'] === 'string' ? checkUdpMtu(globals['mtu'], '--mtu') : mtu;
    // A one-shot command to a port nobody listens on fails at once (ICMP port unreachable).
    return openUdpClient({ host, port, ...(chosen !== undefined ? { mtu: chosen } : {}), failWhenRefused: true });
  },
};
