/** OS group commands beyond echo/params/info/reset: taskstat, mpstat, datetime, bootloader. */
import type { Command } from 'commander';
import { commands } from '../../core/commands/index.ts';
import type { CliContext } from '../context.ts';
import { MCUBOOT_MODE_LABELS } from '../../client/upgrade.ts';

/** Formats a Date as the device expects: local wall time, `YYYY-MM-DDTHH:MM:SS.mmm`, no zone. */
export function localDatetime(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

export function registerSystemCommands(program: Command, ctx: CliContext): void {
  program
    .command('taskstat')
    .description('task (thread) statistics')
    .action(() =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.os.taskStats, {});
        out.result(rsp, () => {
          const rows = [['task', 'pri', 'tid', 'state', 'runtime', 'stksz', 'stkuse']];
          for (const [name, t] of Object.entries(rsp.tasks)) {
            rows.push([name, String(t.prio), String(t.tid), `0x${t.state.toString(16).padStart(2, '0')}`, String(t.runtime ?? ''), String(t.stksiz ?? ''), String(t.stkuse ?? '')]);
          }
          return table(rows);
        });
      }),
    );

  program
    .command('mpstat')
    .description('memory pool (heap) statistics')
    .action(() =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.os.memPoolStats, {});
        const pools = rsp.tasks ?? rsp.mpools ?? {};
        out.result({ pools }, () => {
          const rows = [['name', 'blksz', 'cnt', 'free', 'min']];
          for (const [name, p] of Object.entries(pools)) rows.push([name, String(p.blksiz ?? ''), String(p.nblks), String(p.nfree), String(p.min ?? '')]);
          return table(rows);
        });
      }),
    );

  program
    .command('datetime')
    .description("read the device's date-time, or set it: VALUE (YYYY-MM-DDTHH:MM:SS[.mmm]) or now")
    .argument('[value]', 'new date-time, or "now" for this computer\'s local time')
    .action((value: string | undefined) =>
      ctx.withClient(async (client, out) => {
        if (value === undefined) {
          const rsp = await client.request(commands.os.datetimeGet, {});
          out.result(rsp, () => rsp.datetime);
          return;
        }
        const datetime = value === 'now' ? localDatetime(new Date()) : value;
        await client.request(commands.os.datetimeSet, { datetime });
        out.result({ datetime, set: true }, () => `Set to ${datetime}`);
      }),
    );

  program
    .command('bootloader')
    .description('bootloader information; QUERY "mode" gives the MCUboot mode')
    .argument('[query]', 'query (e.g. mode)')
    .action((query: string | undefined) =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.os.bootloaderInfo, query === undefined ? {} : { query });
        out.result(rsp, () => {
          const lines: string[] = [];
          for (const [k, v] of Object.entries(rsp)) {
            if (k === 'mode' && typeof v === 'number') lines.push(`mode: ${v} (${MCUBOOT_MODE_LABELS[v] ?? 'unknown'})`);
            else lines.push(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
          }
          return lines.join('\n');
        });
      }),
    );
}
