/** The command table's lenient decoding (Zephyr's zcbor_map_decode_bulk rules), vectors and fast-check properties. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bool, bytes, lenient, SchemaError, text, uint } from '../src/core/schema.ts';
import { commands } from '../src/core/commands/index.ts';

const upload = commands.image.upload.decode!;
const reset = commands.os.reset.decode!;

test('lenient: unknown keys skipped, missing keys keep their defaults, wrong types fail', () => {
  assert.deepEqual(commands.os.echo.decode!.parse({ x: 1 }), { d: '' });
  assert.deepEqual(commands.os.echo.decode!.parse({ d: 'hi', x: [1] }), { d: 'hi' });
  assert.throws(() => commands.os.echo.decode!.parse({ d: 5 }), SchemaError);
  assert.throws(() => commands.os.echo.decode!.parse([]), SchemaError);
  const u = upload.parse({ off: 5, data: new Uint8Array(2) });
  assert.equal(u.off, 5);
  assert.equal(u.image, 0);
  assert.equal(u.upgrade, false);
  assert.equal(upload.parse({ data: new Uint8Array(1) }).off, undefined);
  assert.throws(() => upload.parse({ off: -1 }), SchemaError);
  assert.throws(() => upload.parse({ image: 2 ** 32 }), SchemaError);
});

test('lenient with ignoreErrors: the keys before a bad one are used, the rest default (reset)', () => {
  assert.deepEqual(reset.parse({ force: 0 }), { force: false });
  assert.deepEqual(reset.parse({ boot_mode: 2, force: 1, x: 0 }), { force: false, boot_mode: 2 });
  assert.deepEqual(reset.parse(undefined), { force: false });
  assert.deepEqual(reset.parse('not a map'), { force: false });
});

const cborValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.integer(), fc.double(), fc.boolean(), fc.string(), fc.uint8Array(), fc.constant(null), fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string(), tie('value'), { maxKeys: 3 })),
})).value;
const keys = fc.constantFrom('a', 'b', 'c', 'x', '__proto__', 'constructor');

test('property: lenient decoding throws only SchemaError, never with ignoreErrors, and yields checked listed fields only', () => {
  const fields = { a: uint(), b: text(), c: bytes() };
  const strict = lenient(fields, { defaults: { a: 7 } });
  const loose = lenient({ a: uint(), b: bool() }, { ignoreErrors: true });
  fc.assert(
    fc.property(fc.oneof(cborValue, fc.dictionary(keys, cborValue, { maxKeys: 5 })), (v) => {
      const r = loose.parse(v);
      assert.ok(Object.keys(r).every((k) => k === 'a' || k === 'b'));
      if (r.a !== undefined) uint().parse(r.a);
      if (r.b !== undefined) bool().parse(r.b);
      try {
        const s = strict.parse(v);
        assert.ok(Object.keys(s).every((k) => k in fields));
        assert.equal(typeof s.a, 'number');
      } catch (e) {
        assert.ok(e instanceof SchemaError, String(e));
      }
    }),
    { numRuns: 2000 },
  );
});
