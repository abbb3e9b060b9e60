/**
 * The MCUboot model in every mode (swap, overwrite-only with and without downgrade prevention,
 * direct-XIP with and without revert, RAM load, single slot), multi-image dependencies, security
 * counters and images this bootloader is not built for: which slot boots, what test / confirm /
 * erase may do and which error answers a forbidden request. Real slot files in temp directories.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MgmtError } from '../src/server/errors.ts';
import { McubootModel, ImgErr, type McubootModelOptions, type ImageSlotState } from '../src/server/mcuboot/index.ts';
import { ImageFlag, buildImage, parseImage, type BuildImageOptions } from '../src/image/index.ts';

const dirs: string[] = [];
const models: McubootModel[] = [];
afterEach(async () => {
  for (const m of models.splice(0)) await m.close().catch(() => {});
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const SLOT = 0x40000;
async function openModel(extra: Partial<McubootModelOptions>): Promise<McubootModel> {
  const d = await mkdtemp(join(tmpdir(), 'mcuboot-modes-'));
  dirs.push(d);
  const m = await McubootModel.open({ dir: d, slotSize: SLOT, sectorSize: 0x8000, ...extra });
  models.push(m);
  await m.boot();
  return m;
}

async function image(version: string, extra: Partial<BuildImageOptions> = {}): Promise<Uint8Array> {
  const payload = new Uint8Array(12_000).map((_, i) => (i * 7 + version.charCodeAt(0) * 3 + version.length) & 0xff);
  return (await buildImage({ payload, version, ...extra })).bytes;
}

async function upload(m: McubootModel, bytes: Uint8Array, imageNo = 0): Promise<Uint8Array> {
  await m.openUpload(imageNo, bytes.length);
  await m.writeUpload(0, bytes);
  await m.finishUpload();
  return parseImage(bytes).hash!;
}

function summary(states: ImageSlotState[]): string[] {
  return states.map((s) => `${s.image}/${s.slot} ${s.version} ${(['active', 'confirmed', 'pending', 'permanent'] as const).filter((k) => s[k]).join(',') || '-'}`);
}

function rejectsWith(group: number | undefined, rc: number) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof MgmtError, `expected MgmtError, got ${String(e)}`);
    assert.equal(e.group, group);
    assert.equal(e.rc, rc);
    return true;
  };
}

describe('MCUboot modes: overwrite-only', () => {
  it('a test is installed for good: copied over the primary, no revert, secondary erased', async () => {
    const m = await openModel({ mode: 'overwrite-only' });
    assert.equal(m.modeNumber, 2);
    const h = await upload(m, await image('2.0.0'));
    await m.setNextBoot(h, false);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 2.0.0 pending']);
    const r = await m.boot();
    assert.equal(r.images[0]!.performed, 'overwrite');
    assert.deepEqual(summary(await m.imageStates()), ['0/0 2.0.0 active,confirmed']);
    // Unconfirmed, reset again: no revert in this mode.
    assert.equal((await m.boot()).images[0]!.version, '2.0.0');
  });

  it('with downgrade prevention an older image is erased, not installed; an equal version is allowed', async () => {
    const m = await openModel({ mode: 'overwrite-only', downgradePrevention: true });
    assert.equal(m.noDowngrade, true);
    await m.setNextBoot(await upload(m, await image('0.9.0')), true);
    const r = await m.boot();
    assert.match(r.images[0]!.secondaryRejected ?? '', /downgrade prevented/);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed']);
    await m.setNextBoot(await upload(m, await image('1.0.0', { payload: new Uint8Array(100).fill(1) })), true);
    assert.equal((await m.boot()).images[0]!.performed, 'overwrite');
  });
});

describe('MCUboot modes: swap', () => {
  it('swap-scratch, swap-move and swap-offset report their numbers; move and offset keep a spare sector', async () => {
    for (const [mode, n] of [['swap-scratch', 1], ['swap-move', 3], ['swap-offset', 9]] as const) {
      const m = await openModel({ mode });
      assert.equal(m.modeNumber, n);
      assert.equal(m.maxImageSize, SLOT - m.trailerSize - (mode === 'swap-scratch' ? 0 : 0x8000));
    }
  });

  it('with downgrade prevention a test of an older image is dropped at boot', async () => {
    const m = await openModel({ mode: 'swap-scratch', downgradePrevention: true });
    await m.setNextBoot(await upload(m, await image('0.5.0')), false);
    const r = await m.boot();
    assert.match(r.images[0]!.blocked ?? '', /downgrade/);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed']);
  });
});

describe('MCUboot modes: direct-XIP', () => {
  it('without revert: the newest valid slot runs; state write is not registered (rc 8); uploads go to the other slot', async () => {
    const m = await openModel({ mode: 'direct-xip' });
    assert.equal(m.modeNumber, 4);
    const h2 = await upload(m, await image('2.0.0'));
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 2.0.0 pending,permanent']);
    await assert.rejects(m.setNextBoot(h2, false), rejectsWith(undefined, 8));
    await assert.rejects(m.setNextBoot(undefined, true), rejectsWith(undefined, 8));
    const r = await m.boot();
    assert.equal(r.images[0]!.performed, 'slot-1');
    assert.equal(m.activeSlot(0), 1);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 -', '0/1 2.0.0 active,confirmed']);
    // The next upload goes to slot 0; the running slot cannot be erased.
    assert.equal(await m.uploadSlot(0), 0);
    await assert.rejects(m.eraseSlot(1), rejectsWith(1, ImgErr.NO_FREE_SLOT));
    // A broken newer image is erased at boot and the older valid one runs.
    const bad = await image('3.0.0');
    bad[1000] = bad[1000]! ^ 0xff;
    await upload(m, bad);
    const r2 = await m.boot();
    assert.match(r2.images[0]!.secondaryRejected ?? '', /hash mismatch: erased/);
    assert.equal(r2.images[0]!.version, '2.0.0');
    assert.equal(m.activeSlot(0), 1);
  });

  it('a ROM_FIXED image built for the other slot is skipped', async () => {
    const m = await openModel({ mode: 'direct-xip' });
    await upload(m, await image('2.0.0', { flags: ImageFlag.ROM_FIXED, loadAddress: m.slotAddress(0) }));
    const r = await m.boot();
    assert.equal(r.images[0]!.version, '1.0.0');
    assert.match(r.images[0]!.secondaryRejected ?? '', /ROM_FIXED/);
    await upload(m, await image('2.0.0', { flags: ImageFlag.ROM_FIXED, loadAddress: m.slotAddress(1) }));
    assert.equal((await m.boot()).images[0]!.version, '2.0.0');
  });

  it('with revert: test, boot once, revert unless confirmed; confirm keeps it; test of the running slot is 33', async () => {
    const m = await openModel({ mode: 'direct-xip-revert' });
    assert.equal(m.modeNumber, 5);
    const h2 = await upload(m, await image('2.0.0'));
    // Uploaded but not marked: not bootable (no trailer magic), nothing pending.
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 2.0.0 -']);
    await assert.rejects(m.setNextBoot(undefined, false), rejectsWith(1, ImgErr.INVALID_HASH));
    await m.setNextBoot(h2, false);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 2.0.0 pending']);
    assert.equal((await m.boot()).images[0]!.performed, 'slot-1');
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 confirmed', '0/1 2.0.0 active']);
    await assert.rejects(m.setNextBoot(h2, false), rejectsWith(1, ImgErr.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED));
    // Reset without confirming: the tried slot is erased, the old image runs again.
    const r = await m.boot();
    assert.equal(r.images[0]!.version, '1.0.0');
    assert.match(r.images[0]!.secondaryRejected ?? '', /tried and not confirmed/);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed']);
    // Again, and confirm this time.
    const h3 = await upload(m, await image('3.0.0'));
    await m.setNextBoot(h3, false);
    await m.boot();
    await m.setNextBoot(undefined, true);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 -', '0/1 3.0.0 active,confirmed']);
    assert.equal((await m.boot()).images[0]!.version, '3.0.0');
  });
});

describe('MCUboot modes: RAM load and single slot', () => {
  it('RAM load boots the newest valid image; state write is rc 8', async () => {
    const m = await openModel({ mode: 'ram-load' });
    assert.equal(m.modeNumber, 6);
    await upload(m, await image('1.5.0'));
    assert.equal((await m.boot()).images[0]!.version, '1.5.0');
    await assert.rejects(m.setNextBoot(undefined, true), rejectsWith(undefined, 8));
  });

  it('single slot (serial recovery): uploads overwrite slot 0, test/confirm/erase are rc 8, a broken image leaves the loader', async () => {
    const m = await openModel({ mode: 'single-slot' });
    assert.equal(m.modeNumber, 0);
    assert.deepEqual(m.slotInfo(), [{ image: 0, slots: [{ slot: 0, size: SLOT, uploadImageId: 0 }] }]);
    assert.equal(await m.uploadSlot(0), 0);
    await assert.rejects(m.uploadSlot(1), rejectsWith(undefined, 3));
    await assert.rejects(m.eraseSlot(), rejectsWith(undefined, 8));
    await assert.rejects(m.setNextBoot(undefined, true), rejectsWith(undefined, 8));
    const v2 = await image('2.0.0');
    await m.openUpload(0, v2.length);
    await m.writeUpload(0, v2.subarray(0, 5000));
    assert.equal((await m.boot()).ok, false, 'a partial image does not boot');
    await upload(m, v2);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 2.0.0 active,confirmed']);
    assert.equal((await m.boot()).images[0]!.version, '2.0.0');
  });

  it('equivalent-slot modes take one image only', async () => {
    await assert.rejects(openModel({ mode: 'direct-xip', images: 2 }), /one image/);
  });
});

describe('MCUboot: multi-image dependencies and security counters', () => {
  it('an image whose dependency is unmet is not swapped until the other image is there too', async () => {
    const m = await openModel({ images: 2 });
    const app = await upload(m, await image('2.0.0', { dependencies: [{ imageId: 1, minVersion: { major: 2, minor: 0, revision: 0, build: 0 } }] }), 0);
    await m.setNextBoot(app, false);
    const r = await m.boot();
    assert.match(r.images[0]!.blocked ?? '', /needs image 1 >= 2\.0\.0, which would be 1\.0\.0/);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 2.0.0 pending', '1/0 1.0.0 active,confirmed']);
    const net = await upload(m, await image('2.0.0', { payload: new Uint8Array(3000).fill(9) }), 1);
    await m.setNextBoot(net, false);
    const r2 = await m.boot();
    assert.deepEqual(r2.images.map((i) => [i.performed, i.version]), [['test', '2.0.0'], ['test', '2.0.0']]);
  });

  it('with hardware rollback protection a lower security counter is refused once a higher one is confirmed', async () => {
    const m = await openModel({ hwRollbackProtection: true });
    assert.deepEqual(m.storedSecurityCounters, [0x01000000]);
    const noCounter = await upload(m, await image('1.1.0'));
    await m.setNextBoot(noCounter, false);
    assert.match((await m.boot()).images[0]!.secondaryRejected ?? '', /no security counter/);
    await m.setNextBoot(await upload(m, await image('3.0.0', { securityCounter: 'auto' })), false);
    await m.boot();
    assert.deepEqual(m.storedSecurityCounters, [0x01000000], 'not raised while in test');
    await m.setNextBoot(undefined, true);
    await m.boot();
    assert.deepEqual(m.storedSecurityCounters, [0x03000000]);
    await m.setNextBoot(await upload(m, await image('2.0.0', { securityCounter: 'auto' })), true);
    const r = await m.boot();
    assert.match(r.images[0]!.secondaryRejected ?? '', /security counter 33554432 lower than the stored 50331648/);
    assert.equal(r.images[0]!.version, '3.0.0');
  });

  it('encrypted and compressed images are refused as by a bootloader built without those features', async () => {
    const m = await openModel({});
    for (const [flags, why] of [[ImageFlag.ENCRYPTED_AES128, /MCUBOOT_ENC_IMAGES/], [ImageFlag.COMPRESSED_LZMA2, /MCUBOOT_DECOMPRESS_IMAGES/]] as const) {
      await m.setNextBoot(await upload(m, await image('2.0.0', { flags })), false);
      const r = await m.boot();
      assert.match(r.images[0]!.secondaryRejected ?? '', why);
      assert.equal(r.images[0]!.version, '1.0.0');
    }
  });
});
