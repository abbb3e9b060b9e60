/**
 * West DFU packages (dfu_application.zip): the manifest layout nRF Connect SDK writes, read back;
 * bad packages refused with BAD_PACKAGE; random and mutated input fuzzed (fast-check).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { strToU8, zipSync } from 'fflate';
import { ImageFormatError, buildDfuPackage, readDfuPackage } from '../src/image/index.ts';

const badPackage = (re: RegExp) => (e: unknown): boolean => e instanceof ImageFormatError && e.reason === 'BAD_PACKAGE' && re.test(e.message);

describe('DFU packages', () => {
  it('reads the manifest generate_zip.py writes: string image_index, numeric load_address, files by name', () => {
    const manifest = {
      'format-version': 0,
      time: 1700000000,
      name: 'nrf5340_audio',
      files: [
        { load_address: 0x1008000, image_index: '1', slot_index_primary: '3', slot_index_secondary: '4', board: 'nrf5340dk_nrf5340_cpunet', version: '1', soc: 'nRF5340_CPUNET_QKAA', size: 3, file: 'net_core_app_update.bin', modtime: 1700000000 },
        { load_address: 0x10000, image_index: '0', slot_index_primary: '1', slot_index_secondary: '2', version_MCUBOOT: '1.2.3', size: 2, file: 'app_update.bin', modtime: 1700000000 },
      ],
    };
    const zip = zipSync({ 'app_update.bin': Uint8Array.of(1, 2), 'net_core_app_update.bin': Uint8Array.of(3, 4, 5), 'manifest.json': strToU8(JSON.stringify(manifest)) });
    const pkg = readDfuPackage(zip);
    assert.equal(pkg.name, 'nrf5340_audio');
    assert.deepEqual(pkg.images.map((i) => [i.image, i.file, [...i.bytes]]), [[0, 'app_update.bin', [1, 2]], [1, 'net_core_app_update.bin', [3, 4, 5]]]);
    assert.equal(pkg.images[1]!.info['load_address'], 0x1008000);
  });

  it('round-trips what buildDfuPackage writes', () => {
    const zip = buildDfuPackage([{ image: 0, file: 'a.bin', bytes: Uint8Array.of(9) }, { image: 1, file: 'b.bin', bytes: Uint8Array.of(8, 7) }], { name: 'x', time: 5 });
    const pkg = readDfuPackage(zip);
    assert.deepEqual(pkg.images.map((i) => [i.image, i.file, i.info['slot_index_primary']]), [[0, 'a.bin', '1'], [1, 'b.bin', '3']]);
  });

  it('refuses what it cannot use, by reason', () => {
    assert.throws(() => readDfuPackage(Uint8Array.of(1, 2, 3, 4)), badPackage(/not a zip/));
    assert.throws(() => readDfuPackage(zipSync({ 'a.bin': Uint8Array.of(1) })), badPackage(/no manifest\.json/));
    assert.throws(() => readDfuPackage(zipSync({ 'manifest.json': strToU8('{') })), badPackage(/not valid JSON/));
    assert.throws(() => readDfuPackage(zipSync({ 'manifest.json': strToU8('{"files":[{"file":"x.bin"}]}') })), badPackage(/not in the package/));
    assert.throws(() => readDfuPackage(zipSync({ 'x.bin': Uint8Array.of(1), 'manifest.json': strToU8('{"files":[{"file":"x.bin","image_index":"app"}]}') })), badPackage(/not an image number/));
    assert.throws(() => readDfuPackage(zipSync({ 'x.bin': Uint8Array.of(1), 'manifest.json': strToU8('{"files":[{"file":"x.bin"},{"file":"x.bin","image_index":0}]}') })), badPackage(/two files for image 0/));
    assert.throws(() => readDfuPackage(zipSync({ 'manifest.json': strToU8('{"files":[{"file":"__proto__"}]}') })), badPackage(/not in the package/));
  });

  it('random bytes and mutated packages only ever fail with BAD_PACKAGE (fast-check)', () => {
    const good = buildDfuPackage([{ image: 0, file: 'a.bin', bytes: new Uint8Array(300).fill(7) }], { time: 1 });
    const check = (bytes: Uint8Array): void => {
      try {
        readDfuPackage(bytes);
      } catch (e) {
        assert.ok(e instanceof ImageFormatError && e.reason === 'BAD_PACKAGE', String(e));
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => check(Uint8Array.of(0x50, 0x4b, 3, 4, ...b))));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const b = good.slice();
        for (const [i, v] of edits) b[i] = v;
        check(b);
      }),
    );
  });
});
