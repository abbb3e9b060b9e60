/**
 * The whole firmware upgrade as one step, with the checks people otherwise forget (the "upgrades
 * that silently revert" of peers.md): inspect the file, upload it (skipped when the device already
 * holds it), mark it for test, reset, wait for the device to come back, check that the new image
 * is the one running, confirm it, and report the old and new versions. If the device comes back
 * running the old image, the upgrade fails with UPGRADE_REVERTED instead of "success".
 */
import { commands } from '../core/commands/index.ts';
import { bytesEqual, toHex } from '../core/bytes.ts';
import { McuMgrError, TransportError, UsageError } from '../core/errors.ts';
import { bytesImageSource, readImage, type ImageSource } from '../image/image.ts';
import type { Infer } from '../core/schema.ts';
import type { imageSlotState } from '../core/commands/image.ts';
import type { SmpClient } from './client.ts';
import { uploadImage, type ImageUploadOptions, type ImageUploadResult } from './image-upload.ts';

export type SlotState = Infer<typeof imageSlotState>;

export type UpgradeStage = 'inspect' | 'upload' | 'test' | 'reset' | 'wait' | 'verify' | 'confirm' | 'done';

export interface UpgradeOptions extends ImageUploadOptions {
  /** Leave the new image in test (it reverts at the next reset unless confirmed). Default false. */
  noConfirm?: boolean;
  /** How long to wait for the device to come back after the reset (default 60 s). */
  waitMs?: number;
  /** Time for each request while waiting (default 1 s). */
  pollTimeoutMs?: number;
  onStage?: (stage: UpgradeStage, detail: string) => void;
}

export interface UpgradeResult {
  image: number;
  from: { version: string; hash: string } | undefined;
  to: { version: string; hash: string };
  /** Undefined when the upload was skipped (the device already held the image or runs it). */
  upload: ImageUploadResult | undefined;
  confirmed: boolean;
  /** True when the device already ran this image: nothing was done. */
  alreadyRunning: boolean;
}

const imageOf = (s: SlotState): number => s.image ?? 0;

/** Reads the slot list (image state). */
export async function readImageState(client: SmpClient, timeoutMs?: number): Promise<SlotState[]> {
  return (await client.request(commands.image.state, {}, timeoutMs === undefined ? {} : { timeoutMs, tries: 1 })).images;
}

/** `input`: the image file's bytes, or a random-access source (read on demand). */
export async function upgradeImage(client: SmpClient, input: Uint8Array | ImageSource, options: UpgradeOptions = {}): Promise<UpgradeResult> {
  const stage = (s: UpgradeStage, detail: string): void => options.onStage?.(s, detail);
  const image = options.image ?? 0;
  const source = input instanceof Uint8Array ? bytesImageSource(input) : input;
  const parsed = await readImage(source);
  if (!parsed.hash) throw new UsageError('the image has no SHA256 TLV: not an MCUboot image a device can report');
  const newHash = parsed.hash;
  const to = { version: parsed.version, hash: toHex(newHash) };
  stage('inspect', `image ${image}: version ${parsed.version}, hash ${to.hash}`);

  const before = await readImageState(client);
  const active = before.find((s) => imageOf(s) === image && s.active);
  const from = active ? { version: active.version, hash: active.hash ? toHex(active.hash) : '' } : undefined;
  if (active?.hash && bytesEqual(active.hash, newHash)) {
    let confirmed = active.confirmed === true;
    if (!confirmed && !options.noConfirm) {
      stage('confirm', `confirming the running image ${parsed.version}`);
      await client.request(commands.image.stateWrite, { confirm: true });
      confirmed = true;
    }
    stage('done', `the device already runs ${parsed.version}`);
    return { image, from, to, upload: undefined, confirmed, alreadyRunning: true };
  }

  let upload: ImageUploadResult | undefined;
  if (before.some((s) => imageOf(s) === image && !s.active && s.hash && bytesEqual(s.hash, newHash))) {
    stage('upload', 'skipped: the device already holds this image in its secondary slot');
  } else {
    stage('upload', `${source.size} bytes`);
    upload = await uploadImage(client, input, options);
    if (upload.match === false) throw new McuMgrError('VERIFY_FAILED', 'the device reports that the uploaded image does not match its SHA-256');
  }

  stage('test', `marking ${parsed.version} for test`);
  await client.request(commands.image.stateWrite, { hash: newHash, confirm: false });

  stage('reset', 'resetting the device');
  try {
    await client.request(commands.os.reset, {}, { tries: 1, timeoutMs: options.pollTimeoutMs ?? 2000 });
  } catch (e) {
    // A device may reset before its answer gets out: a silent reset is fine, the wait below tells.
    if (!(e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT')) throw e;
  }

  stage('wait', 'waiting for the device to come back');
  const deadline = Date.now() + (options.waitMs ?? 60000);
  let after: SlotState[] | undefined;
  for (;;) {
    if (options.signal?.aborted) throw new TransportError('TRANSPORT_ABORTED', 'upgrade aborted');
    try {
      const state = await readImageState(client, options.pollTimeoutMs ?? 1000);
      // Before the reset takes effect the device still shows the new image pending in the
      // secondary slot; after it, the image runs (swapped) or MCUboot refused it.
      const stillPending = state.some((s) => imageOf(s) === image && !s.active && s.pending && s.hash && bytesEqual(s.hash, newHash));
      if (!stillPending) {
        after = state;
        break;
      }
    } catch (e) {
      if (!(e instanceof TransportError)) throw e;
    }
    if (Date.now() > deadline) throw new TransportError('TRANSPORT_TIMEOUT', `the device did not come back with a new image within ${Math.round((options.waitMs ?? 60000) / 1000)} s`);
    await new Promise((r) => setTimeout(r, 100));
  }

  stage('verify', 'checking which image runs');
  const running = after.find((s) => imageOf(s) === image && s.active);
  if (!running?.hash || !bytesEqual(running.hash, newHash)) {
    throw new McuMgrError(
      'UPGRADE_REVERTED',
      `the device came back running ${running ? running.version : 'no image'} instead of ${parsed.version}: the bootloader did not boot the new image (bad hash or signature, or it reverted)`,
    );
  }

  let confirmed = false;
  if (!options.noConfirm) {
    stage('confirm', `confirming ${parsed.version}`);
    const state = await client.request(commands.image.stateWrite, { confirm: true });
    confirmed = state.images.some((s) => imageOf(s) === image && s.active && s.confirmed === true);
    if (!confirmed) throw new McuMgrError('UPGRADE_REVERTED', 'the device did not confirm the new image');
  }
  stage('done', `${from?.version ?? '(none)'} → ${parsed.version}`);
  return { image, from, to, upload, confirmed, alreadyRunning: false };
}
