import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ImageFormatError,
  TlvType,
  assertImageValid,
  buildImage,
  bytesImageSource,
  decodeImageHeader,
  formatImageVersion,
  parseImage,
  parseImageVersion,
  compareImageVersions,
  readImage,
  tlvTypeName,
  verifyImage,
  type ImageErrorReason,
  type ImageSource,
} from '../src/image/index.ts';

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`./fixtures/imgtool/${name}`, import.meta.url)));
const app = fixture('app.bin');

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

function expectImageError(fn: () => unknown, reason: ImageErrorReason): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ImageFormatError, `expected ImageFormatError, got ${String(e)}`);
    assert.equal(e.code, 'PROTOCOL_BAD_IMAGE');
    assert.equal(e.reason, reason, e.message);
    return true;
  });
}

/** The B5 recipe written out by hand, independent of the builder. */
function handBuiltImage(payload: Uint8Array, hdrSize: number, version: [number, number, number, number]): Uint8Array {
  const hashed = new Uint8Array(hdrSize + payload.length).fill(0xff);
  const v = new DataView(hashed.buffer);
  v.setUint32(0, 0x96f3b83d, true);
  v.setUint32(4, 0, true);
  v.setUint16(8, hdrSize, true);
  v.setUint16(10, 0, true);
  v.setUint32(12, payload.length, true);
  v.setUint32(16, 0, true);
  v.setUint8(20, version[0]);
  v.setUint8(21, version[1]);
  v.setUint16(22, version[2], true);
  v.setUint32(24, version[3], true);
  v.setUint32(28, 0, true);
  hashed.set(payload, hdrSize);
  const tlv = new Uint8Array(40);
  const t = new DataView(tlv.buffer);
  t.setUint16(0, 0x6907, true);
  t.setUint16(2, 40, true);
  t.setUint16(4, 0x10, true);
  t.setUint16(6, 32, true);
  tlv.set(sha256(hashed), 8);
  const out = new Uint8Array(hashed.length + tlv.length);
  out.set(hashed);
  out.set(tlv, hashed.length);
  return out;
}

describe('image parse: imgtool output', () => {
  it('parses an unsigned imgtool image and reports its fields', async () => {
    const bytes = fixture('unsigned.bin');
    const img = parseImage(bytes);
    assert.equal(img.header.headerSize, 0x200);
    assert.equal(img.header.imageSize, 1000);
    assert.equal(img.header.protectedTlvSize, 0);
    assert.deepEqual(img.header.version, { major: 1, minor: 2, revision: 3, build: 4 });
    assert.equal(img.version, '1.2.3.4');
    assert.equal(img.size, bytes.length);
    assert.deepEqual(img.tlvs.map((t) => t.name), ['SHA256']);
    assert.ok(img.bootable);
    const v = await verifyImage(bytes);
    assert.ok(v.hashValid);
    assert.ok(v.valid);
    assert.deepEqual(v.signature, { status: 'not-checked' });
    assert.deepEqual(img.hash, v.hashes[0]!.actual);
  });

  it('our B5 hand-built bytes and the builder are byte-identical to imgtool', async () => {
    const expected = fixture('unsigned.bin');
    assert.deepEqual(handBuiltImage(app, 0x200, [1, 2, 3, 4]), expected);
    const built = await buildImage({ payload: app, version: '1.2.3+4', headerSize: 0x200 });
    assert.deepEqual(built.bytes, expected);
  });

  it('protected SEC_CNT (-s auto) parses, is hashed, and the builder matches imgtool', async () => {
    const bytes = fixture('unsigned-seccnt.bin');
    const img = parseImage(bytes);
    assert.equal(img.header.protectedTlvSize, 12);
    assert.equal(img.protectedTlvs.length, 1);
    assert.equal(img.protectedTlvs[0]!.name, 'SEC_CNT');
    assert.ok(img.protectedTlvs[0]!.protected);
    assert.equal(img.securityCounter, 0x02000001);
    assert.equal(img.layout.hashedLength, 0x200 + 1000 + 12);
    assert.ok((await verifyImage(bytes)).hashValid);
    const built = await buildImage({ payload: app, version: '2.0.1', securityCounter: 'auto' });
    assert.deepEqual(built.bytes, bytes);
  });

  it('--pad --confirm: trailer magic at S-16, image_ok at S-24, and the builder matches', async () => {
    const bytes = fixture('padded-confirm.bin');
    assert.equal(bytes.length, 0x2000);
    assert.equal(bytes[0x1fe8], 0x01);
    const img = parseImage(bytes);
    assert.equal(img.header.headerSize, 0x20);
    assert.ok((await verifyImage(bytes)).hashValid);
    const built = await buildImage({ payload: app, version: '1.0.0', headerSize: 0x20, pad: { slotSize: 0x2000, confirm: true } });
    assert.deepEqual(built.bytes, bytes);
  });
});

describe('image parse: bad input', () => {
  it('bad magic', async () => {
    const bytes = (await buildImage({ payload: app })).bytes;
    bytes[0]! ^= 1;
    expectImageError(() => parseImage(bytes), 'BAD_MAGIC');
  });

  it('legacy V1 magic is rejected as bad magic', async () => {
    const bytes = (await buildImage({ payload: app })).bytes;
    new DataView(bytes.buffer).setUint32(0, 0x96f3b83c, true);
    expectImageError(() => parseImage(bytes), 'BAD_MAGIC');
  });

  it('header size smaller than 32', async () => {
    const bytes = (await buildImage({ payload: app })).bytes;
    new DataView(bytes.buffer).setUint16(8, 16, true);
    expectImageError(() => parseImage(bytes), 'BAD_HEADER');
  });

  it('every truncation is a typed error, never a silent success', async () => {
    const bytes = (await buildImage({ payload: app.subarray(0, 100), headerSize: 32, securityCounter: 7 })).bytes;
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(
        () => parseImage(bytes.subarray(0, n)),
        (e: unknown) => e instanceof ImageFormatError && e.code === 'PROTOCOL_BAD_IMAGE',
        `prefix of ${n} bytes`,
      );
    }
    expectImageError(() => parseImage(bytes.subarray(0, 10)), 'TRUNCATED');
    expectImageError(() => parseImage(bytes.subarray(0, bytes.length - 1)), 'TRUNCATED');
  });

  it('no TLVs: the 0x6907 magic is missing', async () => {
    const bytes = (await buildImage({ payload: app })).bytes;
    const img = parseImage(bytes);
    bytes[img.layout.unprotectedOffset] = 0xff;
    bytes[img.layout.unprotectedOffset + 1] = 0xff;
    expectImageError(() => parseImage(bytes), 'NO_TLVS');
  });

  it('no TLVs: image ends right after the payload (erased flash follows)', async () => {
    const built = await buildImage({ payload: app });
    const img = parseImage(built.bytes);
    const cut = new Uint8Array(img.layout.tlvOffset + 64).fill(0xff);
    cut.set(built.bytes.subarray(0, img.layout.tlvOffset));
    expectImageError(() => parseImage(cut), 'NO_TLVS');
  });

  it('a TLV length running past its block', async () => {
    const bytes = (await buildImage({ payload: app })).bytes;
    const img = parseImage(bytes);
    new DataView(bytes.buffer).setUint16(img.layout.unprotectedOffset + 4 + 2, 33, true);
    expectImageError(() => parseImage(bytes), 'BAD_TLV');
  });

  it('a block total that leaves a partial TLV header', async () => {
    const built = await buildImage({ payload: app });
    const bytes = new Uint8Array(built.bytes.length + 2).fill(0xff);
    bytes.set(built.bytes);
    const img = parseImage(built.bytes);
    new DataView(bytes.buffer).setUint16(img.layout.unprotectedOffset + 2, img.layout.unprotectedSize + 2, true);
    expectImageError(() => parseImage(bytes), 'BAD_TLV');
  });

  it('protected block whose size disagrees with ih_protect_tlv_size', async () => {
    const bytes = (await buildImage({ payload: app, securityCounter: 1 })).bytes;
    new DataView(bytes.buffer).setUint16(10, 16, true);
    expectImageError(() => parseImage(bytes), 'BAD_PROTECTED_TLVS');
    const bytes2 = (await buildImage({ payload: app })).bytes;
    new DataView(bytes2.buffer).setUint16(10, 12, true);
    expectImageError(() => parseImage(bytes2), 'BAD_PROTECTED_TLVS');
  });

  it('a protected TLV running past the protected block', async () => {
    const bytes = (await buildImage({ payload: app, securityCounter: 1 })).bytes;
    const img = parseImage(bytes);
    new DataView(bytes.buffer).setUint16(img.layout.tlvOffset + 4 + 2, 8, true);
    expectImageError(() => parseImage(bytes), 'BAD_TLV');
  });
});

describe('image hash', () => {
  it('a flipped payload byte is reported, and assertImageValid throws HASH_MISMATCH', async () => {
    const bytes = (await buildImage({ payload: app })).bytes;
    bytes[0x200 + 10]! ^= 0x40;
    const v = await verifyImage(bytes);
    assert.equal(v.hashValid, false);
    assert.equal(v.valid, false);
    assert.equal(v.hashes.length, 1);
    assert.equal(v.hashes[0]!.valid, false);
    assert.throws(() => assertImageValid(v), (e: unknown) => e instanceof ImageFormatError && e.reason === 'HASH_MISMATCH');
  });

  it('a flipped protected TLV byte breaks the hash (protected TLVs are covered)', async () => {
    const bytes = (await buildImage({ payload: app, securityCounter: 5 })).bytes;
    const img = parseImage(bytes);
    bytes[img.protectedTlvs[0]!.offset]! ^= 1;
    assert.equal((await verifyImage(bytes)).hashValid, false);
  });

  it('a flipped unprotected TLV byte outside the hash does not break the hash', async () => {
    const bytes = (await buildImage({ payload: app, extraTlvs: [{ type: 0x00a5, value: new Uint8Array(8) }] })).bytes;
    const img = parseImage(bytes);
    const vendor = img.tlvs.find((t) => t.type === 0x00a5)!;
    assert.equal(vendor.name, 'VENDOR_0x00a5');
    bytes[vendor.offset]! ^= 1;
    assert.ok((await verifyImage(bytes)).hashValid);
  });

  it('no hash TLV: hashValid false, assertImageValid throws NO_HASH', async () => {
    const bytes = (await buildImage({ payload: app })).bytes;
    const img = parseImage(bytes);
    new DataView(bytes.buffer).setUint16(img.layout.unprotectedOffset + 4, 0x00a0, true);
    const v = await verifyImage(bytes);
    assert.equal(v.hashes.length, 0);
    assert.equal(v.hashValid, false);
    assert.equal(v.image.hash, undefined);
    assert.throws(() => assertImageValid(v), (e: unknown) => e instanceof ImageFormatError && e.reason === 'NO_HASH');
  });

  it('SHA-384 and SHA-512 images verify; img_mgmt hash is absent for them', async () => {
    for (const hashAlgorithm of ['sha384', 'sha512'] as const) {
      const built = await buildImage({ payload: app, hashAlgorithm });
      const v = await verifyImage(built.bytes);
      assert.ok(v.hashValid, hashAlgorithm);
      assert.equal(v.hashes[0]!.algorithm, hashAlgorithm);
      assert.equal(v.image.hash, undefined);
      built.bytes[0x210]! ^= 1;
      assert.equal((await verifyImage(built.bytes)).hashValid, false);
    }
  });

  it('streaming from a source in small chunks gives the same result, with a bounded window', async () => {
    const built = await buildImage({ payload: new Uint8Array(300_000).map((_, i) => i * 7), securityCounter: 3, hashAlgorithm: 'sha256' });
    const reads: number[] = [];
    const inner = bytesImageSource(built.bytes);
    const source: ImageSource = {
      size: built.bytes.length + 5000, // a slot larger than the image
      read: (offset, length) => {
        reads.push(length);
        if (offset + length > built.bytes.length) {
          const out = new Uint8Array(length).fill(0xff);
          out.set(built.bytes.subarray(offset, offset + length));
          return Promise.resolve(out);
        }
        return inner.read(offset, length);
      },
    };
    const streamed = await verifyImage(source, { chunkSize: 4096 });
    const inMemory = await verifyImage(built.bytes);
    assert.ok(streamed.hashValid);
    assert.deepEqual(streamed.hashes, inMemory.hashes);
    assert.ok(Math.max(...reads) <= 2 * 0xffff, `largest read ${Math.max(...reads)}`);
    const img = await readImage(source);
    assert.equal(img.size, built.bytes.length);
  });
});

describe('image header and version helpers', () => {
  it('version strings as img_mgmt and imgtool write them', () => {
    assert.equal(formatImageVersion({ major: 1, minor: 2, revision: 3, build: 0 }), '1.2.3');
    assert.equal(formatImageVersion({ major: 1, minor: 2, revision: 3, build: 4 }), '1.2.3.4');
    assert.deepEqual(parseImageVersion('1.2.3+4'), { major: 1, minor: 2, revision: 3, build: 4 });
    assert.deepEqual(parseImageVersion('1.2.3.4'), { major: 1, minor: 2, revision: 3, build: 4 });
    assert.deepEqual(parseImageVersion('7'), { major: 7, minor: 0, revision: 0, build: 0 });
    assert.throws(() => parseImageVersion('1.2.x'), RangeError);
    assert.throws(() => parseImageVersion('256.0.0'), RangeError);
  });

  it('version order ignores the build unless asked', () => {
    const a = parseImageVersion('1.2.3+9');
    const b = parseImageVersion('1.2.3+1');
    assert.equal(compareImageVersions(a, b), 0);
    assert.ok(compareImageVersions(a, b, true) > 0);
    assert.ok(compareImageVersions(parseImageVersion('1.10.0'), parseImageVersion('1.9.9')) > 0);
  });

  it('header decode reads every field little-endian', () => {
    const h = new Uint8Array(32);
    h.set([0x3d, 0xb8, 0xf3, 0x96, 0x00, 0x10, 0x00, 0x00, 0x00, 0x02, 0x0c, 0x00, 0xe8, 0x03, 0x00, 0x00, 0x10, 0x01, 0x00, 0x00, 1, 2, 3, 0, 4, 0, 0, 0]);
    assert.deepEqual(decodeImageHeader(h), {
      magic: 0x96f3b83d, loadAddress: 0x1000, headerSize: 0x200, protectedTlvSize: 12, imageSize: 1000, flags: 0x110,
      version: { major: 1, minor: 2, revision: 3, build: 4 }, pad: 0,
    });
  });

  it('TLV type names', () => {
    assert.equal(tlvTypeName(TlvType.ECDSA_SIG), 'ECDSA_SIG');
    assert.equal(tlvTypeName(0x75), 'UUID_CID');
    assert.equal(tlvTypeName(0x01a0), 'VENDOR_0x01a0');
    assert.equal(tlvTypeName(0x99), 'UNKNOWN_0x0099');
  });
});
