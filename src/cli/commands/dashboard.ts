/**
 * `mcumgr dashboard [CONNECTION...] [--port 8080] [--host 127.0.0.1] [--open]`: serves the web
 * dashboard and its WebSocket bridge (src/dashboard/) on loopback and prints the address to open,
 * with the per-run token in it. The connections given (default: the global --udp/--conntype one,
 * else the emulator's udp:127.0.0.1:1337) are listed in the page's sidebar.
 */
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { UsageError } from '../../core/errors.ts';
import type { CliContext } from '../context.ts';
import { resolveConnection } from '../connection.ts';

interface DashboardFlags {
  port?: string;
  host?: string;
  open?: boolean;
  quiet?: boolean;
  pace?: boolean;
}

/** The global connection (--udp, --conntype/--connstring, -c PROFILE), else the emulator's address. */
async function defaultDevices(ctx: CliContext): Promise<string[]> {
  if (ctx.globals.conn !== undefined && ctx.globals.conntype === undefined && ctx.globals.connstring === undefined) return [`profile:${ctx.globals.conn}`];
  try {
    const { conntype, connstring } = await resolveConnection(ctx.globals, ctx.conntypes);
    return [`${conntype}:${connstring}`];
  } catch {
    return ['udp:127.0.0.1:1337'];
  }
}

function openBrowser(url: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true });
    child.on('error', () => process.stderr.write(`could not start a browser (${cmd}); open the address above by hand\n`));
    child.unref();
  } catch {
    process.stderr.write(`could not start a browser; open the address above by hand\n`);
  }
}

export function registerDashboardCommand(program: Command, ctx: CliContext): void {
  program
    .command('dashboard')
    .description('serve the web dashboard and its device bridge on 127.0.0.1 (prints the address with its token)')
    .argument('[connections...]', 'devices to list, e.g. udp:127.0.0.1:1337 serial:dev=/dev/ttyACM0 profile:NAME (default: the global connection, else the emulator)')
    .option('--port <port>', 'port to serve on (0: any free port)', '8080')
    .option('--host <address>', 'address to bind; anything but loopback exposes the bridge to the network', '127.0.0.1')
    .option('--open', 'open the dashboard in the default browser')
    .option('-q, --quiet', 'do not log bridge connections')
    .option('--no-pace', 'relay packets as they come instead of pacing UDP devices at their buf_count − 1 outstanding requests (the page then keeps no more in flight)')
    .action((connections: string[], o: DashboardFlags) =>
      ctx.run(async (out) => {
        const port = Number(o.port ?? '8080');
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0-65535, got ${JSON.stringify(o.port)}`);
        const { startDashboardServer } = await import('../../dashboard/server.ts');
        const { ensureWebRoot } = await import('../../dashboard/web-root.ts');
        const { parseConnection } = await import('../../dashboard/connections.ts');
        const devices = connections.length > 0 ? connections : await defaultDevices(ctx);
        for (const d of devices) parseConnection(d, ctx.conntypes);
        const webRoot = await ensureWebRoot((l) => process.stderr.write(`${l}\n`));
        const host = o.host ?? '127.0.0.1';
        let server;
        try {
          server = await startDashboardServer({ webRoot, host, port, devices, conntypes: ctx.conntypes, pace: o.pace !== false, log: o.quiet ? undefined : (l) => process.stderr.write(`${l}\n`) });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UsageError(`port ${port} on ${host} is in use: pick another with --port N (or --port 0 for any free one)`);
          throw e;
        }
        if (!/^(127\.|::1$|localhost$)/.test(host)) {
          process.stderr.write(`Warning: the bridge listens on ${host}, not loopback: anyone who can reach it and has the token can reach your devices.\n`);
        }
        out.result({ url: server.url, origin: server.origin, port: server.port, devices }, () => `Dashboard: ${server.url}\n(devices: ${devices.join(', ')}; Ctrl-C stops it)`);
        if (o.open) openBrowser(server.url);
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            resolve();
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
        await server.close();
      }, { usesProfile: true }),
    );
}
