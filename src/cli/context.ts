/**
 * What every CLI command family gets: the global options (which may stand anywhere on the
 * command line, as with the Go mcumgr CLI), output rendering, and `withClient` which connects,
 * runs an action, closes the link and turns errors into messages and exit codes.
 */
import type { SmpClient } from '../client/client.ts';
import { connect, type GlobalOptions } from './connection.ts';
import { createOutput, type Output } from './output.ts';

export interface CliContext {
  readonly globals: GlobalOptions;
  readonly output: Output;
  withClient(action: (client: SmpClient, out: Output) => Promise<void>): Promise<void>;
  /** Runs an action that needs no device, with the same error handling. */
  run(action: (out: Output) => Promise<void>): Promise<void>;
}

export function createContext(globals: GlobalOptions): CliContext {
  const output = createOutput(globals.json === true);
  const run = async (action: (out: Output) => Promise<void>): Promise<void> => {
    try {
      await action(output);
    } catch (e) {
      process.exitCode = output.error(e);
    }
  };
  return {
    globals,
    output,
    run,
    withClient: (action) =>
      run(async (out) => {
        const client = await connect(globals);
        try {
          await action(client, out);
        } finally {
          await client.close();
        }
      }),
  };
}

/** Global options and whether each takes a value. Extended by transports (serial adds --serial). */
export const GLOBAL_FLAGS: Array<{ names: string[]; key: string; value: boolean }> = [
  { names: ['--conntype'], key: 'conntype', value: true },
  { names: ['--connstring'], key: 'connstring', value: true },
  { names: ['--connextra'], key: 'connextra', value: true },
  { names: ['-c', '--conn'], key: 'conn', value: true },
  { names: ['--udp'], key: 'udp', value: true },
  { names: ['--mtu'], key: 'mtu', value: true },
  { names: ['-t', '--timeout'], key: 'timeout', value: true },
  { names: ['-r', '--tries'], key: 'tries', value: true },
  { names: ['-l', '--loglevel'], key: 'loglevel', value: true },
  { names: ['--json'], key: 'json', value: false },
  { names: ['-v', '--verbose'], key: 'verbose', value: false },
  { names: ['--smp-v1'], key: 'smpV1', value: false },
];

/**
 * Takes the global options out of argv wherever they stand (before a `--`), so that both
 * `mcumgr --conntype udp --connstring :1337 echo hi` and `mcumgr echo hi --udp :1337` work.
 */
export function extractGlobals(argv: readonly string[]): { globals: GlobalOptions; rest: string[] } {
  const globals: GlobalOptions = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const flag = GLOBAL_FLAGS.find((f) => f.names.includes(name));
    // Short value flags glued to their value: -t5, -r3.
    const glued = !flag && /^-[a-z]./.test(a) && !a.startsWith('--') ? GLOBAL_FLAGS.find((f) => f.value && f.names.includes(a.slice(0, 2))) : undefined;
    if (flag) {
      if (!flag.value) globals[flag.key] = true;
      else if (eq > 0) globals[flag.key] = a.slice(eq + 1);
      else if (i + 1 < argv.length) globals[flag.key] = argv[++i];
      else rest.push(a); // let commander report the missing value
    } else if (glued) {
      globals[glued.key] = a.slice(2);
    } else rest.push(a);
  }
  if (globals['loglevel'] === 'debug') globals.verbose = true;
  return { globals, rest };
}
