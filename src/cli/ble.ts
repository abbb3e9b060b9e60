/**
 * Bluetooth LE in the CLI: the `ble` conntype (which main.ts registers) and the `ble` command family.
 *
 * - Client: `--conntype ble --connstring peer_name=NAME` or `peer_id=ADDRESS` (Go mcumgr syntax;
 *   also `ctlr_name=hci0`, `conn_timeout=SECONDS`, `adapter=noble`), `--connextra` appended, and
 *   the short `--ble NAME|ADDRESS`. The link reconnects after a loss; packets are sized by the
 *   device's MCUmgr params.
 * - `mcumgr ble scan [--timeout S] [--json]`: devices advertising the SMP service (name, address, RSSI).
 * - Device: `mcumgr serve --ble [NAME]` registers the SMP GATT service and advertises NAME
 *   (default `mcumgr`) through BlueZ: serve gives the agent its `ble` option; UDP is then served
 *   only when --udp is given too.
 */
import { Option, type Command } from 'commander';
import type { CliContext } from './context.ts';
import type { Conntype } from './conntypes.ts';
import { numberOption, type GlobalOptions } from './connection.ts';
import { UsageError } from '../core/errors.ts';

/** The advertised name `serve --ble [NAME]` asks for, if it does. */
export function serveBleName(globals: GlobalOptions): string | undefined {
  const v = globals['ble'];
  return typeof v === 'string' ? v : v === true ? 'mcumgr' : undefined;
}

export const bleConntype: Conntype = {
  name: 'ble',
  options: [new Option('--ble [name|address]', 'short for --conntype ble --connstring peer_name=<name> (or peer_id=<address>); serve: SMP over Bluetooth LE through BlueZ, advertising <name> (default mcumgr)')],
  shortConnstring(globals) {
    if (globals['ble'] === true) throw new UsageError('--ble needs the device name or address (--ble NAME|ADDRESS)');
    return typeof globals['ble'] === 'string' ? globals['ble'] : undefined;
  },
  async open(connstring, o) {
    const { parseBleConnstring, bleConnector } = await import('../transport/ble/node/central.ts');
    const { openBleTransport } = await import('../transport/ble/open.ts');
    const extra = typeof o.connextra === 'string' && o.connextra !== '' ? `,${o.connextra}` : '';
    const options = parseBleConnstring(connstring + extra);
    const status = o.verbose ? (m: string): void => void process.stderr.write(`ble: ${m}\n`) : undefined;
    const transport = await openBleTransport(await bleConnector(options), { ...(status ? { onStatus: status } : {}) });
    status?.(`connected to ${options.name ?? options.address}: ATT MTU ${transport.attMtu}, packets up to ${transport.mtu} bytes (buf_size ${transport.params.bufSize}, buf_count ${transport.params.bufCount})`);
    return transport;
  },
};

export function registerBleCommands(program: Command, ctx: CliContext): void {
  const ble = program.command('ble').description('Bluetooth LE: find devices that advertise the SMP service');
  ble
    .command('scan')
    .description('list devices advertising the SMP service (name, address, RSSI) for -t/--timeout SECONDS (default 5)')
    .option('--adapter <name>', 'node-ble (BlueZ, default) or noble')
    .option('--controller <hciN>', 'the Bluetooth controller (default: the first powered one)')
    .action((opts: { adapter?: string; controller?: string }) =>
      ctx.run(async (out) => {
        if (opts.adapter !== undefined && opts.adapter !== 'node-ble' && opts.adapter !== 'noble') throw new UsageError(`--adapter must be node-ble or noble, got ${JSON.stringify(opts.adapter)}`);
        const { scanSmpDevices } = await import('../transport/ble/node/central.ts');
        const timeoutMs = numberOption('--timeout', ctx.globals.timeout, 5) * 1000;
        const devices = await scanSmpDevices({ timeoutMs, ...(opts.controller ? { controller: opts.controller } : {}), ...(opts.adapter === 'noble' ? { adapter: 'noble' as const } : {}) });
        out.result({ devices }, () =>
          devices.length === 0 ? 'No SMP devices found.' : devices.map((d) => `${(d.name ?? '(no name)').padEnd(24)} ${d.address}  ${d.rssi !== undefined ? `${d.rssi} dBm` : ''}`.trimEnd()).join('\n'),
        );
      }),
    );
}
