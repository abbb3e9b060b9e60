/**
 * Crash consistency of the MCUboot model with real processes: a child runs a swap (or an upload)
 * on real files and is SIGKILLed at a chosen progress event or at a random instant mid-write; the
 * parent then reopens the device and boots it, and checks that it is bootable and in exactly the
 * state MCUboot would reach.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile, access, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { McubootModel, type ImageSlotState, type McubootModeName } from '../src/server/mcuboot/index.ts';
import { SwapType, buildImage, parseImage } from '../src/image/index.ts';
import { toHex } from '../src/core/bytes.ts';

const SLOT_SIZE = 0x40000;
const SECTOR_SIZE = 0x8000;
const CHILD = fileURLToPath(new URL('./fixtures/mcuboot-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const env = { ...process.env, SLOT_SIZE: String(SLOT_SIZE), SECTOR_SIZE: String(SECTOR_SIZE) };

interface ChildResult {
  events: string[];
  done: boolean;
  signal: NodeJS.Signals | null;
}

/** Runs the child; kills it with SIGKILL at event `killAt`, or `killAfterMs` after its first event. */
function runChild(args: string[], kill: { atEvent?: number; afterMs?: number }, mcubootMode?: McubootModeName): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const childEnv = mcubootMode ? { ...env, MCUBOOT_MODE: mcubootMode } : env;
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const events: string[] = [];
    let done = false;
    let buf = '';
    let stderr = '';
    let timer: ReturnType<typeof setTimeout> | undefined;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    child.stdout.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'DONE') done = true;
        if (!line.startsWith('EVENT ')) continue;
        events.push(line);
        const n = Number(line.split(' ')[1]);
        if (kill.atEvent !== undefined && n === kill.atEvent) child.kill('SIGKILL');
        if (kill.afterMs !== undefined && n === 0) timer = setTimeout(() => child.kill('SIGKILL'), kill.afterMs);
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal === null && code !== 0) reject(new Error(`child failed (${code}): ${stderr}`));
      else resolve({ events, done, signal });
    });
  });
}

function summary(states: ImageSlotState[]): string[] {
  return states.map((s) => `${s.slot} ${s.version} ${(['active', 'confirmed', 'pending', 'permanent'] as const).filter((k) => s[k]).join(',') || '-'}`);
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('MCUboot model survives SIGKILL (real child processes, real files)', () => {
  let root: string;
  let template: string;
  let v1: Uint8Array;
  let v2: Uint8Array;
  let totalEvents = 0;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mcuboot-crash-'));
    template = join(root, 'template');
    const payload = new Uint8Array(100_000).map((_, i) => (i * 101) & 0xff);
    v2 = (await buildImage({ payload, version: '2.0.0' })).bytes;
    const m = await McubootModel.open({ dir: template, slotSize: SLOT_SIZE, sectorSize: SECTOR_SIZE });
    await m.boot();
    v1 = await m.slot(0).readCopy(0, (await m.verifySlot(0) as { image: { size: number } }).image.size);
    await m.openUpload(0, v2.length);
    await m.writeUpload(0, v2);
    await m.finishUpload();
    await m.setNextBoot(parseImage(v2).hash, false);
    assert.equal(await m.swapType(0), SwapType.TEST);
    await m.close();
    // A full, uninterrupted run tells how many progress events a swap has.
    const dir = join(root, 'full');
    await cp(template, dir, { recursive: true });
    const r = await runChild([dir, 'swap', '0'], {});
    assert.ok(r.done);
    totalEvents = r.events.length;
    assert.ok(totalEvents >= 10, `a swap of ${v2.length} bytes in ${SECTOR_SIZE}-byte sectors has ${totalEvents} events`);
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function checkAfterSwapCrash(dir: string, swapFinished: boolean): Promise<void> {
    const m = await McubootModel.open({ dir, slotSize: SLOT_SIZE, sectorSize: SECTOR_SIZE });
    try {
      const r = await m.boot();
      assert.equal(r.ok, true, 'device must boot');
      if (swapFinished) {
        // The swap completed before the kill: this reset is an unconfirmed test → revert.
        assert.equal(r.images[0]!.performed, 'revert');
        assert.deepEqual(summary(await m.imageStates()), ['0 1.0.0 active,confirmed', '1 2.0.0 -']);
        assert.equal(sha(await m.slot(0).readCopy(0, v1.length)), sha(v1));
        assert.equal(sha(await m.slot(1).readCopy(0, v2.length)), sha(v2));
      } else {
        assert.ok(['resumed', 'test'].includes(r.images[0]!.performed), r.images[0]!.performed);
        assert.equal(r.images[0]!.version, '2.0.0');
        assert.deepEqual(summary(await m.imageStates()), ['0 2.0.0 active', '1 1.0.0 confirmed']);
        assert.equal(sha(await m.slot(0).readCopy(0, v2.length)), sha(v2));
        assert.equal(sha(await m.slot(1).readCopy(0, v1.length)), sha(v1));
        assert.equal(await m.swapType(0), SwapType.REVERT);
      }
      await assert.rejects(access(join(dir, 'image-0', 'swap-status.json')));
      for (const s of [0, 1]) {
        const v = await m.verifySlot(s);
        assert.ok(!(v instanceof Error) && v.hashValid, `slot ${s} verifies`);
      }
    } finally {
      await m.close();
    }
  }

  it('killed at every swap progress point, the next boot completes the swap exactly once', async () => {
    for (let k = 0; k < totalEvents; k++) {
      const dir = join(root, `swap-${k}`);
      await cp(template, dir, { recursive: true });
      const r = await runChild([dir, 'swap', '25'], { atEvent: k });
      assert.equal(r.signal, 'SIGKILL', `event ${k}: child should have been killed`);
      // The last event is "trailers after": the journal is gone, the swap is complete.
      await checkAfterSwapCrash(dir, k === totalEvents - 1);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('killed at random instants mid-copy (no pauses), the device still boots consistently', async () => {
    const delays = [1, 3, 6, 10, 15, 25];
    for (const ms of delays) {
      const dir = join(root, `rand-${ms}`);
      await cp(template, dir, { recursive: true });
      const r = await runChild([dir, 'swap', '0'], { afterMs: ms });
      // Whether the swap finished is read from the disk, not from the child's progress lines: the
      // kill can land after the journal was removed but before the last line reached us, and the
      // copy loop's final "step=3 after" comes before the trailer phase. The journal is removed only
      // once the swap is complete, so: no journal and the new image in the primary = finished.
      const journal = await access(join(dir, 'image-0', 'swap-status.json')).then(() => true, () => false);
      const primary = await readFile(join(dir, 'image-0', 'slot-0.bin'));
      const finished = r.done || (!journal && sha(primary.subarray(0, v2.length)) === sha(v2));
      await checkAfterSwapCrash(dir, finished);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('killed during an upload (erase or any chunk), the device boots the old image and a new upload works', async () => {
    const imageFile = join(root, 'v3.bin');
    const v3 = (await buildImage({ payload: new Uint8Array(60_000).map((_, i) => (i * 7) & 0xff), version: '3.0.0' })).bytes;
    await writeFile(imageFile, v3);
    // A fresh device with an old, unflagged image in slot 1 (the upload must erase it).
    const base = join(root, 'upload-base');
    const m0 = await McubootModel.open({ dir: base, slotSize: SLOT_SIZE, sectorSize: SECTOR_SIZE });
    await m0.boot();
    await m0.openUpload(0, v2.length);
    await m0.writeUpload(0, v2);
    await m0.finishUpload();
    await m0.close();
    const chunk = 8192;
    const events = 1 + Math.ceil(v3.length / chunk) + 1;
    const plans: Array<{ atEvent?: number; afterMs?: number }> = [
      ...Array.from({ length: events }, (_, k) => ({ atEvent: k })),
      { afterMs: 2 },
      { afterMs: 5 },
    ];
    for (const [i, plan] of plans.entries()) {
      const dir = join(root, `upload-${i}`);
      await cp(base, dir, { recursive: true });
      await runChild([dir, 'upload', plan.atEvent !== undefined ? '30' : '0', imageFile, String(chunk)], plan);
      const m = await McubootModel.open({ dir, slotSize: SLOT_SIZE, sectorSize: SECTOR_SIZE });
      try {
        const r = await m.boot();
        assert.equal(r.ok, true);
        assert.equal(r.images[0]!.version, '1.0.0');
        const states = summary(await m.imageStates());
        assert.equal(states[0], '0 1.0.0 active,confirmed');
        // Slot 1 is old, erased, partial (not listed or unflagged) or complete: never flagged.
        assert.ok(states.length === 1 || /^1 \d\.0\.0 -$/.test(states[1]!), states.join(' | '));
        assert.equal(await m.swapType(0), SwapType.NONE);
        // The client simply uploads again; the result is exact and bootable.
        await m.openUpload(0, v3.length);
        for (let off = 0; off < v3.length; off += chunk) await m.writeUpload(off, v3.subarray(off, off + chunk));
        assert.equal(toHex((await m.finishUpload()).sha256), sha(v3));
        await m.setNextBoot(parseImage(v3).hash, false);
        assert.equal((await m.boot()).images[0]!.version, '3.0.0');
      } finally {
        await m.close();
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('MCUboot overwrite-only copy and direct-XIP upload survive SIGKILL (real child processes, real files)', () => {
  let root: string;
  let v2: Uint8Array;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mcuboot-crash-modes-'));
    v2 = (await buildImage({ payload: new Uint8Array(70_000).map((_, i) => (i * 31) & 0xff), version: '2.0.0' })).bytes;
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('killed at every step of an overwrite-only copy (and at random instants), the next boot installs the new image exactly', async () => {
    const template = join(root, 'ow-template');
    const m0 = await McubootModel.open({ dir: template, slotSize: SLOT_SIZE, sectorSize: SECTOR_SIZE, mode: 'overwrite-only' });
    await m0.boot();
    await m0.openUpload(0, v2.length);
    await m0.writeUpload(0, v2);
    await m0.finishUpload();
    await m0.setNextBoot(parseImage(v2).hash, false);
    await m0.close();
    const sectors = SLOT_SIZE / SECTOR_SIZE;
    const total = 2 * (1 + sectors + 2);
    // A step's "after" leaves the disk as the next step's "before": kill before every step and after the last.
    const plans: Array<{ atEvent?: number; afterMs?: number }> = [...Array.from({ length: total / 2 }, (_, k) => ({ atEvent: 2 * k })), { atEvent: total - 1 }, { afterMs: 2 }, { afterMs: 8 }];
    for (const [i, plan] of plans.entries()) {
      const dir = join(root, `ow-${i}`);
      await cp(template, dir, { recursive: true });
      const r = await runChild([dir, 'swap', plan.atEvent !== undefined ? '20' : '0'], plan, 'overwrite-only');
      if (plan.atEvent !== undefined) assert.equal(r.signal, 'SIGKILL', `event ${plan.atEvent}: the child should have been killed`);
      const m = await McubootModel.open({ dir, slotSize: SLOT_SIZE, sectorSize: SECTOR_SIZE, mode: 'overwrite-only' });
      try {
        const b = await m.boot();
        assert.equal(b.ok, true, `plan ${JSON.stringify(plan)}: device must boot`);
        assert.equal(b.images[0]!.version, '2.0.0', `plan ${JSON.stringify(plan)}: ${JSON.stringify(b)}`);
        assert.equal(sha(await m.slot(0).readCopy(0, v2.length)), sha(v2));
        assert.deepEqual(summary(await m.imageStates()), ['0 2.0.0 active,confirmed']);
        assert.equal(await m.swapType(0), SwapType.NONE);
        // A further reset changes nothing.
        assert.equal((await m.boot()).images[0]!.performed, 'none');
      } finally {
        await m.close();
      }
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const mode of ['direct-xip', 'direct-xip-revert'] as const) {
    it(`${mode}: killed during an upload into the other slot, the device boots what MCUboot would`, async () => {
      const base = join(root, `${mode}-base`);
      const m0 = await McubootModel.open({ dir: base, slotSize: SLOT_SIZE, sectorSize: SECTOR_SIZE, mode });
      await m0.boot();
      await m0.close();
      const imageFile = join(root, 'v2.bin');
      await writeFile(imageFile, v2);
      const chunk = 16384;
      const events = 1 + Math.ceil(v2.length / chunk) + 1;
      const plans: Array<{ atEvent?: number; afterMs?: number }> = [...Array.from({ length: events }, (_, k) => ({ atEvent: k })), { afterMs: 3 }];
      for (const [i, plan] of plans.entries()) {
        const dir = join(root, `${mode}-${i}`);
        await cp(base, dir, { recursive: true });
        await runChild([dir, 'upload', plan.atEvent !== undefined ? '30' : '0', imageFile, String(chunk)], plan, mode);
        // Without revert a complete, valid upload is simply the newest image: it boots. With revert
        // nothing boots that was not marked for it.
        const complete = sha((await readFile(join(dir, 'image-0', 'slot-1.bin'))).subarray(0, v2.length)) === sha(v2);
        const expected = mode === 'direct-xip' && complete ? '2.0.0' : '1.0.0';
        const m = await McubootModel.open({ dir, slotSize: SLOT_SIZE, sectorSize: SECTOR_SIZE, mode });
        try {
          const b = await m.boot();
          assert.equal(b.ok, true);
          assert.equal(b.images[0]!.version, expected, `plan ${JSON.stringify(plan)}: ${JSON.stringify(b)}`);
          // The device takes a new upload afterwards.
          const slot = await m.uploadSlot(0);
          assert.equal(slot, expected === '2.0.0' ? 0 : 1);
        } finally {
          await m.close();
        }
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
