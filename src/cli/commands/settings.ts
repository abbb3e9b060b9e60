/**
 * Settings (group 3): `config NAME [VALUE]` (Go mcumgr's name) and
 * `settings read|write|delete|commit|load|save`. Values are bytes: given as text (UTF-8) or with
 * --hex; shown as text when they are printable UTF-8, else as hex.
 */
import type { Command } from 'commander';
import { commands } from '../../core/commands/index.ts';
import { fromHex, toHex, utf8Decode, utf8Encode } from '../../core/bytes.ts';
import { UsageError } from '../../core/errors.ts';
import type { SmpClient } from '../../client/client.ts';
import type { CliContext } from '../context.ts';
import type { Output } from '../output.ts';

/** Text when the bytes are printable UTF-8, else hex. */
export function showValue(v: Uint8Array): string {
  try {
    const s = utf8Decode(v);
    const printable = [...s].every((ch) => {
      const c = ch.codePointAt(0)!;
      return c === 0x09 || c === 0x0a || (c >= 0x20 && c !== 0x7f);
    });
    if (s.length > 0 && printable) return s;
  } catch {
    // not UTF-8
  }
  return `0x${toHex(v)}`;
}

function parseValue(value: string, hex: boolean | undefined): Uint8Array {
  if (!hex) return utf8Encode(value);
  try {
    return fromHex(value);
  } catch (e) {
    throw new UsageError(`--hex value is not hex: ${JSON.stringify(value)}`, { cause: e });
  }
}

async function readSetting(client: SmpClient, out: Output, name: string, maxSize: number | undefined, hex: boolean | undefined): Promise<void> {
  const rsp = await client.request(commands.settings.read, maxSize === undefined ? { name } : { name, max_size: maxSize });
  out.result({ name, val: rsp.val, ...(rsp.max_size !== undefined ? { max_size: rsp.max_size } : {}) }, () => (hex ? toHex(rsp.val) : showValue(rsp.val)));
}

async function writeSetting(client: SmpClient, out: Output, name: string, value: string, hex: boolean | undefined): Promise<void> {
  const val = parseValue(value, hex);
  await client.request(commands.settings.write, { name, val });
  out.result({ name, val, written: true }, () => 'Done');
}

function maxSizeOption(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--max-size must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

export function registerSettingsCommands(program: Command, ctx: CliContext): void {
  program
    .command('config')
    .description('read a setting, or write it (running value; "settings save" persists)')
    .argument('<name>', 'setting name, e.g. app/greeting')
    .argument('[value]', 'new value (text, or hex with --hex)')
    .option('--hex', 'value is hex bytes / print the value as hex')
    .action((name: string, value: string | undefined, opts: { hex?: boolean }) =>
      ctx.withClient((client, out) => (value === undefined ? readSetting(client, out, name, undefined, opts.hex) : writeSetting(client, out, name, value, opts.hex))),
    );

  const settings = program.command('settings').description('settings: read, write, delete, commit, load, save');
  settings
    .command('read')
    .description('read the running value of a setting')
    .argument('<name>')
    .option('--max-size <bytes>', 'largest value to return (the device caps it at 32)')
    .option('--hex', 'print the value as hex')
    .action((name: string, opts: { maxSize?: string; hex?: boolean }) => ctx.withClient((client, out) => readSetting(client, out, name, maxSizeOption(opts.maxSize), opts.hex)));
  settings
    .command('write')
    .description('set the running value of a setting (not persisted until save)')
    .argument('<name>')
    .argument('<value>', 'text, or hex with --hex')
    .option('--hex', 'value is hex bytes')
    .action((name: string, value: string, opts: { hex?: boolean }) => ctx.withClient((client, out) => writeSetting(client, out, name, value, opts.hex)));
  settings
    .command('delete')
    .description('delete a setting from storage')
    .argument('<name>')
    .action((name: string) =>
      ctx.withClient(async (client, out) => {
        await client.request(commands.settings.delete, { name });
        out.result({ name, deleted: true }, () => 'Done');
      }),
    );
  settings
    .command('commit')
    .description('apply the settings set so far (settings_commit)')
    .action(() =>
      ctx.withClient(async (client, out) => {
        await client.request(commands.settings.commit, {});
        out.result({ committed: true }, () => 'Done');
      }),
    );
  settings
    .command('load')
    .description('load the stored settings into the running values (settings_load)')
    .action(() =>
      ctx.withClient(async (client, out) => {
        await client.request(commands.settings.load, {});
        out.result({ loaded: true }, () => 'Done');
      }),
    );
  settings
    .command('save')
    .description('persist the running settings (all, or one subtree)')
    .argument('[subtree]')
    .action((subtree: string | undefined) =>
      ctx.withClient(async (client, out) => {
        await client.request(commands.settings.save, subtree === undefined ? {} : { name: subtree });
        out.result({ saved: true, ...(subtree !== undefined ? { name: subtree } : {}) }, () => 'Done');
      }),
    );
}
