/**
 * Image commands with the Go mcumgr names (`image list|upload|test|confirm|erase`) and what it
 * lacks (`image slots`, `image info FILE`, `upgrade FILE`).
 */
import type { Command } from 'commander';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { commands } from '../../core/commands/index.ts';
import { fromHex, toHex } from '../../core/bytes.ts';
import { McuMgrError, UsageError } from '../../core/errors.ts';
import { verifyImage, tlvTypeName, formatImgtoolVersion, isZipArchive, readDfuPackage, describeTlvValue, buildImage, loadSigningKey, ImageFormatError, type ImageSource, type ImageVerification } from '../../image/index.ts';
import { uploadImage } from '../../client/image-upload.ts';
import { upgradeImages, type SlotState, type UpgradeTarget } from '../../client/upgrade.ts';
import type { CliContext } from '../context.ts';
import { createTransferProgress, formatBytes } from '../transfer-progress.ts';
import { checkDestination, openFileSource, removeIfPresent, type FileSource } from '../file-source.ts';

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

async function readImageFile(path: string, limit?: number): Promise<Uint8Array> {
  const source = await openFileSource(path);
  try {
    return await source.read(0, limit === undefined ? source.size : Math.min(limit, source.size));
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
async function checkImageFile(file: string, source: Uint8Array | ImageSource, force: boolean): Promise<void> {
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
  image?: string | string[];
  upgrade?: boolean;
  noerase?: boolean;
  maxwinsize?: string;
  chunkSize?: string;
  alignment?: string;
}

function uploadOptions(o: UploadFlags): { image?: number; upgrade?: boolean; maxWindow?: number; chunkSize?: number; chunkAlignment?: number } {
  const out: { image?: number; upgrade?: boolean; maxWindow?: number; chunkSize?: number; chunkAlignment?: number } = {};
  const image = intArg('--image', typeof o.image === 'string' ? o.image : undefined);
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

function addUploadFlags(cmd: Command, options: { imagePerFile?: boolean } = {}): Command {
  const withImage = options.imagePerFile
    ? cmd.option('-n, --image <N>', 'image number of each file, in file order (default 0)', (v: string, prev: string[] = []) => [...prev, v])
    : cmd.option('-n, --image <N>', 'image number (default 0)');
  return withImage
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
          protectedTlvs: img.protectedTlvs.map((t) => ({ type: tlvTypeName(t.type), length: t.length, value: describeTlvValue(t) })),
          tlvs: img.tlvs.map((t) => ({ type: tlvTypeName(t.type), length: t.length, value: describeTlvValue(t) })),
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
            ...[...img.protectedTlvs, ...img.tlvs].map((t) => `    ${`${tlvTypeName(t.type)}${t.protected ? '*' : ''}`.padEnd(18)} ${String(t.length).padStart(5)} B  ${describeTlvValue(t)}`),
            `  security counter: ${img.securityCounter ?? '(none)'}`,
            `  dependencies: ${img.dependencies.length === 0 ? '(none)' : img.dependencies.map((d) => `image ${d.imageId} >= ${formatImgtoolVersion(d.minVersion)}`).join(', ')}`,
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
      .description('upload, mark, reset, wait, verify the new images run, confirm; reports old and new versions. Several files (with -n per file) or a west DFU package (dfu_application.zip) upgrade several images with one reset')
      .argument('<files...>', 'MCUboot image files, or a DFU package zip')
      .option('--no-confirm', 'leave the new image in test (reverts at the next reset)')
      .option('--mode <flow>', 'test-confirm, confirm-only or none (default: from the bootloader mode the device reports)')
      .option('--wait <seconds>', 'how long to wait for the device after the reset (default 60)'),
    { imagePerFile: true },
  ).action((files: string[], o: UploadFlags & { confirm?: boolean; wait?: string; mode?: string }) =>
    ctx.withClient(async (client, out) => {
      const wait = o.wait === undefined ? undefined : Number(o.wait);
      if (wait !== undefined && !(wait > 0)) throw new UsageError('--wait must be a positive number of seconds');
      if (o.mode !== undefined && o.mode !== 'test-confirm' && o.mode !== 'confirm-only' && o.mode !== 'none') {
        throw new UsageError(`--mode must be test-confirm, confirm-only or none, got ${JSON.stringify(o.mode)}`);
      }
      const images = (Array.isArray(o.image) ? o.image : o.image === undefined ? [] : [o.image]).map((v) => intArg('--image', v)!);
      const { targets, close } = await upgradeTargets(files, images, o.force === true);
      let progress: ReturnType<typeof createTransferProgress> | undefined;
      const result = await upgradeImages(client, targets, {
        ...uploadOptions({ ...o, image: undefined }),
        noConfirm: o.confirm === false,
        ...(o.mode !== undefined ? { flow: o.mode } : {}),
        ...(wait !== undefined ? { waitMs: wait * 1000 } : {}),
        onStage: (stage, detail) => {
          progress?.stop();
          progress = undefined;
          out.info(`${stage}: ${detail}`);
          const size = /^image \d+: (\d+) bytes$/.exec(detail);
          if (stage === 'upload' && size) progress = createTransferProgress(Number(size[1]), { enabled: !out.json, onInterrupt: resumeHint });
        },
        onProgress: (p) => progress?.update(p.offset),
      }).finally(close);
      progress?.stop();
      const data = targets.length === 1 && !files[0]!.endsWith('.zip') ? result.images[0]! : result;
      out.result(data, () =>
        result.images
          .map((r) =>
            r.alreadyRunning
              ? `Already running ${r.to.version}${result.images.length > 1 ? ` (image ${r.image})` : ''}${r.confirmed ? ' (confirmed)' : ''}`
              : `Upgraded image ${r.image}: ${r.from?.version ?? '(none)'} → ${r.to.version}${r.confirmed ? ', confirmed' : result.flow === 'none' ? '' : ', in test (not confirmed)'}`,
          )
          .join('\n'),
      );
    }),
  );
}

/**
 * The images of an upgrade: each file with its `-n` (in order; one file without `-n` is image 0),
 * or the images a DFU package's manifest names.
 */
async function upgradeTargets(files: string[], images: number[], force: boolean): Promise<{ targets: UpgradeTarget[]; close: () => Promise<void> }> {
  const sources: FileSource[] = [];
  const close = async (): Promise<void> => {
    for (const s of sources) await s.close();
  };
  const targets: UpgradeTarget[] = [];
  try {
    if (files.length === 1 && images.length === 0) {
      const head = await readImageFile(files[0]!, 4);
      if (isZipArchive(head)) {
        const pkg = readDfuPackage(await readImageFile(files[0]!));
        for (const i of pkg.images) await checkImageFile(`${files[0]!} (image ${i.image})`, i.bytes, force);
        return { targets: pkg.images.map((i) => ({ image: i.image, input: i.bytes })), close };
      }
    }
    if (files.some((f) => f.endsWith('.zip'))) throw new UsageError('a DFU package (.zip) is upgraded alone, without -n');
    if (files.length > 1 && images.length !== files.length) throw new UsageError(`give -n IMAGE for each file (${files.length} files, ${images.length} -n)`);
    for (const [i, f] of files.entries()) {
      const source = await openFileSource(f);
      sources.push(source);
      // Each file is checked before anything is sent to the device.
      await checkImageFile(f, source, force);
      targets.push({ image: images[i] ?? 0, input: source });
    }
    return { targets, close };
  } catch (e) {
    await close();
    throw e;
  }
}
