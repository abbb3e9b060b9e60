/** `mcumgr serve`: run the emulated device. */
import type { Command } from 'commander';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { createEmulator } from '../../server/emulator.ts';
import { createUdpServer, parseHostPort, DEFAULT_UDP_MTU } from '../../transport/udp.ts';
import type { ServerTransport } from '../../transport/types.ts';
import { UsageError } from '../../core/errors.ts';
import type { CliContext } from '../context.ts';
import type { SmpServer } from '../../server/server.ts';
import { awaitLocalAddress, type LocalAddressGate } from '../../netmgmt/host/local-address.ts';

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
    .action((opts: Record<string, unknown>) =>
      ctx.run(async (out) => {
        const dataDir = typeof opts['data'] === 'string' ? resolve(opts['data']) : defaultDataDir();
        const bufSize = positiveInt('--buf-size', opts['bufSize'] as string | undefined, 2048);
        const mtu = positiveInt('--mtu', opts['mtu'] as string | undefined, Math.max(DEFAULT_UDP_MTU, bufSize));
        const transports: ServerTransport[] = [];
        let addressGate: LocalAddressGate | undefined;
        // With a serial link (--serial / --pty) UDP is served only when --udp is given as well.
        const serialOnly = (typeof ctx.globals['serial'] === 'string' || ctx.globals['pty'] === true || typeof ctx.globals['ptyLink'] === 'string') && typeof ctx.globals.udp !== 'string';
        if (opts['udpListen'] !== false && !serialOnly) {
          const { host, port } = parseHostPort(typeof ctx.globals.udp === 'string' ? ctx.globals.udp : '127.0.0.1:1337');
          // An IP address not configured yet is waited for (net_mgmt), and its loss reported.
          addressGate = await awaitLocalAddress(host, {
            onWaiting: (m) => process.stderr.write(`serve: ${m}\n`),
            onLost: (_c, m) => process.stderr.write(`serve: warning: ${m}; UDP on ${host}:${port} receives nothing until it is back\n`),
            onAvailable: (_c, m) => process.stderr.write(`serve: ${m}\n`),
          });
          transports.push(createUdpServer({ host, port, mtu }));
        }
        for (const f of serveTransportFactories) {
          const t = await f(opts, ctx);
          if (t) transports.push(t);
        }
        if (transports.length === 0) throw new UsageError('no transport to serve on');
        const server: SmpServer = await createEmulator({
          dataDir,
          bufSize,
          bufCount: positiveInt('--buf-count', opts['bufCount'] as string | undefined, 4),
          indefiniteCbor: opts['definiteCbor'] !== true,
          transports,
          ...(typeof opts['shellHost'] === 'string' ? { device: { shellHostCommands: { allow: opts['shellHost'].split(',').map((p) => p.trim()).filter((p) => p !== '') } } } : {}),
          onError: (e) => process.stderr.write(`server: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`),
        });
        const where = transports.map((t) => t.describe());
        if (ctx.output.json) process.stdout.write(JSON.stringify({ listening: where, dataDir }) + '\n');
        else {
          let text = `mcumgr emulator listening on ${where.join(', ')} (data: ${dataDir})\n`;
          const udp = transports.find((t) => t.kind === 'udp');
          if (udp) text += `Try:  ./bin/mcumgr --conntype udp --connstring ${udp.describe().replace(/^udp /, '')} echo hello\n`;
          process.stdout.write(text);
        }
        out.info('Press Ctrl-C to stop.');
        await new Promise<void>((res) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            addressGate?.close();
            void server.close().then(res);
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
      }),
    );
}
