/**
 * The whole firmware upgrade as one step, with the checks people otherwise forget (the "upgrades
 * that silently revert" of peers.md): inspect the files, read the bootloader's mode, upload each
 * image (skipped when the device already holds it), mark them as the mode asks, reset once, wait
 * for the device to come back, check that every new image is the one running, confirm, and report
 * the old and new versions. A device that comes back running an old image fails with
 * UPGRADE_REVERTED instead of "success".
 *
 * The flow follows the bootloader's mode (OS bootloader info, `query: mode`), as nRF Connect
 * Device Manager chooses its upgrade mode:
 * - `test-confirm` (swap modes, direct-XIP with revert; also when the mode is unknown): mark for
 *   test, reset, verify, confirm; a bad image reverts by itself;
 * - `confirm-only` (overwrite-only): a test slot makes no sense there (nothing to revert to), so the
 *   images are marked permanent before the reset;
 * - `none` (direct-XIP without revert, RAM load, single slot / serial recovery): no state write at
 *   all (the command does not exist there); the bootloader boots the newest valid image.
 *
 * Several images (multi-image devices such as nRF5340: application and network core) are uploaded
 * each to its image number, dependencies first (the DEPENDENCY TLVs), marked, and swapped by one
 * reset; MCUboot then swaps them together or not at all.
 */
import { commands } from '../core/commands/index.ts';
import { bytesEqual, toHex } from '../core/bytes.ts';
import { DeviceError, McuMgrError, TransportError, UsageError } from '../core/errors.ts';
import { bytesImageSource, readImage, type ImageSource, type McubootImage } from '../image/image.ts';
import { compareImageVersions, formatImageVersion, parseImageVersion } from '../image/header.ts';
import type { Infer } from '../core/schema.ts';
import type { imageSlotState } from '../core/commands/image.ts';
import type { SmpClient } from './client.ts';
import { uploadImage, type ImageUploadOptions, type ImageUploadResult } from './image-upload.ts';

export type SlotState = Infer<typeof imageSlotState>;

export type UpgradeStage = 'inspect' | 'upload' | 'test' | 'reset' | 'wait' | 'verify' | 'confirm' | 'done';

/** How the images are marked around the reset (see the module comment). */
export type UpgradeFlow = 'test-confirm' | 'confirm-only' | 'none';

/** MCUboot modes (`enum mcuboot_mode`) as bootloader info reports them. */
export const MCUBOOT_MODE_LABELS: Readonly<Record<number, string>> = {
  0: 'single slot',
  1: 'swap using scratch',
  2: 'overwrite-only',
  3: 'swap using move',
  4: 'direct-XIP',
  5: 'direct-XIP with revert',
  6: 'RAM load',
  7: 'firmware loader',
  8: 'single slot RAM load',
  9: 'swap using offset',
};

/** The flow a bootloader mode calls for; an unknown mode gets `test-confirm` (the safe swap flow). */
export function upgradeFlowForMode(mode: number | undefined): UpgradeFlow {
  switch (mode) {
    case 2:
      return 'confirm-only';
    case 0:
    case 4:
    case 6:
    case 7:
    case 8:
      return 'none';
    default:
      return 'test-confirm';
  }
}

export interface BootloaderMode {
  /** `mode` of the bootloader info answer; undefined when the device does not tell. */
  mode: number | undefined;
  noDowngrade: boolean;
}

/**
 * Reads the MCUboot mode (OS bootloader info `query: mode`). A device without that command, or
 * whose bootloader is not MCUboot, gives `mode: undefined`.
 */
export async function readBootloaderMode(client: SmpClient): Promise<BootloaderMode> {
  try {
    const rsp = await client.request(commands.os.bootloaderInfo, { query: 'mode' });
    return { mode: typeof rsp.mode === 'number' ? rsp.mode : undefined, noDowngrade: rsp['no-downgrade'] === true };
  } catch (e) {
    if (e instanceof DeviceError) return { mode: undefined, noDowngrade: false };
    throw e;
  }
}

export interface UpgradeOptions extends ImageUploadOptions {
  /** Leave the new image in test (it reverts at the next reset unless confirmed). Default false. */
  noConfirm?: boolean;
  /** The flow; default: from the bootloader's mode ({@link upgradeFlowForMode}). */
  flow?: UpgradeFlow;
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
  /** The flow used. */
  flow: UpgradeFlow;
}

export interface MultiUpgradeResult {
  flow: UpgradeFlow;
  /** The bootloader's mode number, when the device reports it. */
  mode: number | undefined;
  /** One entry per image, in image order. */
  images: UpgradeResult[];
}

/** One image of a multi-image upgrade. */
export interface UpgradeTarget {
  /** MCUboot image number (0 application; 1 e.g. the nRF5340 network core). */
  image: number;
  /** The image file's bytes, or a random-access source. */
  input: Uint8Array | ImageSource;
}

const imageOf = (s: SlotState): number => s.image ?? 0;

/** Reads the slot list (image state). */
export async function readImageState(client: SmpClient, timeoutMs?: number): Promise<SlotState[]> {
  return (await client.request(commands.image.state, {}, timeoutMs === undefined ? {} : { timeoutMs, tries: 1 })).images;
}

interface Planned {
  image: number;
  input: Uint8Array | ImageSource;
  source: ImageSource;
  parsed: McubootImage;
  hash: Uint8Array;
  to: { version: string; hash: string };
}

/** Orders targets so that an image comes after the images it depends on (cycles keep file order). */
function dependencyOrder(plans: Planned[]): Planned[] {
  const out: Planned[] = [];
  const visiting = new Set<number>();
  const visit = (p: Planned): void => {
    if (out.includes(p) || visiting.has(p.image)) return;
    visiting.add(p.image);
    for (const d of p.parsed.dependencies) {
      const dep = plans.find((q) => q.image === d.imageId);
      if (dep) visit(dep);
    }
    out.push(p);
  };
  for (const p of plans) visit(p);
  return out;
}

/**
 * Checks every DEPENDENCY TLV against what the device will run after the reset (the package's image
 * for that number, else the device's running one). Throws UPGRADE_DEPENDENCY before anything is
 * uploaded when one cannot be met: MCUboot would refuse to swap any image.
 */
function checkDependencies(plans: Planned[], before: SlotState[]): void {
  for (const p of plans) {
    for (const d of p.parsed.dependencies) {
      const inPackage = plans.find((q) => q.image === d.imageId);
      const running = before.find((s) => imageOf(s) === d.imageId && s.active);
      const version = inPackage ? inPackage.parsed.header.version : running ? safeVersion(running.version) : undefined;
      if (inPackage === undefined && running === undefined) continue; // the device does not list that image
      if (version === undefined || compareImageVersions(version, d.minVersion) < 0) {
        throw new McuMgrError(
          'UPGRADE_DEPENDENCY',
          `image ${p.image} ${p.to.version} needs image ${d.imageId} >= ${formatImageVersion(d.minVersion)}, but it would run ${inPackage ? inPackage.to.version : (running?.version ?? 'nothing')}: add image ${d.imageId} to the upgrade`,
        );
      }
    }
  }
}

function safeVersion(text: string): ReturnType<typeof parseImageVersion> | undefined {
  try {
    return parseImageVersion(text.replace(/^(\d+\.\d+\.\d+)\.(\d+)$/, '$1+$2'));
  } catch {
    return undefined;
  }
}

/**
 * Upgrades several images with one reset (see the module comment). `targets` may hold one image per
 * image number.
 */
export async function upgradeImages(client: SmpClient, targets: readonly UpgradeTarget[], options: UpgradeOptions = {}): Promise<MultiUpgradeResult> {
  const stage = (s: UpgradeStage, detail: string): void => options.onStage?.(s, detail);
  if (targets.length === 0) throw new UsageError('nothing to upgrade: give at least one image');
  const plans: Planned[] = [];
  for (const t of targets) {
    if (!Number.isInteger(t.image) || t.image < 0 || t.image > 15) throw new UsageError(`image number must be 0-15, got ${t.image}`);
    if (plans.some((p) => p.image === t.image)) throw new UsageError(`two files for image ${t.image}`);
    const source = t.input instanceof Uint8Array ? bytesImageSource(t.input) : t.input;
    const parsed = await readImage(source);
    if (!parsed.hash) throw new UsageError(`image ${t.image}: the file has no SHA256 TLV: not an MCUboot image a device can report`);
    plans.push({ image: t.image, input: t.input, source, parsed, hash: parsed.hash, to: { version: parsed.version, hash: toHex(parsed.hash) } });
  }
  const boot = await readBootloaderMode(client);
  const flow = options.flow ?? upgradeFlowForMode(boot.mode);
  stage(
    'inspect',
    [
      ...plans.map((p) => `image ${p.image}: version ${p.to.version}, hash ${p.to.hash}${p.parsed.dependencies.map((d) => `, needs image ${d.imageId} >= ${formatImageVersion(d.minVersion)}`).join('')}`),
      `bootloader: ${boot.mode === undefined ? 'mode not reported' : `MCUboot ${MCUBOOT_MODE_LABELS[boot.mode] ?? `mode ${boot.mode}`}`}${boot.noDowngrade ? ', no downgrade' : ''}; flow: ${flow}${options.flow ? ' (chosen)' : ''}`,
    ].join('; '),
  );

  const before = await readImageState(client);
  checkDependencies(plans, before);
  const ordered = dependencyOrder(plans);

  const results = new Map<number, UpgradeResult>();
  const toBoot: Planned[] = [];
  for (const p of ordered) {
    const active = before.find((s) => imageOf(s) === p.image && s.active);
    const from = active ? { version: active.version, hash: active.hash ? toHex(active.hash) : '' } : undefined;
    const base = { image: p.image, from, to: p.to, upload: undefined, flow };
    if (active?.hash && bytesEqual(active.hash, p.hash)) {
      results.set(p.image, { ...base, confirmed: active.confirmed === true, alreadyRunning: true });
      continue;
    }
    let upload: ImageUploadResult | undefined;
    if (before.some((s) => imageOf(s) === p.image && !s.active && s.hash && bytesEqual(s.hash, p.hash))) {
      stage('upload', `image ${p.image}: skipped: the device already holds this image`);
    } else {
      stage('upload', `image ${p.image}: ${p.source.size} bytes`);
      upload = await uploadImage(client, p.input, { ...options, image: p.image });
      if (upload.match === false) throw new McuMgrError('VERIFY_FAILED', `image ${p.image}: the device reports that the uploaded image does not match its SHA-256`);
    }
    results.set(p.image, { ...base, upload, confirmed: false, alreadyRunning: false });
    toBoot.push(p);
  }

  // Nothing new: confirm what runs unconfirmed (swap modes), and stop.
  if (toBoot.length === 0) {
    for (const r of results.values()) {
      if (!r.confirmed && !options.noConfirm && flow !== 'none') {
        stage('confirm', `confirming the running image ${r.image} ${r.to.version}`);
        await client.request(commands.image.stateWrite, { hash: fromHexHash(r.to.hash), confirm: true });
        r.confirmed = true;
      }
      stage('done', `image ${r.image}: the device already runs ${r.to.version}`);
    }
    return { flow, mode: boot.mode, images: [...results.values()].sort((a, b) => a.image - b.image) };
  }

  const permanent = flow === 'confirm-only' && !options.noConfirm;
  if (flow !== 'none') {
    for (const p of toBoot) {
      stage('test', `image ${p.image}: marking ${p.to.version} ${permanent ? 'permanent (confirm)' : 'for test'}`);
      await client.request(commands.image.stateWrite, { hash: p.hash, confirm: permanent });
    }
  }
  const pendingBefore = (await readImageState(client)).some((s) => !s.active && s.pending);

  stage('reset', 'resetting the device');
  try {
    await client.request(commands.os.reset, {}, { tries: 1, timeoutMs: options.pollTimeoutMs ?? 2000 });
  } catch (e) {
    // A device may reset before its answer gets out: a silent reset is fine, the wait below tells.
    if (!(e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT')) throw e;
  }

  stage('wait', 'waiting for the device to come back');
  const after = await waitForReset(client, toBoot, pendingBefore, options);

  stage('verify', 'checking which images run');
  const notBooted = toBoot.filter((p) => {
    const running = after.find((s) => imageOf(s) === p.image && s.active);
    return !running?.hash || !bytesEqual(running.hash, p.hash);
  });
  if (notBooted.length > 0) {
    const detail = notBooted
      .map((p) => {
        const running = after.find((s) => imageOf(s) === p.image && s.active);
        return `running ${running ? running.version : 'no image'} instead of ${p.to.version}${plans.length > 1 ? ` (image ${p.image})` : ''}`;
      })
      .join(', ');
    throw new McuMgrError('UPGRADE_REVERTED', `the device came back ${detail}: the bootloader did not boot the new image (bad hash or signature, unmet dependency, downgrade refused, or it reverted)`);
  }

  for (const p of toBoot) {
    const r = results.get(p.image)!;
    if (flow === 'test-confirm' && !options.noConfirm) {
      stage('confirm', `image ${p.image}: confirming ${p.to.version}`);
      let state;
      try {
        state = await client.request(commands.image.stateWrite, { hash: p.hash, confirm: true });
      } catch (e) {
        if (e instanceof DeviceError && e.group === 1 && e.rc === 32) {
          throw new McuMgrError(
            'UPGRADE_NOT_CONFIRMED',
            `image ${p.image} runs ${p.to.version} in test, but the device refuses to confirm an image other than the one running the application (IMAGE_CONFIRMATION_DENIED; Zephyr: CONFIG_MCUMGR_GRP_IMG_ALLOW_CONFIRM_NON_ACTIVE_IMAGE_ANY): it reverts at the next reset`,
            { cause: e },
          );
        }
        throw e;
      }
      r.confirmed = state.images.some((s) => imageOf(s) === p.image && s.active && s.confirmed === true);
      if (!r.confirmed) throw new McuMgrError('UPGRADE_REVERTED', `image ${p.image}: the device did not confirm the new image`);
    } else {
      r.confirmed = after.some((s) => imageOf(s) === p.image && s.active && s.confirmed === true);
    }
    stage('done', `image ${p.image}: ${r.from?.version ?? '(none)'} → ${p.to.version}`);
  }
  return { flow, mode: boot.mode, images: [...results.values()].sort((a, b) => a.image - b.image) };
}

function fromHexHash(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Polls the image state until the reset has visibly happened: no new image is still pending in a
 * non-active slot. When nothing was pending before the reset (direct-XIP with an image that is not
 * newer, single slot), the device must first stop answering once (it reboots) or 2 s pass.
 */
async function waitForReset(client: SmpClient, toBoot: Planned[], pendingBefore: boolean, options: UpgradeOptions): Promise<SlotState[]> {
  const deadline = Date.now() + (options.waitMs ?? 60000);
  const quietUntil = Date.now() + 2000;
  let sawReboot = pendingBefore;
  for (;;) {
    if (options.signal?.aborted) throw new TransportError('TRANSPORT_ABORTED', 'upgrade aborted');
    try {
      const state = await readImageState(client, options.pollTimeoutMs ?? 1000);
      // Before the reset takes effect the device still shows a new image pending in a non-active
      // slot; after it, the image runs (swapped, copied or chosen) or MCUboot refused it.
      const stillPending = toBoot.some((p) => state.some((s) => imageOf(s) === p.image && !s.active && s.pending && s.hash && bytesEqual(s.hash, p.hash)));
      if (!stillPending && (sawReboot || Date.now() > quietUntil)) return state;
    } catch (e) {
      if (!(e instanceof TransportError)) throw e;
      sawReboot = true;
    }
    if (Date.now() > deadline) throw new TransportError('TRANSPORT_TIMEOUT', `the device did not come back with a new image within ${Math.round((options.waitMs ?? 60000) / 1000)} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Upgrades one image (see {@link upgradeImages}); `options.image` picks the image number (default 0). */
export async function upgradeImage(client: SmpClient, input: Uint8Array | ImageSource, options: UpgradeOptions = {}): Promise<UpgradeResult> {
  const r = await upgradeImages(client, [{ image: options.image ?? 0, input }], options);
  return r.images[0]!;
}
