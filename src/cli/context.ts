/**
 * What every CLI command family gets: the global options (commander's program options, which may
 * stand anywhere on the line as with the Go mcumgr CLI, set before each action runs), output
 * rendering, and `withClient` which connects, runs an action, closes the link and turns errors
 * into messages and exit codes.
 */
import type { SmpClient } from '../client/client.ts';
import { TransportError, UsageError } from '../core/errors.ts';
import { connect, type GlobalOptions } from './connection.ts';
import type { ConntypeRegistry } from './conntypes.ts';
import { createOutput, type Output } from './output.ts';

export interface CliContext {
  /** The global options of this run (known once the command line is parsed). */
  readonly globals: GlobalOptions;
  readonly output: Output;
  readonly conntypes: ConntypeRegistry;
  /** Called by main.ts before an action runs, with the program's options. */
  setGlobals(globals: GlobalOptions): void;
  withClient(action: (client: SmpClient, out: Output) => Promise<void>): Promise<void>;
  /**
   * Runs an action that needs no device, with the same error handling. A connection profile
   * (`-c NAME`) given to such a command is a usage error, never silently ignored, unless the
   * command reads it itself (`usesProfile`).
   */
  run(action: (out: Output) => Promise<void>, options?: { usesProfile?: boolean }): Promise<void>;
}

export function createContext(conntypes: ConntypeRegistry): CliContext {
  let globals: GlobalOptions = {};
  let output = createOutput(false);
  const run = async (action: (out: Output) => Promise<void>): Promise<void> => {
    try {
      await action(output);
    } catch (e) {
      process.exitCode = output.error(e);
    }
  };
  return {
    get globals() {
      return globals;
    },
    get output() {
      return output;
    },
    conntypes,
    setGlobals(g) {
      globals = { ...g };
      // Go mcumgr's `-l debug` dumps packets, as -v does.
      if (globals.loglevel === 'debug') globals.verbose = true;
      output = createOutput(globals.json === true);
    },
    run: (action, options = {}) =>
      run(async (out) => {
        if (globals.conn !== undefined && !options.usesProfile) {
          throw new UsageError(`-c ${globals.conn}: this command opens no connection, so a connection profile has nothing to do here`);
        }
        await action(out);
      }),
    withClient: (action) =>
      run(async (out) => {
        const { client, where } = await connect(globals, conntypes);
        const start = Date.now();
        try {
          await action(client, out);
        } catch (e) {
          // Say where the device was looked for and how long, with how to wait differently (the
          // client's message says what was tried, the v1 try included when it made one). A
          // device that answered before (a transfer that stalled) stopped answering: "nothing
          // answered in N s" would be false.
          if (e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT') {
            const what = client.deviceAnswered ? `the device on ${where} stopped answering` : `nothing answered on ${where} in ${((Date.now() - start) / 1000).toFixed(1)} s`;
            e.message = `${e.message}: ${what} (-t sets the wait per try, -r the tries)`;
          }
          throw e;
        } finally {
          await client.close();
        }
      }),
  };
}
