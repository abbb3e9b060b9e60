/**
 * Caps on what a peer can make the emulated device keep, over real UDP: runtime settings keys,
 * shell output (built-in commands and host programs), and the refusal of host program paths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commands } from '../src/core/commands/index.ts';
import { Group } from '../src/core/commands/command.ts';
import { FsMgmtErr, SettingsMgmtErr } from '../src/core/error-codes.ts';
import { uploadFile } from '../src/client/fs-transfer.ts';
import { badHostProgramNames } from '../src/server/shell.ts';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { buildImage } from '../src/image/index.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { isLoopbackBind } from '../src/server/agent.ts';
import { CLI, deviceError, runCli, startEmulator, tempDir } from './helpers.ts';
import { newNamespace, netnsUnavailable } from './netns.ts';

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
  // The program's time limit is 10 minutes: only the output cap can stop it within the test's timeout.
  const emu = await startEmulator({ device: { shellOutputMax: 300, shellHostCommands: { allow: ['seq'], timeoutMs: 600_000 } } });
  try {
    const c = await emu.client();
    const help = await c.request(commands.shell.exec, { argv: ['help'] });
    assert.ok(new TextEncoder().encode(help.o).length <= 300, `${help.o.length}`);
    assert.match(help.o, /^Available commands:/);
    const r = await c.request(commands.shell.exec, { argv: ['host', 'seq', '1', '100000000'] }, { timeoutMs: 60_000, tries: 1 });
    assert.ok(r.o.startsWith('1\n2\n3\n'), r.o.slice(0, 40));
    assert.ok(new TextEncoder().encode(r.o).length <= 300);
  } finally {
    await emu.close();
  }
});

test('shell-host: absolute paths, separators and options as program names are refused by the library and by serve', async () => {
  assert.deepEqual(badHostProgramNames(['uname', '/bin/cat', '../x', 'a\\b', '.', '-e', 'date', 'a b']), ['/bin/cat', '../x', 'a\\b', '.', '-e', 'a b']);
  const dir = await tempDir();
  try {
    const r = await runCli(['serve', '--udp', '127.0.0.1:0', '--data', dir.path, '--shell-host', 'uname,/bin/cat']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--shell-host takes program names looked up in PATH, not paths or options: "\/bin\/cat"/);
    const help = await runCli(['serve', '--help']);
    assert.match(help.stdout.replace(/\s+/g, ' '), /with any arguments, as the user running serve, without a shell/);
  } finally {
    await dir.remove();
  }
});

test('shell-host: loopback binds are told from the others', () => {
  for (const h of ['127.0.0.1', '127.5.6.7', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.ok(isLoopbackBind(h), h);
  for (const h of ['0.0.0.0', '::', '[::]', '192.0.2.1', 'device.example', '::ffff:10.0.0.1']) assert.ok(!isLoopbackBind(h), h);
});

const noNetns = netnsUnavailable();
test('shell-host: serve warns at start-up when host programs meet a non-loopback bind (0.0.0.0 inside a network namespace)', { skip: noNetns, timeout: 30_000 }, async () => {
  const ns = newNamespace('mcumgr-exposed');
  const dir = await tempDir();
  const child = spawn('ip', ['netns', 'exec', ns, CLI, 'serve', '--udp', '0.0.0.0:0', '--data', dir.path, '--shell-host', 'uname'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 25_000);
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (/listening on/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
    });
    assert.match(out, /serve: warning: host programs \(uname\) are allowed and UDP listens on 0\.0\.0\.0: anyone who can send a datagram there/);
  } finally {
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
    await dir.remove();
  }
});

test('image upload: a repeated first chunk with the sha of the slot answers the instant match from the kept digest; a changed slot is hashed again', async () => {
  const emu = await startEmulator();
  try {
    const c = await emu.client();
    const bytes = (await buildImage({ payload: randomBytes(64 * 1024), version: '2.0.0' })).bytes;
    await uploadImage(c, bytes);
    const sha = new Uint8Array(createHash('sha256').update(bytes).digest());
    const first = { off: 0, len: bytes.length, data: bytes.subarray(0, 512), sha };
    for (let i = 0; i < 3; i++) assert.deepEqual(await c.request(commands.image.upload, first), { off: bytes.length, match: true });
    await c.request(commands.image.erase, {});
    // The slot changed: no match now, the upload starts over at the first chunk.
    assert.deepEqual(await c.request(commands.image.upload, first), { off: 512 });
  } finally {
    await emu.close();
  }
});

test('fs quota: a new file on a full file system answers UNKNOWN, a write past it FILE_WRITE_FAILED, an announced len that cannot fit is refused before the old file is touched', async () => {
  const quota = 64 * 1024;
  const emu = await startEmulator({ device: { fsQuota: quota } });
  try {
    const c = await emu.client();
    const chunk = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
    // 40 KiB fits.
    await uploadFile(c, '/lfs/a.bin', chunk(40 * 1024, 1));
    // A 30 KiB upload announced with its len is refused at once: the old file stays whole.
    await uploadFile(c, '/lfs/b.bin', chunk(1024, 2));
    const tooBig = await deviceError(c.request(commands.fs.upload, { name: '/lfs/b.bin', off: 0, len: 30 * 1024, data: chunk(512, 3) }));
    assert.deepEqual([tooBig.group, tooBig.rc], [Group.FS, FsMgmtErr.FILE_WRITE_FAILED]);
    assert.equal((await c.request(commands.fs.status, { name: '/lfs/b.bin' })).len, 1024);
    // A client that understates len is stopped at the write that crosses the limit.
    const liar = await deviceError(
      (async () => {
        await c.request(commands.fs.upload, { name: '/lfs/c.bin', off: 0, len: 100, data: chunk(1500, 4) });
        for (let off = 1500; ; off += 1500) await c.request(commands.fs.upload, { name: '/lfs/c.bin', off, data: chunk(1500, 4) });
      })(),
    );
    assert.deepEqual([liar.group, liar.rc], [Group.FS, FsMgmtErr.FILE_WRITE_FAILED]);
    const kept = (await c.request(commands.fs.status, { name: '/lfs/c.bin' })).len;
    assert.ok(kept > 0 && kept < quota - 40 * 1024, `${kept}`);
    // Fill the rest with empty files: each costs an entry, and the file system ends up full.
    let created = 0;
    const full = await deviceError(
      (async () => {
        for (;;) {
          await c.request(commands.fs.upload, { name: `/lfs/e${created}`, off: 0, len: 0, data: new Uint8Array(0) });
          created++;
        }
      })(),
    );
    assert.deepEqual([full.group, full.rc], [Group.FS, FsMgmtErr.UNKNOWN]);
    assert.ok(created < quota / 256, `${created} empty files`);
  } finally {
    await emu.close();
  }
});

test('fs hash: the last result is kept while the file is unchanged; a change is hashed again', async () => {
  const emu = await startEmulator();
  try {
    const c = await emu.client();
    const data = new Uint8Array(randomBytes(300_000));
    await uploadFile(c, '/lfs/h.bin', data);
    const want = new Uint8Array(createHash('sha256').update(data).digest());
    for (let i = 0; i < 3; i++) assert.deepEqual((await c.request(commands.fs.hash, { name: '/lfs/h.bin', type: 'sha256' })).output, want);
    data[0] = data[0]! ^ 0xff;
    await uploadFile(c, '/lfs/h.bin', data);
    assert.deepEqual((await c.request(commands.fs.hash, { name: '/lfs/h.bin', type: 'sha256' })).output, new Uint8Array(createHash('sha256').update(data).digest()));
    // A different range is a different question.
    const part = await c.request(commands.fs.hash, { name: '/lfs/h.bin', type: 'sha256', off: 1000 });
    assert.deepEqual(part.output, new Uint8Array(createHash('sha256').update(data.subarray(1000)).digest()));
  } finally {
    await emu.close();
  }
});
