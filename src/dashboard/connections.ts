/**
 * What the bridge may open: a connection string `KIND:REST` whose KIND is one of the CLI's link
 * openers (`udp:127.0.0.1:1337`, `serial:dev=/dev/ttyACM0,baud=115200`, and `ble:...` once the BLE
 * transport registers its opener), so the bridge reaches exactly what the CLI reaches, parsed the
 * same way. Anything else is refused with a UsageError before any device is touched.
 */
import { UsageError } from '../core/errors.ts';
import { connectionOpeners } from '../cli/connection.ts';
import type { SmpTransport } from '../transport/types.ts';
// Registers the serial opener (and its connstring syntax) into connectionOpeners.
import '../cli/serial.ts';

export interface ParsedConnection {
  kind: string;
  connstring: string;
}

/** Splits `KIND:REST` and checks that KIND is a link the host can open. */
export function parseConnection(text: string): ParsedConnection {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(':');
  if (colon <= 0) throw new UsageError(`a connection is KIND:ADDRESS (e.g. udp:127.0.0.1:1337); got ${JSON.stringify(text)}`);
  const kind = trimmed.slice(0, colon).toLowerCase();
  const connstring = trimmed.slice(colon + 1);
  if (!connectionOpeners.has(kind)) {
    throw new UsageError(`the bridge opens ${[...connectionOpeners.keys()].join(', ')} links only; refused ${JSON.stringify(kind)}`);
  }
  if (!connstring) throw new UsageError(`no address after ${kind}:`);
  return { kind, connstring };
}

/** The link kinds the bridge opens on this host. */
export function bridgeKinds(): string[] {
  return [...connectionOpeners.keys()];
}

/** Opens a checked connection as the CLI would. */
export async function openConnection(text: string): Promise<SmpTransport> {
  const { kind, connstring } = parseConnection(text);
  const opener = connectionOpeners.get(kind)!;
  return opener(connstring, { conntype: kind, connstring });
}
