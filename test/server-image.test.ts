/**
 * The image group (1/0, 1/1, 1/5, 1/6) on the emulator over real UDP, byte-level where the wire
 * form matters (raw requests, v1 and v2 errors).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startEmulator, type TestEmulator } from './helpers.ts';
import { commands } from '../src/core/commands/index.ts';
import { DeviceError } from '../src/core/errors.ts';
import type { SmpClient } from '../src/client/client.ts';
import { buildImage, parseImage } from '../src/image/index.ts';
import type { ImageGroup } from '../src/server/groups/image.ts';

const G = 1;

async function makeImage(version: string, size = 40_000): Promise<{ bytes: Uint8Array; hash: Uint8Array; sha: Uint8Array }> {
  const payload = new Uint8Array(size).map((_, i) => (i * 17 + version.charCodeAt(0)) & 0xff);
  const bytes = (await buildImage({ payload, version })).bytes;
  return { bytes, hash: parseImage(bytes).hash!, sha: new Uint8Array(createHash('sha256').update(bytes).digest()) };
}

async function raw(c: SmpClient, id: number, op: 'read' | 'write', body: unknown): Promise<Record<string, unknown>> {
  return (await c.requestRaw(G, id, op, body)).body as Record<string, unknown>;
}

async function uploadAll(c: SmpClient, img: { bytes: Uint8Array; sha: Uint8Array }, chunk = 1024): Promise<Record<string, unknown>> {
  let rsp = await raw(c, 1, 'write', { image: 0, len: img.bytes.length, off: 0, sha: img.sha, data: img.bytes.subarray(0, chunk) });
  while ((rsp['off'] as number) < img.bytes.length) {
    const off = rsp['off'] as number;
    rsp = await raw(c, 1, 'write', { off, data: img.bytes.subarray(off, off + chunk) });
  }
  return rsp;
}

const flags = (e: Record<string, unknown>): string =>
  (['active', 'confirmed', 'pending', 'permanent'] as const).filter((k) => e[k] === true).join(',') || '-';

async function summary(c: SmpClient): Promise<string[]> {
  const r = await c.request(commands.image.state, {});
  return r.images.map((i) => `${i.slot} ${i.version} ${flags(i as Record<string, unknown>)}`);
}

describe('image group over UDP', () => {
  let emu: TestEmulator;
  let c: SmpClient;
  before(async () => {
    emu = await startEmulator({ verboseErrors: false });
    c = await emu.client({ timeoutMs: 3000 });
  });
  after(async () => {
    await emu.close();
  });

  it('1/0 read: the factory image, every flag present, splitStatus 0, no "image" key', async () => {
    const body = await raw(c, 0, 'read', {});
    const images = body['images'] as Record<string, unknown>[];
    assert.equal(images.length, 1);
    assert.deepEqual(Object.keys(images[0]!), ['slot', 'version', 'hash', 'bootable', 'pending', 'confirmed', 'active', 'permanent']);
    assert.equal(images[0]!['version'], '1.0.0');
    assert.equal((images[0]!['hash'] as Uint8Array).length, 32);
    assert.equal(body['splitStatus'], 0);
  });

  it('1/6 slot info', async () => {
    assert.deepEqual(await raw(c, 6, 'read', {}), { images: [{ image: 0, slots: [{ slot: 0, size: 0x180000 }, { slot: 1, size: 0x180000, upload_image_id: 0 }] }] });
  });

  it('1/1 upload: first-chunk checks answer the §3.2 errors (v2 err, v1 rc)', async () => {
    const img = await makeImage('2.0.0');
    const cases: Array<[Record<string, unknown>, number]> = [
      [{ data: img.bytes.subarray(0, 64), len: img.bytes.length }, 20],
      [{ off: 0, data: img.bytes.subarray(0, 31), len: img.bytes.length }, 22],
      [{ off: 0, data: img.bytes.subarray(0, 64) }, 21],
      [{ off: 0, data: new Uint8Array(64), len: 100 }, 23],
      [{ off: 0, data: img.bytes.subarray(0, 64), len: 100, sha: new Uint8Array(33) }, 24],
      [{ off: 0, data: img.bytes.subarray(0, 64), len: 0x180001 }, 30],
      [{ off: 0, data: img.bytes.subarray(0, 64), len: 100, image: 4 }, 9],
      [{ off: 0, data: img.bytes.subarray(0, 64), len: 100, upgrade: true, image: 0 }, -1],
    ];
    for (const [body, rc] of cases) {
      const r = await raw(c, 1, 'write', body);
      if (rc < 0) continue;
      assert.deepEqual(r, { err: { group: 1, rc } }, `${JSON.stringify(Object.keys(body))} → ${JSON.stringify(r)}`);
    }
    // upgrade with an older or equal version: CURRENT_VERSION_IS_NEWER
    const old = await makeImage('1.0.0');
    assert.deepEqual(await raw(c, 1, 'write', { off: 0, data: old.bytes.subarray(0, 64), len: old.bytes.length, upgrade: true }), { err: { group: 1, rc: 27 } });
    // wrong types are decode failures (rc 3)
    assert.deepEqual(await raw(c, 1, 'write', { off: '0', data: new Uint8Array(64) }), { rc: 3 });
    assert.deepEqual(await raw(c, 1, 'write', { off: 0, data: new Uint8Array(64), upgrade: 1 }), { rc: 3 });
    // a v1 client gets the legacy translation: INVALID_IMAGE_HEADER → EINVAL, bad magic → EUNKNOWN
    const v1 = await emu.client({ version: 0, noFallback: true });
    assert.deepEqual((await v1.requestRaw(G, 1, 'write', { off: 0, data: new Uint8Array(8), len: 8 })).body, { rc: 3 });
    assert.deepEqual((await v1.requestRaw(G, 1, 'write', { off: 0, data: new Uint8Array(64), len: 100 })).body, { rc: 1 });
  });

  it('1/1 upload: full upload with match, resume by sha, offset resync, overrun, instant match', async () => {
    const img = await makeImage('2.0.0');
    const first = await raw(c, 1, 'write', { image: 0, len: img.bytes.length, off: 0, sha: img.sha, data: img.bytes.subarray(0, 1000) });
    assert.deepEqual(first, { off: 1000 });
    // wrong offset: data dropped, expected offset returned
    assert.deepEqual(await raw(c, 1, 'write', { off: 5000, data: img.bytes.subarray(5000, 6000) }), { off: 1000 });
    // resume: the same sha at off 0 answers the session offset without writing
    assert.deepEqual(await raw(c, 1, 'write', { image: 0, len: img.bytes.length, off: 0, sha: img.sha, data: img.bytes.subarray(0, 1000) }), { off: 1000 });
    // zero-length data at the right offset
    assert.deepEqual(await raw(c, 1, 'write', { off: 1000, data: new Uint8Array(0) }), { off: 1000 });
    // overrun resets the session
    const small = await makeImage('2.0.1', 2000);
    assert.deepEqual(await raw(c, 1, 'write', { image: 0, len: small.bytes.length, off: 0, sha: small.sha, data: small.bytes.subarray(0, 1000) }), { off: 1000 });
    assert.deepEqual(await raw(c, 1, 'write', { off: 1000, data: new Uint8Array(small.bytes.length - 999) }), { err: { group: 1, rc: 31 } });
    assert.deepEqual(await raw(c, 1, 'write', { off: 1000, data: small.bytes.subarray(1000, 2000) }), { off: 0 });
    const done = await uploadAll(c, img);
    assert.deepEqual(done, { off: img.bytes.length, match: true });
    // already there: instant match on the first chunk
    assert.deepEqual(await raw(c, 1, 'write', { image: 0, len: img.bytes.length, off: 0, sha: img.sha, data: img.bytes.subarray(0, 100) }), { off: img.bytes.length, match: true });
    // a wrong sha: the upload completes, match false
    const wrong = { bytes: img.bytes, sha: new Uint8Array(32).fill(7) };
    assert.deepEqual(await uploadAll(c, wrong), { off: img.bytes.length, match: false });
    assert.deepEqual(await summary(c), ['0 1.0.0 active,confirmed', '1 2.0.0 -']);
  });

  it('1/0 write + reset: test, revert on an unconfirmed reset, then test and confirm', async () => {
    const img = await makeImage('2.0.0');
    await uploadAll(c, img);
    const r = await c.request(commands.image.stateWrite, { hash: img.hash, confirm: false });
    assert.deepEqual(r.images.map((i) => flags(i as Record<string, unknown>)), ['active,confirmed', 'pending']);
    // test again: no-op; confirm now: 28
    await c.request(commands.image.stateWrite, { hash: img.hash });
    await assert.rejects(c.request(commands.image.stateWrite, { hash: img.hash, confirm: true }), (e: unknown) => e instanceof DeviceError && e.group === 1 && e.rc === 28);
    // a pending slot cannot be erased or uploaded over
    assert.deepEqual(await raw(c, 5, 'write', {}), { err: { group: 1, rc: 9 } });
    assert.deepEqual(await raw(c, 1, 'write', { off: 0, data: img.bytes.subarray(0, 64), len: img.bytes.length }), { err: { group: 1, rc: 9 } });

    await emu.server.reset();
    assert.deepEqual(await summary(c), ['0 2.0.0 active', '1 1.0.0 confirmed']);
    await emu.server.reset();
    assert.deepEqual(await summary(c), ['0 1.0.0 active,confirmed', '1 2.0.0 -']);

    await c.request(commands.image.stateWrite, { hash: img.hash, confirm: false });
    await emu.server.reset();
    const confirmed = await c.request(commands.image.stateWrite, { confirm: true });
    assert.deepEqual(confirmed.images.map((i) => `${i.version} ${flags(i as Record<string, unknown>)}`), ['2.0.0 active,confirmed', '1.0.0 -']);
    await emu.server.reset();
    assert.deepEqual(await summary(c), ['0 2.0.0 active,confirmed', '1 1.0.0 -']);
  });

  it('1/0 write errors: no hash + test → 24, bad length → 24, unknown → 8, active → 33; a wrong type → rc 3', async () => {
    assert.deepEqual(await raw(c, 0, 'write', { confirm: false }), { err: { group: 1, rc: 24 } });
    assert.deepEqual(await raw(c, 0, 'write', { hash: new Uint8Array(16) }), { err: { group: 1, rc: 24 } });
    assert.deepEqual(await raw(c, 0, 'write', { hash: new Uint8Array(32) }), { err: { group: 1, rc: 8 } });
    const [active] = (await c.request(commands.image.state, {})).images;
    assert.deepEqual(await raw(c, 0, 'write', { hash: active!.hash }), { err: { group: 1, rc: 33 } });
    assert.deepEqual(await raw(c, 0, 'write', { confirm: 1 }), { rc: 3 });
  });

  it('1/5 erase: the secondary is erased and drops from the list; the active slot is refused', async () => {
    assert.deepEqual(await raw(c, 5, 'write', { slot: 1 }), {});
    assert.deepEqual(await summary(c), ['0 2.0.0 active,confirmed']);
    assert.deepEqual(await raw(c, 5, 'write', { slot: 0 }), { err: { group: 1, rc: 9 } });
    assert.deepEqual(await raw(c, 5, 'write', { slot: 7 }), { err: { group: 1, rc: 14 } });
    assert.equal(await (emu.server.registry.findGroup(1) as ImageGroup).model.slot(1).isErased(), true);
  });

  it('a reset drops the upload session: a continuation answers off 0', async () => {
    const img = await makeImage('3.0.0');
    await raw(c, 1, 'write', { image: 0, len: img.bytes.length, off: 0, sha: img.sha, data: img.bytes.subarray(0, 500) });
    await emu.server.reset();
    assert.deepEqual(await raw(c, 1, 'write', { off: 500, data: img.bytes.subarray(500, 1000) }), { off: 0 });
  });

  it('hooks: DFU started/pending and a rejecting chunk hook', async () => {
    const seen: string[] = [];
    const offs = [
      emu.server.hooks.on('img_dfu_started', () => void seen.push('started')),
      emu.server.hooks.on('img_dfu_pending', () => void seen.push('pending')),
      emu.server.hooks.on('img_dfu_stopped', () => void seen.push('stopped')),
    ];
    const img = await makeImage('4.0.0', 3000);
    await uploadAll(c, img);
    const reject = emu.server.hooks.on('img_dfu_chunk', (d) => (d.off >= 1024 ? { group: 1, rc: 32 } : undefined));
    const r = await raw(c, 1, 'write', { image: 0, len: img.bytes.length, off: 0, sha: new Uint8Array(32), data: img.bytes.subarray(0, 1024) });
    assert.deepEqual(r, { off: 1024 });
    assert.deepEqual(await raw(c, 1, 'write', { off: 1024, data: img.bytes.subarray(1024, 2048) }), { err: { group: 1, rc: 32 } });
    reject();
    for (const off of offs) off();
    assert.deepEqual(seen, ['started', 'pending', 'started', 'stopped']);
  });
});

describe('image group: multi-image and frugal list', () => {
  it('two images list "image", confirming image 1 is refused (32)', async () => {
    const { imageGroupFactory } = await import('../src/server/groups/image.ts');
    const { createOsGroup } = await import('../src/server/groups/os.ts');
    const emu = await startEmulator({ verboseErrors: false, groups: [createOsGroup, imageGroupFactory({ images: 2, slotSize: 0x40000, frugalList: true })] });
    try {
      const c = await emu.client();
      const body = await raw(c, 0, 'read', {});
      assert.deepEqual(
        (body['images'] as Record<string, unknown>[]).map((i) => Object.keys(i)),
        [['image', 'slot', 'version', 'hash', 'bootable', 'confirmed', 'active'], ['image', 'slot', 'version', 'hash', 'bootable', 'confirmed', 'active']],
      );
      assert.equal(body['splitStatus'], undefined);
      const img = await makeImage('1.5.0', 5000);
      let rsp = await raw(c, 1, 'write', { image: 1, len: img.bytes.length, off: 0, sha: img.sha, data: img.bytes.subarray(0, 1500) });
      while ((rsp['off'] as number) < img.bytes.length) rsp = await raw(c, 1, 'write', { off: rsp['off'], data: img.bytes.subarray(rsp['off'] as number, (rsp['off'] as number) + 1500) });
      assert.equal(rsp['match'], true);
      assert.deepEqual(await raw(c, 0, 'write', { hash: img.hash, confirm: true }), { err: { group: 1, rc: 32 } });
      const t = await raw(c, 0, 'write', { hash: img.hash });
      assert.deepEqual((t['images'] as Record<string, unknown>[]).map((i) => [i['image'], i['slot'], i['pending'] ?? false]), [[0, 0, false], [1, 0, false], [1, 1, true]]);
    } finally {
      await emu.close();
    }
  });
});
