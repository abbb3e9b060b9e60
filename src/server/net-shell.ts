/**
 * The emulated device's network, as its shell shows it: a net_mgmt instance, the interface
 * registry it raises events for, and a bounded log of those events. `mcumgr serve` feeds the
 * registry from the host (rtnetlink on Linux, polling elsewhere); an emulator created from the
 * library without one gets an empty registry, and the commands still answer.
 *
 * Shell commands (registered into the device's shell registry, so they answer SMP shell exec
 * and plain text lines on a serial console alike):
 *  - `net iface [INDEX]`: the interfaces, close to Zephyr's output (see netmgmt/shell-text.ts);
 *  - `net events [COUNT]`: the recorded net_mgmt events, newest last (as many of the newest as
 *    fit the shell's output buffer).
 */
import { NetMgmt } from '../netmgmt/net-mgmt.ts';
import { NetIfManager } from '../netmgmt/net-if.ts';
import { NetEventLog } from '../netmgmt/event-log.ts';
import { netEventsText, netIfaceText } from '../netmgmt/shell-text.ts';
import type { ShellRegistry } from './shell.ts';

/** The network of one emulated device. */
export interface DeviceNetwork {
  readonly netMgmt: NetMgmt;
  readonly netIfs: NetIfManager;
  /** The events `net events` lists. */
  readonly events: NetEventLog;
  /** When the network was created (ms since the epoch): time 00:00:00.000 of `net events`. */
  readonly createdAt: number;
}

export interface DeviceNetworkOptions {
  /** An existing instance (the host monitor's); by default a new one with a 256-event queue. */
  netMgmt?: NetMgmt;
  /** Its interface registry; by default a new, empty one on `netMgmt`. */
  netIfs?: NetIfManager;
  /** Events kept for `net events` (default 64). */
  eventLogSize?: number;
}

/**
 * Builds a device network. The event log attaches to `netMgmt` at once: create the network
 * before starting a host monitor on the same instance to record its first events too.
 */
export function createDeviceNetwork(options: DeviceNetworkOptions = {}): DeviceNetwork {
  const netMgmt = options.netMgmt ?? options.netIfs?.netMgmt ?? new NetMgmt({ queueSize: 256 });
  const netIfs = options.netIfs ?? new NetIfManager(netMgmt);
  if (netIfs.netMgmt !== netMgmt) throw new RangeError('the interface registry belongs to another net_mgmt instance');
  return { netMgmt, netIfs, events: new NetEventLog(netMgmt, { capacity: options.eventLogSize ?? 64 }), createdAt: Date.now() };
}

export interface NetShellOptions {
  /** The device's host name (`Hostname:` line of `net iface`). */
  hostname?: () => string;
  /** The time `net events` shows as 00:00:00.000 (ms since the epoch; default: the network's creation). */
  since?: () => number;
}

/** Registers `net iface` and `net events` into a shell registry. Returns a function that removes both. */
export function registerNetShellCommands(shell: ShellRegistry, network: DeviceNetwork, options: NetShellOptions = {}): () => void {
  const removers = [
    shell.register(
      'net iface',
      ({ argv, print }) => {
        const r = netIfaceText(network.netIfs, { args: argv.slice(1), ...(options.hostname ? { hostname: options.hostname() } : {}) });
        print(r.text);
        return r.ret;
      },
      'Print information about network interfaces [index]',
    ),
    shell.register(
      'net events',
      ({ argv, print, maxOutput }) => {
        const r = netEventsText(network.events, { args: argv.slice(1), since: options.since?.() ?? network.createdAt, ...(maxOutput !== undefined ? { maxBytes: maxOutput } : {}) });
        print(r.text);
        return r.ret;
      },
      'Show the recent network management events [count]',
    ),
  ];
  shell.describe('net', 'Networking commands');
  return () => removers.forEach((remove) => remove());
}
