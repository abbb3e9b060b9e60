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
  return new SmpClient(await openUdpClient({ host: '127.0.0.1', port, mtu: 2048 }), { timeoutMs, tries: 5 });
}

/** Where in the writer's cycle the device is killed: each round kills at another point. */
type KillPoint = 'between writes' | 'save in flight' | 'save acknowledged';

test('SIGKILL during settings saves: after a restart every key holds the same, saved generation', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir();
  t.after(() => dir.remove());
  const data = join(dir.path, 'device');
  let generation = 0;
  let lastSaved = 0;
  const points: KillPoint[] = ['between writes', 'save in flight', 'save acknowledged'];
  for (const point of points) {
    // The kill synchronises on the writer's progress (no fixed delay): two generations saved in
    // this process first, then the round's point in the third.
    const serve = await startServeProcess(['--data', data]);
    t.after(() => serve.stop(true));
    let savesHere = 0;
    let killed: Promise<void> | undefined;
    const stop = new AbortController();
    const kill = (): void => {
      killed ??= serve.stop(true);
      // The writer's request in flight goes nowhere now: stop waiting for it.
      stop.abort();
    };
    let saving = false;
    const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: serve.port, mtu: 2048 }), {
      // Patient: on a busy machine a request must not fail before the kill (they are idempotent).
      timeoutMs: 1000,
      tries: 10,
      // The save request is being handed to the socket: kill right after, while the device may be writing.
      onPacket: (direction) => {
        if (direction === 'tx' && saving && point === 'save in flight' && savesHere >= 2) setImmediate(kill);
      },
    });
    t.after(() => client.close());
    // Writer: each generation writes every key, then saves (one batch in the log).
    const writer = (async () => {
      while (!stop.signal.aborted && killed === undefined) {
        const g = generation + 1;
        for (let k = 0; k < KEYS; k++) {
          await client.request(commands.settings.write, { name: `app/k${k}`, val: valueOf(g) }, { signal: stop.signal });
          if (point === 'between writes' && savesHere >= 2 && k === KEYS / 2) kill();
        }
        generation = g;
        saving = true;
        await client.request(commands.settings.save, {}, { signal: stop.signal });
        saving = false;
        lastSaved = g;
        savesHere++;
        if (point === 'save acknowledged' && savesHere >= 3) kill();
      }
    })();
    // The writer ends once the device is gone (its requests fail); a failure before the kill is the test's.
    const ended = await writer.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(killed, `the writer stopped before the kill (${point}): ${String(ended)}`);
    await killed;
    await client.close();

    // The log on disk decodes (perhaps with a torn tail) ...
    const log = decodeSettingsLog(new Uint8Array(await readFile(join(data, 'settings', 'settings.log'))));
    assert.ok(log.formatOk);
    // ... and the restarted device serves one consistent generation, at least the last acknowledged save.
    const again = await startServeProcess(['--data', data]);
    t.after(() => again.stop());
    const c = await clientFor(again.port);
    t.after(() => c.close());
    const seen = new Set<number>();
    for (let k = 0; k < KEYS; k++) seen.add(generationOf((await c.request(commands.settings.read, { name: `app/k${k}`, max_size: 32 })).val));
    await c.close();
    await again.stop();
    assert.equal(seen.size, 1, `keys from different saves (${point}): ${[...seen].join(', ')}`);
    const [g] = [...seen] as [number];
    assert.ok(lastSaved > 0, 'saves ran before the kill');
    assert.ok(g >= lastSaved && g <= generation, `restored generation ${g}, acknowledged ${lastSaved}, attempted ${generation} (${point})`);
    generation = g;
  }
});

test('SIGKILL during an fs upload: after a restart the file is a readable prefix and the upload resumes to a verified copy', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir();
  t.after(() => dir.remove());
  const data = join(dir.path, 'device');
  const payload = new Uint8Array(randomBytes(12 * 1024 * 1024));
  const serve = await startServeProcess(['--data', data]);
  t.after(() => serve.stop(true));
  const client = await clientFor(serve.port, 500);
  t.after(() => client.close());
  const stop = new AbortController();
  let confirmed = 0;
  // Killed from the progress callback once 256 KiB are confirmed (synchronised on the upload, no polling).
  let killed: Promise<void> | undefined;
  const upload = uploadFile(client, '/lfs/big.bin', payload, {
    signal: stop.signal,
    verify: false,
    onProgress: (p) => {
      confirmed = p.done;
      if (confirmed >= 256 * 1024 && !killed) {
        killed = serve.stop(true);
        stop.abort();
      }
    },
  }).then(
    () => 'finished',
    (e: unknown) => (killed ? 'interrupted' : e),
  );
  assert.equal(await upload, 'interrupted');
  await killed;
  await client.close();

  const onDisk = new Uint8Array(await readFile(join(data, 'fs', 'lfs', 'big.bin')));
  assert.ok(onDisk.length >= confirmed && onDisk.length < payload.length, `file has ${onDisk.length} bytes, ${confirmed} were confirmed`);
  assert.deepEqual(onDisk, payload.subarray(0, onDisk.length), 'the file is a prefix of the upload');

  const again = await startServeProcess(['--data', data]);
  t.after(() => again.stop());
  const c = await clientFor(again.port);
  t.after(() => c.close());
  assert.equal((await c.request(commands.fs.status, { name: '/lfs/big.bin' })).len, onDisk.length);
  const resumed = await uploadFile(c, '/lfs/big.bin', payload, { resume: true });
  assert.equal(resumed.resumedFrom, onDisk.length);
  assert.equal(resumed.verified?.type, 'sha256');
  assert.equal((await stat(join(data, 'fs', 'lfs', 'big.bin'))).size, payload.length);
});
