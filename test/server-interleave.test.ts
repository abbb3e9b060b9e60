/**
 * Two clients on two transports (UDP and a pty) upload different images to one `mcumgr serve` at
 * the same time. Whatever the interleaving, each gets a coherent success or error, the slot never
 * holds a mix of the two, and its image is one of them (the one whose upload succeeded).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SmpClient } from '../src/client/client.ts';
import { uploadImage, type ImageUploadResult } from '../src/client/image-upload.ts';
import { commands } from '../src/core/commands/index.ts';
import { McuMgrError } from '../src/core/errors.ts';
import { buildImage } from '../src/image/index.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { tempDir } from './helpers.ts';
import { serialClient, startServe } from './load-helpers.ts';

test('interleaving: UDP and serial clients upload different images at once: coherent results, never a mixed slot', { timeout: 120_000 }, async () => {
  const dir = await tempDir();
  const serve = await startServe(['--data', dir.path, '--pty']);
  const udp = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: serve.port }), { timeoutMs: 2000, tries: 3 });
  let serial: SmpClient | undefined;
  try {
    const overSerial = await serialClient(serve.pty!, 3000, 3);
    serial = overSerial;
    const x = await buildImage({ payload: randomBytes(160 * 1024), version: '2.0.0' });
    const y = await buildImage({ payload: randomBytes(48 * 1024), version: '3.0.0' });
    for (let round = 0; round < 3; round++) {
      const results: Array<PromiseSettledResult<ImageUploadResult>> = await Promise.allSettled([uploadImage(udp, x.bytes), uploadImage(overSerial, y.bytes)]);
      for (const r of results) {
        if (r.status === 'rejected') assert.ok(r.reason instanceof McuMgrError, `a coherent error, not ${String(r.reason)}`);
      }
      const slot = new Uint8Array(await readFile(join(dir.path, 'mcuboot', 'image-0', 'slot-1.bin')));
      const holds = (img: Uint8Array): boolean => Buffer.compare(slot.subarray(0, img.length), img) === 0;
      const which = holds(x.bytes) ? 0 : holds(y.bytes) ? 1 : -1;
      const state = await udp.request(commands.image.state, {});
      const secondary = state.images.find((i) => i.slot === 1);
      assert.ok(which >= 0, `round ${round}: the slot holds neither image whole (${results.map((r) => r.status).join(', ')}; listed ${secondary?.version})`);
      assert.deepEqual(secondary?.hash, which === 0 ? x.hash : y.hash);
      const winner = results[which === 0 ? 0 : 1]!;
      assert.equal(winner.status, 'fulfilled', `round ${round}: the image in the slot came from a successful upload`);
      if (winner.status === 'fulfilled') assert.equal(winner.value.match, true);
      const loser = results[which === 0 ? 1 : 0]!;
      if (loser.status === 'fulfilled') assert.ok(loser.value.match === true, 'a success is a verified one');
      await udp.request(commands.image.erase, {});
    }
  } finally {
    await udp.close();
    await serial?.close();
    await serve.stop('SIGKILL');
    await dir.remove();
  }
});
