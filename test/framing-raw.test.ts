import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { concatBytes, fromHex } from '../src/core/bytes.ts';
import { encodePacket } from '../src/core/header.ts';
import { McuMgrError } from '../src/core/errors.ts';
import { encodeRawPacket, RawPacketDecoder } from '../src/framing/index.ts';
import { cut } from './split.ts';

/** A whole SMP message with a random header and payload. */
const message = fc
  .record({
    op: fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<0 | 1 | 2 | 3>,
    version: fc.integer({ min: 0, max: 1 }),
    flags: fc.integer({ min: 0, max: 255 }),
    group: fc.integer({ min: 0, max: 0xffff }),
    seq: fc.integer({ min: 0, max: 255 }),
    id: fc.integer({ min: 0, max: 255 }),
    payload: fc.uint8Array({ maxLength: 600 }),
  })
  .map(({ payload, ...h }) => encodePacket(h, payload));


describe('raw UART packetizer (§4.2)', () => {
  const echo = fromHex('0A 00 00 09 00 00 42 00 A1 61 64 65 68 65 6C 6C 6F');

  it('delivers one packet by its header length and several back to back from one read', () => {
    const d = new RawPacketDecoder();
    assert.deepEqual(d.push(echo), [echo]);
    const empty = fromHex('00 00 00 00 00 00 01 00');
    assert.deepEqual(d.push(concatBytes(echo, empty, echo)), [echo, empty, echo]);
    assert.equal(d.stats.packets, 4);
    assert.equal(d.pending, false);
  });

  it('waits for the rest of a split header or payload', () => {
    const d = new RawPacketDecoder();
    assert.deepEqual(d.push(echo.subarray(0, 5)), []);
    assert.equal(d.pending, true);
    assert.deepEqual(d.push(echo.subarray(5, 12)), []);
    assert.deepEqual(d.push(echo.subarray(12)), [echo]);
  });

  it('gives the same packets for any split of a stream of messages', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 30 }), (messages, offsets) => {
        const d = new RawPacketDecoder();
        const out = cut(concatBytes(...messages), offsets).flatMap((c) => d.push(c));
        assert.deepEqual(out, messages);
        assert.equal(d.pending, false);
      }),
    );
  });

  it('drops op 4-7 and oversize headers by skipping a byte at a time, then finds the next packet', () => {
    // Bytes whose low three bits (the op) are 4-7 can never start a header: each is skipped.
    const junk = Uint8Array.from([0xff, 0x07, 0x4c, 0xfd, 0x06]);
    const d = new RawPacketDecoder({ maxPacketLength: 384 });
    assert.deepEqual(d.push(concatBytes(junk, echo)), [echo]);
    assert.deepEqual([d.stats.skippedBytes, d.stats.badHeader], [junk.length, junk.length]);
    // A header with a valid op but 8 + 377 = 385 bytes > 384 is refused the same way.
    const oversize = fromHex('02 00 01 79 00 00 00 00');
    const d2 = new RawPacketDecoder({ maxPacketLength: 384 });
    assert.deepEqual(d2.push(concatBytes(oversize.subarray(0, 1), Uint8Array.of(0x00, 0x01, 0x79, 0xff, 0xff, 0xff, 0xff), echo)), [echo]);
    assert.equal(d2.stats.badHeader, 8);
    assert.deepEqual(new RawPacketDecoder({ maxPacketLength: 385 }).push(concatBytes(oversize, new Uint8Array(377))).length, 1);
  });

  it('any split of junk-then-packets gives the same result', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 255 }).map((b) => (b & 0xf8) | 4 | (b & 3)), { maxLength: 50 }),
        fc.array(message, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (junk, messages, offsets) => {
          const d = new RawPacketDecoder();
          const out = cut(concatBytes(Uint8Array.from(junk), ...messages), offsets).flatMap((c) => d.push(c));
          assert.deepEqual(out, messages);
          assert.equal(d.stats.skippedBytes, junk.length);
        },
      ),
    );
  });

  it('reset() abandons a partial packet', () => {
    const d = new RawPacketDecoder();
    d.push(echo.subarray(0, 10));
    d.reset();
    assert.equal(d.stats.abandoned, 1);
    assert.deepEqual(d.push(echo), [echo]);
  });

  it('never throws on garbage and only yields well-formed packets within the limit', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 500 }), { maxLength: 10 }), (chunks) => {
        const d = new RawPacketDecoder({ maxPacketLength: 384 });
        for (const c of chunks) {
          for (const p of d.push(c)) {
            assert.ok(p.length <= 384);
            assert.ok((p[0]! & 7) < 4);
            assert.equal(p.length, 8 + ((p[2]! << 8) | p[3]!));
          }
        }
      }),
    );
  });

  it('encodeRawPacket checks the packet is whole messages within the limit', () => {
    assert.equal(encodeRawPacket(echo), echo);
    assert.equal(encodeRawPacket(concatBytes(echo, echo)).length, echo.length * 2);
    for (const bad of [new Uint8Array(0), echo.subarray(0, 7), echo.subarray(0, 12), concatBytes(echo, echo.subarray(0, 3))]) {
      assert.throws(() => encodeRawPacket(bad), (e: unknown) => e instanceof McuMgrError && e.code === 'USAGE');
    }
    assert.throws(() => encodeRawPacket(echo, 16), (e: unknown) => e instanceof McuMgrError && e.code === 'TRANSPORT_TOO_LARGE');
    assert.throws(() => new RawPacketDecoder({ maxPacketLength: 4 }), McuMgrError);
  });
});
