/**
 * File system (group 8): `fs upload LOCAL REMOTE`, `fs download REMOTE LOCAL` (Go mcumgr names),
 * and `fs stat|hash|hashes|close`. Transfers keep several chunks in flight, show progress on a
 * terminal, resume with --resume and verify the result with the device's sha256 or crc32.
 */
import type { Command } from 'commander';
import { renameSync, unlinkSync } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { commands } from '../../core/commands/index.ts';
import { toHex } from '../../core/bytes.ts';
import { UsageError } from '../../core/errors.ts';
import { downloadFile, uploadFile, type HashType, type TransferResult } from '../../client/fs-transfer.ts';
import type { CliContext } from '../context.ts';
import { createTransferProgress, formatBytes } from '../transfer-progress.ts';
import { checkDestination, openFileSource } from '../file-source.ts';

interface TransferFlags {
  resume?: boolean;
  verify?: boolean;
  hash?: string;
  window?: string;
}

function verifyOption(o: TransferFlags): HashType | 'auto' | false {
  if (o.verify === false) return false;
  if (o.hash === undefined) return 'auto';
  if (o.hash !== 'sha256' && o.hash !== 'crc32') throw new UsageError(`--hash must be sha256 or crc32, got ${JSON.stringify(o.hash)}`);
  return o.hash;
}

function windowOption(o: TransferFlags): number | undefined {
  if (o.window === undefined) return undefined;
  const n = Number(o.window);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--window must be a positive integer, got ${JSON.stringify(o.window)}`);
  return n;
}

function summary(verb: string, r: TransferResult): string {
  const rate = r.ms > 0 ? ` (${((r.bytes - r.resumedFrom) / 1024 / (r.ms / 1000)).toFixed(1)} KiB/s)` : '';
  const resumed = r.resumedFrom > 0 ? `, resumed at ${r.resumedFrom}` : '';
  const verified = r.verified ? `, ${r.verified.type} verified` : '';
  return `${verb} ${r.bytes} bytes in ${r.ms} ms${rate}${resumed}${verified}`;
}

function intOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

export function registerFsCommands(program: Command, ctx: CliContext): void {
  const fs = program.command('fs').description('file system: upload, download, stat, hash, hashes, close');
  const transferOptions = (c: Command): Command =>
    c
      .option('--resume', 'continue a partial transfer when the bytes so far match')
      .option('--no-verify', 'skip the hash check at the end')
      .option('--hash <type>', 'hash for the check: sha256 or crc32 (default: sha256 when supported)')
      .option('--window <n>', 'requests in flight (default: device buf_count - 1)');

  transferOptions(fs.command('upload').description('upload a local file to the device').argument('<local>').argument('<remote>', 'device path, e.g. /lfs/file.txt')).action(
    (local: string, remote: string, opts: TransferFlags) =>
      ctx.withClient(async (client, out) => {
        const source = await openFileSource(local);
        const data = await source.read(0, source.size).finally(() => source.close());
        const progress = createTransferProgress(data.length, {
          enabled: !out.json,
          label: `upload ${remote}`,
          onInterrupt: (done) => `the device keeps ${formatBytes(done)}; run the same command with --resume to continue`,
        });
        try {
          const r = await uploadFile(client, remote, data, { resume: opts.resume === true, verify: verifyOption(opts), window: windowOption(opts), onProgress: (p) => progress.update(p.done, p.total) });
          progress.stop();
          out.result({ name: remote, ...r }, () => summary('Uploaded', r));
        } catch (e) {
          progress.stop();
          throw e;
        }
      }),
  );

  transferOptions(fs.command('download').description('download a device file to a local file').argument('<remote>', 'device path').argument('<local>')).action(
    (remote: string, local: string, opts: TransferFlags) =>
      ctx.withClient(async (client, out) => {
        // The destination is checked before the device is asked for anything.
        await checkDestination(local);
        let resumeFrom: Uint8Array | undefined;
        if (opts.resume) resumeFrom = await readFile(local).then((b) => new Uint8Array(b), () => undefined);
        // Stream into a temporary file beside the destination (bounded memory whatever size the
        // device claims), renamed over it at the end; on failure or Ctrl-C what arrived in order
        // is kept in the destination, so that --resume can continue from it.
        const tmp = `${local}.part-${process.pid}`;
        let file;
        try {
          file = await open(tmp, 'w');
        } catch (e) {
          throw new UsageError(`cannot write ${local}: ${(e as Error).message}`, { cause: e });
        }
        let written = 0;
        const progress = createTransferProgress(0, {
          enabled: !out.json,
          label: `download ${remote}`,
          onInterrupt: () => {
            try {
              if (written > 0) renameSync(tmp, local);
              else unlinkSync(tmp);
            } catch {
              // nothing to keep
            }
            return written > 0 ? `${local} keeps what arrived; run the same command with --resume to continue` : `nothing was written to ${local}`;
          },
        });
        const sink = {
          async start(_total: number, resumedFrom: number) {
            if (resumeFrom && resumedFrom > 0) await file.write(resumeFrom.subarray(0, resumedFrom));
          },
          async write(d: Uint8Array) {
            await file.write(d);
            written += d.length;
          },
        };
        try {
          const r = await downloadFile(client, remote, { resumeFrom, sink, verify: verifyOption(opts), window: windowOption(opts), onProgress: (p) => progress.update(p.done, p.total) });
          progress.stop();
          await file.close();
          await rename(tmp, local);
          const { data: _data, ...figures } = r;
          out.result({ name: remote, local, ...figures }, () => summary('Downloaded', r));
        } catch (e) {
          progress.stop();
          await file.close().catch(() => {});
          if (written > 0) await rename(tmp, local);
          else await unlink(tmp).catch(() => {});
          throw e;
        }
      }),
  );

  fs.command('stat')
    .description('size of a device file')
    .argument('<name>')
    .action((name: string) =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.fs.status, { name });
        out.result({ name, len: rsp.len }, () => `${name}: ${rsp.len} bytes`);
      }),
    );

  fs.command('hash')
    .description('hash or checksum of a device file (or a range of it)')
    .argument('<name>')
    .option('--type <type>', 'crc32 or sha256 (default: the device default, crc32)')
    .option('--off <n>', 'start offset')
    .option('--len <n>', 'number of bytes')
    .action((name: string, opts: { type?: string; off?: string; len?: string }) =>
      ctx.withClient(async (client, out) => {
        const body: { name: string; type?: string; off?: number; len?: number } = { name };
        if (opts.type !== undefined) body.type = opts.type;
        const off = intOption('--off', opts.off);
        const len = intOption('--len', opts.len);
        if (off !== undefined) body.off = off;
        if (len !== undefined) body.len = len;
        const rsp = await client.request(commands.fs.hash, body);
        const output = typeof rsp.output === 'number' ? rsp.output.toString(16).padStart(8, '0') : toHex(rsp.output);
        out.result({ name, type: rsp.type, off: rsp.off ?? 0, len: rsp.len, output }, () => `${rsp.type} ${output}  (${rsp.len} bytes${rsp.off ? ` from ${rsp.off}` : ''})`);
      }),
    );

  fs.command('hashes')
    .description('hash and checksum types the device supports')
    .action(() =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.fs.hashTypes, {});
        out.result(rsp, () => Object.entries(rsp.types).map(([k, v]) => `${k}: ${v.format === 0 ? 'number' : 'bytes'}, ${v.size} bytes`).join('\n'));
      }),
    );

  fs.command('close')
    .description('close the file the device has open for a transfer')
    .action(() =>
      ctx.withClient(async (client, out) => {
        await client.request(commands.fs.close, {});
        out.result({ closed: true }, () => 'Done');
      }),
    );
}
