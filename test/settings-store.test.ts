/**
 * Settings: the group over UDP (runtime vs saved state, errors in v1 and v2, the access hook,
 * restart), and the storage log codec (fuzzed with fast-check) and store recovery.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { appendFile, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commands } from '../src/core/commands/index.ts';
import { startEmulator, tempDir, deviceError } from './helpers.ts';
import { decodeSettingsLog, encodeSettingsBatch, replaySettingsLog, SETTINGS_LOG_MAGIC, type SettingsLogEntry } from '../src/server/settings-log.ts';
import { SettingsStore } from '../src/server/settings.ts';
import { concatBytes } from '../src/core/bytes.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('settings group over UDP', () => {
  test('write is runtime only; save persists; a restart loads what was saved', async () => {
    const dir = await tempDir();
    try {
      let emu = await startEmulator({ dataDir: dir.path });
      let c = await emu.client();
      await c.request(commands.settings.write, { name: 'app/a', val: enc('one') });
      await c.request(commands.settings.write, { name: 'app/b', val: new Uint8Array([0, 1, 2]) });
      assert.deepEqual((await c.request(commands.settings.read, { name: 'app/a' })).val, enc('one'));
      await c.request(commands.settings.save, {});
      await c.request(commands.settings.write, { name: 'app/a', val: enc('unsaved') });
      await emu.close();

      emu = await startEmulator({ dataDir: dir.path });
      c = await emu.client();
      assert.deepEqual((await c.request(commands.settings.read, { name: 'app/a' })).val, enc('one'));
      assert.deepEqual((await c.request(commands.settings.read, { name: 'app/b' })).val, new Uint8Array([0, 1, 2]));
      // delete removes from storage; the running value stays until a reboot.
      await c.request(commands.settings.delete, { name: 'app/b' });
      assert.deepEqual((await c.request(commands.settings.read, { name: 'app/b' })).val, new Uint8Array([0, 1, 2]));
      // load re-reads storage over the running values.
      await c.request(commands.settings.write, { name: 'app/a', val: enc('changed') });
      await c.request(commands.settings.load, {});
      assert.deepEqual((await c.request(commands.settings.read, { name: 'app/a' })).val, enc('one'));
      await c.request(commands.settings.commit, {});
      await emu.close();

      emu = await startEmulator({ dataDir: dir.path });
      c = await emu.client();
      const gone = await deviceError(c.request(commands.settings.read, { name: 'app/b' }));
      assert.deepEqual([gone.group, gone.rc], [3, 3]);
      // save with a subtree saves only that subtree.
      await c.request(commands.settings.write, { name: 'app/a', val: enc('subtree') });
      await c.request(commands.settings.save, { name: 'other' });
      await emu.close();
      emu = await startEmulator({ dataDir: dir.path });
      c = await emu.client();
      assert.deepEqual((await c.request(commands.settings.read, { name: 'app/a' })).val, enc('one'));
      await c.request(commands.settings.write, { name: 'app/a', val: enc('subtree') });
      await c.request(commands.settings.save, { name: 'app' });
      await emu.close();
      emu = await startEmulator({ dataDir: dir.path });
      c = await emu.client();
      assert.deepEqual((await c.request(commands.settings.read, { name: 'app/a' })).val, enc('subtree'));
      await emu.close();
    } finally {
      await dir.remove();
    }
  });

  test('read caps max_size at 32 and says so; errors in v2 and v1 forms', async () => {
    const emu = await startEmulator();
    try {
      const c2 = await emu.client();
      const c1 = await emu.client({ version: 0 });
      const long = new Uint8Array(100).map((_, i) => i);
      await c2.request(commands.settings.write, { name: 'app/long', val: long });
      assert.deepEqual(await c2.request(commands.settings.read, { name: 'app/long' }), { val: long.subarray(0, 32) });
      assert.deepEqual(await c2.request(commands.settings.read, { name: 'app/long', max_size: 5 }), { val: long.subarray(0, 5) });
      assert.deepEqual(await c2.request(commands.settings.read, { name: 'app/long', max_size: 64 }), { val: long.subarray(0, 32), max_size: 32 });
      const cases: Array<[() => Promise<unknown>, () => Promise<unknown>, [number | undefined, number], [undefined, number]]> = [
        // unknown setting: KEY_NOT_FOUND → ENOENT
        [() => c2.request(commands.settings.read, { name: 'app/nope' }), () => c1.request(commands.settings.read, { name: 'app/nope' }), [3, 3], [undefined, 5]],
        // no handler for the subtree: ROOT_KEY_NOT_FOUND → EUNKNOWN
        [() => c2.request(commands.settings.read, { name: 'zzz/x' }), () => c1.request(commands.settings.read, { name: 'zzz/x' }), [3, 5], [undefined, 1]],
        // name of 32 bytes: KEY_TOO_LONG → EINVAL
        [() => c2.request(commands.settings.write, { name: 'app/' + 'k'.repeat(28), val: enc('x') }), () => c1.request(commands.settings.write, { name: 'app/' + 'k'.repeat(28), val: enc('x') }), [3, 2], [undefined, 3]],
        // value too long for the handler (256 bytes): UNKNOWN
        [() => c2.request(commands.settings.write, { name: 'app/big', val: new Uint8Array(257) }), () => c1.request(commands.settings.write, { name: 'app/big', val: new Uint8Array(257) }), [3, 1], [undefined, 1]],
        // read-only subtree: WRITE_NOT_SUPPORTED
        [() => c2.request(commands.settings.write, { name: 'device/name', val: enc('x') }), () => c1.request(commands.settings.write, { name: 'device/name', val: enc('x') }), [3, 6], [undefined, 1]],
        // empty name: rc 3 in both
        [() => c2.request(commands.settings.read, { name: '' }), () => c1.request(commands.settings.read, { name: '' }), [undefined, 3], [undefined, 3]],
      ];
      for (const [p2, p1, want2, want1] of cases) {
        const e2 = await deviceError(p2());
        const e1 = await deviceError(p1());
        assert.deepEqual([e2.group, e2.rc], want2);
        assert.deepEqual([e1.group, e1.rc], want1);
      }
      assert.deepEqual((await c2.request(commands.settings.read, { name: 'device/name' })).val, enc('mcumgr-emulator'));
      // 31 bytes is the longest name accepted.
      await c2.request(commands.settings.write, { name: 'app/' + 'k'.repeat(27), val: enc('ok') });
    } finally {
      await emu.close();
    }
  });

  test('the access hook can deny any command, with an rc or a group error', async () => {
    const emu = await startEmulator();
    try {
      const c2 = await emu.client();
      const c1 = await emu.client({ version: 0 });
      const seen: string[] = [];
      const off = emu.server.hooks.on('settings_access', (d) => {
        seen.push(`${d.access}:${d.name ?? ''}`);
        if (d.name?.startsWith('app/secret')) return { rc: 11 };
        if (d.access === 'save') return { group: 3, rc: 8 };
        return undefined;
      });
      const e = await deviceError(c2.request(commands.settings.write, { name: 'app/secret', val: enc('x') }));
      assert.deepEqual([e.group, e.rc], [undefined, 11]);
      const e1 = await deviceError(c1.request(commands.settings.read, { name: 'app/secret' }));
      assert.deepEqual([e1.group, e1.rc], [undefined, 11]);
      const s = await deviceError(c2.request(commands.settings.save, {}));
      assert.deepEqual([s.group, s.rc], [3, 8]);
      await c2.request(commands.settings.commit, {});
      await c2.request(commands.settings.load, {});
      off();
      assert.deepEqual(seen, ['write:app/secret', 'read:app/secret', 'save:', 'commit:', 'load:']);
      const denied = await deviceError(c2.request(commands.settings.read, { name: 'app/secret' }));
      assert.equal(denied.rc, 3, 'the denied write changed nothing');
    } finally {
      await emu.close();
    }
  });

  test('erase storage (group 63) wipes the stored settings and the files', async () => {
    const dir = await tempDir();
    try {
      let emu = await startEmulator({ dataDir: dir.path });
      let c = await emu.client();
      await c.request(commands.settings.write, { name: 'app/k', val: enc('v') });
      await c.request(commands.settings.save, {});
      await c.request(commands.fs.upload, { name: '/lfs/x', off: 0, len: 1, data: enc('x') });
      await c.request(commands.zephyrBasic.eraseStorage, {});
      const f = await deviceError(c.request(commands.fs.status, { name: '/lfs/x' }));
      assert.deepEqual([f.group, f.rc], [8, 3]);
      await c.request(commands.fs.upload, { name: '/lfs/y', off: 0, len: 1, data: enc('y') });
      await emu.close();
      emu = await startEmulator({ dataDir: dir.path });
      c = await emu.client();
      const s = await deviceError(c.request(commands.settings.read, { name: 'app/k' }));
      assert.deepEqual([s.group, s.rc], [3, 3]);
      assert.equal((await c.request(commands.fs.status, { name: '/lfs/y' })).len, 1);
      await emu.close();
    } finally {
      await dir.remove();
    }
  });
});

const entryArb: fc.Arbitrary<SettingsLogEntry> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), name: fc.string({ minLength: 1, maxLength: 40 }), value: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ op: fc.constant('delete' as const), name: fc.string({ minLength: 1, maxLength: 40 }) }),
).map((e): SettingsLogEntry => ({ ...e })); // plain objects (fast-check's records have a null prototype)
const batchesArb = fc.array(fc.array(entryArb, { minLength: 1, maxLength: 5 }), { maxLength: 6 });
const logOf = (batches: SettingsLogEntry[][]): Uint8Array => concatBytes(SETTINGS_LOG_MAGIC, ...batches.map((b) => encodeSettingsBatch(b)));

describe('settings log codec', () => {
  test('round trip: decoding an encoded log gives the batches back', () => {
    fc.assert(
      fc.property(batchesArb, (batches) => {
        const d = decodeSettingsLog(logOf(batches));
        assert.equal(d.stoppedBecause, undefined);
        assert.deepEqual(d.batches, batches);
      }),
    );
  });

  test('a log cut anywhere decodes to the whole batches before the cut (a torn save is dropped whole)', () => {
    fc.assert(
      fc.property(batchesArb, fc.nat(), (batches, cutSeed) => {
        const log = logOf(batches);
        const cut = cutSeed % (log.length + 1);
        const d = decodeSettingsLog(log.subarray(0, cut));
        let end = SETTINGS_LOG_MAGIC.length;
        let whole = 0;
        for (const b of batches) {
          const n = encodeSettingsBatch(b).length;
          if (end + n > cut) break;
          end += n;
          whole++;
        }
        assert.deepEqual(d.batches, batches.slice(0, whole));
        if (cut >= SETTINGS_LOG_MAGIC.length) assert.equal(d.validLength, end);
      }),
    );
  });

  test('random bytes and flipped bits never throw and never yield a batch that fails its CRC', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const d = decodeSettingsLog(concatBytes(SETTINGS_LOG_MAGIC, bytes));
        assert.ok(d.validLength <= bytes.length + SETTINGS_LOG_MAGIC.length);
      }),
    );
    fc.assert(
      fc.property(batchesArb.filter((b) => b.length > 0), fc.nat(), fc.integer({ min: 0, max: 7 }), (batches, at, bit) => {
        const log = logOf(batches).slice();
        const i = SETTINGS_LOG_MAGIC.length + (at % (log.length - SETTINGS_LOG_MAGIC.length));
        log[i]! ^= 1 << bit;
        const d = decodeSettingsLog(log);
        // Whatever survives is a prefix of what was written.
        assert.deepEqual(d.batches, batches.slice(0, d.batches.length));
        assert.ok(d.batches.length < batches.length);
      }),
    );
    assert.equal(decodeSettingsLog(enc('not a log at all')).formatOk, false);
    assert.deepEqual(replaySettingsLog([[{ op: 'set', name: 'a', value: enc('1') }], [{ op: 'delete', name: 'a' }]]).size, 0);
  });

  test('the store truncates a torn tail on open and keeps appending after it', async () => {
    const dir = await tempDir();
    try {
      const store = new SettingsStore(dir.path);
      await store.open();
      await store.append([{ op: 'set', name: 'a', value: enc('1') }]);
      await store.close();
      const full = encodeSettingsBatch([{ op: 'set', name: 'b', value: enc('2') }]);
      await appendFile(store.path, full.subarray(0, full.length - 3));
      const sizeTorn = (await readFile(store.path)).length;
      const again = new SettingsStore(dir.path);
      await again.open();
      assert.equal(again.lastRecovery, 'torn batch');
      assert.deepEqual([...again.entries().keys()], ['a']);
      await again.append([{ op: 'set', name: 'c', value: enc('3') }]);
      await again.compact();
      await again.close();
      assert.ok((await readFile(join(dir.path, 'settings.log'))).length < sizeTorn + 100);
      const third = new SettingsStore(dir.path);
      await third.open();
      assert.deepEqual(Object.fromEntries([...third.entries()].map(([k, v]) => [k, new TextDecoder().decode(v)])), { a: '1', c: '3' });
      await third.close();
      // A damaged header: the bytes are kept aside and the store starts empty.
      await writeFile(third.path, enc('garbage!garbage!'));
      const fourth = new SettingsStore(dir.path);
      await fourth.open();
      assert.equal(fourth.entries().size, 0);
      await fourth.close();
      await truncate(fourth.path, 3);
      const fifth = new SettingsStore(dir.path);
      await fifth.open();
      assert.equal(fifth.entries().size, 0);
      await fifth.close();
    } finally {
      await dir.remove();
    }
  });
});
