/** `mcumgr serve`: run the emulated device. Parses the options; {@link createAgent} does the rest. */
import type { Command } from 'commander';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { parseHostPort, DEFAULT_UDP_MTU } from '../../transport/udp.ts';
import type { ServerTransport } from '../../transport/types.ts';
import { UsageError } from '../../core/errors.ts';
import { parsePublicKey } from '../../image/keys.ts';
import { createAgent, ZEPHYR_DEVICE_TIMING, type AgentDeviceTiming, type AgentOptions } from '../../server/agent.ts';
import type { ImageGroupOptions } from '../../server/groups/image.ts';
import type { CliContext } from '../context.ts';

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
function deviceTiming(opts: Record<string, unknown>): AgentDeviceTiming | undefined {
  const rx = opts['rxLineBuffers'] === undefined ? undefined : positiveInt('--rx-line-buffers', opts['rxLineBuffers'] as string, ZEPHYR_DEVICE_TIMING.rxLineBuffers);
  if (opts['fast'] === true) return rx === undefined ? undefined : { rxLineBuffers: rx };
  const d = ZEPHYR_DEVICE_TIMING;
  return {
    processingUs: nonNegative('--processing-us', opts['processingUs'], d.processingUs),
    flash: { ...d.flash, writeUsPerByte: nonNegative('--flash-write-us', opts['flashWriteUs'], d.flash.writeUsPerByte), eraseMsPerSector: nonNegative('--flash-erase-ms', opts['flashEraseMs'], d.flash.eraseMsPerSector) },
    rxLineBuffers: rx ?? d.rxLineBuffers,
  };
}

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
    .option('--processing-us <us>', `processing time per request (default ${ZEPHYR_DEVICE_TIMING.processingUs})`)
    .option('--flash-write-us <us>', `flash programming time per byte (default ${ZEPHYR_DEVICE_TIMING.flash.writeUsPerByte})`)
    .option('--flash-erase-ms <ms>', `flash erase time per ${ZEPHYR_DEVICE_TIMING.flash.sectorSize}-byte sector, for the image length when an upload starts (default ${ZEPHYR_DEVICE_TIMING.flash.eraseMsPerSector})`)
    .option('--rx-line-buffers <n>', `serial receive line buffers, Zephyr's CONFIG_UART_MCUMGR_RX_BUF_COUNT: lines arriving while the device is busy and all are taken are lost (default ${ZEPHYR_DEVICE_TIMING.rxLineBuffers}; unlimited with --fast)`)
    .action((opts: Record<string, unknown>) =>
      ctx.run(async (out) => {
        const timing = deviceTiming(opts);
        const dataDir = typeof opts['data'] === 'string' ? resolve(opts['data']) : defaultDataDir();
        const bufSize = positiveInt('--buf-size', opts['bufSize'] as string | undefined, 2048);
        // With a serial link (--serial / --pty) UDP is served only when --udp is given as well.
        const serialOnly = (typeof ctx.globals['serial'] === 'string' || ctx.globals['pty'] === true || typeof ctx.globals['ptyLink'] === 'string') && typeof ctx.globals.udp !== 'string';
        const servesUdp = opts['udpListen'] !== false && !serialOnly;
        const closeOnDisconnect = opts['closeOnDisconnect'] === true;
        if (closeOnDisconnect && !servesUdp) throw new UsageError('--close-on-disconnect needs UDP (--udp ADDR:PORT)');
        const transports: ServerTransport[] = [];
        for (const conntype of ctx.conntypes.all()) {
          const t = await conntype.serve?.(opts, ctx.globals);
          if (t) transports.push(t);
        }
        if (transports.length === 0 && !servesUdp) throw new UsageError('no transport to serve on');
        const udp = servesUdp ? parseHostPort(typeof ctx.globals.udp === 'string' ? ctx.globals.udp : '127.0.0.1:1337') : undefined;
        const options: AgentOptions = {
          dataDir,
          bufSize,
          bufCount: positiveInt('--buf-count', opts['bufCount'] as string | undefined, 4),
          indefiniteCbor: opts['definiteCbor'] !== true,
          image: await imageOptions(opts),
          transports,
          ...(udp ? { udp: { ...udp, mtu: positiveInt('--mtu', (opts['mtu'] ?? ctx.globals['mtu']) as string | undefined, Math.max(DEFAULT_UDP_MTU, bufSize)) } } : {}),
          closeOnDisconnect,
          ...(timing ? { deviceTiming: timing } : {}),
          ...(typeof opts['shellHost'] === 'string' ? { device: { shellHostCommands: { allow: opts['shellHost'].split(',').map((p) => p.trim()).filter((p) => p !== '') } } } : {}),
          onStatus: (m) => process.stderr.write(`serve: ${m}\n`),
          onError: (e) => process.stderr.write(`server: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`),
        };
        const agent = await createAgent(options);
        const where = agent.listening().map((t) => t.describe());
        if (ctx.output.json) process.stdout.write(JSON.stringify({ listening: where, dataDir }) + '\n');
        else {
          let text = `mcumgr emulator listening on ${where.join(', ') || 'nothing yet'} (data: ${dataDir})\n`;
          const udpNow = agent.listening().find((t) => t.kind === 'udp');
          if (udpNow) text += `Try:  ./bin/mcumgr --conntype udp --connstring ${udpNow.describe().replace(/^udp /, '')} echo hello\n`;
          process.stdout.write(text);
        }
        out.info('Press Ctrl-C to stop.');
        await new Promise<void>((res) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            void agent.close().then(res);
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
      }),
    );
}
