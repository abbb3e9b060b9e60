import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ImageFormatError,
  buildImage,
  bytesImageSource,
  loadSigningKey,
  parseImage,
  verifyImage,
  type SigningKey,
} from '../src/image/index.ts';

function isTyped(e: unknown): boolean {
  return e instanceof ImageFormatError && e.code === 'PROTOCOL_BAD_IMAGE';
}

describe('image parser fuzz (fast-check)', () => {
  let seedImage: Uint8Array;
  let key: SigningKey;
  before(async () => {
    const pair = (await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    key = await loadSigningKey(pair);
    seedImage = (
      await buildImage({
        payload: new Uint8Array(600).map((_, i) => (i * 31) & 0xff),
        headerSize: 64,
        version: '1.2.3+4',
        securityCounter: 9,
        dependencies: [{ imageId: 1, minVersion: { major: 1, minor: 0, revision: 0, build: 0 } }],
        signingKey: key,
      })
    ).bytes;
  });

  it('random bytes: parseImage returns or throws ImageFormatError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        try {
          parseImage(bytes);
        } catch (e) {
          assert.ok(isTyped(e), String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('random bytes behind a valid magic: still only typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 28, maxLength: 4096 }), (tail) => {
        const bytes = new Uint8Array(4 + tail.length);
        bytes.set([0x3d, 0xb8, 0xf3, 0x96]);
        bytes.set(tail, 4);
        try {
          parseImage(bytes);
        } catch (e) {
          assert.ok(isTyped(e), String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('mutated valid images: verifyImage (memory and streamed, with keys) resolves or rejects typed, with work bounded by the input', async () => {
    const mutation = fc.record({
      writes: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fields: fc.array(
        fc.oneof(
          fc.tuple(fc.constant(8), fc.integer({ min: 0, max: 0xffff })), // ih_hdr_size
          fc.tuple(fc.constant(10), fc.integer({ min: 0, max: 0xffff })), // ih_protect_tlv_size
          fc.tuple(fc.constant(12), fc.integer({ min: 0, max: 0xffff })), // ih_img_size (low half)
        ),
        { maxLength: 2 },
      ),
      cut: fc.option(fc.nat(), { nil: undefined }),
      extend: fc.nat({ max: 64 }),
    });
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        let bytes = seedImage.slice();
        for (const [pos, val] of m.writes) bytes[pos % bytes.length] = val;
        const dv = new DataView(bytes.buffer);
        for (const [off, val] of m.fields) dv.setUint16(off, val, true);
        if (m.cut !== undefined) bytes = bytes.subarray(0, m.cut % (bytes.length + 1));
        if (m.extend > 0) {
          const grown = new Uint8Array(bytes.length + m.extend).fill(0xff);
          grown.set(bytes);
          bytes = grown;
        }
        // The work is bounded by the input, whatever its fields claim: the streamed verification
        // reads at most a few times the image's bytes (counted, not timed: a busy machine is slow).
        let read = 0;
        let reads = 0;
        const inner = bytesImageSource(bytes);
        const counted = {
          size: inner.size,
          read: (offset: number, length: number) => {
            reads++;
            read += length;
            return inner.read(offset, length);
          },
        };
        for (const input of [bytes, counted]) {
          try {
            const v = await verifyImage(input, { keys: [key.publicKey], chunkSize: 97 });
            assert.equal(typeof v.valid, 'boolean');
          } catch (e) {
            assert.ok(isTyped(e), String(e));
          }
        }
        assert.ok(read <= 4 * bytes.length + 4096 && reads <= 4 * Math.ceil(bytes.length / 97) + 64, `verification read ${read} bytes in ${reads} reads of a ${bytes.length}-byte image`);
      }),
      { numRuns: 400 },
    );
  });

  it('an unmodified seed stays valid (the fuzz starts from a real image)', async () => {
    const v = await verifyImage(seedImage, { keys: [key.publicKey] });
    assert.ok(v.valid);
  });
});
