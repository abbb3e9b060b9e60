/**
 * The OS extras, statistics, enumeration, shell and Zephyr basic groups, end to end over UDP with
 * the library client, in SMP v2 and v1 forms.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { commands } from '../src/core/commands/index.ts';
import { DeviceError } from '../src/core/errors.ts';
import { startEmulator, tempDir, type TestEmulator, deviceError } from './helpers.ts';
import { parseDeviceDatetime, formatDeviceDatetime } from '../src/server/device-clock.ts';
import { splitShellLine } from '../src/server/shell.ts';
import type { SmpClient } from '../src/client/client.ts';

describe('groups over UDP', () => {
  let emu: TestEmulator;
  let v2: SmpClient;
  let v1: SmpClient;
  before(async () => {
    emu = await startEmulator({ device: { shellHostCommands: { allow: ['uname'] } } });
    v2 = await emu.client();
    v1 = await emu.client({ version: 0 });
  });
  after(() => emu.close());

  test('taskstat: one entry per process thread with Zephyr fields', async () => {
    const r = await v2.request(commands.os.taskStats, {});
    const entries = Object.values(r.tasks);
    assert.ok(entries.length >= 1);
    assert.deepEqual(entries.map((t) => t.tid), entries.map((_, i) => i));
    for (const t of entries) {
      assert.equal(typeof t.prio, 'number');
      assert.equal(typeof t.state, 'number');
      assert.equal(typeof t.runtime, 'number');
    }
  });

  test('mpstat: heaps under "tasks" keyed by index, nfree ≤ nblks, min ≤ nfree', async () => {
    const r = await v2.request(commands.os.memPoolStats, {});
    assert.ok(r.tasks);
    const keys = Object.keys(r.tasks);
    assert.deepEqual(keys, keys.map((_, i) => String(i)));
    for (const h of Object.values(r.tasks)) {
      assert.equal(h.blksiz, 1);
      assert.ok(h.nfree <= h.nblks && (h.min ?? 0) <= h.nfree);
    }
  });

  test('datetime: RTC not set (v2 err 0/4, v1 rc 5), set, read back, bad strings rc 3, calendar err 0/5', async () => {
    const fresh = await startEmulator();
    try {
      const c2 = await fresh.client();
      const c1 = await fresh.client({ version: 0 });
      const e2 = await deviceError(c2.request(commands.os.datetimeGet, {}));
      assert.deepEqual([e2.group, e2.rc], [0, 4]);
      const e1 = await deviceError(c1.request(commands.os.datetimeGet, {}));
      assert.deepEqual([e1.group, e1.rc], [undefined, 5]);
      await c2.request(commands.os.datetimeSet, { datetime: '2030-01-02T03:04:05' });
      const got = await c2.request(commands.os.datetimeGet, {});
      assert.match(got.datetime, /^2030-01-02T03:04:0[5-6]\.\d{3}$/);
      for (const bad of ['2030-01-02', '2030-13-02T03:04:05', '1899-01-02T03:04:05', 'abcd-01-02T03:04:05', '2030-01-02T03:04:05.123+01:00']) {
        const e = await deviceError(c2.request(commands.os.datetimeSet, { datetime: bad }));
        assert.deepEqual([e.group, e.rc], [undefined, 3], bad);
      }
      const cal = await deviceError(c2.request(commands.os.datetimeSet, { datetime: '2030-02-30T00:00:00' }));
      assert.deepEqual([cal.group, cal.rc], [0, 5]);
      const cal1 = await deviceError(c1.request(commands.os.datetimeSet, { datetime: '2030-02-30T00:00:00' }));
      assert.deepEqual([cal1.group, cal1.rc], [undefined, 1]);
      // A hook may refuse.
      const off = fresh.server.hooks.on('os_datetime_set', () => ({ rc: 11 }));
      const denied = await deviceError(c2.request(commands.os.datetimeSet, { datetime: '2031-01-01T00:00:00' }));
      assert.equal(denied.rc, 11);
      off();
    } finally {
      await fresh.close();
    }
  });

  test('datetime: kept across a restart as an offset in the data dir', async () => {
    const dir = await tempDir();
    try {
      const a = await startEmulator({ dataDir: dir.path });
      await (await a.client()).request(commands.os.datetimeSet, { datetime: '2001-02-03T04:05:06.250Z' });
      await a.close();
      const b = await startEmulator({ dataDir: dir.path });
      const got = await (await b.client()).request(commands.os.datetimeGet, {});
      await b.close();
      assert.match(got.datetime, /^2001-02-03T04:05:0[6-7]\.\d{3}$/);
    } finally {
      await dir.remove();
    }
  });

  test('datetime parser follows Zephyr: delimiters of any kind, strtol signs, fraction', () => {
    assert.deepEqual(parseDeviceDatetime('2020/01/02 03.04.05'), { ok: true, ms: Date.UTC(2020, 0, 2, 3, 4, 5) });
    assert.deepEqual(parseDeviceDatetime('2020-01-02T03:04:05.5'), { ok: true, ms: Date.UTC(2020, 0, 2, 3, 4, 5, 500) });
    assert.equal(parseDeviceDatetime('2020-01-02T03:04:-5').ok, false);
    assert.equal(formatDeviceDatetime(Date.UTC(2020, 0, 2, 3, 4, 5, 7)), '2020-01-02T03:04:05.007');
  });

  test('bootloader info: name, mode 3, unknown query err 0/3 (v1 rc 5), hook answers extra queries', async () => {
    assert.deepEqual(await v2.request(commands.os.bootloaderInfo, {}), { bootloader: 'MCUboot' });
    assert.deepEqual(await v2.request(commands.os.bootloaderInfo, { query: 'mode' }), { mode: 3 });
    const e = await deviceError(v2.request(commands.os.bootloaderInfo, { query: 'bogus' }));
    assert.deepEqual([e.group, e.rc], [0, 3]);
    const e1 = await deviceError(v1.request(commands.os.bootloaderInfo, { query: 'bogus' }));
    assert.deepEqual([e1.group, e1.rc], [undefined, 5]);
    const off = emu.server.hooks.on('os_bootloader_info', (d) => {
      if (d.query === 'active_b0_slot') {
        d.response['active'] = 1;
        d.handled = true;
      }
    });
    assert.deepEqual(await v2.request(commands.os.bootloaderInfo, { query: 'active_b0_slot' }), { active: 1 });
    off();
  });

  test('console echo control answers rc 8', async () => {
    const e = await deviceError(v2.request(commands.os.consoleEcho, { echo: 1 }));
    assert.deepEqual([e.group, e.rc], [undefined, 8]);
  });

  test('stat: list has rc 0 and the live SMP groups; show counts requests live', async () => {
    const raw = await v2.requestRaw(2, 1, 'read', {});
    assert.equal((raw.body as Record<string, unknown>)['rc'], 0);
    const list = await v2.request(commands.stat.list, {});
    assert.ok(list.stat_list.includes('smp_udp') && list.stat_list.includes('smp_svr_stats'));
    const a = await v2.request(commands.stat.show, { name: 'smp_udp' });
    const b = await v2.request(commands.stat.show, { name: 'smp_udp' });
    assert.equal(b.fields['requests']! - a.fields['requests']!, 1);
    assert.ok(b.fields['bytes_out']! > a.fields['bytes_out']!);
    const app = emu.server.device.stats.register('app_stats', ['presses']);
    app.inc('presses', 3);
    assert.deepEqual((await v2.request(commands.stat.show, { name: 'app_stats' })).fields, { presses: 3 });
  });

  test('stat: unknown group is err{63,3} as Zephyr reports it; v1 gets group 63 translated (rc 0); bad name rc 3', async () => {
    const raw = await v2.requestRaw(2, 0, 'read', { name: 'nope' });
    assert.deepEqual(raw.body, { err: { group: 63, rc: 3 } });
    const raw1 = await v1.requestRaw(2, 0, 'read', { name: 'nope' });
    assert.deepEqual(raw1.body, { rc: 0 });
    const e = await deviceError(v2.request(commands.stat.show, { name: 'x'.repeat(32) }));
    assert.deepEqual([e.group, e.rc], [undefined, 3]);
  });

  test('enum: count, list in registration order, single with end, index too large (v2 err 10/4, v1 rc 1), details with filter and hook', async () => {
    const count = await v2.request(commands.enum.count, {});
    const list = await v2.request(commands.enum.list, {});
    assert.equal(count.count, list.groups.length);
    assert.deepEqual(list.groups, emu.server.registry.list().map((g) => g.id));
    assert.deepEqual(await v2.request(commands.enum.single, {}), { group: list.groups[0] });
    assert.deepEqual(await v2.request(commands.enum.single, { index: count.count - 1 }), { group: list.groups.at(-1), end: true });
    const e = await deviceError(v2.request(commands.enum.single, { index: count.count }));
    assert.deepEqual([e.group, e.rc], [10, 4]);
    const e1 = await deviceError(v1.request(commands.enum.single, { index: count.count }));
    assert.deepEqual([e1.group, e1.rc], [undefined, 1]);
    const off = emu.server.hooks.on('enum_details', (d) => {
      d.entry['extra'] = d.group * 2;
    });
    const d = await v2.request(commands.enum.details, { groups: [8, 3, 999] });
    off();
    assert.deepEqual(d.groups, [
      { group: 3, name: 'settings mgmt', handlers: 4, extra: 6 },
      { group: 8, name: 'fs mgmt', handlers: 5, extra: 16 },
    ]);
    const tooMany = await deviceError(v2.request(commands.enum.details, { groups: Array.from({ length: 17 }, (_, i) => i) }));
    assert.deepEqual([tooMany.group, tooMany.rc], [10, 2]);
  });

  test('shell: built-ins, unknown command -8, empty argv err 9/3 (v1 rc 3), too long err 9/2', async () => {
    const ver = await v2.request(commands.shell.exec, { argv: ['kernel', 'version'] });
    assert.deepEqual(ver, { o: 'Zephyr version 4.3.0\n', ret: 0 });
    const up = await v2.request(commands.shell.exec, { argv: ['kernel', 'uptime'] });
    assert.match(up.o, /^Uptime: \d+ ms\n$/);
    const help = await v2.request(commands.shell.exec, { argv: ['help'] });
    for (const w of ['kernel', 'settings', 'stats', 'help', 'host']) assert.match(help.o, new RegExp(`\\b${w}\\b`));
    const stats = await v2.request(commands.shell.exec, { argv: ['stats', 'list'] });
    assert.match(stats.o, /smp_udp/);
    assert.deepEqual(await v2.request(commands.shell.exec, { argv: ['frobnicate'] }), { o: 'frobnicate: command not found\n', ret: -8 });
    const empty = await deviceError(v2.request(commands.shell.exec, { argv: [] }));
    assert.deepEqual([empty.group, empty.rc], [9, 3]);
    const empty1 = await deviceError(v1.request(commands.shell.exec, { argv: [] }));
    assert.deepEqual([empty1.group, empty1.rc], [undefined, 3]);
    const long = await deviceError(v2.request(commands.shell.exec, { argv: ['x'.repeat(300)] }));
    assert.deepEqual([long.group, long.rc], [9, 2]);
    const missing = await deviceError(v2.requestRaw(9, 0, 'write', {}).then((r) => {
      throw new DeviceError((r.body as { rc: number }).rc);
    }));
    assert.equal(missing.rc, 3);
  });

  test('shell: other modules register commands; host commands run only when allowlisted', async () => {
    const off = emu.server.device.shell.register('demo hello', ({ println }) => void println('hello from a module'), 'a module command');
    assert.deepEqual(await v2.request(commands.shell.exec, { argv: ['demo', 'hello'] }), { o: 'hello from a module\n', ret: 0 });
    off();
    const uname = await v2.request(commands.shell.exec, { argv: ['host', 'uname', '-s'] });
    assert.deepEqual(uname, { o: 'Linux\n', ret: 0 });
    const denied = await v2.request(commands.shell.exec, { argv: ['host', 'sh', '-c', 'true'] });
    assert.equal(denied.ret, -1);
    assert.match(denied.o, /not allowed/);
    const plain = await startEmulator();
    try {
      const r = await (await plain.client()).request(commands.shell.exec, { argv: ['host', 'uname'] });
      assert.equal(r.ret, -8, 'no host command without the opt-in');
    } finally {
      await plain.close();
    }
    assert.deepEqual(splitShellLine('a "b c" d\\ e'), ['a', 'b c', 'd e']);
  });
});
