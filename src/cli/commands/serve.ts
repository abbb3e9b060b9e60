/** `mcumgr serve`: run the emulated device. */
import type { Command } from 'commander';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { createEmulator } from '../../server/emulator.ts';
import { createUdpServer, parseHostPort, DEFAULT_UDP_MTU } from '../../transport/udp.ts';
import type { ServerTransport } from '../../transport/types.ts';
import { UsageError } from '../../core/errors.ts';
import { readFile } from 'node:fs/promises';
import { parsePublicKey } from '../../image/keys.ts';
import type { ImageGroupOptions } from '../../server/groups/image.ts';
import type { CliContext } from '../context.ts';
import type { SmpServer } from '../../server/server.ts';
import { awaitLocalAddress, type LocalAddressGate } from '../../netmgmt/host/local-address.ts';
import { startHostNetMonitor, type HostNetMonitor } from '../../netmgmt/host/index.ts';
import { initEventCallback } from '../../netmgmt/net-mgmt.ts';
import { isUnspecifiedIp, tryParseIpv4, tryParseIpv6 } from '../../netmgmt/ip.ts';
import * as NetEvents from '../../netmgmt/events.ts';
import { createDeviceNetwork } from '../../server/net-shell.ts';
import { TransportSwitch } from '../../server/transport-switch.ts';
import { DEFAULT_FLASH_TIMING, DEFAULT_PROCESSING_US, DeviceActivity, installDeviceTiming, type FlashTiming } from '../../server/device-timing.ts';
import { ZEPHYR_RX_LINE_BUFFERS } from '../../transport/serial-server.ts';

export function defaultDataDir(): string {
  const env = process.env['MCUMGR_DATA'];
  if (env) return resolve(env);
  const home = homedir();
  return home ? join(home, '.mcumgr', 'emulator') : resolve('.mcumgr-data');
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

/** The MCUboot model's options from `--images`, `--slot-size` and `--image-key`. */
async function imageOptions(opts: Record<string, unknown>): Promise<ImageGroupOptions> {
  const out: ImageGroupOptions = {};
  if (opts['images'] !== undefined) out.images = positiveInt('--images', opts['images'] as string, 1);
  if (opts['slotSize'] !== undefined) out.slotSize = positiveInt('--slot-size', opts['slotSize'] as string, 0);
  if (typeof opts['factoryImage'] === 'string') {
    const file = opts['factoryImage'];
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(file));
    } catch (e) {
      throw new UsageError(`cannot read --factory-image ${file}: ${(e as Error).message}`);
    }
    out.factoryImage = () => bytes;
  }
  const keyFiles = opts['imageKey'] as string[] | undefined;
  if (keyFiles) {
    out.keys = await Promise.all(
      keyFiles.map(async (file) => {
        let bytes: Uint8Array;
        try {
          bytes = new Uint8Array(await readFile(file));
        } catch (e) {
          throw new UsageError(`cannot read --image-key ${file}: ${(e as Error).message}`);
        }
        try {
          const text = new TextDecoder().decode(bytes);
          return parsePublicKey(text.includes('-----BEGIN') ? text : bytes);
        } catch (e) {
          throw new UsageError(`--image-key ${file}: not a public key we can use: ${(e as Error).message}`);
        }
      }),
    );
  }
  return out;
}

function nonNegative(name: string, text: unknown, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a number >= 0, got ${JSON.stringify(text)}`);
  return n;
}

/** The device's timing from `--fast`, `--processing-us`, `--flash-write-us`, `--flash-erase-ms`, `--rx-line-buffers`. */
export interface ServeTiming {
  fast: boolean;
  activity: DeviceActivity;
  processingUs: number;
  flash: FlashTiming | undefined;
  /** Receive line buffers of a serial link (undefined: unlimited). */
  rxLineBuffers: number | undefined;
}

const timingByOpts = new WeakMap<Record<string, unknown>, ServeTiming>();

/** One timing per `serve` invocation, shared by the server and its transports. */
export function serveTiming(opts: Record<string, unknown>): ServeTiming {
  let t = timingByOpts.get(opts);
  if (!t) {
    const fast = opts['fast'] === true;
    const rx = opts['rxLineBuffers'] === undefined ? undefined : positiveInt('--rx-line-buffers', opts['rxLineBuffers'] as string, 2);
    t = {
      fast,
      activity: new DeviceActivity(),
      processingUs: fast ? 0 : nonNegative('--processing-us', opts['processingUs'], DEFAULT_PROCESSING_US),
      flash: fast ? undefined : { ...DEFAULT_FLASH_TIMING, writeUsPerByte: nonNegative('--flash-write-us', opts['flashWriteUs'], DEFAULT_FLASH_TIMING.writeUsPerByte), eraseMsPerSector: nonNegative('--flash-erase-ms', opts['flashEraseMs'], DEFAULT_FLASH_TIMING.eraseMsPerSector) },
      rxLineBuffers: rx ?? (fast ? undefined : ZEPHYR_RX_LINE_BUFFERS),
    };
    timingByOpts.set(opts, t);
  }
  return t;
}

/** Extra server transports other modules add (serial adds --serial / --pty). */
export const serveTransportFactories: Array<(opts: Record<string, unknown>, ctx: CliContext) => Promise<ServerTransport | undefined> | ServerTransport | undefined> = [];

export function registerServeCommand(program: Command, ctx: CliContext): Command {
  return program
    .command('serve')
    .description('run an emulated Zephyr device (SMP server) on UDP; --udp HOST:PORT sets where (default 127.0.0.1:1337)')
    .option('--data <dir>', 'data directory for the device state', undefined)
    .option('--buf-size <bytes>', 'MCUmgr buffer size reported and enforced (default 2048)')
    .option('--buf-count <n>', 'MCUmgr buffer count reported (default 4)')
    .option('--mtu <bytes>', `largest UDP datagram accepted (default ${DEFAULT_UDP_MTU})`)
    .option('--no-udp-listen', 'do not listen on UDP (with another transport)')
    .option('--definite-cbor', 'answer with definite-length CBOR instead of Zephyr-style indefinite maps')
    .option('--shell-host <programs>', 'let the device shell run these host programs (comma-separated names) as "host PROGRAM ARGS"; off by default')
    .option('--images <n>', 'updatable images (pairs of slots) on the emulated device (default 1)')
    .option('--slot-size <bytes>', 'size of each image slot (default 1.5 MiB)')
    .option('--image-key <file...>', 'trust this public key (PEM or DER: ECDSA P-256/P-384, Ed25519, RSA): MCUboot then boots only images signed with a trusted key')
    .option('--factory-image <file>', 'the image a new device has in its primary slot (default: an unsigned 1.0.0 image; with --image-key give one signed with a trusted key)')
    .option('--close-on-disconnect', "close the UDP socket while the --udp address is gone (or, for 0.0.0.0/::, while the network is disconnected: NET_EVENT_L4_DISCONNECTED) and reopen it when it is back, like Zephyr's smp_udp")
    .option('--fast', 'an instant device: no processing, flash or line-buffer limits (for CI)')
    .option('--processing-us <us>', `processing time per request (default ${DEFAULT_PROCESSING_US})`)
    .option('--flash-write-us <us>', `flash programming time per byte (default ${DEFAULT_FLASH_TIMING.writeUsPerByte})`)
    .option('--flash-erase-ms <ms>', `flash erase time per ${DEFAULT_FLASH_TIMING.sectorSize}-byte sector (default ${DEFAULT_FLASH_TIMING.eraseMsPerSector})`)
    .option('--rx-line-buffers <n>', `serial receive line buffers, Zephyr's CONFIG_UART_MCUMGR_RX_BUF_COUNT (default ${ZEPHYR_RX_LINE_BUFFERS}; unlimited with --fast)`)
    .action((opts: Record<string, unknown>) =>
      ctx.run(async (out) => {
        const timing = serveTiming(opts);
        const dataDir = typeof opts['data'] === 'string' ? resolve(opts['data']) : defaultDataDir();
        const bufSize = positiveInt('--buf-size', opts['bufSize'] as string | undefined, 2048);
        // --mtu is also a global (client) flag, so it may arrive in the globals.
        const mtu = positiveInt('--mtu', (opts['mtu'] ?? ctx.globals['mtu']) as string | undefined, Math.max(DEFAULT_UDP_MTU, bufSize));
        const transports: ServerTransport[] = [];
        let addressGate: LocalAddressGate | undefined;
        // With a serial link (--serial / --pty) UDP is served only when --udp is given as well.
        const serialOnly = (typeof ctx.globals['serial'] === 'string' || ctx.globals['pty'] === true || typeof ctx.globals['ptyLink'] === 'string') && typeof ctx.globals.udp !== 'string';
        const servesUdp = opts['udpListen'] !== false && !serialOnly;
        const closeOnDisconnect = opts['closeOnDisconnect'] === true;
        if (closeOnDisconnect && !servesUdp) throw new UsageError('--close-on-disconnect needs UDP (--udp ADDR:PORT)');
        // The device's network, fed from the host (rtnetlink, else polling): the `net iface` and
        // `net events` shell commands show it, and the --udp address is watched through it.
        const network = createDeviceNetwork();
        let monitor: HostNetMonitor | undefined;
        try {
          monitor = await startHostNetMonitor({ netIfs: network.netIfs });
        } catch (e) {
          if (closeOnDisconnect) throw e;
          process.stderr.write(`serve: warning: not watching the host's network (${e instanceof Error ? e.message : String(e)}); \`net iface\` shows nothing\n`);
        }
        // Until serving starts, a failure must not leave the watch keeping the process alive.
        const stopWatching = (): void => {
          addressGate?.close();
          monitor?.close();
          network.events.close();
        };
        try {
          let udp: ReturnType<typeof createUdpServer> | undefined;
          let udpWanted: () => boolean = () => true;
          let onNetChange: () => void = () => {};
          if (servesUdp) {
            const { host, port } = parseHostPort(typeof ctx.globals.udp === 'string' ? ctx.globals.udp : '127.0.0.1:1337');
            const literal = host.startsWith('[') ? host.slice(1, -1) : host;
            const isIp = tryParseIpv4(literal) !== undefined || tryParseIpv6(literal) !== undefined;
            if (closeOnDisconnect && !isIp) throw new UsageError(`--close-on-disconnect needs an IP address in --udp, got ${JSON.stringify(host)}`);
            // An IP address not configured yet is waited for (net_mgmt), and its loss reported.
            addressGate = await awaitLocalAddress(host, {
              ...(monitor ? { hostMonitor: monitor } : {}),
              onWaiting: (m) => process.stderr.write(`serve: ${m}\n`),
              onLost: (_c, m) => {
                process.stderr.write(closeOnDisconnect ? `serve: ${m}; closing UDP on ${host}:${port}\n` : `serve: warning: ${m}; UDP on ${host}:${port} receives nothing until it is back\n`);
                onNetChange();
              },
              onAvailable: (_c, m) => {
                process.stderr.write(closeOnDisconnect ? `serve: ${m}; reopening UDP on ${host}:${port}\n` : `serve: ${m}\n`);
                onNetChange();
              },
            });
            udp = createUdpServer({ host, port, mtu });
            if (!closeOnDisconnect) transports.push(udp);
            else if (addressGate) {
              const gate = addressGate;
              udpWanted = () => gate.available;
            } else if (monitor && isUnspecifiedIp(literal)) {
              // A wildcard address is always there: follow the connectivity instead, as smp_udp does.
              const connMgr = monitor.connMgr;
              udpWanted = () => connMgr?.connected ?? true;
              monitor.netMgmt.addEventCallback(
                initEventCallback((_cb, event) => {
                  if (event === NetEvents.NET_EVENT_L4_CONNECTED || event === NetEvents.NET_EVENT_L4_DISCONNECTED) onNetChange();
                }, (NetEvents.NET_EVENT_L4_CONNECTED | NetEvents.NET_EVENT_L4_DISCONNECTED) >>> 0),
              );
            }
          }
          for (const f of serveTransportFactories) {
            const t = await f(opts, ctx);
            if (t) transports.push(t);
          }
          if (transports.length === 0 && !udp) throw new UsageError('no transport to serve on');
          const image = { ...(await imageOptions(opts)), ...(timing.flash ? { flashTiming: timing.flash } : {}) };
          const server: SmpServer = await createEmulator({
            dataDir,
            bufSize,
            bufCount: positiveInt('--buf-count', opts['bufCount'] as string | undefined, 4),
            indefiniteCbor: opts['definiteCbor'] !== true,
            image,
            transports,
            device: {
              network,
              ...(typeof opts['shellHost'] === 'string' ? { shellHostCommands: { allow: opts['shellHost'].split(',').map((p) => p.trim()).filter((p) => p !== '') } } : {}),
            },
            onError: (e) => process.stderr.write(`server: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`),
          }).catch((e: unknown) => {
            // With trusted keys MCUboot validates the primary slot too: the default factory image is unsigned.
            if (image.keys && !image.factoryImage && e instanceof Error && /no bootable image/.test(e.message)) {
              throw new UsageError(`${e.message}; with --image-key, give --factory-image FILE signed with a trusted key (or a data directory whose device already runs a signed image)`);
            }
            throw e;
          });
          if (!timing.fast || timing.rxLineBuffers !== undefined) installDeviceTiming(server, { processingUs: timing.processingUs, activity: timing.activity });
          if (closeOnDisconnect && udp) {
            const udpServer = udp;
            let starting = true;
            const udpSwitch = new TransportSwitch(server, udpServer, {
              // The first open is announced by the "listening on" line below.
              onChange: (open) => {
                if (!starting || !open) process.stderr.write(`serve: ${open ? 'listening on' : 'closed'} ${udpServer.describe()}\n`);
              },
              onError: (e) => process.stderr.write(`serve: warning: ${e instanceof Error ? e.message : String(e)}; retrying\n`),
            });
            onNetChange = () => void udpSwitch.set(udpWanted());
            await udpSwitch.set(udpWanted());
            starting = false;
            if (udpSwitch.open) transports.unshift(udpServer);
            else process.stderr.write(`serve: ${udpServer.describe()} opens when the network is connected (NET_EVENT_L4_CONNECTED)\n`);
          }
          // The watch keeps the process alive only while it may have to reopen the UDP socket.
          if (!closeOnDisconnect) monitor?.ref(false);
          const where = transports.map((t) => t.describe());
          if (ctx.output.json) process.stdout.write(JSON.stringify({ listening: where, dataDir }) + '\n');
          else {
            let text = `mcumgr emulator listening on ${where.join(', ') || 'nothing yet'} (data: ${dataDir})\n`;
            const udp = transports.find((t) => t.kind === 'udp');
            if (udp) text += `Try:  ./bin/mcumgr --conntype udp --connstring ${udp.describe().replace(/^udp /, '')} echo hello\n`;
            process.stdout.write(text);
          }
          out.info('Press Ctrl-C to stop.');
          await new Promise<void>((res) => {
            const stop = (): void => {
              process.off('SIGINT', stop);
              process.off('SIGTERM', stop);
              stopWatching();
              void server.close().then(res);
            };
            process.on('SIGINT', stop);
            process.on('SIGTERM', stop);
          });
        } catch (e) {
          stopWatching();
          throw e;
        }
      }),
    );
}
