/**
 * Crash safety of the emulated device's storage: `mcumgr serve` is killed with SIGKILL while
 * settings saves and an fs upload are running, restarted on the same data directory, and the
 * state must be readable and consistent (real processes, real files, UDP).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { commands } from '../src/core/commands/index.ts';
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { uploadFile } from '../src/client/fs-transfer.ts';
import { decodeSettingsLog } from '../src/server/settings-log.ts';
import { startServeProcess, tempDir } from './helpers.ts';

const KEYS = 16;
const valueOf = (generation: number): Uint8Array => new TextEncoder().encode(String(generation).padStart(32, '0'));
const generationOf = (v: Uint8Array): number => Number(new TextDecoder().decode(v));

async function clientFor(port: number, timeoutMs = 1000): Promise<SmpClient> {
  return new SmpClient(await openUdpClient({ host: '127.0.0.1', port, mtu: 2048 }), { timeoutMs, tries: 2 });
}

test('SIGKILL during settings saves: after a restart every key holds the same, saved generation', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  const data = join(dir.path, 'device');
  let generation = 0;
  let lastSaved = 0;
  try {
    for (const killAfterMs of [250, 420, 610]) {
      const serve = await startServeProcess(['--data', data]);
      const client = await clientFor(serve.port);
      const stop = new AbortController();
      // Writer: each generation writes every key, then saves (one batch in the log).
      const writer = (async () => {
        while (!stop.signal.aborted) {
          const g = generation + 1;
          for (let k = 0; k < KEYS; k++) await client.request(commands.settings.write, { name: `app/k${k}`, val: valueOf(g) }, { signal: stop.signal });
          generation = g;
          await client.request(commands.settings.save, {}, { signal: stop.signal });
          lastSaved = g;
        }
      })().catch(() => {});
      await new Promise((r) => setTimeout(r, killAfterMs));
      await serve.stop(true);
      stop.abort();
      await writer;
      await client.close();

      // The log on disk decodes (perhaps with a torn tail) ...
      const log = decodeSettingsLog(new Uint8Array(await readFile(join(data, 'settings', 'settings.log'))));
      assert.ok(log.formatOk);
      // ... and the restarted device serves one consistent generation, at least the last acknowledged save.
      const again = await startServeProcess(['--data', data]);
      const c = await clientFor(again.port);
      const seen = new Set<number>();
      for (let k = 0; k < KEYS; k++) seen.add(generationOf((await c.request(commands.settings.read, { name: `app/k${k}`, max_size: 32 })).val));
      await c.close();
      await again.stop();
      assert.equal(seen.size, 1, `keys from different saves: ${[...seen].join(', ')}`);
      const [g] = [...seen] as [number];
      assert.ok(lastSaved > 0, 'saves ran before the kill');
      assert.ok(g >= lastSaved && g <= generation, `restored generation ${g}, acknowledged ${lastSaved}, attempted ${generation}`);
      generation = g;
    }
  } finally {
    await dir.remove();
  }
});

test('SIGKILL during an fs upload: after a restart the file is a readable prefix and the upload resumes to a verified copy', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  const data = join(dir.path, 'device');
  const payload = new Uint8Array(randomBytes(12 * 1024 * 1024));
  try {
    const serve = await startServeProcess(['--data', data]);
    const client = await clientFor(serve.port, 500);
    const stop = new AbortController();
    let confirmed = 0;
    const upload = uploadFile(client, '/lfs/big.bin', payload, { signal: stop.signal, verify: false, onProgress: (p) => (confirmed = p.done) }).then(
      () => 'finished',
      () => 'interrupted',
    );
    while (confirmed < 256 * 1024) await new Promise((r) => setTimeout(r, 5));
    await serve.stop(true);
    stop.abort();
    assert.equal(await upload, 'interrupted');
    await client.close();

    const onDisk = new Uint8Array(await readFile(join(data, 'fs', 'lfs', 'big.bin')));
    assert.ok(onDisk.length >= confirmed - 2048 && onDisk.length < payload.length, `file has ${onDisk.length} bytes, ${confirmed} were confirmed`);
    assert.deepEqual(onDisk, payload.subarray(0, onDisk.length), 'the file is a prefix of the upload');

    const again = await startServeProcess(['--data', data]);
    const c = await clientFor(again.port);
    try {
      assert.equal((await c.request(commands.fs.status, { name: '/lfs/big.bin' })).len, onDisk.length);
      const resumed = await uploadFile(c, '/lfs/big.bin', payload, { resume: true });
      assert.equal(resumed.resumedFrom, onDisk.length);
      assert.equal(resumed.verified?.type, 'sha256');
      assert.equal((await stat(join(data, 'fs', 'lfs', 'big.bin'))).size, payload.length);
    } finally {
      await c.close();
      await again.stop();
    }
  } finally {
    await dir.remove();
  }
});
