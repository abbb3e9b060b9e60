/**
 * Serial links in the CLI: the `serial` conntype, which main.ts registers.
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
import { Option } from 'commander';
import type { GlobalOptions } from './connection.ts';
import type { Conntype } from './conntypes.ts';
import { UsageError } from '../core/errors.ts';

/** True when the command line asks `serve` for a serial link (then UDP is opt-in). */
export function servesSerial(globals: GlobalOptions): boolean {
  return typeof globals['serial'] === 'string' || globals['pty'] === true || typeof globals['ptyLink'] === 'string';
}

export const serialConntype: Conntype = {
  name: 'serial',
  options: [
    new Option('--serial <dev>', 'short for --conntype serial --connstring <dev> (dev=PATH,baud=N,mtu=N also); serve: serve on this serial device'),
    new Option('--pty', 'serve: on a new pseudo-terminal (needs socat); prints its path'),
    new Option('--pty-link <path>', 'serve: on a new pseudo-terminal with a symlink to it at <path>'),
  ],
  shortConnstring: (globals) => (typeof globals['serial'] === 'string' ? globals['serial'] : undefined),
  async open(connstring, o) {
    // Imported here, not at the top: a command on another link never loads serial framing.
    const { openSerialClient, parseSerialConnstring, describeDecoderDrops } = await import('../transport/serial.ts');
    const extra = typeof o.connextra === 'string' && o.connextra !== '' ? `,${o.connextra}` : '';
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
      process.stderr.write(`serial: opened ${c.path} at ${c.baudRate} baud\n`);
      // Frames the decoder dropped (bad CRC, bad base64, ...) are reported when the link closes.
      transport.onClose(() => {
        const drops = describeDecoderDrops(transport.stats.decoder as unknown as Record<string, number>);
        if (drops) process.stderr.write(`serial: frames dropped: ${drops}\n`);
      });
    }
    return transport;
  },
  async serve(_opts, globals) {
    const wantPty = globals['pty'] === true || typeof globals['ptyLink'] === 'string';
    const serialText = typeof globals['serial'] === 'string' ? globals['serial'] : undefined;
    if (!wantPty && serialText === undefined) return undefined;
    if (wantPty && serialText !== undefined) throw new UsageError('serve: give either --serial PATH or --pty, not both');
    const { parseSerialConnstring } = await import('../transport/serial.ts');
    const serial = serialText !== undefined ? parseSerialConnstring(serialText) : undefined;
    // The agent sizes the link by the device's buffers, those it reports in MCUmgr params
    // (--buf-size, or the .config's CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE and _UART_MTU): requests
    // up to that size are taken in (LEN‖packet‖CRC within it) and answers go up to it. Plain
    // text lines go to the device shell and link events to serve's status lines.
    return { serial: serial ? { path: serial.path, baudRate: serial.baudRate, framing: serial.framing } : { pty: typeof globals['ptyLink'] === 'string' ? globals['ptyLink'] : true } };
  },
};
