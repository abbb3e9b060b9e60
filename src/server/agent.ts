/**
 * The management agent: an emulated device (every group, the MCUboot model, the shell, the
 * file system) assembled with its transports and its view of the host's network, the way
 * `mcumgr serve` runs it. `serve` only turns its command line into {@link AgentOptions}; a
 * library user (a Linux gateway, a test, a dashboard bridge) gets the same agent from
 * {@link createAgent}.
 *
 * What `createAgent` does, in order (each step is one function below, reading its options):
 *  1. the device's network ({@link DeviceNetwork}), fed from the host by a host network monitor
 *     (rtnetlink on Linux, else polling) so that `net iface` / `net events` show the host's;
 *  2. UDP: waits for a local IP address that is not configured yet (`serve --udp ADDR:PORT`)
 *     and reports its loss; with `closeOnDisconnect` a {@link TransportSwitch} closes the socket
 *     while the address (for 0.0.0.0 / ::, the connectivity: NET_EVENT_L4_DISCONNECTED) is gone
 *     and reopens it when it is back, as Zephyr's smp_udp does;
 *  3. a serial link described by `serial` (a device path or a new pty), the SMP GATT service on
 *     BlueZ described by `ble`, plus any `transports`;
 *  4. the emulator ({@link createEmulator}) with every other option, booted and listening.
 *
 * `serve` flags and the options they set:
 *
 * | `serve` flag | option |
 * |---|---|
 * | `--data DIR` | `dataDir` |
 * | `--buf-size N`, `--buf-count N` | `bufSize`, `bufCount` |
 * | `--mtu N` | `udp.mtu` (default the larger of 1500 and `bufSize`) |
 * | `--udp HOST:PORT`, `--no-udp-listen` | `udp` (absent: no UDP) |
 * | `--close-on-disconnect` | `closeOnDisconnect` |
 * | `--definite-cbor` | `indefiniteCbor: false` |
 * | `--shell-host PROGRAMS` | `device.shellHostCommands.allow` |
 * | `--images`, `--slot-size`, `--image-key`, `--factory-image` | `image.images`, `.slotSize`, `.keys`, `.factoryImage` |
 * | `--serial PATH`, `--pty`, `--pty-link PATH` | `serial: { path }`, `serial: { pty: true }`, `serial: { pty: PATH }` |
 * | `--ble [NAME]` | `ble: { name }` |
 * | `--mcuboot-mode MODE`, `--downgrade-prevention`, `--rollback-protection`, `--confirm-non-active` | `image.mode`, `.downgradePrevention`, `.hwRollbackProtection`, `.allowConfirmNonActiveImage` |
 * | `--kconfig FILE` (`--print-config` lists what it sets and exits) | `kconfig: { text, time }` |
 * | (status lines on stderr) | `onStatus` |
 *
 * Adding an option: one field in {@link AgentOptions} (or in the emulator's, server's, device's
 * or image group's options, which the agent passes on whole) and its wiring in the step that
 * uses it.
 */
import { UsageError } from '../core/errors.ts';
import { createUdpServer, DEFAULT_UDP_MTU, type HostPort } from '../transport/udp.ts';
import type { ServerTransport } from '../transport/types.ts';
import type { SerialServerOptions } from '../transport/serial-server.ts';
import type { BluezPeripheralOptions } from '../transport/ble/node/bluez-peripheral.ts';
import { awaitLocalAddress, type LocalAddressGate } from '../netmgmt/host/local-address.ts';
import { startHostNetMonitor, type HostNetMonitor, type HostNetMonitorOptions } from '../netmgmt/host/index.ts';
import { initEventCallback } from '../netmgmt/net-mgmt.ts';
import { isUnspecifiedIp, tryParseIpv4, tryParseIpv6 } from '../netmgmt/ip.ts';
import * as NetEvents from '../netmgmt/events.ts';
import { createDeviceNetwork, type DeviceNetwork } from './net-shell.ts';
import { TransportSwitch } from './transport-switch.ts';
import { createEmulator, type Emulator, type EmulatorOptions } from './emulator.ts';
import type { SmpServer } from './server.ts';
import { withKconfig, type KconfigSource } from './kconfig.ts';

/** Where the agent serves UDP. */
export interface AgentUdpOptions extends HostPort {
  /** Largest datagram accepted (default: the larger of 1500, Zephyr's UDP MTU, and `bufSize`). */
  mtu?: number;
}

export interface AgentOptions extends EmulatorOptions {
  /** Serve UDP here (an IP address not configured yet is waited for). Absent: no UDP. */
  udp?: AgentUdpOptions;
  /**
   * Close the UDP socket while its address is gone (for 0.0.0.0 / ::, while the network is
   * disconnected) and reopen it when it is back, like Zephyr's smp_udp. Needs `udp` with an IP
   * address, and fails when the host's network cannot be watched.
   */
  closeOnDisconnect?: boolean;
  /** Delay before retrying a failed reopen with `closeOnDisconnect` (default 1000 ms). */
  reopenRetryMs?: number;
  /**
   * Serve on a serial link as well: a device path or a new pty. The agent fills in what it
   * knows: its net_buf size and MTU are `bufSize`, plain text lines go to the device shell
   * (`shellOverSmp`), and link events go to `onStatus`. Needs the serialport package (and socat
   * for a pty).
   */
  serial?: SerialServerOptions;
  /**
   * Serve SMP over Bluetooth LE as well: the SMP GATT service and an advertisement registered
   * with BlueZ over D-Bus (Linux), with Zephyr's reassembly and notification rules; requests and
   * answers up to `bufSize`. Needs bluetoothd and the dbus-next package.
   */
  ble?: BluezPeripheralOptions;
  /**
   * Feed the device's network (`net iface`, `net events`, the address gate) from the host's.
   * Default true (options of the monitor may be given); false leaves it empty, and then
   * `closeOnDisconnect` and waiting for an address are not available.
   */
  hostNetwork?: boolean | HostNetMonitorOptions;
  /** Lines for people about the agent's state (waiting for an address, closing UDP, warnings). */
  onStatus?: (message: string) => void;
  /**
   * Configure the device as a Zephyr build's `.config` does (groups, commands, buffers, os info,
   * taskstat, fs hashes, MCUboot mode, image count, transport limits; see kconfig.ts). Options given
   * explicitly win. `serve --kconfig FILE`.
   */
  kconfig?: KconfigSource;
}

/** A running agent. */
export interface Agent {
  /** The emulated device's server; `server.device` holds its shared services (stats, settings, shell, fs). */
  readonly server: Emulator;
  readonly dataDir: string;
  /** The device's network its shell shows (fed from the host unless `hostNetwork: false`). */
  readonly network: DeviceNetwork;
  /** The host network monitor feeding {@link network}, if it runs. */
  readonly hostMonitor: HostNetMonitor | undefined;
  /** The UDP transport, when `udp` was given (it may be closed: see {@link udpSwitch}). */
  readonly udp: (ServerTransport & { readonly port: number; readonly address: string }) | undefined;
  /** What opens and closes {@link udp} with `closeOnDisconnect`. */
  readonly udpSwitch: TransportSwitch | undefined;
  /** The transports listening now, UDP first. */
  listening(): ServerTransport[];
  /** Stops watching the network and closes the server with its transports. */
  close(): Promise<void>;
}

/** The host watch and the device network it feeds; what must be stopped if anything later fails. */
interface NetworkPart {
  network: DeviceNetwork;
  monitor: HostNetMonitor | undefined;
  gate?: LocalAddressGate;
  stop(): void;
}

/** Step 1: the device's network, fed from the host's when wanted. */
async function startNetwork(options: AgentOptions, status: (m: string) => void): Promise<NetworkPart> {
  const network = options.device?.network ?? createDeviceNetwork();
  let monitor: HostNetMonitor | undefined;
  if (options.hostNetwork !== false) {
    try {
      monitor = await startHostNetMonitor({ ...(typeof options.hostNetwork === 'object' ? options.hostNetwork : {}), netIfs: network.netIfs });
    } catch (e) {
      if (options.closeOnDisconnect) throw e;
      status(`warning: not watching the host's network (${e instanceof Error ? e.message : String(e)}); \`net iface\` shows nothing`);
    }
  }
  const part: NetworkPart = {
    network,
    monitor,
    stop() {
      part.gate?.close();
      monitor?.close();
      network.events.close();
    },
  };
  return part;
}

/** UDP and, with `closeOnDisconnect`, when it is wanted open. */
interface UdpPart {
  udp: ReturnType<typeof createUdpServer>;
  /** Listen at once (without `closeOnDisconnect`). */
  always: boolean;
  wanted: () => boolean;
  /** Set once the switch exists: called on every change of {@link wanted}. */
  onChange: () => void;
}

/** Step 2: the UDP transport, after its local address exists. */
async function openUdp(options: AgentOptions, net: NetworkPart, status: (m: string) => void): Promise<UdpPart | undefined> {
  const where = options.udp;
  if (!where) return undefined;
  const closeOnDisconnect = options.closeOnDisconnect === true;
  const { host, port } = where;
  const literal = host.startsWith('[') ? host.slice(1, -1) : host;
  const isIp = tryParseIpv4(literal) !== undefined || tryParseIpv6(literal) !== undefined;
  if (closeOnDisconnect && !isIp) throw new UsageError(`closing UDP on disconnect needs an IP address to serve on, got ${JSON.stringify(host)}`);
  const part: UdpPart = {
    udp: createUdpServer({ host, port, mtu: where.mtu ?? Math.max(DEFAULT_UDP_MTU, options.bufSize ?? 2048) }),
    always: !closeOnDisconnect,
    wanted: () => true,
    onChange: () => {},
  };
  // An IP address not configured yet is waited for (net_mgmt), and its loss reported.
  if (options.hostNetwork !== false) {
    net.gate = await awaitLocalAddress(host, {
      ...(net.monitor ? { hostMonitor: net.monitor } : {}),
      onWaiting: status,
      onLost: (_c, m) => {
        status(closeOnDisconnect ? `${m}; closing UDP on ${host}:${port}` : `warning: ${m}; UDP on ${host}:${port} receives nothing until it is back`);
        part.onChange();
      },
      onAvailable: (_c, m) => {
        status(closeOnDisconnect ? `${m}; reopening UDP on ${host}:${port}` : m);
        part.onChange();
      },
    });
  }
  if (!closeOnDisconnect) return part;
  const gate = net.gate;
  if (gate) part.wanted = () => gate.available;
  else if (net.monitor && isUnspecifiedIp(literal)) {
    // A wildcard address is always there: follow the connectivity instead, as smp_udp does.
    const connMgr = net.monitor.connMgr;
    part.wanted = () => connMgr?.connected ?? true;
    net.monitor.netMgmt.addEventCallback(
      initEventCallback((_cb, event) => {
        if (event === NetEvents.NET_EVENT_L4_CONNECTED || event === NetEvents.NET_EVENT_L4_DISCONNECTED) part.onChange();
      }, (NetEvents.NET_EVENT_L4_CONNECTED | NetEvents.NET_EVENT_L4_DISCONNECTED) >>> 0),
    );
  }
  return part;
}

/** Step 3: the serial link, when described. Loaded lazily: it needs the serialport package. */
async function openSerial(options: AgentOptions, status: (m: string) => void): Promise<ServerTransport | undefined> {
  if (!options.serial) return undefined;
  const { createSerialServer } = await import('../transport/serial-server.ts');
  // The device's buffers are what it reports in MCUmgr params (bufSize): requests up to that
  // size are taken in (LEN‖packet‖CRC within it) and answers go up to it.
  const bufSize = options.bufSize ?? 2048;
  return createSerialServer({ netbufSize: bufSize, mtu: bufSize, shellOverSmp: true, onStatus: status, ...options.serial });
}

/** Step 3: the BLE GATT service on BlueZ, when asked for. Loaded lazily (dbus-next). */
async function openBle(options: AgentOptions, status: (m: string) => void): Promise<ServerTransport | undefined> {
  if (!options.ble) return undefined;
  const { createBluezServerTransport } = await import('../transport/ble/node/bluez-peripheral.ts');
  return createBluezServerTransport({ bufSize: options.bufSize ?? 2048, onStatus: status, ...options.ble });
}

/** Step 4 for `closeOnDisconnect`: the switch that opens and closes UDP as its address comes and goes. */
async function switchUdp(server: SmpServer, part: UdpPart, options: AgentOptions, status: (m: string) => void): Promise<TransportSwitch> {
  const { udp } = part;
  let starting = true;
  const udpSwitch = new TransportSwitch(server, udp, {
    ...(options.reopenRetryMs !== undefined ? { retryMs: options.reopenRetryMs } : {}),
    // The first open is the agent's start, reported by whoever started it.
    onChange: (open) => {
      if (!starting || !open) status(`${open ? 'listening on' : 'closed'} ${udp.describe()}`);
    },
    onError: (e) => status(`warning: ${e instanceof Error ? e.message : String(e)}; retrying`),
  });
  part.onChange = () => void udpSwitch.set(part.wanted());
  await udpSwitch.set(part.wanted());
  starting = false;
  if (!udpSwitch.open) status(`${udp.describe()} opens when the network is connected (NET_EVENT_L4_CONNECTED)`);
  return udpSwitch;
}

/** A UDP bind that only this host can reach: 127.0.0.0/8, ::1 (or IPv4-mapped loopback), `localhost`. */
export function isLoopbackBind(host: string): boolean {
  const literal = host.startsWith('[') ? host.slice(1, -1) : host;
  if (literal === 'localhost') return true;
  const v4 = tryParseIpv4(literal);
  if (v4) return v4[0] === 127;
  const v6 = tryParseIpv6(literal);
  if (!v6) return false;
  const mapped = v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6[12] === 127 : v6.subarray(0, 15).every((b) => b === 0) && v6[15] === 1;
}

/** Start-up warning: host programs reachable from beyond this host. */
function warnExposure(options: AgentOptions, status: (m: string) => void): void {
  const allow = options.device?.shellHostCommands?.allow ?? [];
  if (allow.length === 0 || !options.udp || isLoopbackBind(options.udp.host)) return;
  status(
    `warning: host programs (${allow.join(', ')}) are allowed and UDP listens on ${options.udp.host}: anyone who can send a datagram there ` +
      `(source addresses are easy to forge) may run them with any arguments as this user; serve on 127.0.0.1 or drop --shell-host`,
  );
}

/**
 * Assembles, boots and starts a management agent. Rejects with UsageError for contradictory
 * options (nothing to serve on, `closeOnDisconnect` without UDP) and when the device cannot boot;
 * nothing keeps running then.
 *
 * @example
 * const agent = await createAgent({ dataDir: '/var/lib/mcumgr', udp: { host: '0.0.0.0', port: 1337 }, closeOnDisconnect: true });
 * console.log(agent.listening().map((t) => t.describe()));
 * await agent.close();
 */
export async function createAgent(agentOptions: AgentOptions): Promise<Agent> {
  const options = agentOptions.kconfig ? withKconfig(agentOptions, agentOptions.kconfig) : agentOptions;
  const status = options.onStatus ?? (() => {});
  if (options.closeOnDisconnect && !options.udp) throw new UsageError('closing UDP on disconnect needs UDP to serve on');
  if (!options.udp && !options.serial && !options.ble && !options.transports?.length) throw new UsageError('no transport to serve on');
  warnExposure(options, status);
  const net = await startNetwork(options, status);
  // Until serving starts, a failure must not leave the watch keeping the process alive.
  try {
    const udp = await openUdp(options, net, status);
    const serial = await openSerial(options, status);
    const ble = await openBle(options, status);
    const transports = [...(udp?.always ? [udp.udp] : []), ...(options.transports ?? []), ...(serial ? [serial] : []), ...(ble ? [ble] : [])];
    const server = await createEmulator({ ...options, transports, device: { ...options.device, network: net.network } }).catch((e: unknown) => {
      // With trusted keys MCUboot validates the primary slot too: the default factory image is unsigned.
      if (options.image?.keys && !options.image.factoryImage && e instanceof Error && /no bootable image/.test(e.message)) {
        throw new UsageError(`${e.message}; with trusted image keys (--image-key), give a factory image signed with a trusted key (--factory-image FILE), or a data directory whose device already runs a signed image`);
      }
      throw e;
    });
    const udpSwitch = udp && !udp.always ? await switchUdp(server, udp, options, status) : undefined;
    // The watch keeps the process alive only while it may have to reopen the UDP socket.
    if (!udpSwitch) net.monitor?.ref(false);
    server.onClose(() => net.stop());
    return {
      server,
      dataDir: options.dataDir,
      network: net.network,
      hostMonitor: net.monitor,
      udp: udp?.udp,
      udpSwitch,
      listening() {
        const all = server.listeningTransports;
        return udp && all.includes(udp.udp) ? [udp.udp, ...all.filter((t) => t !== udp.udp)] : [...all];
      },
      close: () => server.close(),
    };
  } catch (e) {
    net.stop();
    throw e;
  }
}
