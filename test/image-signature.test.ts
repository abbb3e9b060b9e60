import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ImageFormatError,
  TlvType,
  assertImageValid,
  buildImage,
  encodePem,
  loadSigningKey,
  parseImage,
  parsePublicKey,
  verifyImage,
  verifyRsaPssDigest,
  type PublicKeyAlgorithm,
  type SigningKey,
} from '../src/image/index.ts';

const fixtureText = (name: string): string => readFileSync(new URL(`./fixtures/imgtool/${name}`, import.meta.url), 'utf8');
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`./fixtures/imgtool/${name}`, import.meta.url)));
const app = fixture('app.bin');
const subtle = globalThis.crypto.subtle;

async function generate(algorithm: PublicKeyAlgorithm, rsaBits = 2048): Promise<SigningKey> {
  let pair: CryptoKeyPair;
  switch (algorithm) {
    case 'ecdsa-p256':
      pair = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
      break;
    case 'ecdsa-p384':
      pair = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])) as CryptoKeyPair;
      break;
    case 'ed25519':
      pair = (await subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair;
      break;
    case 'rsa':
      pair = (await subtle.generateKey(
        { name: 'RSA-PSS', modulusLength: rsaBits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
        true,
        ['sign', 'verify'],
      )) as CryptoKeyPair;
      break;
  }
  return loadSigningKey(pair);
}

const cases: { name: string; algorithm: PublicKeyAlgorithm; bits?: number; sigType: number; fixture: string }[] = [
  { name: 'ECDSA P-256', algorithm: 'ecdsa-p256', sigType: TlvType.ECDSA_SIG, fixture: 'ecdsa-p256' },
  { name: 'ECDSA P-384', algorithm: 'ecdsa-p384', sigType: TlvType.ECDSA_SIG, fixture: 'ecdsa-p384' },
  { name: 'Ed25519', algorithm: 'ed25519', sigType: TlvType.ED25519, fixture: 'ed25519' },
  { name: 'RSA-2048 PSS', algorithm: 'rsa', bits: 2048, sigType: TlvType.RSA2048_PSS, fixture: 'rsa-2048' },
  { name: 'RSA-3072 PSS', algorithm: 'rsa', bits: 3072, sigType: TlvType.RSA3072_PSS, fixture: 'rsa-3072' },
];

describe('signatures made by imgtool verify here', () => {
  for (const c of cases) {
    it(`${c.name}: valid, then tampered signature and tampered image fail`, async () => {
      const key = parsePublicKey(fixtureText(`${c.fixture}.pub.pem`));
      assert.equal(key.algorithm, c.algorithm);
      const bytes = fixture(`signed-${c.fixture}.bin`);
      const v = await verifyImage(bytes, { keys: [key] });
      assert.ok(v.hashValid);
      assert.deepEqual(v.signature, { status: 'valid', keyIndex: 0, tlvType: c.sigType });
      assert.ok(v.valid);
      assertImageValid(v);

      const sigTlv = parseImage(bytes).tlvs.find((t) => t.type === c.sigType)!;
      const badSig = bytes.slice();
      badSig[sigTlv.offset + sigTlv.length - 3]! ^= 0x01;
      const vs = await verifyImage(badSig, { keys: [key] });
      assert.ok(vs.hashValid);
      assert.deepEqual(vs.signature, { status: 'invalid', reason: 'bad-signature' });
      assert.throws(() => assertImageValid(vs), (e: unknown) => e instanceof ImageFormatError && e.reason === 'BAD_SIGNATURE');

      const badBody = bytes.slice();
      badBody[0x200 + 1]! ^= 0x80;
      const vb = await verifyImage(badBody, { keys: [key] });
      assert.equal(vb.hashValid, false);
      assert.equal(vb.valid, false);
    });
  }

  it('a PUBKEY (full key) image verifies against the matching key', async () => {
    const key = parsePublicKey(fixtureText('ecdsa-p256.pub.pem'));
    const bytes = fixture('signed-ecdsa-p256-pubkey.bin');
    assert.ok(parseImage(bytes).tlvs.some((t) => t.type === TlvType.PUBKEY));
    assert.equal((await verifyImage(bytes, { keys: [key] })).signature.status, 'valid');
  });

  it('a signature by an untrusted key: no-trusted-key', async () => {
    const other = parsePublicKey(fixtureText('ecdsa-p384.pub.pem'));
    const v = await verifyImage(fixture('signed-ecdsa-p256.bin'), { keys: [other] });
    assert.deepEqual(v.signature, { status: 'invalid', reason: 'no-trusted-key' });
    assert.throws(() => assertImageValid(v), (e: unknown) => e instanceof ImageFormatError && e.reason === 'NO_TRUSTED_SIGNATURE');
  });

  it('the key hash selects the key among several', async () => {
    const keys = ['rsa-2048', 'ed25519', 'ecdsa-p256'].map((n) => parsePublicKey(fixtureText(`${n}.pub.pem`)));
    const v = await verifyImage(fixture('signed-ecdsa-p256.bin'), { keys });
    assert.deepEqual(v.signature, { status: 'valid', keyIndex: 2, tlvType: TlvType.ECDSA_SIG });
  });

  it('an unsigned image with keys configured: no-signature', async () => {
    const v = await verifyImage(fixture('unsigned.bin'), { keys: [parsePublicKey(fixtureText('ed25519.pub.pem'))] });
    assert.deepEqual(v.signature, { status: 'invalid', reason: 'no-signature' });
    assert.equal(v.valid, false);
  });

  it('a signed image without keys configured is accepted on its hash', async () => {
    const v = await verifyImage(fixture('signed-rsa-2048.bin'));
    assert.deepEqual(v.signature, { status: 'not-checked' });
    assert.ok(v.valid);
  });

  it('imgtool PKCS#8 keys load; Ed25519 (deterministic) gives a byte-identical image to imgtool', async () => {
    const key = await loadSigningKey(fixtureText('ed25519.pem'));
    assert.equal(key.algorithm, 'ed25519');
    assert.deepEqual(key.publicKey.spki, parsePublicKey(fixtureText('ed25519.pub.pem')).spki);
    const built = await buildImage({ payload: app, version: '3.1.4+1', signingKey: key });
    assert.deepEqual(built.bytes, fixture('signed-ed25519.bin'));
  });

  it('imgtool KEYHASH values equal our key hashes (SPKI for EC/Ed25519, PKCS#1 for RSA)', async () => {
    for (const c of cases) {
      const key = await loadSigningKey(fixtureText(`${c.fixture}.pem`));
      const keyHashTlv = parseImage(fixture(`signed-${c.fixture}.bin`)).tlvs.find((t) => t.type === TlvType.KEYHASH)!;
      const alg = c.algorithm === 'ecdsa-p384' ? 'sha384' : 'sha256';
      assert.deepEqual(new Uint8Array(createHash(alg).update(key.publicKey.embedded).digest()), keyHashTlv.value, c.name);
    }
  });
});

describe('images signed by our builder', () => {
  const keys = new Map<string, SigningKey>();
  before(async () => {
    for (const c of cases) keys.set(c.name, await generate(c.algorithm, c.bits));
  });

  for (const c of cases) {
    it(`${c.name}: builder signs, verifier accepts; tampering is caught`, async () => {
      const key = keys.get(c.name)!;
      const built = await buildImage({ payload: app, version: '9.8.7+6', signingKey: key, securityCounter: 'auto' });
      const img = parseImage(built.bytes);
      assert.deepEqual(img.tlvs.map((t) => t.type), [img.tlvs[0]!.type, TlvType.KEYHASH, c.sigType]);
      const v = await verifyImage(built.bytes, { keys: [key.publicKey] });
      assert.ok(v.valid, JSON.stringify(v.signature));

      const badSig = built.bytes.slice();
      const sig = img.tlvs[2]!;
      badSig[sig.offset + 8]! ^= 0x10;
      assert.equal((await verifyImage(badSig, { keys: [key.publicKey] })).signature.status, 'invalid');

      const badBody = built.bytes.slice();
      badBody[0x200]! ^= 1;
      const vb = await verifyImage(badBody, { keys: [key.publicKey] });
      assert.equal(vb.hashValid, false);
      assert.equal(vb.valid, false);
    });
  }

  it('PEM round trip: PKCS#8 private and SPKI public keys', async () => {
    const key = keys.get('ECDSA P-256')!;
    const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', key.privateKey));
    const reloaded = await loadSigningKey(encodePem('PRIVATE KEY', pkcs8));
    assert.deepEqual(reloaded.publicKey.spki, key.publicKey.spki);
    assert.deepEqual(parsePublicKey(encodePem('PUBLIC KEY', key.publicKey.spki)).spki, key.publicKey.spki);
    assert.deepEqual(parsePublicKey(key.publicKey.spki).spki, key.publicKey.spki);
  });

  it('RSA PKCS#1 public keys ("RSA PUBLIC KEY" PEM or bare DER) are accepted', () => {
    const key = keys.get('RSA-2048 PSS')!.publicKey;
    const fromPem = parsePublicKey(encodePem('RSA PUBLIC KEY', key.embedded));
    assert.equal(fromPem.modulus, key.modulus);
    assert.equal(parsePublicKey(key.embedded).modulus, key.modulus);
    assert.equal(fromPem.bits, 2048);
  });

  it('a key/hash pairing MCUboot does not support is refused by the builder', async () => {
    await assert.rejects(
      buildImage({ payload: app, signingKey: keys.get('ECDSA P-256')!, hashAlgorithm: 'sha384' }),
      (e: unknown) => e instanceof ImageFormatError && e.reason === 'BAD_OPTIONS',
    );
  });

  it('RSA-PSS digest verify agrees with Web Crypto on random messages (differential)', async () => {
    const key = keys.get('RSA-2048 PSS')!;
    for (let i = 0; i < 20; i++) {
      const msg = globalThis.crypto.getRandomValues(new Uint8Array(1 + i * 37));
      const sig = new Uint8Array(await subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, key.privateKey, msg));
      const mHash = new Uint8Array(createHash('sha256').update(msg).digest());
      assert.ok(verifyRsaPssDigest(key.publicKey, sig, mHash));
      const wrong = mHash.slice();
      wrong[i % 32]! ^= 1;
      assert.equal(verifyRsaPssDigest(key.publicKey, sig, wrong), false);
      const badSig = sig.slice();
      badSig[i]! ^= 0x80;
      assert.equal(verifyRsaPssDigest(key.publicKey, badSig, mHash), false);
    }
  });

  it('malformed keys are typed errors', () => {
    assert.throws(() => parsePublicKey('not a pem'), (e: unknown) => e instanceof ImageFormatError && e.reason === 'BAD_KEY');
    assert.throws(() => parsePublicKey(new Uint8Array([0x30, 0x03, 0x02, 0x01])), (e: unknown) => e instanceof ImageFormatError && e.reason === 'BAD_KEY');
    assert.throws(() => parsePublicKey(encodePem('PRIVATE KEY', new Uint8Array(4))), (e: unknown) => e instanceof ImageFormatError && e.reason === 'BAD_KEY');
  });
});
