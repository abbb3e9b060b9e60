/**
 * What the bridge may open: a connection string `KIND:CONNSTRING` whose KIND is one of the CLI's
 * conntypes (`udp:127.0.0.1:1337`, `serial:dev=/dev/ttyACM0,baud=115200`, and `ble:...` once the
 * BLE conntype registers), or `profile:NAME`, a Go mcumgr connection profile (`mcumgr conn add`).
 * The bridge so reaches exactly what the CLI reaches, parsed the same way; anything else is refused
 * with a UsageError before any device is touched.
 */
import { UsageError } from '../core/errors.ts';
import type { ConntypeRegistry } from '../cli/conntypes.ts';
import { findProfile } from '../cli/profiles.ts';
import type { SmpTransport } from '../transport/types.ts';

export interface ParsedConnection {
  /** A conntype name, or `profile`. */
  kind: string;
  /** The connstring, or the profile's name. */
  connstring: string;
}

/** Splits `KIND:REST` and checks that KIND is a link the host opens (or `profile`). */
export function parseConnection(text: string, conntypes: ConntypeRegistry): ParsedConnection {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(':');
  const kinds = [...conntypes.names(), 'profile'];
  if (colon <= 0) throw new UsageError(`a connection is KIND:ADDRESS (${kinds.join(', ')}; e.g. udp:127.0.0.1:1337); got ${JSON.stringify(text)}`);
  const kind = trimmed.slice(0, colon).toLowerCase();
  const connstring = trimmed.slice(colon + 1);
  if (!kinds.includes(kind)) throw new UsageError(`the bridge opens ${kinds.join(', ')} connections only; refused ${JSON.stringify(kind)}`);
  if (!connstring) throw new UsageError(`no ${kind === 'profile' ? 'profile name' : 'address'} after ${kind}:`);
  return { kind, connstring };
}

/** The connection kinds the bridge opens on this host. */
export function bridgeKinds(conntypes: ConntypeRegistry): string[] {
  return [...conntypes.names(), 'profile'];
}

/** Opens a checked connection as the CLI would (a profile through its conntype). */
export async function openConnection(text: string, conntypes: ConntypeRegistry): Promise<SmpTransport> {
  let { kind, connstring } = parseConnection(text, conntypes);
  if (kind === 'profile') {
    const profile = await findProfile(connstring);
    const conntype = conntypes.get(profile.type);
    if (!conntype) throw new UsageError(`profile ${profile.name} uses conntype ${JSON.stringify(profile.type)}, which the bridge does not open (${conntypes.names().join(', ')})`);
    kind = profile.type;
    connstring = profile.connstring;
  }
  return conntypes.get(kind)!.open(connstring, { conntype: kind, connstring });
}
