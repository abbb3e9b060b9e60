/**
 * Image upload and upgrade end to end over real UDP: the client's windowed upload engine against
 * the emulator's image group and MCUboot model, through device resets, a lossy link, an
 * interrupted client, and the CLI as a process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { startEmulator, runCli, startServeProcess, tempDir, CLI, ROOT, payload } from './helpers.ts';
import { buildImage } from '../src/image/build.ts';
import { loadSigningKey } from '../src/image/keys.ts';
import { readFile } from 'node:fs/promises';
import { uploadImage } from '../src/client/image-upload.ts';
import { upgradeImage, readImageState } from '../src/client/upgrade.ts';
import { commands } from '../src/core/commands/index.ts';
import { DeviceError, McuMgrError, TransportError } from '../src/core/errors.ts';
import { bytesEqual, toHex } from '../src/core/bytes.ts';
import { startUdpRelay } from '../src/transport/udp-relay.ts';
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { decodeBody, splitMessages } from '../src/core/message.ts';

async function image(version: string, size = 64 * 1024, seed = 1): Promise<{ bytes: Uint8Array; hash: Uint8Array }> {
  const built = await buildImage({ payload: payload(size, seed), version });
  return { bytes: built.bytes, hash: built.hash };
}

const slot = (state: Awaited<ReturnType<typeof readImageState>>, n: number): (typeof state)[number] | undefined => state.find((s) => (s.image ?? 0) === 0 && s.slot === n);

test('image upload: a 256 KiB image lands in the secondary slot with the right hash', async () => {
  const emu = await startEmulator();
  try {
    const c = await emu.client({ timeoutMs: 2000 });
    const img = await image('1.2.3', 256 * 1024);
    const progress: number[] = [];
    const r = await uploadImage(c, img.bytes, { onProgress: (p) => progress.push(p.offset) });
    assert.equal(r.match, true);
    assert.equal(r.resumedAt, 0);
    assert.equal(r.bytesSent, img.bytes.length);
    assert.ok(r.chunkSize > 1800, `chunks fill the 2048-byte frame: ${r.chunkSize}`);
    assert.equal(progress.at(-1), img.bytes.length);
    const state = await readImageState(c);
    const s1 = slot(state, 1);
    assert.ok(s1?.hash && bytesEqual(s1.hash, img.hash));
    assert.equal(s1.version, '1.2.3');
    assert.equal(s1.pending, false);
    // the device already holds it: a second upload is answered at once with match
    const again = await uploadImage(c, img.bytes);
    assert.equal(again.match, true);
    assert.equal(again.chunks, 1);
  } finally {
    await emu.close();
  }
});

test('image upload: an interrupted upload resumes at the device offset instead of restarting', async () => {
  const emu = await startEmulator();
  try {
    const c = await emu.client({ timeoutMs: 2000 });
    const img = await image('2.0.0', 200 * 1024, 7);
    const ac = new AbortController();
    await assert.rejects(
      uploadImage(c, img.bytes, { signal: ac.signal, onProgress: (p) => p.offset > img.bytes.length / 3 && ac.abort() }),
      (e: unknown) => e instanceof TransportError && e.code === 'TRANSPORT_ABORTED',
    );
    const r = await uploadImage(c, img.bytes);
    assert.ok(r.resumedAt > img.bytes.length / 3, `resumed at ${r.resumedAt}`);
    assert.equal(r.bytesSent, img.bytes.length - r.resumedAt, 'exactly the rest was sent');
    assert.equal(r.match, true);
  } finally {
    await emu.close();
  }
});

test('image upload: 5% of datagrams dropped each way, the upload completes with the right hash', async () => {
  const emu = await startEmulator();
  let seed = 42;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const relay = await startUdpRelay({ target: { host: '127.0.0.1', port: emu.port }, toDevice: { drop: 0.05 }, toClient: { drop: 0.05 }, random });
  try {
    const c = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: relay.port, mtu: 2048 }), { timeoutMs: 300, tries: 10 });
    const img = await image('3.1.4', 256 * 1024, 3);
    const r = await uploadImage(c, img.bytes, { chunkTimeoutMs: 150, chunkTries: 20 });
    assert.equal(r.match, true);
    assert.ok(relay.stats.dropped > 5, `dropped ${relay.stats.dropped}`);
    assert.ok(r.retransmissions > 0);
    const s1 = slot(await readImageState(c), 1);
    assert.ok(s1?.hash && bytesEqual(s1.hash, img.hash));
    await c.close();
  } finally {
    await relay.close();
    await emu.close();
  }
});

/** The SMP sequence number and `off` of an image upload request (undefined for anything else). */
function uploadChunkOf(packet: Uint8Array): { seq: number; off: number } | undefined {
  for (const { header, payload } of splitMessages(packet)) {
    const body = decodeBody(payload) as { off?: unknown } | undefined;
    if (header.group === 1 && header.id === 1 && typeof body?.off === 'number') return { seq: header.seq, off: body.off };
  }
  return undefined;
}

test('image upload: a fresh upload whose last chunks reach the device twice and out of order reports no resume (relay on events)', async (t) => {
  // The link duplicates and reorders (a real UDP relay, driven by events, not timers): the
  // next-to-last chunk is held, the last one arrives first (the device answers with the gap, so
  // the client goes back) and again after the held one, so the device completes the image from
  // the old copies. The client's go-back copy then finds no session: the device answers off 0,
  // the client sends the first chunk again and the device answers off = len with match. That
  // answer is no resume: this upload started from nothing.
  const emu = await startEmulator();
  t.after(() => emu.close());
  const img = await image('4.0.0', 6000, 11);
  const total = img.bytes.length;
  const cs = 512;
  const lastOff = Math.floor((total - 1) / cs) * cs;
  const beforeLast = lastOff - cs;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let heldSeq: number | undefined;
  let lastSeen = false;
  const relay = await startUdpRelay({
    target: { host: '127.0.0.1', port: emu.port },
    toDevice: {
      schedule: (_n, packet) => {
        const chunk = uploadChunkOf(packet);
        if (chunk?.off === beforeLast) {
          if (heldSeq === undefined) heldSeq = chunk.seq;
          // The old copy (and any retransmission of it) waits; the go-back copy releases it and goes after it.
          if (chunk.seq === heldSeq) return [released];
          release();
          return [released];
        }
        if (chunk?.off === lastOff && !lastSeen) {
          lastSeen = true;
          return ['now', released];
        }
        return undefined;
      },
    },
  });
  t.after(() => relay.close());
  const c = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: relay.port, mtu: 2048 }), { timeoutMs: 3000, tries: 5 });
  t.after(() => c.close());
  const r = await uploadImage(c, img.bytes, { chunkSize: cs, maxWindow: 4 });
  assert.ok(lastSeen && heldSeq !== undefined, 'the relay saw the last two chunks');
  assert.equal(r.match, true);
  assert.equal(r.resumedAt, 0, 'a fresh upload resumed nothing');
  const s1 = slot(await readImageState(c), 1);
  assert.ok(s1?.hash && bytesEqual(s1.hash, img.hash));
});

test('image: test, reset, revert, then test, reset, confirm, reset — over UDP through device resets', async () => {
  const emu = await startEmulator();
  try {
    const c = await emu.client({ timeoutMs: 300, tries: 10 });
    const before = await readImageState(c);
    const factory = slot(before, 0)!;
    assert.equal(factory.active, true);
    assert.equal(factory.confirmed, true);
    const img = await image('2.0.0', 32 * 1024, 9);
    await uploadImage(c, img.bytes);
    const tested = await c.request(commands.image.stateWrite, { hash: img.hash, confirm: false });
    assert.equal(tested.images.find((s) => s.slot === 1)?.pending, true);
    // Synchronised on the device's boot (its boot tasks, the MCUboot swap among them, ran), not on a delay.
    let booted: (() => void) | undefined;
    emu.server.onBoot((reason) => {
      if (reason === 'reset') booted?.();
    });
    const resetAndWait = async (): Promise<void> => {
      const done = new Promise<void>((r) => (booted = r));
      await c.request(commands.os.reset, {});
      await done;
    };
    await resetAndWait();
    let state = await readImageState(c);
    assert.equal(slot(state, 0)?.version, '2.0.0');
    assert.equal(slot(state, 0)?.active, true);
    assert.equal(slot(state, 0)?.confirmed, false, 'a tested image runs unconfirmed');
    await resetAndWait(); // not confirmed: MCUboot reverts
    state = await readImageState(c);
    assert.equal(slot(state, 0)?.version, factory.version);
    assert.equal(slot(state, 0)?.confirmed, true);
    // once more, and confirm this time: it stays
    await c.request(commands.image.stateWrite, { hash: img.hash, confirm: false });
    await resetAndWait();
    await c.request(commands.image.stateWrite, { confirm: true });
    await resetAndWait();
    state = await readImageState(c);
    assert.equal(slot(state, 0)?.version, '2.0.0');
    assert.equal(slot(state, 0)?.confirmed, true);
    // state-write errors by name
    await assert.rejects(c.request(commands.image.stateWrite, { hash: slot(state, 0)!.hash!, confirm: false }), (e: unknown) => e instanceof DeviceError && e.group === 1 && e.rc === 33);
    await assert.rejects(c.request(commands.image.stateWrite, { hash: new Uint8Array(32), confirm: false }), (e: unknown) => e instanceof DeviceError && e.group === 1 && e.rc === 8);
    await assert.rejects(c.request(commands.image.stateWrite, { hash: new Uint8Array(5), confirm: false }), (e: unknown) => e instanceof DeviceError && e.group === 1 && e.rc === 24);
  } finally {
    await emu.close();
  }
});

test('upgrade: reports old and new versions, confirms, and catches an image that does not boot', async () => {
  const emu = await startEmulator();
  try {
    const c = await emu.client({ timeoutMs: 300, tries: 10 });
    const v2 = await image('2.0.0', 48 * 1024, 11);
    const stages: string[] = [];
    const r = await upgradeImage(c, v2.bytes, { onStage: (s) => stages.push(s), pollTimeoutMs: 200 });
    assert.equal(r.to.version, '2.0.0');
    assert.equal(r.from?.version, '1.0.0');
    assert.equal(r.confirmed, true);
    assert.deepEqual(stages, ['inspect', 'upload', 'test', 'reset', 'wait', 'verify', 'confirm', 'done']);
    const again = await upgradeImage(c, v2.bytes);
    assert.equal(again.alreadyRunning, true);
    // A corrupted image (payload byte flipped after hashing): MCUboot refuses it at boot.
    const v3 = await image('3.0.0', 48 * 1024, 12);
    const bad = v3.bytes.slice();
    bad[1024] = bad[1024]! ^ 0xff;
    await assert.rejects(upgradeImage(c, bad, { pollTimeoutMs: 200 }), (e: unknown) => e instanceof McuMgrError && e.code === 'UPGRADE_REVERTED');
    assert.equal(slot(await readImageState(c), 0)?.version, '2.0.0');
  } finally {
    await emu.close();
  }
});

test('cli: image upload killed mid-way resumes; image list and upgrade as processes', async () => {
  const data = await tempDir();
  const serve = await startServeProcess(['--data', data.path]);
  // 10 ms each way keeps the upload long enough to kill it part way
  const relay = await startUdpRelay({ target: { host: '127.0.0.1', port: serve.port }, toDevice: { delayMs: 10 }, toClient: { delayMs: 10 } });
  try {
    const img = await image('4.5.6', 256 * 1024, 21);
    const file = join(data.path, 'app.signed.bin');
    await writeFile(file, img.bytes);
    // Killed once its progress line (every 50 ms off a terminal) shows part of the image acknowledged.
    const child = spawn(CLI, ['--udp', `127.0.0.1:${relay.port}`, 'image', 'upload', file, '-w', '1'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MCUMGR_PROGRESS_INTERVAL_MS: '50' } });
    await new Promise<void>((resolve, reject) => {
      let progress = '';
      child.stderr.on('data', (d: Buffer) => {
        progress += d.toString();
        // Past the first chunk (which a resume sends again): 8 KiB.
        const done = [...progress.matchAll(/(?:^|\n)([\d.]+) KiB \//g)].map((m) => Number(m[1]));
        if (done.some((kib) => kib >= 8)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`the upload ended (${code}) before it could be killed: ${progress}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const resumed = await runCli(['--udp', `127.0.0.1:${serve.port}`, '--json', 'image', 'upload', file]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const r = JSON.parse(resumed.stdout) as { resumedAt: number; match: boolean; bytesSent: number };
    assert.ok(r.resumedAt > 0, `resumed at ${r.resumedAt}`);
    assert.equal(r.bytesSent, img.bytes.length - r.resumedAt);
    assert.equal(r.match, true);

    const list = await runCli(['--udp', `127.0.0.1:${serve.port}`, 'image', 'list']);
    assert.match(list.stdout, /^Images:\n image=0 slot=0\n {4}version: 1\.0\.0\n {4}bootable: true\n {4}flags: active confirmed\n {4}hash: [0-9a-f]{64}\n image=0 slot=1\n {4}version: 4\.5\.6\n/);
    assert.ok(list.stdout.includes(`hash: ${toHex(img.hash)}`));
    assert.match(list.stdout, /Split status: N\/A \(0\)\n$/);

    const up = await runCli(['--udp', `127.0.0.1:${serve.port}`, '-t', '0.5', 'upgrade', file]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 4.5.6, confirmed\n');
    assert.match(up.stderr, /upload: (image 0: )?skipped: the device already holds this image/);

    const info = await runCli(['image', 'info', file]);
    assert.equal(info.code, 0);
    assert.match(info.stdout, /version: {6}4\.5\.6/);
    assert.match(info.stdout, /SHA256: matches the content/);
    const broken = join(data.path, 'broken.bin');
    const b = img.bytes.slice();
    b[2000] = b[2000]! ^ 1;
    await writeFile(broken, b);
    const bad = await runCli(['image', 'info', broken]);
    assert.equal(bad.code, 2, 'a bad local file is a usage error');
    assert.match(bad.stdout, /SHA256: DOES NOT MATCH the content/);
  } finally {
    await relay.close();
    await serve.stop();
    await data.remove();
  }
});

test('cli: serve --image-key boots only signed images; upgrade reports a rejected one by name', async () => {
  const data = await tempDir();
  const fixtures = join(ROOT, 'test', 'fixtures', 'imgtool');
  const key = await loadSigningKey(await readFile(join(fixtures, 'ecdsa-p256.pem'), 'utf8'));
  const otherKey = await loadSigningKey(await readFile(join(fixtures, 'ed25519.pem'), 'utf8'));
  const signed = async (version: string, signingKey = key): Promise<string> => {
    const file = join(data.path, `app-${version}-${signingKey === key ? 'p256' : 'other'}.bin`);
    await writeFile(file, (await buildImage({ payload: payload(20000, version.length), version, signingKey })).bytes);
    return file;
  };
  const factory = await signed('1.0.0');
  const serve = await startServeProcess(['--data', join(data.path, 'device'), '--image-key', join(fixtures, 'ecdsa-p256.pub.pem'), '--factory-image', factory]);
  const udp = ['--udp', `127.0.0.1:${serve.port}`, '-t', '0.5'];
  try {
    const good = await runCli([...udp, 'upgrade', await signed('2.0.0')]);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, confirmed\n');
    const unsigned = join(data.path, 'unsigned.bin');
    await writeFile(unsigned, (await image('3.0.0', 20000, 5)).bytes);
    const bad = await runCli([...udp, 'upgrade', unsigned]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Error: the device came back running 2\.0\.0 instead of 3\.0\.0/);
    const foreign = await runCli([...udp, 'upgrade', await signed('3.0.1', otherKey)]);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /came back running 2\.0\.0 instead of 3\.0\.1/);
  } finally {
    await serve.stop();
    await data.remove();
  }
});
