/** `mcumgr net ...`: the host's network seen through Zephyr's net_mgmt. */
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.ts';
import { NetMgmt, initEventCallback } from '../../netmgmt/net-mgmt.ts';
import { formatNetEventLine, netEventRecord } from '../../netmgmt/format.ts';
import * as E from '../../netmgmt/events.ts';
import { startHostNetMonitor } from '../../netmgmt/host/index.ts';
import type { CliContext } from '../context.ts';

/** Every family, all commands: one callback per layer code, as Zephyr requires. */
const FAMILY_MASKS = [E.NET_EVENT_IF_BASE, E.NET_EVENT_IPV4_BASE, E.NET_EVENT_IPV6_BASE, E.NET_EVENT_L4_BASE, E.NET_EVENT_CONN_BASE].map((b) => (b | 0xffff) >>> 0);

export function registerNetCommands(program: Command, ctx: CliContext): Command {
  const net = program.command('net').description("the host's network as Zephyr net_mgmt events");
  net
    .command('monitor')
    .description('print live NET_EVENT_* events (rtnetlink on Linux, else polling); with --json one JSON object per line')
    .option('--poll', 'poll os.networkInterfaces() instead of rtnetlink')
    .option('--interval <ms>', 'polling interval in milliseconds (default 1000)')
    .option('--initial', 'also print events for the state found at start')
    .option('--count <n>', 'exit after n events')
    .action((opts: Record<string, unknown>) =>
      ctx.run(async () => {
        const interval = opts['interval'] === undefined ? undefined : Number(opts['interval']);
        if (interval !== undefined && (!Number.isInteger(interval) || interval < 10)) throw new UsageError(`--interval must be an integer >= 10, got ${String(opts['interval'])}`);
        const count = opts['count'] === undefined ? undefined : Number(opts['count']);
        if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw new UsageError(`--count must be a positive integer, got ${String(opts['count'])}`);
        const initial = opts['initial'] === true;
        const netMgmt = new NetMgmt({ queueSize: 256 });
        let seen = 0;
        let finish: () => void = () => {};
        const done = new Promise<void>((res) => (finish = res));
        const print = (event: number, iface: Parameters<typeof formatNetEventLine>[1], info: unknown): void => {
          if (count !== undefined && seen >= count) return;
          seen++;
          process.stdout.write((ctx.output.json ? JSON.stringify(netEventRecord(event, iface, info)) : formatNetEventLine(event, iface, info)) + '\n');
          if (count !== undefined && seen >= count) finish();
        };
        const listen = (): void => {
          for (const mask of FAMILY_MASKS) netMgmt.addEventCallback(initEventCallback((cb, event, iface) => print(event, iface, cb.info), mask));
        };
        // With --initial the listeners are in place before the snapshot is announced (events no
        // listener can match are dropped at notify time, as in Zephyr).
        if (initial) listen();
        const monitor = await startHostNetMonitor({ netMgmt, source: opts['poll'] ? 'poll' : 'auto', pollIntervalMs: interval, announceInitial: initial });
        if (!initial) listen();
        const why = monitor.fallbackReason ? ` (netlink unavailable: ${monitor.fallbackReason})` : '';
        process.stderr.write(`net monitor: ${monitor.netIfs.list().length} interfaces, source ${monitor.source}${why}; Ctrl-C to stop\n`);
        const stop = (): void => finish();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        await done;
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        monitor.close();
      }),
    );
  return net;
}
