/**
 * Bluetooth LE in the CLI, registered into the connection and serve hooks (as serial.ts does):
 *
 * - Client: `--conntype ble --connstring peer_name=NAME` or `peer_id=ADDRESS` (Go mcumgr syntax;
 *   also `ctlr_name=hci0`, `conn_timeout=SECONDS`, `adapter=noble`), and the short `--ble NAME|ADDRESS`.
 *   The link reconnects after a loss; packets are sized by the device's MCUmgr params.
 * - `mcumgr ble scan [--timeout S] [--json]`: devices advertising the SMP service (name, address, RSSI).
 * - Device: `mcumgr serve --ble NAME` registers the SMP GATT service and advertises NAME through
 *   BlueZ (the agent's `ble` option); with --ble, UDP is served only when --udp is given too.
 */
import type { Command } from 'commander';
import { GLOBAL_FLAGS, type CliContext } from './context.ts';
import { connectionOpeners, numberOption, shortConnectionFlags } from './connection.ts';
import { openBleTransport } from '../transport/ble/open.ts';

GLOBAL_FLAGS.push({ names: ['--ble'], key: 'ble', value: true });
shortConnectionFlags.push({ flag: 'ble', conntype: 'ble' });

connectionOpeners.set('ble', async (connstring, o) => {
  const { parseBleConnstring, bleConnector } = await import('../transport/ble/node/central.ts');
  const extra = typeof o['connextra'] === 'string' && o['connextra'] !== '' ? `,${o['connextra']}` : '';
  const options = parseBleConnstring(connstring + extra);
  const status = o.verbose ? (m: string) => process.stderr.write(`ble: ${m}\n`) : undefined;
  const transport = await openBleTransport(await bleConnector(options), { ...(status ? { onStatus: status } : {}) });
  status?.(`connected to ${options.name ?? options.address}: ATT MTU ${transport.attMtu}, packets up to ${transport.mtu} bytes (buf_size ${transport.params.bufSize}, buf_count ${transport.params.bufCount})`);
  return transport;
});

/** The advertised name `serve --ble NAME` asks for, if any. */
export function serveBleName(globals: Record<string, unknown>): string | undefined {
  return typeof globals['ble'] === 'string' ? globals['ble'] : undefined;
}

export function registerBleCommands(program: Command, ctx: CliContext): void {
  const ble = program.command('ble').description('Bluetooth LE: find devices that advertise the SMP service');
  ble
    .command('scan')
    .description('list devices advertising the SMP service (name, address, RSSI); -t/--timeout SECONDS (default 5)')
    .option('--adapter <name>', 'node-ble (BlueZ, default) or noble')
    .option('--controller <hciN>', 'the Bluetooth controller (default: the first powered one)')
    .action((opts: { adapter?: string; controller?: string }) =>
      ctx.run(async (out) => {
        const { scanSmpDevices } = await import('../transport/ble/node/central.ts');
        const timeoutMs = numberOption('--timeout', ctx.globals.timeout, 5) * 1000;
        const devices = await scanSmpDevices({ timeoutMs, ...(opts.controller ? { controller: opts.controller } : {}), ...(opts.adapter === 'noble' ? { adapter: 'noble' as const } : {}) });
        out.result({ devices }, () =>
          devices.length === 0
            ? 'No SMP devices found.'
            : devices.map((d) => `${(d.name ?? '(no name)').padEnd(24)} ${d.address}  ${d.rssi !== undefined ? `${d.rssi} dBm` : ''}`.trimEnd()).join('\n'),
        );
      }),
    );
}
