import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeHeader, encodeHeader, decodePacket, encodePacket, Op, HEADER_SIZE } from '../src/core/header.ts';
import { ProtocolError } from '../src/core/errors.ts';
import { fromHex, toHex } from '../src/core/bytes.ts';

test('header: worked example bytes of smp-spec §4.1.4 (echo hello, v2, seq 0x42)', () => {
  const h = encodeHeader({ op: Op.WRITE, version: 1, flags: 0, length: 9, group: 0, seq: 0x42, id: 0 });
  assert.equal(toHex(h), '0a00000900004200');
  assert.deepEqual(decodeHeader(fromHex('0b00000900004200')), { op: Op.WRITE_RSP, version: 1, flags: 0, length: 9, group: 0, seq: 0x42, id: 0 });
});

test('header: big-endian length and group, op and version bits', () => {
  const h = decodeHeader(fromHex('08 00 01 02 01 03 ff 07'));
  assert.equal(h.op, Op.READ);
  assert.equal(h.version, 1);
  assert.equal(h.length, 0x0102);
  assert.equal(h.group, 0x0103);
  assert.equal(h.seq, 255);
  assert.equal(h.id, 7);
  // v1 read response, reserved bits set: ignored
  const v1 = decodeHeader(fromHex('e1 00 00 06 00 00 42 00'));
  assert.equal(v1.op, Op.READ_RSP);
  assert.equal(v1.version, 0);
});

test('header: truncated header and op >= 4 raise PROTOCOL_BAD_HEADER', () => {
  for (let n = 0; n < HEADER_SIZE; n++) {
    assert.throws(() => decodeHeader(new Uint8Array(n)), (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_BAD_HEADER');
  }
  for (const op of [4, 5, 6, 7]) {
    assert.throws(() => decodeHeader(Uint8Array.of(op, 0, 0, 0, 0, 0, 0, 0)), (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_BAD_HEADER');
  }
});

test('header: length mismatch raises PROTOCOL_BAD_LENGTH', () => {
  const p = encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: 0, seq: 1, id: 0 }, Uint8Array.of(0xa0));
  assert.equal(decodePacket(p).payload.length, 1);
  assert.throws(() => decodePacket(p.subarray(0, 8)), (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_BAD_LENGTH');
  const longer = new Uint8Array(p.length + 1);
  longer.set(p);
  assert.throws(() => decodePacket(longer), (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_BAD_LENGTH');
});

test('header: encode rejects out-of-range fields', () => {
  assert.throws(() => encodeHeader({ op: 4 as never, version: 0, flags: 0, length: 0, group: 0, seq: 0, id: 0 }), RangeError);
  assert.throws(() => encodeHeader({ op: 0, version: 0, flags: 0, length: 65536, group: 0, seq: 0, id: 0 }), RangeError);
  assert.throws(() => encodeHeader({ op: 0, version: 0, flags: 0, length: 0, group: 0, seq: 256, id: 0 }), RangeError);
});

test('header: round trip (fast-check)', () => {
  fc.assert(
    fc.property(
      fc.record({ op: fc.constantFrom(0, 1, 2, 3), version: fc.integer({ min: 0, max: 3 }), flags: fc.integer({ min: 0, max: 255 }), length: fc.integer({ min: 0, max: 65535 }), group: fc.integer({ min: 0, max: 65535 }), seq: fc.integer({ min: 0, max: 255 }), id: fc.integer({ min: 0, max: 255 }) }),
      (h) => {
        assert.deepEqual(decodeHeader(encodeHeader(h as never)), { ...h });
      },
    ),
    { numRuns: 2000 },
  );
});

test('header: decoding arbitrary bytes throws only ProtocolError (fast-check)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
      try {
        decodePacket(bytes);
      } catch (e) {
        assert.ok(e instanceof ProtocolError, String(e));
      }
    }),
    { numRuns: 5000 },
  );
});
