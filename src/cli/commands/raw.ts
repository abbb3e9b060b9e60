/**
 * `raw read|write GROUP ID [JSON]`: any request, for user-defined groups (64 and up) and
 * experiments. The body is JSON; `{"$hex": "0102"}` stands for a byte string. The response body
 * is printed as JSON (byte strings as hex); a device error is reported like any other.
 */
import type { Command } from 'commander';
import { fromHex } from '../../core/bytes.ts';
import { UsageError } from '../../core/errors.ts';
import { deviceErrorOf } from '../../core/message.ts';
import type { CliContext } from '../context.ts';
import { toJson } from '../output.ts';

/** JSON text to a CBOR-ready value: `{"$hex": "..."}` becomes bytes. */
export function parseRawBody(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`body is not JSON: ${(e as Error).message}`, { cause: e });
  }
  const convert = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(convert);
    if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === '$hex' && typeof (v as Record<string, unknown>)['$hex'] === 'string') {
        try {
          return fromHex((v as Record<string, string>)['$hex']!);
        } catch (e) {
          throw new UsageError(`bad $hex value: ${(e as Error).message}`, { cause: e });
        }
      }
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, convert(x)]));
    }
    return v;
  };
  return convert(value);
}

function uintArg(name: string, v: string, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new UsageError(`${name} must be an integer 0..${max}, got ${JSON.stringify(v)}`);
  return n;
}

export function registerRawCommands(program: Command, ctx: CliContext): void {
  const raw = program.command('raw').description('send any request: raw read|write GROUP ID [JSON]');
  for (const op of ['read', 'write'] as const) {
    raw
      .command(op)
      .description(`send a ${op} request with a JSON body ({"$hex": "..."} for bytes)`)
      .argument('<group>', 'group id (0-65535)')
      .argument('<id>', 'command id (0-255)')
      .argument('[json]', 'request body (default {})')
      .action((group: string, id: string, json: string | undefined) =>
        ctx.withClient(async (client, out) => {
          const body = json === undefined ? {} : parseRawBody(json);
          const rsp = await client.requestRaw(uintArg('group', group, 0xffff), uintArg('id', id, 0xff), op, body);
          const err = deviceErrorOf(rsp.body);
          if (err) throw err;
          out.result(rsp.body ?? {}, () => toJson(rsp.body ?? {}));
        }),
      );
  }
}
