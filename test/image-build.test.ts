import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BOOT_MAGIC,
  FlagState,
  ImageFlag,
  ImageFormatError,
  MagicState,
  SwapType,
  TRAILER_INFO_SIZE,
  TlvType,
  buildImage,
  decideSwapType,
  decodeSwapState,
  encodeTrailerTail,
  parseImage,
  trailerOffsets,
  trailerSize,
  verifyImage,
  type SwapState,
} from '../src/image/index.ts';

describe('builder / parser round trips (fast-check)', () => {
  it('every built image parses back to its options and verifies', async () => {
    const options = fc.record({
      payload: fc.uint8Array({ maxLength: 3000 }),
      version: fc.record({
        major: fc.integer({ min: 0, max: 255 }),
        minor: fc.integer({ min: 0, max: 255 }),
        revision: fc.integer({ min: 0, max: 0xffff }),
        build: fc.integer({ min: 0, max: 0xffffffff }),
      }),
      headerSize: fc.integer({ min: 32, max: 0x400 }),
      loadAddress: fc.integer({ min: 0, max: 0xffffffff }),
      flags: fc.constantFrom(0, ImageFlag.NON_BOOTABLE, ImageFlag.ROM_FIXED, ImageFlag.RAM_LOAD),
      alignPayload: fc.constantFrom(1, 4, 8, 16),
      securityCounter: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
      dependencies: fc.array(
        fc.record({
          imageId: fc.integer({ min: 0, max: 3 }),
          minVersion: fc.record({ major: fc.integer({ min: 0, max: 255 }), minor: fc.integer({ min: 0, max: 255 }), revision: fc.integer({ min: 0, max: 0xffff }), build: fc.nat() }),
        }),
        { maxLength: 3 },
      ),
      custom: fc.array(fc.record({ type: fc.integer({ min: 0xa0, max: 0xff }), value: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 3 }),
      hashAlgorithm: fc.constantFrom('sha256' as const, 'sha384' as const, 'sha512' as const),
    });
    await fc.assert(
      fc.asyncProperty(options, async (o) => {
        const built = await buildImage({
          payload: o.payload,
          version: o.version,
          headerSize: o.headerSize,
          loadAddress: o.loadAddress,
          flags: o.flags,
          alignPayload: o.alignPayload,
          securityCounter: o.securityCounter,
          dependencies: o.dependencies,
          protectedTlvs: o.custom,
          hashAlgorithm: o.hashAlgorithm,
        });
        const img = parseImage(built.bytes);
        assert.deepEqual(img.header.version, { ...o.version });
        assert.equal(img.header.headerSize, o.headerSize);
        assert.equal(img.header.loadAddress, o.loadAddress);
        assert.equal(img.header.flags, o.flags);
        assert.equal(img.header.imageSize % o.alignPayload, 0);
        assert.ok(img.header.imageSize >= o.payload.length && img.header.imageSize < o.payload.length + o.alignPayload);
        assert.deepEqual(built.bytes.subarray(o.headerSize, o.headerSize + o.payload.length), o.payload);
        assert.equal(img.securityCounter, o.securityCounter);
        assert.deepEqual(img.dependencies, o.dependencies.map((d) => ({ imageId: d.imageId, minVersion: { ...d.minVersion } })));
        assert.equal(img.bootable, o.flags !== ImageFlag.NON_BOOTABLE);
        const customBack = img.protectedTlvs.filter((t) => t.type >= 0xa0).map((t) => ({ type: t.type, value: t.value }));
        assert.deepEqual(customBack, o.custom.map((c) => ({ type: c.type, value: c.value })));
        assert.equal(img.size, built.bytes.length);
        const v = await verifyImage(built.bytes);
        assert.ok(v.valid);
        assert.deepEqual(v.hashes[0]!.actual, built.hash);
        assert.equal(v.hashes[0]!.algorithm, o.hashAlgorithm);
        if (o.hashAlgorithm === 'sha256') assert.deepEqual(img.hash, built.hash);
      }),
      { numRuns: 150 },
    );
  });

  it('header size below 32, bad alignment and oversize pads are BAD_OPTIONS', async () => {
    const bad = (e: unknown): boolean => e instanceof ImageFormatError && e.reason === 'BAD_OPTIONS';
    await assert.rejects(buildImage({ payload: new Uint8Array(4), headerSize: 31 }), bad);
    await assert.rejects(buildImage({ payload: new Uint8Array(4), alignPayload: 0 }), bad);
    await assert.rejects(buildImage({ payload: new Uint8Array(5000), pad: { slotSize: 4096 } }), bad);
  });

  it('--pad without confirm writes only the magic (imgtool --test)', async () => {
    const built = await buildImage({ payload: new Uint8Array(100), pad: { slotSize: 0x4000 } });
    assert.equal(built.bytes.length, 0x4000);
    const state = decodeSwapState(built.bytes.subarray(0x4000 - TRAILER_INFO_SIZE));
    assert.equal(state.magic, MagicState.GOOD);
    assert.equal(state.imageOk, FlagState.UNSET);
    assert.ok(parseImage(built.bytes).tlvs.some((t) => t.type === TlvType.SHA256));
  });
});

describe('trailer and swap type', () => {
  it('offsets for BOOT_MAX_ALIGN 8 and the imgtool trailer size', () => {
    assert.deepEqual(trailerOffsets(0x2000), { magic: 0x1ff0, imageOk: 0x1fe8, copyDone: 0x1fe0, swapInfo: 0x1fd8, swapSize: 0x1fd0 });
    assert.equal(trailerSize(), 128 * 3 * 8 + 48);
    assert.equal(trailerSize({ writeAlign: 4 }), 1536 + 48);
  });

  it('decode: erased → UNSET, magic → GOOD, other → BAD; flag 1 → SET, other → BAD', () => {
    const erased = decodeSwapState(new Uint8Array(TRAILER_INFO_SIZE).fill(0xff));
    assert.deepEqual(erased, { magic: MagicState.UNSET, swapType: SwapType.NONE, imageNum: 0, copyDone: FlagState.UNSET, imageOk: FlagState.UNSET });
    const tail = encodeTrailerTail({ magic: true, imageOk: true, copyDone: true, swapInfo: { swapType: SwapType.PERM, image: 2 }, swapSize: 1234 });
    assert.deepEqual(decodeSwapState(tail), { magic: MagicState.GOOD, swapType: SwapType.PERM, imageNum: 2, copyDone: FlagState.SET, imageOk: FlagState.SET });
    assert.deepEqual(tail.subarray(32), BOOT_MAGIC);
    const bad = tail.slice();
    bad[40] = 0;
    bad[24] = 2; // image_ok neither 0xff nor 1
    bad[8] = 0x25; // swap_info: type 5 > REVERT → NONE, image 0
    bad[16] = 0; // copy_done neither 0xff nor 1
    const s = decodeSwapState(bad);
    assert.equal(s.magic, MagicState.BAD);
    assert.equal(s.imageOk, FlagState.BAD);
    assert.equal(s.swapType, SwapType.NONE);
    assert.equal(s.imageNum, 0);
    assert.equal(s.copyDone, FlagState.BAD);
  });

  it('boot_swap_type_multi table, exhaustively', () => {
    const magics = [MagicState.GOOD, MagicState.BAD, MagicState.UNSET] as const;
    const flags = [FlagState.SET, FlagState.BAD, FlagState.UNSET] as const;
    for (const pm of magics) for (const pok of flags) for (const pcd of flags)
      for (const sm of magics) for (const sok of flags) for (const scd of flags) {
        const p: SwapState = { magic: pm, imageOk: pok, copyDone: pcd, swapType: SwapType.NONE, imageNum: 0 };
        const s: SwapState = { magic: sm, imageOk: sok, copyDone: scd, swapType: SwapType.NONE, imageNum: 0 };
        let expected: number = SwapType.NONE;
        if (sm === MagicState.GOOD && sok === FlagState.UNSET) expected = SwapType.TEST;
        else if (sm === MagicState.GOOD && sok === FlagState.SET) expected = SwapType.PERM;
        else if (pm === MagicState.GOOD && pok === FlagState.UNSET && pcd === FlagState.SET) expected = SwapType.REVERT;
        assert.equal(decideSwapType(p, s), expected);
      }
  });
});
