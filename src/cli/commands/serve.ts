/** `mcumgr serve`: run the emulated device. Parses the options; {@link createAgent} does the rest. */
import type { Command } from 'commander';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { parseHostPort, DEFAULT_UDP_MTU } from '../../transport/udp.ts';
import { McuMgrError, UsageError } from '../../core/errors.ts';
import { parsePublicKey } from '../../image/keys.ts';
import { createAgent, ZEPHYR_DEVICE_TIMING, type AgentDeviceTiming, type AgentOptions } from '../../server/agent.ts';
import { serveBleName } from '../ble.ts';
import type { ImageGroupOptions } from '../../server/groups/image.ts';
import type { CliContext } from '../context.ts';
import type { ServeLinkOptions } from '../conntypes.ts';
import { formatServerEvent } from '../../server/request-log.ts';
import { badHostProgramNames } from '../../server/shell.ts';
import { DEFAULT_SETTINGS_MAX_KEYS } from '../../server/settings.ts';
import { DEFAULT_SHELL_OUTPUT_MAX } from '../../server/groups/shell.ts';
import { DEFAULT_FS_QUOTA } from '../../server/fs-quota.ts';
import { stat } from 'node:fs/promises';
import { MCUBOOT_MODE_NAMES, isMcubootModeName } from '../../server/mcuboot/modes.ts';
import { formatKconfigSettings, kconfigOptions, parseKconfig, type KconfigSource } from '../../server/kconfig.ts';
import { DEFAULT_DROP_RATE, DEVICE_FAULTS, describeFault, startDeviceFarm, type DeviceFault, type FaultOptions } from '../../server/device-farm.ts';
import type { Output } from '../output.ts';

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
  const mode = opts['mcubootMode'];
  if (typeof mode === 'string') {
    if (!isMcubootModeName(mode)) throw new UsageError(`--mcuboot-mode must be one of ${MCUBOOT_MODE_NAMES.join(', ')}; got ${JSON.stringify(mode)}`);
    out.mode = mode;
  }
  if (opts['downgradePrevention'] === true) out.downgradePrevention = true;
  if (opts['rollbackProtection'] === true) out.hwRollbackProtection = true;
  const confirm = opts['confirmNonActive'];
  if (typeof confirm === 'string') {
    if (confirm !== 'none' && confirm !== 'secondary' && confirm !== 'any') throw new UsageError(`--confirm-non-active must be none, secondary or any; got ${JSON.stringify(confirm)}`);
    out.allowConfirmNonActiveImage = confirm;
  }
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

/** `--shell-host`'s program list, refused unless every entry is a plain program name. */
function shellHostPrograms(text: string): string[] {
  const programs = text.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const bad = badHostProgramNames(programs);
  if (bad.length > 0) throw new UsageError(`--shell-host takes program names looked up in PATH, not paths or options: ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
  return programs;
}

/** What `--shell-host` grants, for `serve --help` (and the README says the same). */
const SHELL_HOST_HELP =
  'let anyone who can send SMP requests run these host programs (comma-separated plain names, looked up in PATH) ' +
  'through the device shell as "host PROGRAM ARGS", with any arguments, as the user running serve, without a shell ' +
  '(no pipes, globbing or redirection), for at most 5 s each, output cut at --shell-output-max. Arguments are not ' +
  'checked: allowing cat, ls or a shell exposes the host. Off by default';

/** Reads a `.config`; its modification time stands for the build time (os info `b`). */
async function readKconfig(file: string): Promise<KconfigSource> {
  try {
    return { text: await readFile(file, 'utf8'), time: (await stat(file)).mtime };
  } catch (e) {
    throw new UsageError(`cannot read --kconfig ${file}: ${(e as Error).message}`);
  }
}

/** A fraction 0..1 from a flag. */
function fraction(name: string, text: unknown): number {
  const n = Number(text);
  if (typeof text !== 'string' || text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new UsageError(`${name} must be a number from 0 to 1, got ${JSON.stringify(text)}`);
  return n;
}

/** `--fail-rate`, `--fail-seed`, `--fail-kinds`, `--drop-rate`: the misbehaving devices of `--devices`. */
function faultOptions(opts: Record<string, unknown>): FaultOptions | undefined {
  const given = ['failRate', 'failSeed', 'failKinds', 'dropRate'].filter((k) => opts[k] !== undefined);
  if (opts['failRate'] === undefined) {
    if (given.length > 0) throw new UsageError('--fail-seed, --fail-kinds and --drop-rate go with --fail-rate P');
    return undefined;
  }
  const rate = fraction('--fail-rate', opts['failRate']);
  const seedText = opts['failSeed'];
  const seed = seedText === undefined ? 1 : Number(seedText);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError(`--fail-seed must be an integer 0..4294967295, got ${JSON.stringify(seedText)}`);
  let kinds: DeviceFault[] | undefined;
  if (typeof opts['failKinds'] === 'string') {
    const list = opts['failKinds'].split(',').map((k) => k.trim()).filter((k) => k !== '');
    const bad = list.filter((k) => !(DEVICE_FAULTS as readonly string[]).includes(k));
    if (list.length === 0 || bad.length > 0) throw new UsageError(`--fail-kinds takes a comma-separated list of ${DEVICE_FAULTS.join(', ')}; got ${JSON.stringify(opts['failKinds'])}`);
    kinds = list as DeviceFault[];
  }
  return { rate, seed, ...(kinds ? { kinds } : {}), ...(opts['dropRate'] !== undefined ? { dropRate: fraction('--drop-rate', opts['dropRate']) } : {}) };
}

/** `--devices N`: N devices on consecutive ports, each in DATA/<i>, until SIGTERM / SIGINT. */
async function serveDevices(count: number, options: AgentOptions, faults: FaultOptions | undefined, json: boolean, verbose: boolean, out: Output): Promise<void> {
  const udp = options.udp!;
  if (udp.port !== 0 && udp.port + count - 1 > 65535) {
    throw new UsageError(`--devices ${count} from port ${udp.port} needs ports ${udp.port}..${udp.port + count - 1}, past 65535: give a lower base port (or port 0 for any free range)`);
  }
  // Where, what it listens on and the host watch are the farm's; every other option is each device's.
  const { dataDir, udp: _udp, onStatus, closeOnDisconnect: _c, ...device } = options;
  const farm = await startDeviceFarm({
    count,
    host: udp.host,
    basePort: udp.port,
    dataDir,
    ...(udp.mtu !== undefined ? { mtu: udp.mtu } : {}),
    device,
    // Each device's lines name it.
    perDevice: (i) => ({
      ...(verbose ? { onEvent: (e) => process.stderr.write(`serve: device ${i}: ${formatServerEvent(e)}\n`) } : {}),
      onError: (e) => process.stderr.write(`server: device ${i}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`),
    }),
    ...(faults ? { faults } : {}),
    ...(onStatus ? { onStatus } : {}),
  }).catch((e: unknown) => {
    if (e instanceof McuMgrError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE') {
      throw new UsageError(`a UDP port in ${udp.port}..${udp.port + count - 1} on ${udp.host} is already in use (${e.message}): pick another base port, or port 0 for any free range`, { cause: e });
    }
    throw e;
  });
  const plan = farm.faults;
  if (json) {
    const f = plan ? { seed: plan.seed, rate: plan.rate, dropRate: plan.dropRate, ...plan.byKind } : undefined;
    process.stdout.write(JSON.stringify({ listening: [farm.describe()], devices: count, host: farm.host, basePort: farm.basePort, lastPort: farm.lastPort, dataDir, ...(f ? { faults: f } : {}) }) + '\n');
  } else {
    let text = `mcumgr emulator listening on ${farm.describe()} (${count} device${count === 1 ? '' : 's'}; device i on port ${farm.basePort}+i, data: ${join(dataDir, '<i>')})\n`;
    if (plan) {
      text += `faults: seed ${plan.seed}, fail-rate ${plan.rate}: ${plan.byDevice.size} of ${count} devices misbehave\n`;
      for (const kind of DEVICE_FAULTS) text += `fault ${kind}: ${plan.byKind[kind].join(',') || 'none'} (${describeFault(kind, plan.dropRate)})\n`;
    }
    text += `Try:  ./bin/mcumgr --conntype udp --connstring ${farm.host.includes(':') ? `[${farm.host}]` : farm.host}:${farm.basePort} echo hello   (device 0)\n`;
    process.stdout.write(text);
  }
  out.info('Press Ctrl-C to stop.');
  await untilSignal(() => farm.close());
}

/**
 * Waits for SIGTERM / SIGINT, then runs `stop`: the queues' backlogs are dropped and requests being
 * processed get a moment, then every store closes (as at a reset); a second signal exits at once
 * (every store survives a kill at any point).
 */
function untilSignal(stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((res) => {
    const onSignal = (): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const again = (): never => process.exit(130);
      process.once('SIGINT', again);
      process.once('SIGTERM', again);
      void stop().then(res);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export function registerServeCommand(program: Command, ctx: CliContext): Command {
  return program
    .command('serve')
    .description('run an emulated Zephyr device (SMP server) on UDP; --udp HOST:PORT sets where (default 127.0.0.1:1337)')
    .option('--data <dir>', `data directory for the device state (default ${defaultDataDir()}; $MCUMGR_DATA sets it)`)
    .option('--buf-size <bytes>', 'MCUmgr buffer size reported and enforced (default 2048)')
    .option('--buf-count <n>', 'MCUmgr buffer count reported (default 4)')
    .option('--mtu <bytes>', `largest UDP datagram accepted (default ${DEFAULT_UDP_MTU}, or --buf-size when larger)`)
    .option('--no-udp-listen', 'do not listen on UDP (with another transport)')
    .option('--definite-cbor', 'answer with definite-length CBOR instead of Zephyr-style indefinite maps')
    .option('--shell-host <programs>', SHELL_HOST_HELP)
    .option('--shell-output-max <bytes>', `shell output kept per command, the rest cut (default ${DEFAULT_SHELL_OUTPUT_MAX}; Zephyr's dummy shell backend keeps 300)`)
    .option('--fs-quota <bytes>', `size of the device's file system: files plus 256 bytes each; an fs upload past it fails as on a full LittleFS (default ${DEFAULT_FS_QUOTA})`)
    .option('--settings-max-keys <n>', `runtime settings keys the device holds; a new key past it answers err 3/1 like a full settings backend (default ${DEFAULT_SETTINGS_MAX_KEYS})`)
    .option('--images <n>', 'updatable images (pairs of slots) on the emulated device (default 1)')
    .option('--slot-size <bytes>', 'size of each image slot (default 1.5 MiB)')
    .option('--image-key <file...>', 'trust this public key (PEM or DER: ECDSA P-256/P-384, Ed25519, RSA): MCUboot then boots only images signed with a trusted key')
    .option('--factory-image <file>', 'the image a new device has in its primary slot (default: an unsigned 1.0.0 image; with --image-key give one signed with a trusted key)')
    .option('--mcuboot-mode <mode>', `MCUboot mode of operation: ${MCUBOOT_MODE_NAMES.join(', ')} (default swap-move; fixed when the data directory is created)`)
    .option('--downgrade-prevention', 'MCUboot built with MCUBOOT_DOWNGRADE_PREVENTION: an older pending image is erased, not installed (bootloader info reports no-downgrade)')
    .option('--rollback-protection', 'MCUboot built with MCUBOOT_HW_ROLLBACK_PROT: images need a security counter (SEC_CNT TLV) not lower than the stored one')
    .option('--confirm-non-active <which>', 'CONFIG_MCUMGR_GRP_IMG_ALLOW_CONFIRM_NON_ACTIVE_IMAGE_*: none (default), secondary or any')
    .option('--kconfig <file>', "configure the device as a Zephyr build's .config does (groups, commands, buffers, os info, MCUboot mode, image count, ...); explicit options win")
    .option('--print-config', 'with --kconfig: list the options read and what each sets, then exit')
    .option('--close-on-disconnect', "close the UDP socket while the --udp address is gone (or, for 0.0.0.0/::, while the network is disconnected: NET_EVENT_L4_DISCONNECTED) and reopen it when it is back, like Zephyr's smp_udp")
    .option('--fast', 'an instant device: no processing, flash or line-buffer limits (for CI)')
    .option('--processing-us <us>', `processing time per request (default ${ZEPHYR_DEVICE_TIMING.processingUs})`)
    .option('--flash-write-us <us>', `flash programming time per byte (default ${ZEPHYR_DEVICE_TIMING.flash.writeUsPerByte})`)
    .option('--flash-erase-ms <ms>', `flash erase time per ${ZEPHYR_DEVICE_TIMING.flash.sectorSize}-byte sector, for the image length when an upload starts (default ${ZEPHYR_DEVICE_TIMING.flash.eraseMsPerSector})`)
    .option('--devices <n>', 'run N independent devices in this process: device i listens on UDP BASEPORT+i of --udp HOST:BASEPORT (needs --udp; port 0 picks any free range) and keeps its state in DATA/<i>; UDP only, no host network watch, sparse slot files')
    .option('--fail-rate <p>', 'with --devices: a fraction P (0..1) of the devices misbehave, chosen by --fail-seed and printed at start, the kinds dealt out in turn: revert (a new image never confirms itself: MCUboot reverts it), drop (loses --drop-rate of datagrams each way), silent (stops answering at its first image upload)')
    .option('--fail-seed <n>', 'seed of the --fail-rate choice and of the losses (default 1): the same seed picks the same devices')
    .option('--fail-kinds <list>', `the fault kinds dealt out, comma-separated (default ${DEVICE_FAULTS.join(',')})`)
    .option('--drop-rate <p>', `fraction of datagrams a drop device loses in each direction (default ${DEFAULT_DROP_RATE})`)
    .option('--rx-line-buffers <n>', `serial receive line buffers, Zephyr's CONFIG_UART_MCUMGR_RX_BUF_COUNT: lines arriving while the device is busy and all are taken are lost (default ${ZEPHYR_DEVICE_TIMING.rxLineBuffers}; unlimited with --fast)`)
    .action((opts: Record<string, unknown>) =>
      ctx.run(async (out) => {
        const timing = deviceTiming(opts);
        const kconfig = typeof opts['kconfig'] === 'string' ? await readKconfig(opts['kconfig']) : undefined;
        if (opts['printConfig'] === true) {
          if (!kconfig) throw new UsageError('--print-config needs --kconfig FILE');
          const k = kconfigOptions(parseKconfig(kconfig.text), kconfig.time);
          out.result({ read: k.read }, () => formatKconfigSettings(k.read));
          return;
        }
        const devices = opts['devices'] === undefined ? undefined : positiveInt('--devices', opts['devices'] as string, 1);
        if (devices !== undefined && devices > 65535) throw new UsageError(`--devices must be at most 65535, got ${devices}`);
        const faults = faultOptions(opts);
        if (faults && devices === undefined) throw new UsageError('--fail-rate needs --devices N');
        if (devices !== undefined && typeof ctx.globals.udp !== 'string') throw new UsageError('--devices N needs --udp HOST:BASEPORT: device i listens on BASEPORT+i');
        const dataDir = typeof opts['data'] === 'string' ? resolve(opts['data']) : defaultDataDir();
        // Unset buffer flags leave the .config's (or the defaults) in force.
        const bufSize = opts['bufSize'] === undefined ? undefined : positiveInt('--buf-size', opts['bufSize'] as string, 2048);
        // A buffer must hold the SMP header and a small request (a serial link frames it within the buffer too).
        if (bufSize !== undefined && bufSize < 16) throw new UsageError(`--buf-size must be an integer >= 16, got ${JSON.stringify(opts['bufSize'])}`);
        const bufCount = opts['bufCount'] === undefined ? undefined : positiveInt('--buf-count', opts['bufCount'] as string, 4);
        // With a serial link (--serial / --pty) UDP is served only when --udp is given as well.
        // --ble [NAME]: SMP over Bluetooth LE through BlueZ (then, like serial, UDP only with --udp).
        const bleName = serveBleName(ctx.globals);
        const serialOnly = (typeof ctx.globals['serial'] === 'string' || ctx.globals['pty'] === true || typeof ctx.globals['ptyLink'] === 'string' || bleName !== undefined) && typeof ctx.globals.udp !== 'string';
        const servesUdp = opts['udpListen'] !== false && !serialOnly;
        const closeOnDisconnect = opts['closeOnDisconnect'] === true;
        if (closeOnDisconnect && !servesUdp) throw new UsageError('--close-on-disconnect needs UDP (--udp ADDR:PORT)');
        // Links other than UDP and BLE (serial): each conntype describes its own; the agent opens it.
        const links: ServeLinkOptions = {};
        for (const conntype of ctx.conntypes.all()) Object.assign(links, await conntype.serve?.(opts, ctx.globals));
        if (!links.serial && !servesUdp && bleName === undefined) throw new UsageError('no transport to serve on');
        if (devices !== undefined && (!servesUdp || links.serial || bleName !== undefined || closeOnDisconnect)) {
          throw new UsageError('--devices serves UDP only: it does not go with --serial, --pty, --ble, --no-udp-listen or --close-on-disconnect');
        }
        const udp = servesUdp ? parseHostPort(typeof ctx.globals.udp === 'string' ? ctx.globals.udp : '127.0.0.1:1337') : undefined;
        const options: AgentOptions = {
          dataDir,
          ...(bufSize !== undefined ? { bufSize } : {}),
          ...(bufCount !== undefined ? { bufCount } : {}),
          ...(kconfig ? { kconfig } : {}),
          indefiniteCbor: opts['definiteCbor'] !== true,
          image: await imageOptions(opts),
          ...links,
          ...(udp ? { udp: { ...udp, ...((opts['mtu'] ?? ctx.globals['mtu']) !== undefined ? { mtu: positiveInt('--mtu', (opts['mtu'] ?? ctx.globals['mtu']) as string, DEFAULT_UDP_MTU) } : {}) } } : {}),
          closeOnDisconnect,
          ...(timing ? { deviceTiming: timing } : {}),
          ...(bleName !== undefined ? { ble: { name: bleName } } : {}),
          device: {
            ...(typeof opts['shellHost'] === 'string' ? { shellHostCommands: { allow: shellHostPrograms(opts['shellHost']) } } : {}),
            ...(opts['shellOutputMax'] !== undefined ? { shellOutputMax: positiveInt('--shell-output-max', opts['shellOutputMax'] as string, DEFAULT_SHELL_OUTPUT_MAX) } : {}),
            ...(opts['fsQuota'] !== undefined ? { fsQuota: positiveInt('--fs-quota', opts['fsQuota'] as string, DEFAULT_FS_QUOTA) } : {}),
            ...(opts['settingsMaxKeys'] !== undefined ? { settingsMaxKeys: positiveInt('--settings-max-keys', opts['settingsMaxKeys'] as string, DEFAULT_SETTINGS_MAX_KEYS) } : {}),
          },
          // -v: one line per request, dropped packet and undecodable frame.
          ...(ctx.globals.verbose ? { onEvent: (e) => process.stderr.write(`serve: ${formatServerEvent(e)}\n`) } : {}),
          onStatus: (m) => process.stderr.write(`serve: ${m}\n`),
          onError: (e) => process.stderr.write(`server: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`),
        };
        if (devices !== undefined) return serveDevices(devices, options, faults, ctx.output.json, ctx.globals.verbose === true, out);
        const agent = await createAgent(options).catch((e: unknown) => {
          // A port in use: say which, and how to pick another.
          if (udp && e instanceof McuMgrError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE') {
            const host = udp.host.includes(':') && !udp.host.startsWith('[') ? `[${udp.host}]` : udp.host;
            throw new UsageError(`UDP port ${udp.port} on ${udp.host} is already in use (another mcumgr serve?): pick another with --udp ${host}:PORT (npm start -- --udp ${host}:PORT), or --udp ${host}:0 for any free port`, { cause: e });
          }
          throw e;
        });
        const where = agent.listening().map((t) => t.describe());
        if (ctx.output.json) process.stdout.write(JSON.stringify({ listening: where, dataDir }) + '\n');
        else {
          let text = `mcumgr emulator listening on ${where.join(', ') || 'nothing yet'} (data: ${dataDir})\n`;
          const udpNow = agent.listening().find((t) => t.kind === 'udp');
          if (udpNow) text += `Try:  ./bin/mcumgr --conntype udp --connstring ${udpNow.describe().replace(/^udp /, '')} echo hello\n`;
          process.stdout.write(text);
        }
        out.info('Press Ctrl-C to stop.');
        await untilSignal(() => agent.close());
      }),
    );
}
