/**
 * The text of the device shell's network commands, from the interface registry and the event
 * log: `net iface` and `net events`.
 *
 * `net iface` follows Zephyr's net shell (subsys/net/lib/shell/iface.c, cmd_net_iface and
 * iface_cb, read in the source): a `Hostname:` line, `Default interface: N`, then per interface
 * a header `Interface NAME (TYPE) [INDEX]` underlined with `=`, and for an interface that is up
 * the `Link addr`, `MTU`, `Flags`, `Status : oper=…, admin=…, carrier=…` lines and the unicast
 * address lists, `\tADDR TYPE STATE` for IPv6 and `\tADDR/NETMASK TYPE STATE` for IPv4, `\t<none>`
 * for an empty list, and `IPv4 gateway`. A down interface prints `Interface is down.` only,
 * unless it was asked for by index. Differences, because a registry fed from a host is not a
 * Zephyr net_if: no `(%p)` pointer and no `Device` line; the TYPE is `Ethernet` for a 6-byte
 * link address and `Dummy` for a loopback (Zephyr's loopback driver uses the dummy L2), else
 * `<unknown type>`; the address type is `autoconf` for IPv6 link-local addresses and `manual`
 * otherwise (the registry does not know how an address was configured); multicast lists,
 * prefixes, lifetimes and the IPv6 timers are left out.
 *
 * `net events` has no Zephyr counterpart of the same shape (Zephyr's `net events on` prints
 * events live, `EVENT: L3 [2] IPv4 address add 10.0.0.1`): it lists the recorded events, newest
 * last, one per line: `[hh:mm:ss.mmm] NAME 0xCODE [INDEX] IFACE INFO-JSON`.
 */
import { netIfIsUp, type NetIf, type NetIfAddr, type NetIfManager } from './net-if.ts';
import type { NetEventLog, NetEventLogEntry } from './event-log.ts';

/** Shell return codes (negative errno), as Zephyr's commands return them. */
export const NET_SHELL_ENOEXEC = -8;

/** What a shell command produced. */
export interface NetShellOutput {
  text: string;
  ret: number;
}

export interface NetIfaceTextOptions {
  /** Printed as `Hostname: …` (CONFIG_NET_HOSTNAME_ENABLE); omitted when undefined. */
  hostname?: string;
  /** argv after `iface`: an interface index to show in full. */
  args?: readonly string[];
}

function linkType(iface: NetIf): string {
  if (iface.flags.loopback) return 'Dummy';
  if (iface.hwaddr !== undefined && iface.hwaddr.split(':').length === 6) return 'Ethernet';
  return '<unknown type>';
}

function ipv4Netmask(prefixLen: number): string {
  const m = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  return [m >>> 24, (m >>> 16) & 0xff, (m >>> 8) & 0xff, m & 0xff].join('.');
}

function addrType(a: NetIfAddr): string {
  return a.family === 6 && a.scope === 'link' ? 'autoconf' : 'manual';
}

function addrState(a: NetIfAddr): string {
  if (a.dadFailed) return 'dad-failed';
  if (a.tentative) return 'tentative';
  if (a.deprecated) return 'deprecated';
  return 'preferred';
}

/** Zephyr's net_if_oper_state2str for what the registry knows. */
function operState(iface: NetIf): string {
  if (!iface.flags.up) return 'DOWN';
  return iface.flags.running ? 'UP' : 'LOWERLAYERDOWN';
}

/** The default interface as Zephyr picks it for display: the one with a default route, else the first up non-loopback one, else the first. */
function defaultIface(netIfs: NetIfManager): NetIf | undefined {
  const list = netIfs.list();
  for (const family of [4, 6] as const) {
    const r = netIfs.listRoutes().find((x) => x.family === family && x.dstLen === 0);
    const iface = r ? netIfs.getByIndex(r.index) : undefined;
    if (iface) return iface;
  }
  return list.find((i) => netIfIsUp(i) && !i.flags.loopback) ?? list[0];
}

function ifaceText(netIfs: NetIfManager, iface: NetIf, detailed: boolean): string[] {
  const out: string[] = [];
  const header = `Interface ${iface.name} (${linkType(iface)}) [${iface.index}]`;
  out.push('', header, '='.repeat(header.length));
  if (!netIfIsUp(iface)) {
    out.push('Interface is down.');
    if (!detailed) return out;
  }
  if (iface.hwaddr !== undefined) out.push(`Link addr : ${iface.hwaddr.toUpperCase()}`);
  if (iface.mtu !== undefined) out.push(`MTU       : ${iface.mtu}`);
  out.push('Flags     : AUTO_START,IPv4,IPv6');
  out.push(`Status    : oper=${operState(iface)}, admin=${iface.flags.up ? 'UP' : 'DOWN'}, carrier=${iface.flags.running ? 'ON' : 'OFF'}`);
  const v6 = iface.addresses.filter((a) => a.family === 6);
  out.push('IPv6 unicast addresses:');
  for (const a of v6) out.push(`\t${a.addr} ${addrType(a)} ${addrState(a)}`);
  if (v6.length === 0) out.push('\t<none>');
  const router6 = netIfs.listRoutes().find((r) => r.family === 6 && r.dstLen === 0 && r.index === iface.index && r.gateway !== undefined);
  if (router6) out.push('IPv6 default router :', `\t${router6.gateway}`);
  const v4 = iface.addresses.filter((a) => a.family === 4);
  out.push('IPv4 unicast addresses:');
  for (const a of v4) out.push(`\t${a.addr}/${ipv4Netmask(a.prefixLen)} ${addrType(a)} ${addrState(a)}`);
  if (v4.length === 0) out.push('\t<none>');
  const gw4 = netIfs.listRoutes().find((r) => r.family === 4 && r.dstLen === 0 && r.index === iface.index && r.gateway !== undefined);
  out.push(`IPv4 gateway : ${gw4?.gateway ?? '0.0.0.0'}`);
  return out;
}

/**
 * `net iface [INDEX]`: every interface of the registry, or one in full. An index that is not a
 * number or names no interface answers a warning and -ENOEXEC, as Zephyr's does.
 */
export function netIfaceText(netIfs: NetIfManager, options: NetIfaceTextOptions = {}): NetShellOutput {
  const arg = options.args?.[0];
  let only: NetIf | undefined;
  if (arg !== undefined) {
    const idx = /^\d+$/.test(arg) ? Number(arg) : NaN;
    if (!Number.isSafeInteger(idx)) return { text: `Invalid index ${arg}\n`, ret: NET_SHELL_ENOEXEC };
    only = netIfs.getByIndex(idx);
    if (!only) return { text: `No such interface in index ${idx}\n`, ret: NET_SHELL_ENOEXEC };
  }
  const lines: string[] = [];
  if (options.hostname !== undefined) lines.push(`Hostname: ${options.hostname}`);
  const list = only ? [only] : netIfs.list();
  if (netIfs.list().length === 0) {
    lines.push('No network interfaces.');
    return { text: lines.join('\n') + '\n', ret: 0 };
  }
  lines.push(`Default interface: ${defaultIface(netIfs)?.index ?? 0}`);
  for (const iface of list) lines.push(...ifaceText(netIfs, iface, only !== undefined));
  return { text: lines.join('\n') + '\n', ret: 0 };
}

function clock(ms: number): string {
  const t = Math.max(0, Math.floor(ms));
  const h = Math.floor(t / 3_600_000);
  const m = Math.floor(t / 60_000) % 60;
  const s = Math.floor(t / 1000) % 60;
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(t % 1000, 3)}`;
}

/** One `net events` line for an entry; `since` is the time shown as 00:00:00.000. */
export function netEventLogLine(entry: NetEventLogEntry, since: number): string {
  const where = entry.iface === null ? '-' : `[${entry.ifaceIndex ?? '?'}] ${entry.iface}`;
  const info = entry.info === null ? '' : ` ${JSON.stringify(entry.info)}`;
  return `[${clock(entry.time - since)}] ${entry.event} 0x${entry.code.toString(16).toUpperCase().padStart(8, '0')} ${where}${info}`;
}

export interface NetEventsTextOptions {
  /** argv after `events`: an optional count of newest events to show. */
  args?: readonly string[];
  /** Time shown as 00:00:00.000 (the device's boot), in the log's clock. */
  since?: number;
  /** Output budget in bytes (the shell's buffer): the oldest lines are left out to fit it. */
  maxBytes?: number;
}

const utf8Length = (text: string): number => new TextEncoder().encode(text).length;

/** `net events [COUNT]`: the recorded events, newest last; those left out are announced first. */
export function netEventsText(log: NetEventLog, options: NetEventsTextOptions = {}): NetShellOutput {
  const arg = options.args?.[0];
  let last: number | undefined;
  if (arg !== undefined) {
    last = /^\d+$/.test(arg) ? Number(arg) : NaN;
    if (!Number.isSafeInteger(last) || last < 1) return { text: `Invalid count ${arg}\n`, ret: NET_SHELL_ENOEXEC };
  }
  if (log.total === 0) return { text: 'No network events recorded.\n', ret: 0 };
  const since = options.since ?? 0;
  const lines = log.entries(last).map((e) => netEventLogLine(e, since) + '\n');
  const header = (hidden: number): string => (hidden > 0 ? `(${hidden} older event${hidden === 1 ? '' : 's'} not shown; ${log.capacity} kept)\n` : '');
  // The newest lines that fit the budget together with the header.
  let shown = lines.length;
  if (options.maxBytes !== undefined) {
    const budget = options.maxBytes;
    let used = 0;
    shown = 0;
    for (let i = lines.length - 1; i >= 0; i--) {
      const next = used + utf8Length(lines[i]!);
      if (next + utf8Length(header(log.total - shown - 1)) > budget) break;
      used = next;
      shown++;
    }
  }
  return { text: header(log.total - shown) + lines.slice(lines.length - shown).join(''), ret: 0 };
}
