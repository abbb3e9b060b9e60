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
 * - 1/1 upload: one RAM session `{slot, off, size, sha}` as `g_img_mgmt_state`; the request is
 *   decoded leniently like zcbor_map_decode_bulk (unknown keys skipped, wrong types rc 3) so that a
 *   missing `off` answers INVALID_OFFSET (20), not rc 3. First chunk: data < 32 bytes → 22, no
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
import { MgmtErr } from '../../core/error-codes.ts';
import { McuMgrError } from '../../core/errors.ts';
import { bytesEqual } from '../../core/bytes.ts';
import { isCborMap } from '../../core/cbor.ts';
import { IMAGE_MAGIC, decodeImageHeader } from '../../image/index.ts';
import { MgmtError } from '../errors.ts';
import type { HookResult } from '../hooks.ts';
import { McubootModel, ImgErr, type BootReport, type McubootModelOptions } from '../mcuboot/index.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
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

interface UploadSession {
  image: number;
  slot: number;
  off: number;
  size: number;
  sha: Uint8Array;
}

interface UploadRequest {
  image: number;
  data: Uint8Array | undefined;
  len: number | undefined;
  off: number | undefined;
  sha: Uint8Array;
  upgrade: boolean;
}

const models = new WeakMap<SmpServer, McubootModel>();

/** The MCUboot model behind a server's image group (for the CLI, tests and other groups). */
export function imageModelOf(server: SmpServer): McubootModel | undefined {
  return models.get(server);
}

const imgErr = (rc: number): MgmtError => MgmtError.group(Group.IMAGE, rc);

function hookError(r: HookResult): MgmtError | undefined {
  if (!r) return undefined;
  return 'group' in r ? MgmtError.group(r.group, r.rc) : MgmtError.rc(r.rc);
}

/** zcbor_map_decode_bulk for the upload request: unknown keys skipped, a wrong type is rc 3. */
function decodeUpload(body: unknown): UploadRequest {
  if (!isCborMap(body)) throw MgmtError.rc(MgmtErr.EINVAL, 'upload request is not a map');
  const uint = (k: string): number | undefined => {
    const v = body[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw MgmtError.rc(MgmtErr.EINVAL, `${k} must be an unsigned integer`);
    return v;
  };
  const bstr = (k: string): Uint8Array | undefined => {
    const v = body[k];
    if (v === undefined) return undefined;
    if (!(v instanceof Uint8Array)) throw MgmtError.rc(MgmtErr.EINVAL, `${k} must be a byte string`);
    return v;
  };
  const upgrade = body['upgrade'];
  if (upgrade !== undefined && typeof upgrade !== 'boolean') throw MgmtError.rc(MgmtErr.EINVAL, 'upgrade must be a boolean');
  const image = uint('image') ?? 0;
  if (image > 0xffffffff) throw MgmtError.rc(MgmtErr.EINVAL, 'image must be a uint32');
  return { image, data: bstr('data'), len: uint('len'), off: uint('off'), sha: bstr('sha') ?? new Uint8Array(0), upgrade: upgrade === true };
}

/** Builds the image group for a server with the given options. */
export function imageGroupFactory(options: ImageGroupOptions = {}): (server: SmpServer) => Promise<MgmtGroup> {
  return (server) => createImageGroup(server, options);
}

export async function createImageGroup(server: SmpServer, options: ImageGroupOptions = {}): Promise<MgmtGroup> {
  const model = await McubootModel.open({ ...options, dir: options.dir ?? join(server.dataDir, 'mcuboot') });
  models.set(server, model);
  const frugal = options.frugalList ?? false;
  const imageCheck = options.imageCheck ?? true;
  let session: UploadSession | undefined;

  // A device without a valid primary image stays in the bootloader: at power-on the emulator
  // refuses to start; after a reset the server reports it through onError.
  server.onBoot(async () => {
    session = undefined;
    const report: BootReport = await model.boot();
    // Single slot: the SMP server is MCUboot's serial recovery, which serves without an application.
    if (!report.ok && model.mode !== 'single-slot') {
      const bad = report.images.filter((i) => !i.primaryValid).map((i) => i.image);
      throw new McuMgrError('DEVICE_STATE', `MCUboot: no bootable image in the primary slot of image ${bad.join(', ')} (the device stays in the bootloader)`);
    }
  });
  server.onClose(() => model.close());

  const stateBody = async (): Promise<Record<string, unknown>> => {
    const list = await model.imageStates();
    const images: Record<string, unknown>[] = [];
    for (const s of list) {
      const entry: Record<string, unknown> = {};
      if (model.images > 1) entry['image'] = s.image;
      entry['slot'] = s.slot;
      entry['version'] = s.version;
      entry['hash'] = s.hash;
      for (const k of ['bootable', 'pending', 'confirmed', 'active', 'permanent'] as const) {
        if (!frugal || s[k]) entry[k] = s[k];
      }
      const hooked = await server.hooks.notify('img_slot_state', { image: s.image, slot: s.slot, entry });
      const err = hookError(hooked);
      if (err) throw err;
      images.push(entry);
    }
    return frugal ? { images } : { images, splitStatus: 0 };
  };

  const stopped = async (image: number): Promise<void> => {
    await server.hooks.notify('img_dfu_stopped', { image });
  };

  const upload = async (body: unknown): Promise<Record<string, unknown>> => {
    const req = decodeUpload(body);
    const data = req.data ?? new Uint8Array(0);
    let status: number = UploadStatus.ONGOING;
    const cmdStatus = (): Promise<HookResult> => server.hooks.notify('cmd_status', { group: Group.IMAGE, id: commands.image.upload.id, status });
    /** Error exit (Zephyr's `end:` with rc ≠ 0): cmd_status, DFU_STOPPED, session reset. */
    const fail = async (e: unknown, image: number, fallback: number): Promise<never> => {
      // Storage failures become the img_mgmt error of the step (`fallback`); others propagate.
      const err = e instanceof MgmtError ? e : fallback !== 0 ? imgErr(fallback) : e;
      session = undefined;
      model.abortUpload();
      await cmdStatus();
      await stopped(image);
      throw err;
    };
    const finish = async (rsp: Record<string, unknown>): Promise<Record<string, unknown>> => {
      await cmdStatus();
      return rsp;
    };

    // ---- img_mgmt_upload_inspect
    if (req.off === undefined) return fail(imgErr(ImgErr.INVALID_OFFSET), req.image, 0);
    let newSession: UploadSession | undefined;
    if (req.off === 0) {
      if (data.length < 32) return fail(imgErr(ImgErr.INVALID_IMAGE_HEADER), req.image, 0);
      if (req.len === undefined) return fail(imgErr(ImgErr.INVALID_LENGTH), req.image, 0);
      if (new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) !== IMAGE_MAGIC) return fail(imgErr(ImgErr.INVALID_IMAGE_HEADER_MAGIC), req.image, 0);
      if (req.sha.length > 32) return fail(imgErr(ImgErr.INVALID_HASH), req.image, 0);
      if (req.sha.length > 0 && session && bytesEqual(session.sha, req.sha)) {
        // Resume: answer with the session's offset, write nothing (no cmd_status, as Zephyr).
        return { off: session.off };
      }
      let slot: number;
      try {
        slot = await model.uploadSlot(req.image);
      } catch (e) {
        return fail(e, req.image, ImgErr.NO_FREE_SLOT);
      }
      if (req.len > model.slotSize) return fail(imgErr(ImgErr.INVALID_IMAGE_TOO_LARGE), req.image, 0);
      if (req.upgrade) {
        try {
          await model.checkUpgrade(decodeImageHeader(data).version);
        } catch (e) {
          return fail(e, req.image, ImgErr.VERSION_GET_FAILED);
        }
      }
      newSession = { image: req.image, slot, off: 0, size: req.len, sha: req.sha.slice() };
    } else {
      const s = session;
      // Wrong offset (or no session after a reset): drop the data, answer the expected offset.
      if (!s || req.off !== s.off) return { off: s?.off ?? 0 };
      if (req.off + data.length > s.size) return fail(imgErr(ImgErr.INVALID_IMAGE_DATA_OVERRUN), s.image, 0);
    }
    const image = newSession?.image ?? session!.image;

    // ---- application check hook (MGMT_EVT_OP_IMG_MGMT_DFU_CHUNK)
    const size = newSession?.size ?? session!.size;
    const rejected = hookError(await server.hooks.notify('img_dfu_chunk', { image, off: req.off, len: data.length, size }));
    if (rejected) return fail(rejected, image, 0);

    let match = false;
    let last = false;
    if (newSession) {
      status = UploadStatus.START;
      session = newSession;
      await server.hooks.notify('img_dfu_started', { image });
      if (imageCheck && newSession.sha.length === 32) {
        const existing = await model.slotDigest(newSession.slot, Math.min(newSession.size, model.slotSize));
        if (bytesEqual(existing, newSession.sha)) {
          session = undefined;
          status = UploadStatus.COMPLETE;
          return finish({ off: newSession.size, match: true });
        }
      }
      try {
        await model.openUpload(newSession.image, newSession.size);
      } catch (e) {
        return fail(e, image, ImgErr.FLASH_ERASE_FAILED);
      }
    }
    const s = session!;
    if (data.length > 0) {
      last = s.off + data.length === s.size;
      try {
        await model.writeUpload(req.off, data);
      } catch (e) {
        status = UploadStatus.COMPLETE;
        return fail(e, image, ImgErr.FLASH_WRITE_FAILED);
      }
      s.off += data.length;
      if (s.off === s.size) {
        const done = await model.finishUpload();
        match = s.sha.length === 32 && bytesEqual(done.sha256, s.sha);
        session = undefined;
        status = UploadStatus.COMPLETE;
        await server.hooks.notify('img_dfu_pending', { image });
      }
    }
    const rsp: Record<string, unknown> = { off: s.off };
    if (imageCheck && last) rsp['match'] = match;
    return finish(rsp);
  };

  const group = defineGroup(Group.IMAGE, GROUP_NAMES[Group.IMAGE]!, [
    handle(commands.image.state, () => stateBody()),
    handle(commands.image.stateWrite, async ({ body }) => {
      const confirm = body.confirm ?? false;
      await model.setNextBoot(body.hash, confirm);
      if (confirm) {
        const slot = body.hash && body.hash.length > 0 ? await model.findSlotByHash(body.hash) : model.activeSlot(model.activeImage);
        if (slot === model.activeSlot(slot >> 1)) await server.hooks.notify('img_dfu_confirmed', { image: slot >> 1, slot: slot % 2 });
      }
      return stateBody();
    }),
    handle(commands.image.erase, async ({ body }) => {
      session = undefined;
      try {
        await model.eraseSlot(body.slot);
      } catch (e) {
        await stopped(model.activeImage);
        throw e;
      }
      return {};
    }),
    handle(commands.image.slotInfo, () => ({
      images: model.slotInfo().map((i) => ({
        image: i.image,
        slots: i.slots.map((s) => (s.uploadImageId === undefined ? { slot: s.slot, size: s.size } : { slot: s.slot, size: s.size, upload_image_id: s.uploadImageId })),
        ...(options.reportMaxImageSize ? { max_image_size: model.maxImageSize } : {}),
      })),
    })),
  ]);
  // Upload decodes its request itself (see decodeUpload), so it is registered without the schema.
  group.handlers[commands.image.upload.id] = { write: { fn: ({ body }) => upload(body) } };
  return group;
}
