/**
 * Serial links in the CLI, registered into the connection and serve hooks:
 *
 * - Client: `--conntype serial --connstring dev=PATH,baud=N,mtu=N` (Go mcumgr syntax, also the
 *   legacy `--connstring PATH`), `--connextra mtu=N` appended as in Go, and the short form
 *   `--serial PATH` (which takes a connstring too: `--serial dev=/dev/ttyACM0,baud=921600`).
 * - Device: `mcumgr serve --serial PATH` serves on an existing serial device (one end of a pty
 *   pair, a USB gadget port); `mcumgr serve --pty [--pty-link PATH]` creates a pseudo-terminal and
 *   prints its path, as Zephyr's native_sim does. Plain text typed on the line is answered by the
 *   emulator's shell, SMP frames by SMP. With a serial link UDP is not served unless `--udp` is
 *   given too.
 */
import { GLOBAL_FLAGS } from './context.ts';
import { connectionOpeners, shortConnectionFlags, type GlobalOptions } from './connection.ts';
import { serveTiming, serveTransportFactories } from './commands/serve.ts';
import { UsageError } from '../core/errors.ts';
import { openSerialClient, parseSerialConnstring } from '../transport/serial.ts';
import { createSerialServer } from '../transport/serial-server.ts';

GLOBAL_FLAGS.push(
  { names: ['--serial'], key: 'serial', value: true },
  { names: ['--pty'], key: 'pty', value: false },
  { names: ['--pty-link'], key: 'ptyLink', value: true },
);
shortConnectionFlags.push({ flag: 'serial', conntype: 'serial' });

/** True when the command line asks `serve` for a serial link (then UDP is opt-in). */
export function servesSerial(globals: GlobalOptions): boolean {
  return typeof globals['serial'] === 'string' || globals['pty'] === true || typeof globals['ptyLink'] === 'string';
}

/** The decoder's drop counters that are not zero, as `bad CRC 2, orphan continuation 1`. */
export function describeDrops(decoder: Readonly<Record<string, number>>): string {
  const names: Record<string, string> = {
    badCrc: 'bad CRC',
    badBase64: 'bad base64',
    badLength: 'bad length',
    lineTooLong: 'line too long',
    orphanContinuation: 'continuation without a start',
    interrupted: 'interrupted by a new frame',
    badHeader: 'bad header',
    skippedBytes: 'bytes skipped',
    abandoned: 'partial packets abandoned',
  };
  return Object.entries(names)
    .filter(([k]) => (decoder[k] ?? 0) > 0)
    .map(([k, label]) => `${label} ${decoder[k]}`)
    .join(', ');
}

connectionOpeners.set('serial', async (connstring, o) => {
  const extra = typeof o['connextra'] === 'string' && o['connextra'] !== '' ? `,${o['connextra']}` : '';
  const c = parseSerialConnstring(connstring + extra);
  const transport = await openSerialClient({
    path: c.path,
    baudRate: c.baudRate,
    mtu: c.mtu,
    framing: c.framing,
    ...(c.lineLength !== undefined ? { lineLength: c.lineLength } : {}),
    ...(o.verbose
      ? {
          onText: (line: string) => process.stderr.write(`device: ${line}\n`),
          onEvent: (event: 'lost' | 'reopened', detail?: Error) => process.stderr.write(`serial: port ${c.path} ${event === 'lost' ? `went away${detail ? ` (${detail.message})` : ''}, reopening` : 'is back'}\n`),
        }
      : {}),
  });
  if (o.verbose) {
    // Frames the decoder dropped (bad CRC, bad base64, ...) are reported when the link closes.
    transport.onClose(() => {
      const drops = describeDrops(transport.stats.decoder as unknown as Record<string, number>);
      if (drops) process.stderr.write(`serial: frames dropped: ${drops}\n`);
    });
  }
  return transport;
});

function bufSizeOf(opts: Record<string, unknown>): number {
  const text = opts['bufSize'];
  if (typeof text !== 'string') return 2048;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 16) throw new UsageError(`--buf-size must be an integer >= 16, got ${JSON.stringify(text)}`);
  return n;
}

serveTransportFactories.push((opts, ctx) => {
  const globals = ctx.globals;
  const wantPty = globals['pty'] === true || typeof globals['ptyLink'] === 'string';
  const serial = typeof globals['serial'] === 'string' ? parseSerialConnstring(globals['serial']) : undefined;
  if (!wantPty && !serial) return undefined;
  if (wantPty && serial) throw new UsageError('serve: give either --serial PATH or --pty, not both');
  // The device's buffers are what it reports in MCUmgr params (--buf-size): requests up to that
  // size are taken in (LEN‖packet‖CRC within it) and answers go up to it.
  const bufSize = bufSizeOf(opts);
  return createSerialServer({
    ...(serial ? { path: serial.path, baudRate: serial.baudRate, framing: serial.framing } : { pty: typeof globals['ptyLink'] === 'string' ? globals['ptyLink'] : true }),
    netbufSize: bufSize,
    mtu: bufSize,
    shellOverSmp: true,
    onStatus: (message) => process.stderr.write(`serve: ${message}\n`),
    ...(() => {
      const t = serveTiming(opts);
      return t.rxLineBuffers !== undefined ? { rxLineBuffers: t.rxLineBuffers, activity: t.activity } : {};
    })(),
  });
});
