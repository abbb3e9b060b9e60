/**
 * Group 1, image management (smp-spec.md §3.2), over the device-side MCUboot model
 * (src/server/mcuboot). Follows Zephyr 4.3's img_mgmt.c / img_mgmt_state.c / zephyr_img_mgmt.c
 * (read 2026-07):
 *
 * - 1/0 read: `{images: [{image?, slot, version, hash, bootable, pending, confirmed, active,
 *   permanent}], splitStatus: 0}`; `image` only with more than one image; with the frugal list
 *   option false flags and splitStatus are left out.
 * - 1/0 write `{hash?, confirm?}`: slot selection and every refusal of
 *   `img_mgmt_set_next_boot_slot` (the model), then the state list. DFU_CONFIRMED hook on a
 *   successful confirm of the running slot.
 * - 1/1 upload: one RAM session `{slot, off, size, sha}` as `g_img_mgmt_state`, kept by the
 *   MCUboot model (`McubootModel.currentUpload`); the request is decoded leniently by the command
 *   table (`commands.image.upload.decode`: zcbor_map_decode_bulk, unknown keys skipped, wrong types
 *   rc 3) so that a missing `off` answers INVALID_OFFSET (20), not rc 3. First chunk: data < 32 bytes → 22, no
 *   `len` → 21, bad magic → 23, `sha` > 32 bytes → 24, resume when `sha` matches the session,
 *   NO_FREE_SLOT (9), too large (30), `upgrade` → 26/27, instant match with a full sha
 *   (`{off: len, match: true}`), else erase. Later chunks: wrong `off` → `{off: expected}`,
 *   overrun → 31. Write failure → 12. The last chunk adds `match` (CONFIG_IMG_ENABLE_IMAGE_CHECK).
 *   Any error resets the session (DFU_STOPPED hook). Hooks: DFU_STARTED, DFU_CHUNK (may reject),
 *   DFU_PENDING, cmd_status (0 start, 1 ongoing, 2 complete).
 * - 1/5 erase `{slot?}` and 1/6 slot info: the model's rules.
 * - At every boot (power-on and reset) the model runs MCUboot's boot sequence; the upload session
 *   is lost, as RAM is.
 */
import { join } from 'node:path';
import { commands } from '../../core/commands/index.ts';
import { Group, GROUP_NAMES } from '../../core/commands/command.ts';
import { McuMgrError } from '../../core/errors.ts';
import { bytesEqual } from '../../core/bytes.ts';
import { MgmtErr } from '../../core/error-codes.ts';
import { IMAGE_MAGIC, decodeImageHeader } from '../../image/index.ts';
import { MgmtError } from '../errors.ts';
import type { HookResult } from '../hooks.ts';
import { McubootModel, ImgErr, type BootReport, type McubootModelOptions } from '../mcuboot/index.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
import type { BodyOf } from '../../core/commands/command.ts';
import type { SmpServer } from '../server.ts';

export interface ImageGroupOptions extends Omit<McubootModelOptions, 'dir'> {
  /** Slot storage directory (default `<dataDir>/mcuboot`). */
  dir?: string;
  /** CONFIG_MCUMGR_GRP_IMG_FRUGAL_LIST: leave false flags and splitStatus out (default false). */
  frugalList?: boolean;
  /** CONFIG_IMG_ENABLE_IMAGE_CHECK: instant match and `match` on the last chunk (default true). */
  imageCheck?: boolean;
  /** Report `max_image_size` in slot info (CONFIG_MCUMGR_GRP_IMG_TOO_LARGE_SYSBUILD style). */
  reportMaxImageSize?: boolean;
}

/** cmd_status values for uploads (`IMG_MGMT_ID_UPLOAD_STATUS_*`). */
const UploadStatus = { START: 0, ONGOING: 1, COMPLETE: 2 } as const;

/** The image group, with the MCUboot model behind it (for the CLI, tests and applications). */
export interface ImageGroup extends MgmtGroup {
  readonly model: McubootModel;
}

/** What every image command works with. */
interface ImageContext {
  readonly server: SmpServer;
  readonly model: McubootModel;
  readonly frugal: boolean;
  readonly imageCheck: boolean;
  readonly reportMaxImageSize: boolean;
}

type UploadRequest = BodyOf<typeof commands.image.upload>;
type Response = Record<string, unknown>;

const imgErr = (rc: number): MgmtError => MgmtError.group(Group.IMAGE, rc);

function hookError(r: HookResult): MgmtError | undefined {
  if (!r) return undefined;
  return 'group' in r ? MgmtError.group(r.group, r.rc) : MgmtError.rc(r.rc);
}

/** The MCUboot model behind a server's registered image group, if it has one (os bootloader info reads its mode). */
export function imageModelOf(server: SmpServer): McubootModel | undefined {
  const g = server.registry.findGroup(Group.IMAGE) as Partial<ImageGroup> | undefined;
  return g?.model instanceof McubootModel ? g.model : undefined;
}

/** Builds the image group for a server with the given options. */
export function imageGroupFactory(options: ImageGroupOptions = {}): (server: SmpServer) => Promise<ImageGroup> {
  return (server) => createImageGroup(server, options);
}

/**
 * The image group over a new MCUboot model in `options.dir` (default `<dataDir>/mcuboot`). The
 * model boots at every power-on and reset; a device without a valid primary image stays in the
 * bootloader: at power-on the emulator refuses to start, after a reset the server reports it
 * through onError.
 */
export async function createImageGroup(server: SmpServer, options: ImageGroupOptions = {}): Promise<ImageGroup> {
  const model = await McubootModel.open({ ...options, dir: options.dir ?? join(server.dataDir, 'mcuboot') });
  const ctx: ImageContext = { server, model, frugal: options.frugalList ?? false, imageCheck: options.imageCheck ?? true, reportMaxImageSize: options.reportMaxImageSize ?? false };
  server.onBoot(() => bootImages(model));
  server.onClose(() => model.close());
  const group = defineGroup(Group.IMAGE, GROUP_NAMES[Group.IMAGE]!, [
    handle(commands.image.state, () => imageStateRead(ctx)),
    handle(commands.image.stateWrite, ({ body }) => imageStateWrite(ctx, body)),
    handle(commands.image.upload, ({ body, peer }) => imageUpload(ctx, body, peer.address)),
    handle(commands.image.erase, ({ body }) => imageErase(ctx, body)),
    handle(commands.image.slotInfo, () => imageSlotInfo(ctx)),
  ]);
  return { ...group, model };
}

/** MCUboot's boot sequence at power-on and reset (the upload session is lost, as RAM is). */
async function bootImages(model: McubootModel): Promise<void> {
  const report: BootReport = await model.boot();
  // Single slot: the SMP server is MCUboot's serial recovery, which serves without an application.
  if (!report.ok && model.mode !== 'single-slot') {
    const bad = report.images.filter((i) => !i.primaryValid).map((i) => i.image);
    throw new McuMgrError('DEVICE_STATE', `MCUboot: no bootable image in the primary slot of image ${bad.join(', ')} (the device stays in the bootloader)`);
  }
}

/** 1/0 read: the slot list. */
async function imageStateRead({ server, model, frugal }: ImageContext): Promise<Response> {
  const images: Response[] = [];
  for (const s of await model.imageStates()) {
    const entry: Response = {};
    if (model.images > 1) entry['image'] = s.image;
    entry['slot'] = s.slot;
    entry['version'] = s.version;
    entry['hash'] = s.hash;
    for (const k of ['bootable', 'pending', 'confirmed', 'active', 'permanent'] as const) {
      if (!frugal || s[k]) entry[k] = s[k];
    }
    const err = hookError(await server.hooks.notify('img_slot_state', { image: s.image, slot: s.slot, entry }));
    if (err) throw err;
    images.push(entry);
  }
  return frugal ? { images } : { images, splitStatus: 0 };
}

/** 1/0 write: test or confirm a slot (the model's rules), then the slot list. */
async function imageStateWrite(ctx: ImageContext, body: BodyOf<typeof commands.image.stateWrite>): Promise<Response> {
  const { server, model } = ctx;
  const confirm = body.confirm ?? false;
  await model.setNextBoot(body.hash, confirm);
  if (confirm) {
    const slot = body.hash && body.hash.length > 0 ? await model.findSlotByHash(body.hash) : model.activeSlot(model.activeImage);
    if (slot === model.activeSlot(slot >> 1)) await server.hooks.notify('img_dfu_confirmed', { image: slot >> 1, slot: slot % 2 });
  }
  return imageStateRead(ctx);
}

/** 1/5 erase: a slot (default the one opposite the running one); drops the upload session. */
async function imageErase({ server, model }: ImageContext, body: BodyOf<typeof commands.image.erase>): Promise<Response> {
  model.abortUpload();
  try {
    await model.eraseSlot(body.slot);
  } catch (e) {
    await server.hooks.notify('img_dfu_stopped', { image: model.activeImage });
    throw e;
  }
  return {};
}

/** 1/6 slot info. */
function imageSlotInfo({ model, reportMaxImageSize }: ImageContext): Response {
  return {
    images: model.slotInfo().map((i) => ({
      image: i.image,
      slots: i.slots.map((s) => (s.uploadImageId === undefined ? { slot: s.slot, size: s.size } : { slot: s.slot, size: s.size, upload_image_id: s.uploadImageId })),
      ...(reportMaxImageSize ? { max_image_size: model.maxImageSize } : {}),
    })),
  };
}

/** One upload request's progress through img_mgmt_upload: its cmd_status and how it ends. */
class UploadStep {
  status: number = UploadStatus.ONGOING;
  constructor(private readonly ctx: ImageContext) {}

  private cmdStatus(): Promise<HookResult> {
    return this.ctx.server.hooks.notify('cmd_status', { group: Group.IMAGE, id: commands.image.upload.id, status: this.status });
  }

  /** Error exit (Zephyr's `end:` with rc ≠ 0): cmd_status, DFU_STOPPED, session dropped. Storage failures become the step's `fallback` error. */
  async fail(e: unknown, image: number, fallback = 0): Promise<never> {
    const err = e instanceof MgmtError ? e : fallback !== 0 ? imgErr(fallback) : e;
    this.ctx.model.abortUpload();
    await this.cmdStatus();
    await this.ctx.server.hooks.notify('img_dfu_stopped', { image });
    throw err;
  }

  async finish(rsp: Response): Promise<Response> {
    await this.cmdStatus();
    return rsp;
  }
}

/** A first chunk that passed img_mgmt_upload_inspect: where it goes (and, once known, whose it is). */
interface NewUpload {
  image: number;
  slot: number;
  size: number;
  sha: Uint8Array;
  owner?: string;
}

/**
 * img_mgmt_upload_inspect for a first chunk (`off` 0): header, length, magic and `sha` checks, a
 * resume of the session with the same `sha`, the slot (chosen once, by the model), the size and
 * the upgrade-only version check. Returns the new upload, or the response of a resume.
 */
async function inspectFirstChunk({ model }: ImageContext, req: UploadRequest, step: UploadStep): Promise<NewUpload | { resume: Response }> {
  const { data, sha } = req;
  if (data.length < 32) return step.fail(imgErr(ImgErr.INVALID_IMAGE_HEADER), req.image);
  if (req.len === undefined) return step.fail(imgErr(ImgErr.INVALID_LENGTH), req.image);
  if (new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) !== IMAGE_MAGIC) return step.fail(imgErr(ImgErr.INVALID_IMAGE_HEADER_MAGIC), req.image);
  if (sha.length > 32) return step.fail(imgErr(ImgErr.INVALID_HASH), req.image);
  const session = model.currentUpload;
  // Resume: answer with the session's offset, write nothing (no cmd_status, as Zephyr).
  if (sha.length > 0 && session && bytesEqual(session.sha, sha)) return { resume: { off: session.off } };
  let slot: number;
  try {
    slot = await model.uploadSlot(req.image);
  } catch (e) {
    return step.fail(e, req.image, ImgErr.NO_FREE_SLOT);
  }
  if (req.len > model.slotSize) return step.fail(imgErr(ImgErr.INVALID_IMAGE_TOO_LARGE), req.image);
  if (req.upgrade) {
    try {
      await model.checkUpgrade(decodeImageHeader(data).version);
    } catch (e) {
      return step.fail(e, req.image, ImgErr.VERSION_GET_FAILED);
    }
  }
  return { image: req.image, slot, size: req.len, sha };
}

/**
 * Starts a new upload after the hooks: DFU_STARTED, the instant match of an image already in the
 * slot (CONFIG_IMG_ENABLE_IMAGE_CHECK with a full `sha`), else the erase. Returns a response
 * when the upload is already complete.
 */
async function startUpload(ctx: ImageContext, up: NewUpload, step: UploadStep): Promise<Response | undefined> {
  const { server, model } = ctx;
  step.status = UploadStatus.START;
  await server.hooks.notify('img_dfu_started', { image: up.image });
  if (ctx.imageCheck && up.sha.length === 32) {
    const existing = await model.slotDigest(up.slot, Math.min(up.size, model.slotSize));
    if (bytesEqual(existing, up.sha)) {
      model.abortUpload();
      step.status = UploadStatus.COMPLETE;
      return step.finish({ off: up.size, match: true });
    }
  }
  try {
    await model.openUpload(up.image, up.size, { slot: up.slot, sha: up.sha, ...(up.owner !== undefined ? { owner: up.owner } : {}) });
  } catch (e) {
    return step.fail(e, up.image, ImgErr.FLASH_ERASE_FAILED);
  }
  return undefined;
}

/** 1/1 upload (img_mgmt_upload): one chunk. */
async function imageUpload(ctx: ImageContext, req: UploadRequest, peer: string): Promise<Response> {
  const { server, model } = ctx;
  const step = new UploadStep(ctx);
  if (req.off === undefined) return step.fail(imgErr(ImgErr.INVALID_OFFSET), req.image);
  const off = req.off;
  const data = req.data;
  let fresh: NewUpload | undefined;
  if (off === 0) {
    const inspected = await inspectFirstChunk(ctx, req, step);
    // The session belongs to the peer whose first chunk started or resumed it. Zephyr's session
    // has no owner, so two uploaders each follow the other's offset and mix their images in the
    // slot; here a later chunk from another peer answers MGMT_ERR_EBUSY and leaves the session
    // alone (a first chunk still starts a new upload or resumes, from anyone, as on Zephyr).
    model.claimUpload(peer);
    if ('resume' in inspected) return inspected.resume;
    fresh = { ...inspected, owner: peer };
  } else {
    const s = model.currentUpload;
    if (s?.owner !== undefined && s.owner !== peer) throw MgmtError.rc(MgmtErr.EBUSY, 'an image upload from another peer is in progress');
    // Wrong offset (or no session after a reset): drop the data, answer the expected offset.
    if (!s || off !== s.off) return { off: s?.off ?? 0 };
    if (off + data.length > s.size) return step.fail(imgErr(ImgErr.INVALID_IMAGE_DATA_OVERRUN), s.image);
  }
  const { image, size } = fresh ?? model.currentUpload!;

  // Application check hook (MGMT_EVT_OP_IMG_MGMT_DFU_CHUNK).
  const rejected = hookError(await server.hooks.notify('img_dfu_chunk', { image, off, len: data.length, size }));
  if (rejected) return step.fail(rejected, image);
  if (fresh) {
    const done = await startUpload(ctx, fresh, step);
    if (done) return done;
  }
  const s = model.currentUpload!;
  let match = false;
  const last = data.length > 0 && s.off + data.length === s.size;
  let next = s.off;
  if (data.length > 0) {
    try {
      await model.writeUpload(off, data);
    } catch (e) {
      step.status = UploadStatus.COMPLETE;
      return step.fail(e, image, ImgErr.FLASH_WRITE_FAILED);
    }
    next = off + data.length;
    if (last) {
      const done = await model.finishUpload();
      match = s.sha.length === 32 && bytesEqual(done.sha256, s.sha);
      step.status = UploadStatus.COMPLETE;
      await server.hooks.notify('img_dfu_pending', { image });
    }
  }
  const rsp: Response = { off: next };
  if (ctx.imageCheck && last) rsp['match'] = match;
  return step.finish(rsp);
}
