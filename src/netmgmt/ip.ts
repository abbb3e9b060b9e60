/**
 * IPv4 / IPv6 address text <-> bytes, portable (no node:net). IPv6 text is written in the
 * RFC 5952 canonical form (lower case, longest run of two or more zero groups as `::`, leftmost on
 * a tie, IPv4-mapped addresses as `::ffff:a.b.c.d`).
 */
import { UsageError } from '../core/errors.ts';

export type IpFamily = 4 | 6;

/** Parses dotted-quad IPv4 text. Returns undefined when the text is not one. */
export function tryParseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p.startsWith('0'))) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** Parses IPv6 text (with `::`, an embedded IPv4 tail, no zone). Returns undefined when invalid. */
export function tryParseIpv6(text: string): Uint8Array | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  let s = text;
  let tail: Uint8Array | undefined;
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.indexOf('.', lastColon) > lastColon) {
    tail = tryParseIpv4(s.slice(lastColon + 1));
    if (!tail) return undefined;
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const toGroups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const gs = h.split(':');
    const out: number[] = [];
    for (const g of gs) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = toGroups(halves[0]!);
  const rest = halves.length === 2 ? toGroups(halves[1]!) : [];
  if (!head || !rest) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return undefined;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = groups[i]! >> 8;
    out[i * 2 + 1] = groups[i]! & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

/** Parses IPv4 or IPv6 text. Throws {@link UsageError} on anything else. */
export function parseIp(text: string): { family: IpFamily; bytes: Uint8Array } {
  const v4 = tryParseIpv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = tryParseIpv6(text);
  if (v6) return { family: 6, bytes: v6 };
  throw new UsageError(`not an IP address: ${JSON.stringify(text)}`);
}

/** Formats 4 bytes as dotted-quad. Throws {@link UsageError} for another length. */
export function formatIpv4(bytes: Uint8Array): string {
  if (bytes.length !== 4) throw new UsageError(`an IPv4 address is 4 bytes, got ${bytes.length}`);
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** Formats 16 bytes as canonical IPv6 text (RFC 5952). Throws {@link UsageError} for another length. */
export function formatIpv6(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new UsageError(`an IPv6 address is 16 bytes, got ${bytes.length}`);
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((bytes[i * 2]! << 8) | bytes[i * 2 + 1]!);
  // IPv4-mapped ::ffff:a.b.c.d
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatIpv4(bytes.subarray(12))}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestLen < 2) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

/** Formats 4 or 16 bytes. */
export function formatIp(bytes: Uint8Array): string {
  return bytes.length === 4 ? formatIpv4(bytes) : formatIpv6(bytes);
}

/** Normalises IP text to its canonical form (`::0:1` -> `::1`). Throws {@link UsageError}. */
export function canonicalIp(text: string): string {
  return formatIp(parseIp(text).bytes);
}

/** True for 0.0.0.0 and ::. */
export function isUnspecifiedIp(text: string): boolean {
  const { bytes } = parseIp(text);
  return bytes.every((b) => b === 0);
}
