/**
 * Image commands with the Go mcumgr names (`image list|upload|test|confirm|erase`) and what it
 * lacks (`image slots`, `image info FILE`, `upgrade FILE`).
 */
import type { Command } from 'commander';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { commands } from '../../core/commands/index.ts';
import { fromHex, toHex } from '../../core/bytes.ts';
import { McuMgrError, UsageError } from '../../core/errors.ts';
import { verifyImage, tlvTypeName, formatImgtoolVersion, buildImage, loadSigningKey, ImageFormatError, type ImageSource, type ImageVerification } from '../../image/index.ts';
import { uploadImage } from '../../client/image-upload.ts';
import { upgradeImage, type SlotState } from '../../client/upgrade.ts';
import type { CliContext } from '../context.ts';
import { createTransferProgress, formatBytes } from '../transfer-progress.ts';
import { checkDestination, openFileSource, removeIfPresent } from '../file-source.ts';

function flagsOf(s: SlotState): string {
  const flags: string[] = [];
  if (s.active) flags.push('active');
  if (s.confirmed) flags.push('confirmed');
  if (s.pending) flags.push('pending');
  if (s.permanent) flags.push('permanent');
  return flags.join(' ');
}

/** The Go mcumgr `image list` layout. */
export function formatImageList(images: readonly SlotState[], splitStatus: number | undefined): string {
  const lines = ['Images:'];
  for (const s of images) {
    lines.push(` image=${s.image ?? 0} slot=${s.slot}`);
    lines.push(`    version: ${s.version}`);
    lines.push(`    bootable: ${s.bootable === true}`);
    lines.push(`    flags: ${flagsOf(s)}`);
    lines.push(`    hash: ${s.hash ? toHex(s.hash) : 'Unavailable'}`);
  }
  lines.push(`Split status: ${splitStatus === undefined || splitStatus === 0 ? 'N/A' : 'unknown'} (${splitStatus ?? 0})`);
  return lines.join('\n');
}

function hashArg(text: string): Uint8Array {
  try {
    const h = fromHex(text);
    if (h.length !== 32) throw new RangeError('length');
    return h;
  } catch {
    throw new UsageError(`an image hash is 64 hex digits (32 bytes); got ${JSON.stringify(text)}`);
  }
}

function intArg(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a whole number >= 0, got ${JSON.stringify(text)}`);
  return n;
}

async function readImageFile(path: string): Promise<Uint8Array> {
  const source = await openFileSource(path);
  try {
    return await source.read(0, source.size);
  } finally {
    await source.close();
  }
}

/** Verifies an image file; a file that is not a sound MCUboot image is a UsageError (exit 2) with the reason. */
async function verifyImageFile(file: string, input: Uint8Array | ImageSource): Promise<ImageVerification> {
  try {
    return await verifyImage(input);
  } catch (e) {
    if (e instanceof ImageFormatError) throw new UsageError(`${file}: not a valid MCUboot image: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * Checks an image file before anything is sent to the device: header, TLVs, truncation and the
 * hash TLV against the content. `--force` skips the check (a non-MCUboot payload).
 */
async function checkImageFile(file: string, source: ImageSource, force: boolean): Promise<void> {
  if (force) return;
  const v = await verifyImageFile(file, source);
  if (!v.hashValid) {
    const why = v.hashes.length === 0 ? 'it has no hash TLV' : 'its hash TLV does not match the content (corrupted or changed after signing)';
    throw new UsageError(`${file}: refusing to send it: ${why}; --force sends it anyway`);
  }
}

/** How to resume an interrupted image upload. */
const resumeHint = (done: number): string => `the device keeps ${formatBytes(done)}; run the same command again to resume`;

interface UploadFlags {
  force?: boolean;
  image?: string;
  upgrade?: boolean;
  noerase?: boolean;
  maxwinsize?: string;
  chunkSize?: string;
  alignment?: string;
}

function uploadOptions(o: UploadFlags): { image?: number; upgrade?: boolean; maxWindow?: number; chunkSize?: number; chunkAlignment?: number } {
  const out: { image?: number; upgrade?: boolean; maxWindow?: number; chunkSize?: number; chunkAlignment?: number } = {};
  const image = intArg('--image', o.image);
  if (image !== undefined) out.image = image;
  if (o.upgrade) out.upgrade = true;
  const w = intArg('--maxwinsize', o.maxwinsize);
  if (w !== undefined) out.maxWindow = Math.max(1, w);
  const c = intArg('--chunk-size', o.chunkSize);
  if (c !== undefined) out.chunkSize = c;
  const a = intArg('--alignment', o.alignment);
  if (a !== undefined) out.chunkAlignment = a;
  return out;
}

function addUploadFlags(cmd: Command): Command {
  return cmd
    .option('-n, --image <N>', 'image number (default 0)')
    .option('-u, --upgrade', 'refuse an image that is not newer than the running one')
    .option('-e, --noerase', 'accepted for Go mcumgr compatibility (no separate erase is ever sent)')
    .option('-w, --maxwinsize <N>', 'most chunks in flight (default: buf_count - 1 of the device)')
    .option('--chunk-size <bytes>', 'largest data bytes per chunk (default: fill the frame)')
    .option('--alignment <bytes>', 'chunk size multiple (flash write alignment)')
    .option('--force', 'send the file even if it is not a sound MCUboot image (no hash check)');
}

export function registerImageCommands(program: Command, ctx: CliContext): void {
  const image = program.command('image').description('firmware images: list, upload, test, confirm, erase, slots, info');

  image
    .command('list')
    .description("list the device's image slots and their state")
    .action(() =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.image.state, {});
        out.result(rsp, () => formatImageList(rsp.images, rsp.splitStatus));
      }),
    );

  addUploadFlags(image.command('upload').description('upload an image into the secondary slot').argument('<file>', 'MCUboot image file')).action(
    (file: string, o: UploadFlags) =>
      ctx.withClient(async (client, out) => {
        const source = await openFileSource(file);
        const bytes = { length: source.size };
        let result;
        try {
          await checkImageFile(file, source, o.force === true);
          const progress = createTransferProgress(source.size, { enabled: !out.json, onInterrupt: resumeHint });
          try {
            result = await uploadImage(client, source, { ...uploadOptions(o), onProgress: (p) => progress.update(p.offset) });
          } finally {
            progress.stop();
          }
        } finally {
          await source.close();
        }
        // The device hashed what it received and it differs from the file's SHA-256: not a success.
        if (result.match === false) throw new McuMgrError('VERIFY_FAILED', `the device reports that the uploaded image does not match the SHA-256 of ${file} (match: false)`);
        const rate = result.elapsedMs > 0 ? (bytes.length - result.resumedAt) / (result.elapsedMs / 1000) : 0;
        out.result({ file, size: bytes.length, ...result }, () =>
          [
            result.resumedAt > 0 ? `Resumed at ${formatBytes(result.resumedAt)}` : '',
            `Done: ${formatBytes(bytes.length)} in ${(result.elapsedMs / 1000).toFixed(2)} s (${formatBytes(Math.round(rate))}/s, ${result.chunkSize}-byte chunks, window ≤ ${result.maxWindow}, ${result.retransmissions} retransmissions)`,
          ]
            .filter(Boolean)
            .join('\n'),
        );
      }),
  );

  image
    .command('test')
    .description('mark an image to run once at the next reset (reverts unless confirmed)')
    .argument('<hash>', 'image hash (hex) as `image list` shows it')
    .action((hash: string) =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.image.stateWrite, { hash: hashArg(hash), confirm: false });
        out.result(rsp, () => formatImageList(rsp.images, rsp.splitStatus));
      }),
    );

  image
    .command('confirm')
    .description('make an image permanent; without a hash, the running image')
    .argument('[hash]', 'image hash (hex)')
    .action((hash: string | undefined) =>
      ctx.withClient(async (client, out) => {
        const body = hash === undefined || hash === '' ? { confirm: true } : { hash: hashArg(hash), confirm: true };
        const rsp = await client.request(commands.image.stateWrite, body);
        out.result(rsp, () => formatImageList(rsp.images, rsp.splitStatus));
      }),
    );

  image
    .command('erase')
    .description('erase an image slot (default: the secondary slot)')
    .argument('[slot]', 'slot number')
    .action((slot: string | undefined) =>
      ctx.withClient(async (client, out) => {
        const n = intArg('slot', slot);
        await client.request(commands.image.erase, n === undefined ? {} : { slot: n });
        out.result({ erased: true, slot: n }, () => 'Done');
      }),
    );

  image
    .command('slots')
    .description('slot sizes and upload ids (slot info)')
    .action(() =>
      ctx.withClient(async (client, out) => {
        const rsp = await client.request(commands.image.slotInfo, {});
        out.result(rsp, () =>
          rsp.images
            .map((i) =>
              [
                `image ${i.image}${i.max_image_size !== undefined ? ` (max image size ${formatBytes(i.max_image_size)})` : ''}`,
                ...i.slots.map((s) => `  slot ${s.slot}: ${s.size !== undefined ? `${s.size} bytes (${formatBytes(s.size)})` : `unavailable (rc ${s.rc})`}${s.upload_image_id !== undefined ? `, upload id ${s.upload_image_id}` : ''}`),
              ].join('\n'),
            )
            .join('\n'),
        );
      }),
    );

  image
    .command('info')
    .description('inspect an MCUboot image file: header, version, TLVs, hash check')
    .argument('<file>', 'image file')
    .action((file: string) =>
      ctx.run(async (out) => {
        const bytes = await readImageFile(file);
        const v = await verifyImageFile(file, bytes);
        const img = v.image;
        const h = img.header;
        const data = {
          file,
          size: bytes.length,
          version: img.version,
          imgtoolVersion: formatImgtoolVersion(h.version),
          loadAddress: h.loadAddress,
          headerSize: h.headerSize,
          protectedTlvSize: h.protectedTlvSize,
          imageSize: h.imageSize,
          flags: h.flags,
          bootable: img.bootable,
          encrypted: img.encrypted,
          hash: img.hash,
          hashValid: v.hashValid,
          hashes: v.hashes.map((c) => ({ type: tlvTypeName(c.tlvType), expected: c.expected, actual: c.actual, valid: c.valid })),
          protectedTlvs: img.protectedTlvs.map((t) => ({ type: tlvTypeName(t.type), length: t.length })),
          tlvs: img.tlvs.map((t) => ({ type: tlvTypeName(t.type), length: t.length })),
          securityCounter: img.securityCounter,
          dependencies: img.dependencies,
        };
        out.result(data, () =>
          [
            `${file}: MCUboot image, ${bytes.length} bytes`,
            `  version:      ${img.version} (${formatImgtoolVersion(h.version)})`,
            `  header size:  ${h.headerSize}   image size: ${h.imageSize}   protected TLVs: ${h.protectedTlvSize}`,
            `  load address: 0x${h.loadAddress.toString(16).padStart(8, '0')}   flags: 0x${h.flags.toString(16)}${img.bootable ? '' : ' (non-bootable)'}${img.encrypted ? ' (encrypted)' : ''}`,
            `  hash:         ${img.hash ? toHex(img.hash) : '(none)'}`,
            ...v.hashes.map((c) => `  ${tlvTypeName(c.tlvType)}: ${c.valid ? 'matches the content' : `DOES NOT MATCH the content (computed ${toHex(c.actual)})`}`),
            `  TLVs:         ${[...img.protectedTlvs.map((t) => `${tlvTypeName(t.type)}*`), ...img.tlvs.map((t) => tlvTypeName(t.type))].join(', ')}  (* protected)`,
            ...(img.securityCounter !== undefined ? [`  security counter: ${img.securityCounter}`] : []),
            ...img.dependencies.map((d) => `  depends on image ${d.imageId} >= ${d.minVersion.major}.${d.minVersion.minor}.${d.minVersion.revision}`),
          ].join('\n'),
        );
        // A bad file is a local-file problem: exit 2, as for every other one.
        if (!v.hashValid) {
          out.info(`Error: ${file}: the image hash does not match its content`);
          process.exitCode = 2;
        }
      }),
    );

  image
    .command('build')
    .alias('create')
    .description('build an MCUboot image from a binary (as imgtool sign): header, version, SHA-256 TLV, optional signature')
    .argument('<binary>', 'the application binary (e.g. zephyr.bin)')
    .argument('<out>', 'image file to write')
    .option('--image-version <version>', 'image version, MAJOR.MINOR.REVISION[+BUILD] (imgtool --version; --version is the CLI\'s own)', '0.0.0')
    .option('--header-size <bytes>', 'header size (imgtool --header-size; Zephyr builds use 0x200)', '0x200')
    .option('--align <bytes>', 'pad the payload to a multiple of this many bytes', '1')
    .option('--key <file>', 'sign with this PKCS#8 PEM private key (ECDSA P-256/P-384, Ed25519, RSA-2048/3072)')
    .option('--load-address <address>', 'load address in the header')
    .action((binary: string, outFile: string, o: { imageVersion: string; headerSize: string; align: string; key?: string; loadAddress?: string }) =>
      ctx.run(async (out) => {
        const number = (name: string, text: string): number => {
          const n = Number(text);
          if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a whole number (decimal or 0x hex), got ${JSON.stringify(text)}`);
          return n;
        };
        const headerSize = number('--header-size', o.headerSize);
        const alignPayload = number('--align', o.align);
        await checkDestination(outFile);
        const payload = await readImageFile(binary);
        let keyText: string | undefined;
        if (o.key !== undefined) {
          try {
            keyText = await readFile(o.key, 'utf8');
          } catch (e) {
            throw new UsageError(`cannot read --key ${o.key}: ${(e as Error).message}`, { cause: e });
          }
        }
        let built;
        try {
          built = await buildImage({
            payload,
            version: o.imageVersion,
            headerSize,
            alignPayload: Math.max(1, alignPayload),
            ...(o.loadAddress !== undefined ? { loadAddress: number('--load-address', o.loadAddress) } : {}),
            ...(keyText !== undefined ? { signingKey: await loadSigningKey(keyText) } : {}),
          });
        } catch (e) {
          if (e instanceof ImageFormatError) throw new UsageError(`cannot build the image: ${e.message}`, { cause: e });
          throw e;
        }
        const tmp = `${outFile}.part-${process.pid}`;
        try {
          await writeFile(tmp, built.bytes);
          await rename(tmp, outFile);
        } catch (e) {
          await removeIfPresent(tmp);
          throw new UsageError(`cannot write ${outFile}: ${(e as Error).message}`, { cause: e });
        }
        out.result({ file: outFile, size: built.bytes.length, version: o.imageVersion, hash: built.hash, signed: built.signature !== undefined }, () =>
          `Built ${outFile}: ${built.bytes.length} bytes, version ${o.imageVersion}, hash ${toHex(built.hash)}${built.signature ? ', signed' : ''}`,
        );
      }),
    );

  addUploadFlags(
    program
      .command('upgrade')
      .description('upload, test, reset, wait, verify the new image runs, confirm; reports old and new versions')
      .argument('<file>', 'MCUboot image file')
      .option('--no-confirm', 'leave the new image in test (reverts at the next reset)')
      .option('--wait <seconds>', 'how long to wait for the device after the reset (default 60)'),
  ).action((file: string, o: UploadFlags & { confirm?: boolean; wait?: string }) =>
    ctx.withClient(async (client, out) => {
      const wait = o.wait === undefined ? undefined : Number(o.wait);
      if (wait !== undefined && !(wait > 0)) throw new UsageError('--wait must be a positive number of seconds');
      const source = await openFileSource(file);
      const bytes = { length: source.size };
      let progress: ReturnType<typeof createTransferProgress> | undefined;
      try {
        await checkImageFile(file, source, o.force === true);
      } catch (e) {
        await source.close();
        throw e;
      }
      const result = await upgradeImage(client, source, {
        ...uploadOptions(o),
        noConfirm: o.confirm === false,
        ...(wait !== undefined ? { waitMs: wait * 1000 } : {}),
        onStage: (stage, detail) => {
          if (stage !== 'upload') progress?.stop();
          out.info(`${stage}: ${detail}`);
          if (stage === 'upload' && !detail.startsWith('skipped')) progress = createTransferProgress(bytes.length, { enabled: !out.json, onInterrupt: resumeHint });
        },
        onProgress: (p) => progress?.update(p.offset),
      }).finally(() => {
        progress?.stop();
        return source.close();
      });
      out.result(result, () =>
        result.alreadyRunning
          ? `Already running ${result.to.version}${result.confirmed ? ' (confirmed)' : ''}`
          : `Upgraded image ${result.image}: ${result.from?.version ?? '(none)'} → ${result.to.version}${result.confirmed ? ', confirmed' : ', in test (not confirmed)'}`,
      );
    }),
  );
}
