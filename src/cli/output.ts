/**
 * CLI output: human text or one JSON document (`--json`), errors by name on stderr, and exit
 * codes by error family.
 */
import { DeviceError, McuMgrError, ProtocolError, TransportError, UsageError } from '../core/errors.ts';
import { toHex } from '../core/bytes.ts';

export const ExitCode = { OK: 0, DEVICE: 1, USAGE: 2, TRANSPORT: 3, PROTOCOL: 4, INTERNAL: 70 } as const;

export function exitCodeFor(e: unknown): number {
  if (e instanceof DeviceError) return ExitCode.DEVICE;
  if (e instanceof UsageError) return ExitCode.USAGE;
  if (e instanceof TransportError) return ExitCode.TRANSPORT;
  if (e instanceof ProtocolError) return ExitCode.PROTOCOL;
  if (e instanceof McuMgrError) return ExitCode.DEVICE;
  return ExitCode.INTERNAL;
}

/** JSON with byte strings as hex and bigints as numbers or strings. */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (v instanceof Uint8Array) return toHex(v);
      if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
      if (v instanceof Map) return Object.fromEntries(v);
      return v;
    },
    indent,
  );
}

export interface Output {
  json: boolean;
  /** Prints a result: `human()` text normally, `data` as JSON with --json. */
  result(data: unknown, human: () => string): void;
  /** A line of progress or information for people (stderr, never in --json). */
  info(text: string): void;
  error(e: unknown): number;
}

export function createOutput(json: boolean): Output {
  return {
    json,
    result(data, human) {
      if (json) process.stdout.write(toJson(data) + '\n');
      else {
        const text = human();
        if (text !== '') process.stdout.write(text.endsWith('\n') ? text : text + '\n');
      }
    },
    info(text) {
      if (!json) process.stderr.write(text + '\n');
    },
    error(e) {
      const code = exitCodeFor(e);
      if (json) {
        const err: Record<string, unknown> = { error: { code: e instanceof McuMgrError ? e.code : 'INTERNAL', message: e instanceof Error ? e.message : String(e) } };
        if (e instanceof DeviceError) Object.assign(err['error'] as object, { name: e.errorName, rc: e.rc, group: e.group, rsn: e.rsn });
        process.stdout.write(toJson(err) + '\n');
      } else {
        const msg = e instanceof McuMgrError ? e.message : e instanceof Error ? `internal error: ${e.stack ?? e.message}` : String(e);
        const name = e instanceof DeviceError ? ` [${e.errorName}]` : '';
        process.stderr.write(`Error: ${msg}${name}\n`);
      }
      return code;
    },
  };
}
