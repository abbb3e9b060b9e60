/**
 * Caps on what a peer can make the emulated device keep, over real UDP: runtime settings keys,
 * shell output (built-in commands and host programs), and the refusal of host program paths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commands } from '../src/core/commands/index.ts';
import { Group } from '../src/core/commands/command.ts';
import { SettingsMgmtErr } from '../src/core/error-codes.ts';
import { badHostProgramNames } from '../src/server/shell.ts';
import { deviceError, startEmulator } from './helpers.ts';

test('settings: runtime keys are capped device-wide; a new key past the cap answers err 3/1 (a full backend), overwrites still work', async () => {
  const emu = await startEmulator({ device: { settingsMaxKeys: 4, settingsSubtrees: ['app', 'cfg'] } });
  try {
    const c = await emu.client();
    const val = new Uint8Array([1]);
    for (const name of ['app/a', 'app/b', 'cfg/c', 'cfg/d']) await c.request(commands.settings.write, { name, val });
    const e = await deviceError(c.request(commands.settings.write, { name: 'app/e', val }));
    assert.deepEqual([e.group, e.rc], [Group.SETTINGS, SettingsMgmtErr['UNKNOWN']]);
    await c.request(commands.settings.write, { name: 'app/a', val: new Uint8Array([2]) });
    assert.deepEqual((await c.request(commands.settings.read, { name: 'app/a' })).val, new Uint8Array([2]));
    // A reset forgets the running values: the budget is free again for what storage holds.
    await c.request(commands.settings.save, {});
    await emu.server.reset();
    assert.deepEqual((await c.request(commands.settings.read, { name: 'cfg/d' })).val, val);
    await deviceError(c.request(commands.settings.write, { name: 'cfg/z', val }));
  } finally {
    await emu.close();
  }
});

test('shell: output past the cap is never kept; a host program that prints more is stopped', async () => {
  const emu = await startEmulator({ device: { shellOutputMax: 300, shellHostCommands: { allow: ['seq'] } } });
  try {
    const c = await emu.client();
    const help = await c.request(commands.shell.exec, { argv: ['help'] });
    assert.ok(new TextEncoder().encode(help.o).length <= 300, `${help.o.length}`);
    assert.match(help.o, /^Available commands:/);
    const t0 = performance.now();
    const r = await c.request(commands.shell.exec, { argv: ['host', 'seq', '1', '100000000'] });
    assert.ok(performance.now() - t0 < 3000, 'stopped at the cap, not at the timeout');
    assert.ok(r.o.startsWith('1\n2\n3\n'), r.o.slice(0, 40));
    assert.ok(new TextEncoder().encode(r.o).length <= 300);
  } finally {
    await emu.close();
  }
});

test('shell-host: absolute paths, separators and options as program names are refused', () => {
  assert.deepEqual(badHostProgramNames(['uname', '/bin/cat', '../x', 'a\\b', '.', '-e', 'date', 'a b']), ['/bin/cat', '../x', 'a\\b', '.', '-e', 'a b']);
});
