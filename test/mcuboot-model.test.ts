import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { McuMgrError } from '../src/core/errors.ts';
import { ImgMgmtErr } from '../src/core/error-codes.ts';
import { MgmtError } from '../src/server/errors.ts';
import { McubootModel, ImgErr, type McubootModelOptions, type ImageSlotState } from '../src/server/mcuboot/index.ts';
import { SwapType, buildImage, loadSigningKey, parseImage, type BuildImageOptions } from '../src/image/index.ts';

const dirs: string[] = [];
const models: McubootModel[] = [];
afterEach(async () => {
  for (const m of models.splice(0)) await m.close().catch(() => {});
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const SLOT = 0x40000; // 256 KiB slots keep the tests quick; the default is 1.5 MiB
async function openModel(extra: Partial<McubootModelOptions> = {}, dir?: string): Promise<McubootModel> {
  const d = dir ?? (await mkdtemp(join(tmpdir(), 'mcuboot-')));
  if (!dir) dirs.push(d);
  const m = await McubootModel.open({ dir: d, slotSize: SLOT, sectorSize: 0x8000, ...extra });
  models.push(m);
  return m;
}

async function image(version: string, size = 20_000, extra: Partial<BuildImageOptions> = {}): Promise<Uint8Array> {
  const payload = new Uint8Array(size).map((_, i) => (i * 13 + version.length * 7 + version.charCodeAt(0)) & 0xff);
  return (await buildImage({ payload, version, ...extra })).bytes;
}

async function upload(m: McubootModel, bytes: Uint8Array, imageNo = 0, chunk = 4096): Promise<Uint8Array> {
  await m.openUpload(imageNo, bytes.length);
  for (let off = 0; off < bytes.length; off += chunk) await m.writeUpload(off, bytes.subarray(off, off + chunk));
  const { sha256 } = await m.finishUpload();
  assert.deepEqual(sha256, new Uint8Array(createHash('sha256').update(bytes).digest()));
  return parseImage(bytes).hash!;
}

function imgErr(rc: number) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof MgmtError, `expected MgmtError, got ${String(e)}`);
    assert.equal(e.group, 1);
    assert.equal(e.rc, rc, `expected img err ${rc}, got ${e.rc}`);
    return true;
  };
}

function summary(states: ImageSlotState[]): string[] {
  return states.map((s) => {
    const f = (['active', 'confirmed', 'pending', 'permanent'] as const).filter((k) => s[k]);
    return `${s.image}/${s.slot} ${s.version} ${f.join(',') || '-'}`;
  });
}

describe('MCUboot model: first start and boot', () => {
  it('a new device has the 1.0.0 factory image, active and confirmed, and boots it', async () => {
    const m = await openModel();
    const r = await m.boot();
    assert.equal(r.ok, true);
    assert.deepEqual(r.images, [{ image: 0, requested: 'none', performed: 'none', primaryValid: true, version: '1.0.0' }]);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed']);
    assert.equal(await m.swapType(0), SwapType.NONE);
    assert.deepEqual(m.slotInfo(), [{ image: 0, slots: [{ slot: 0, size: SLOT }, { slot: 1, size: SLOT, uploadImageId: 0 }] }]);
  });

  it('the default slot is 1.5 MiB and holds a 1 MiB image plus trailer', async () => {
    const m = await openModel({ slotSize: undefined, sectorSize: undefined });
    assert.equal(m.slotSize, 0x180000);
    assert.ok(m.maxImageSize > 1024 * 1024 + 0x200 + 200);
  });

  it('state is durable: reopening keeps slots and trailers; a different slot size is refused', async () => {
    const d = await mkdtemp(join(tmpdir(), 'mcuboot-'));
    dirs.push(d);
    const m = await openModel({}, d);
    await m.boot();
    const h = await upload(m, await image('2.0.0'));
    await m.setNextBoot(h, false);
    await m.close();
    const again = await openModel({}, d);
    assert.deepEqual(summary(await again.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 2.0.0 pending']);
    await again.close();
    await assert.rejects(McubootModel.open({ dir: d, slotSize: SLOT * 2 }), (e: unknown) => e instanceof McuMgrError && e.code === 'DEVICE_STATE');
    const layout = JSON.parse(await readFile(join(d, 'layout.json'), 'utf8')) as { slotSize: number };
    assert.equal(layout.slotSize, SLOT);
  });
});

describe('MCUboot model: test, revert, confirm, permanent (B3 typical sequence)', () => {
  it('test → boot runs the new image unconfirmed → reset without confirm reverts', async () => {
    const m = await openModel();
    await m.boot();
    const h2 = await upload(m, await image('2.0.0'));
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 2.0.0 -']);
    await m.setNextBoot(h2, false);
    assert.equal(await m.swapType(0), SwapType.TEST);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 2.0.0 pending']);

    const r = await m.boot();
    assert.equal(r.images[0]!.performed, 'test');
    assert.equal(r.images[0]!.version, '2.0.0');
    assert.equal(await m.swapType(0), SwapType.REVERT);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 2.0.0 active', '0/1 1.0.0 confirmed']);

    const r2 = await m.boot();
    assert.equal(r2.images[0]!.performed, 'revert');
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 2.0.0 -']);
    assert.equal(await m.swapType(0), SwapType.NONE);
    assert.equal((await m.boot()).images[0]!.performed, 'none');
  });

  it('test → boot → confirm keeps the new image across resets', async () => {
    const m = await openModel();
    await m.boot();
    const h2 = await upload(m, await image('2.0.0'));
    await m.setNextBoot(h2, false);
    await m.boot();
    await m.setNextBoot(undefined, true);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 2.0.0 active,confirmed', '0/1 1.0.0 -']);
    assert.equal(await m.swapType(0), SwapType.NONE);
    assert.equal((await m.boot()).images[0]!.version, '2.0.0');
    assert.equal((await m.boot()).images[0]!.version, '2.0.0');
  });

  it('confirm of the secondary = permanent: pending+permanent, then active and confirmed, no revert', async () => {
    const m = await openModel();
    await m.boot();
    const h3 = await upload(m, await image('3.0.0'));
    await m.setNextBoot(h3, true);
    assert.equal(await m.swapType(0), SwapType.PERM);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 3.0.0 pending,permanent']);
    await m.setNextBoot(h3, true); // confirm of the next-boot slot: no-op
    await assert.rejects(m.setNextBoot(h3, false), imgErr(ImgErr.IMAGE_ALREADY_PENDING));
    await assert.rejects(m.setNextBoot(undefined, true), imgErr(ImgErr.IMAGE_ALREADY_PENDING));
    const r = await m.boot();
    assert.equal(r.images[0]!.performed, 'perm');
    assert.deepEqual(summary(await m.imageStates()), ['0/0 3.0.0 active,confirmed', '0/1 1.0.0 -']);
    assert.equal((await m.boot()).images[0]!.version, '3.0.0');
  });
});

describe('MCUboot model: every state-write refusal (smp-spec §3.2, B3)', () => {
  it('slot selection: no hash + test → 24, bad length → 24, unknown hash → 8, empty hash + confirm = running slot', async () => {
    const m = await openModel();
    await m.boot();
    await assert.rejects(m.setNextBoot(undefined, false), imgErr(ImgErr.INVALID_HASH));
    await assert.rejects(m.setNextBoot(new Uint8Array(31), true), imgErr(ImgErr.INVALID_HASH));
    await assert.rejects(m.setNextBoot(new Uint8Array(32), false), imgErr(ImgErr.HASH_NOT_FOUND));
    await m.setNextBoot(new Uint8Array(0), true); // confirm the running image: no-op under NONE
    assert.equal(await m.swapType(0), SwapType.NONE);
  });

  it('test of the active slot → 33 (e.g. the same image as the running one)', async () => {
    const m = await openModel();
    await m.boot();
    const [s0] = await m.imageStates();
    await assert.rejects(m.setNextBoot(s0!.hash, false), imgErr(ImgErr.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED));
    // An uploaded copy of the running image resolves to slot 0 (first match wins): still 33.
    await upload(m, await readSlotBytes(m, 0));
    assert.equal(await m.findSlotByHash(s0!.hash), 0);
    await assert.rejects(m.setNextBoot(s0!.hash, false), imgErr(ImgErr.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED));
  });

  it('TEST pending: test again is a no-op, confirm of either slot → 28', async () => {
    const m = await openModel();
    await m.boot();
    const h2 = await upload(m, await image('2.0.0'));
    await m.setNextBoot(h2, false);
    await m.setNextBoot(h2, false);
    await assert.rejects(m.setNextBoot(h2, true), imgErr(ImgErr.IMAGE_ALREADY_PENDING));
    await assert.rejects(m.setNextBoot(undefined, true), imgErr(ImgErr.IMAGE_ALREADY_PENDING));
  });

  it('REVERT (running a test image): confirm of the old image is a no-op, any test → 28, confirm active writes', async () => {
    const m = await openModel();
    await m.boot();
    const h2 = await upload(m, await image('2.0.0'));
    await m.setNextBoot(h2, false);
    await m.boot();
    const states = await m.imageStates();
    const old = states.find((s) => s.slot === 1)!;
    await m.setNextBoot(old.hash, true);
    assert.equal(await m.swapType(0), SwapType.REVERT);
    await assert.rejects(m.setNextBoot(old.hash, false), imgErr(ImgErr.IMAGE_ALREADY_PENDING));
    await m.setNextBoot(h2, true);
    assert.equal(await m.swapType(0), SwapType.NONE);
  });

  it('boot_set_next on a secondary trailer with a bad magic → 23 (BOOT_EBADIMAGE)', async () => {
    // The active-slot variant (BOOT_EBADVECT → 29) cannot be reached through a state write in
    // swap mode: a confirm of the active slot is a no-op (NONE) or refused earlier (28).
    const m = await openModel();
    await m.boot();
    const h2 = await upload(m, await image('2.0.0'));
    await m.slot(1).write(SLOT - 16, new Uint8Array(16).fill(0x11));
    await assert.rejects(m.setNextBoot(h2, false), imgErr(ImgErr.INVALID_IMAGE_HEADER_MAGIC));
    assert.equal(await m.swapType(0), SwapType.NONE);
  });

  it('multi-image: confirming a non-running image → 32 unless allowed; testing it is fine', async () => {
    const m = await openModel({ images: 2 });
    await m.boot();
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '1/0 1.0.0 active,confirmed']);
    const h = await upload(m, await image('1.1.0'), 1);
    assert.equal(await m.findSlotByHash(h), 3);
    await assert.rejects(m.setNextBoot(h, true), imgErr(ImgErr.IMAGE_CONFIRMATION_DENIED));
    await m.setNextBoot(h, false);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '1/0 1.0.0 active,confirmed', '1/1 1.1.0 pending']);
    const r = await m.boot();
    assert.deepEqual(r.images.map((i) => i.performed), ['none', 'test']);

    const m2 = await openModel({ images: 2, allowConfirmNonActiveImage: 'secondary' });
    await m2.boot();
    const h2 = await upload(m2, await image('1.2.0'), 1);
    await m2.setNextBoot(h2, true);
    assert.equal(await m2.swapType(1), SwapType.PERM);
    const [, im1] = await m2.imageStates();
    await assert.rejects(m2.setNextBoot(im1!.hash, true), imgErr(ImgErr.IMAGE_CONFIRMATION_DENIED));
  });
});

async function readSlotBytes(m: McubootModel, abs: number): Promise<Uint8Array> {
  const v = await m.verifySlot(abs);
  assert.ok(!(v instanceof Error));
  return m.slot(abs).readCopy(0, v.image.size);
}

describe('MCUboot model: bootloader validation', () => {
  it('an image whose hash does not verify is accepted for test, then erased at boot and never run', async () => {
    const m = await openModel();
    await m.boot();
    const bad = await image('6.6.6');
    bad[0x200 + 100]! ^= 0xff;
    const h = await upload(m, bad);
    await m.setNextBoot(h, false);
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed', '0/1 6.6.6 pending']);
    const r = await m.boot();
    assert.equal(r.images[0]!.performed, 'none');
    assert.equal(r.images[0]!.secondaryRejected, 'hash mismatch');
    assert.equal(r.images[0]!.version, '1.0.0');
    assert.deepEqual(summary(await m.imageStates()), ['0/0 1.0.0 active,confirmed']);
    assert.equal(await m.slot(1).isErased(), true);
  });

  it('with keys configured: unsigned and wrongly signed images are refused, a signed one boots', async () => {
    const pair = (await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const key = await loadSigningKey(pair);
    const other = await loadSigningKey((await globalThis.crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair);
    const signedFactory = async (): Promise<Uint8Array> => image('1.0.0', 10_000, { signingKey: key });
    const m = await openModel({ keys: [key.publicKey], factoryImage: signedFactory });
    assert.equal((await m.boot()).ok, true);

    for (const [bytes, why] of [
      [await image('2.0.0'), /no-signature/],
      [await image('2.0.1', 20_000, { signingKey: other }), /no-trusted-key/],
    ] as const) {
      const h = await upload(m, bytes);
      await m.setNextBoot(h, false);
      const r = await m.boot();
      assert.match(r.images[0]!.secondaryRejected ?? '', why);
      assert.equal(r.images[0]!.version, '1.0.0');
    }
    const good = await image('2.1.0', 20_000, { signingKey: key });
    await m.setNextBoot(await upload(m, good), false);
    const r = await m.boot();
    assert.equal(r.images[0]!.performed, 'test');
    assert.equal(r.images[0]!.version, '2.1.0');
  });

  it('without keys, unsigned images boot (hash only)', async () => {
    const m = await openModel();
    await m.boot();
    await m.setNextBoot(await upload(m, await image('2.0.0')), true);
    assert.equal((await m.boot()).images[0]!.version, '2.0.0');
  });

  it('a pending slot with an erased header: trailer scrambled, no swap', async () => {
    const m = await openModel();
    await m.boot();
    const h = await upload(m, await image('2.0.0'));
    await m.setNextBoot(h, false);
    await m.slot(1).write(0, new Uint8Array(32).fill(0xff));
    const r = await m.boot();
    assert.equal(r.images[0]!.secondaryRejected, 'no image in the secondary slot');
    assert.equal(await m.swapType(0), SwapType.NONE);
  });

  it('a corrupted primary does not boot (MCUBOOT_VALIDATE_PRIMARY_SLOT)', async () => {
    const m = await openModel();
    await m.boot();
    const s0 = m.slot(0);
    const b = await s0.readCopy(0x300, 1);
    await s0.write(0x300, Uint8Array.of(b[0]! ^ 1));
    const r = await m.boot();
    assert.equal(r.ok, false);
    assert.equal(r.images[0]!.primaryValid, false);
    assert.equal(r.images[0]!.version, undefined);
  });

  it('an image too large for the image area is refused at boot', async () => {
    const m = await openModel();
    await m.boot();
    const big = await image('2.0.0', m.maxImageSize - 0x200 - 40 + 8);
    assert.ok(big.length > m.maxImageSize && big.length <= SLOT);
    await m.setNextBoot(await upload(m, big), false);
    const r = await m.boot();
    assert.ok(r.images[0]!.secondaryRejected);
    assert.equal(r.images[0]!.version, '1.0.0');
  });
});

describe('MCUboot model: erase, upload, slot info', () => {
  it('erase: default slot 1; active → 9; pending → 9; out of range → 14; erased slot is fine', async () => {
    const m = await openModel();
    await m.boot();
    await m.eraseSlot();
    const h = await upload(m, await image('2.0.0'));
    await m.eraseSlot(1);
    assert.equal(await m.slot(1).isErased(), true);
    await assert.rejects(m.eraseSlot(0), imgErr(ImgErr.NO_FREE_SLOT));
    await upload(m, await image('2.0.0'));
    await m.setNextBoot(h, false);
    await assert.rejects(m.eraseSlot(1), imgErr(ImgErr.NO_FREE_SLOT));
    await assert.rejects(m.eraseSlot(5), imgErr(ImgErr.INVALID_SLOT));
    await m.boot();
    await assert.rejects(m.eraseSlot(1), imgErr(ImgErr.NO_FREE_SLOT)); // revert target
  });

  it('ALLOW_ERASE_PENDING lets a pending slot be erased', async () => {
    const m = await openModel({ allowErasePending: true });
    await m.boot();
    await m.setNextBoot(await upload(m, await image('2.0.0')), false);
    await m.eraseSlot(1);
    assert.equal(await m.swapType(0), SwapType.NONE);
  });

  it('upload refusals: pending slot → 9, unknown image → 9, too large → 30, overrun → 31, no upload → 17', async () => {
    const m = await openModel();
    await m.boot();
    await assert.rejects(m.openUpload(3, 100), imgErr(ImgErr.NO_FREE_SLOT));
    await assert.rejects(m.openUpload(0, SLOT + 1), imgErr(ImgErr.INVALID_IMAGE_TOO_LARGE));
    await assert.rejects(m.writeUpload(0, new Uint8Array(4)), imgErr(ImgErr.FLASH_CONTEXT_NOT_SET));
    await m.openUpload(0, 100);
    await assert.rejects(m.writeUpload(90, new Uint8Array(11)), imgErr(ImgErr.INVALID_IMAGE_DATA_OVERRUN));
    assert.equal(m.currentUpload, undefined);
    await m.setNextBoot(await upload(m, await image('2.0.0')), false);
    await assert.rejects(m.openUpload(0, 100), imgErr(ImgErr.NO_FREE_SLOT));
  });

  it('slot digest and upgrade check', async () => {
    const m = await openModel();
    await m.boot();
    const bytes = await image('2.0.0');
    await upload(m, bytes);
    assert.deepEqual(await m.slotDigest(1, bytes.length), new Uint8Array(createHash('sha256').update(bytes).digest()));
    await m.checkUpgrade({ major: 1, minor: 0, revision: 1, build: 0 });
    await assert.rejects(m.checkUpgrade({ major: 1, minor: 0, revision: 0, build: 99 }), imgErr(ImgErr.CURRENT_VERSION_IS_NEWER));
  });

  it('the img_mgmt error numbers used match the shared table', () => {
    for (const [name, rc] of Object.entries(ImgErr)) assert.equal((ImgMgmtErr as Readonly<Record<string, number>>)[name], rc, name);
  });
});

describe('MCUboot model: img_mgmt read_info quirks', () => {
  it('erased → NO_IMAGE, other magic → 23, no TLVs → 4, no SHA256 → 8, the multiple-hash walk as Zephyr does it', async () => {
    const m = await openModel();
    await m.boot();
    assert.equal((await m.readInfo(1)).rc, ImgErr.NO_IMAGE);
    assert.equal((await m.readInfo(9)).rc, ImgErr.INVALID_SLOT);
    const s1 = m.slot(1);
    await s1.write(0, Uint8Array.of(1, 2, 3, 4));
    assert.equal((await m.readInfo(1)).rc, ImgErr.INVALID_IMAGE_HEADER_MAGIC);
    const plain = await image('2.0.0');
    const img = parseImage(plain);
    await s1.eraseAll();
    await s1.write(0, plain.subarray(0, img.layout.tlvOffset));
    assert.equal((await m.readInfo(1)).rc, ImgErr.NO_TLVS);
    const sha384 = (await buildImage({ payload: new Uint8Array(100), hashAlgorithm: 'sha384' })).bytes;
    await s1.eraseAll();
    await s1.write(0, sha384);
    assert.equal((await m.readInfo(1)).rc, ImgErr.HASH_NOT_FOUND);
    const hash = parseImage(plain).hash!;
    const two = (await buildImage({ payload: new Uint8Array(100), extraTlvs: [{ type: 0x10, value: hash }] })).bytes;
    await s1.eraseAll();
    await s1.write(0, two);
    // Zephyr does not step over the hash value it just read, so the walk jumps by the hash's own
    // bytes and a second SHA256 TLV is normally never seen: the first one is reported.
    const info = await m.readInfo(1);
    assert.equal(info.rc, 0);
    assert.deepEqual('hash' in info && info.hash, parseImage(two).hash);
    // Only a hash value that itself starts like a SHA256 TLV header trips rule 6.
    const crafted = two.slice();
    crafted.set([0x10, 0x00, 0x20, 0x00], parseImage(two).tlvs[0]!.offset);
    await s1.write(0, crafted);
    assert.equal((await m.readInfo(1)).rc, ImgErr.TLV_MULTIPLE_HASHES_FOUND);
  });
});

describe('MCUboot model: memory', () => {
  it('swapping a 1.4 MiB image in a 1.5 MiB slot does not hold the image in memory', async () => {
    const samples: number[] = [];
    const m = await openModel({
      slotSize: undefined,
      sectorSize: undefined,
      onSwapProgress: () => {
        samples.push(process.memoryUsage().arrayBuffers);
      },
    });
    await m.boot();
    const size = 1400 * 1024;
    let bytes: Uint8Array | undefined = (await buildImage({ payload: new Uint8Array(size).map((_, i) => (i * 31) & 0xff), version: '2.0.0' })).bytes;
    const hash = parseImage(bytes).hash!;
    await m.openUpload(0, bytes.length);
    for (let off = 0; off < bytes.length; off += 65536) await m.writeUpload(off, bytes.subarray(off, off + 65536));
    await m.finishUpload();
    bytes = undefined;
    await m.setNextBoot(hash, false);
    const baseline = process.memoryUsage().arrayBuffers;
    const r = await m.boot();
    assert.equal(r.images[0]!.version, '2.0.0');
    assert.ok(samples.length > 20);
    const peak = Math.max(...samples) - baseline;
    assert.ok(peak < 1024 * 1024, `array buffers grew by ${peak} bytes during a ${size}-byte swap`);
  });
});

describe('MCUboot model: fuzzed slot contents (fast-check)', () => {
  it('random secondary contents never break read_info, the state list, set-next-boot or boot', async () => {
    const fc = (await import('fast-check')).default;
    const m = await openModel();
    await m.boot();
    const valid = await image('2.0.0', 3000);
    const slot1 = m.slot(1);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 32, maxLength: 4000 }),
          fc.tuple(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(valid.length)).map(([writes, cut]) => {
            const b = valid.slice(0, Math.max(32, cut));
            for (const [p, v] of writes) if (p < b.length) b[p] = v;
            return b;
          }),
        ),
        fc.uint8Array({ minLength: 48, maxLength: 48 }),
        async (contents, tail) => {
          await slot1.eraseAll();
          await slot1.write(0, contents);
          await slot1.write(SLOT - 48, tail);
          const info = await m.readInfo(1);
          assert.equal(typeof info.rc, 'number');
          const states = await m.imageStates();
          assert.ok(states.length >= 1);
          if ('hash' in info && info.rc === 0) {
            await m.setNextBoot(info.hash, false).catch((e: unknown) => assert.ok(e instanceof MgmtError, String(e)));
          }
          const r = await m.boot();
          assert.equal(r.ok, true, JSON.stringify(r));
          // Whatever happened, the running image is a valid one: 1.0.0, or 2.0.0 if the fuzzed copy verified.
          assert.ok(['1.0.0', '2.0.0'].includes(r.images[0]!.version!), r.images[0]!.version);
          // Reset the device to the factory image for the next run.
          if (r.images[0]!.version !== '1.0.0' || (await m.swapType(0)) !== SwapType.NONE) {
            await m.boot();
            if ((await m.imageStates())[0]!.version !== '1.0.0') {
              await m.setNextBoot(undefined, true);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
