import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encode as referenceEncode, decode as referenceDecode } from 'cbor2';
import { decodeCbor, encodeCbor, CborTag } from '../src/core/cbor.ts';
import { ProtocolError } from '../src/core/errors.ts';
import { fromHex, toHex } from '../src/core/bytes.ts';

test('cbor: RFC 8949 appendix A vectors (preferred encoding)', () => {
  const vectors: Array<[unknown, string]> = [
    [0, '00'], [1, '01'], [10, '0a'], [23, '17'], [24, '1818'], [25, '1819'], [100, '1864'], [1000, '1903e8'],
    [1000000, '1a000f4240'], [1000000000000, '1b000000e8d4a51000'], [18446744073709551615n, '1bffffffffffffffff'],
    [-1, '20'], [-10, '29'], [-100, '3863'], [-1000, '3903e7'], [-18446744073709551616n, '3bffffffffffffffff'],
    [0.0, '00'], [-0.0, 'f98000'], [1.0, '01'], [1.1, 'fb3ff199999999999a'], [1.5, 'f93e00'], [65504.0, '19ffe0'], [65504.5, 'fa477fe080'],
    [100000.5, 'fa47c35040'], [3.4028234663852886e38, 'fa7f7fffff'], [1.0e300, 'fb7e37e43c8800759c'],
    [5.960464477539063e-8, 'f90001'], [0.00006103515625, 'f90400'], [-4, '23'], [-4.1, 'fbc010666666666666'],
    [Infinity, 'f97c00'], [NaN, 'f97e00'], [-Infinity, 'f9fc00'],
    [false, 'f4'], [true, 'f5'], [null, 'f6'], [undefined, 'f7'],
    [new Uint8Array(0), '40'], [Uint8Array.of(1, 2, 3, 4), '4401020304'],
    ['', '60'], ['a', '6161'], ['IETF', '6449455446'], ['"\\', '62225c'], ['\u00fc', '62c3bc'], ['\u6c34', '63e6b0b4'], ['\ud800\udd51', '64f0908591'],
    [[], '80'], [[1, 2, 3], '83010203'], [[1, [2, 3], [4, 5]], '8301820203820405'],
    [{}, 'a0'], [{ a: 1, b: [2, 3] }, 'a26161016162820203'], [['a', { b: 'c' }], '826161a161626163'],
    [new CborTag(1, 1363896240), 'c11a514b67b0'],
  ];
  for (const [value, hex] of vectors) {
    assert.equal(toHex(encodeCbor(value)), hex, `encode ${String(value)}`);
    const back = decodeCbor(fromHex(hex));
    if (typeof value === 'number' && Number.isNaN(value)) assert.ok(Number.isNaN(back));
    else assert.deepEqual(back, value, `decode ${hex}`);
  }
});

test('cbor: indefinite-length containers and strings decode (Zephyr answers bf ... ff)', () => {
  assert.deepEqual(decodeCbor(fromHex('bf63657272bf6567726f7570006272630' + '2ffff')), { err: { group: 0, rc: 2 } });
  assert.deepEqual(decodeCbor(fromHex('9f018202039f0405ffff')), [1, [2, 3], [4, 5]]);
  assert.deepEqual(decodeCbor(fromHex('5f42010243030405ff')), Uint8Array.of(1, 2, 3, 4, 5));
  assert.equal(decodeCbor(fromHex('7f657374726561646d696e67ff')), 'streaming');
  assert.deepEqual(decodeCbor(fromHex('bf6346756ef563416d7421ff')), { Fun: true, Amt: -2 });
  // and the encoder writes the Zephyr form when asked
  assert.equal(toHex(encodeCbor({ rc: 3 }, { indefinite: true })), 'bf62726303ff');
});

test('cbor: malformed input raises PROTOCOL_BAD_CBOR', () => {
  const bad = ['', '18', '1a0000', '62c3', '5f4101', '7f4101ff', 'ff', 'a161', '1c', 'fc', 'f818', '9f01', '7f6161', 'c0', '62c328', 'bf61', '0000'];
  for (const hex of bad) {
    assert.throws(() => decodeCbor(fromHex(hex)), (e: unknown) => e instanceof ProtocolError && (e.code === 'PROTOCOL_BAD_CBOR' || e.code === 'PROTOCOL_CBOR_LIMIT'), hex);
  }
});

test('cbor: limits for untrusted input (depth, declared lengths, duplicate keys)', () => {
  const deep = new Uint8Array(1000).fill(0x81);
  assert.throws(() => decodeCbor(deep), (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_CBOR_LIMIT');
  assert.throws(() => decodeCbor(fromHex('9f'.repeat(40) + 'ff'.repeat(40)), { maxDepth: 16 }), (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_CBOR_LIMIT');
  // an array claiming 2^32-1 items in 5 bytes, a byte string claiming 4 GiB
  assert.throws(() => decodeCbor(fromHex('9affffffff')), (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_CBOR_LIMIT');
  assert.throws(() => decodeCbor(fromHex('5affffffff00')), (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_CBOR_LIMIT');
  assert.deepEqual(decodeCbor(fromHex('a2616101616102')), { a: 2 });
  assert.throws(() => decodeCbor(fromHex('a2616101616102'), { rejectDuplicateKeys: true }), ProtocolError);
});

test('cbor: __proto__ keys are plain data, non-text keys give a Map', () => {
  const v = decodeCbor(encodeCbor(new Map<unknown, unknown>([['__proto__', 1]]))) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(v, '__proto__')?.value, 1);
  assert.deepEqual(decodeCbor(fromHex('a201020304')), new Map([[1, 2], [3, 4]]));
});

// Values in the CBOR data model that both codecs represent the same way in JS.
const cborValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer({ min: -(2 ** 31), max: 2 ** 40 }),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true }).filter((d) => !Number.isInteger(d) || Object.is(d, -0) || !Number.isSafeInteger(d)),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 5 }),
  ),
})).value;

test('cbor: differential against cbor2 (same bytes, same values) (fast-check)', () => {
  fc.assert(
    fc.property(cborValue, (v) => {
      const ours = encodeCbor(v);
      const theirs = referenceEncode(v as never);
      assert.equal(toHex(ours), toHex(theirs));
      assert.deepEqual(decodeCbor(ours), referenceDecode(theirs));
      assert.deepEqual(decodeCbor(encodeCbor(v, { indefinite: true })), referenceDecode(theirs));
    }),
    { numRuns: 3000 },
  );
});

test('cbor: arbitrary bytes never throw anything but ProtocolError, and agree with cbor2 on validity (fast-check)', () => {
  let accepted = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        decodeCbor(bytes, { maxDepth: 64 });
        accepted++;
      } catch (e) {
        assert.ok(e instanceof ProtocolError, String(e));
      }
    }),
    { numRuns: 20000 },
  );
  assert.ok(accepted > 100, `some random inputs are valid CBOR (${accepted})`);
});

test('cbor: encodes share one growing buffer, yet every result is its own copy (a large message, then small ones, then a failed encode)', () => {
  const big = new Uint8Array(70_000).map((_, i) => i & 0xff);
  const first = encodeCbor({ data: big, off: 1 });
  const copy = first.slice();
  const small = encodeCbor({ d: 'x' });
  assert.equal(toHex(small), 'a1616461 78'.replace(' ', ''));
  assert.throws(() => encodeCbor({ bad: Symbol('no') }));
  const after = encodeCbor({ off: 2 });
  assert.deepEqual(first, copy, 'the first result was not overwritten by later encodes');
  assert.deepEqual(decodeCbor(after), { off: 2 });
  assert.deepEqual((decodeCbor(first) as { data: Uint8Array }).data, big);
  // Past 128 KiB the grown buffer is not kept; results stay right either way.
  const huge = encodeCbor({ data: new Uint8Array(200_000) });
  assert.equal((decodeCbor(huge) as { data: Uint8Array }).data.length, 200_000);
  assert.deepEqual(decodeCbor(encodeCbor([1, 2])), [1, 2]);
});
