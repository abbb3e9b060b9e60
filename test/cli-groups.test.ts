/**
 * The CLI process (./bin/mcumgr) against `mcumgr serve` processes: every command family of the
 * groups, human and --json output, error exit codes in v2 and v1 (--smp-v1), and settings and
 * files surviving a restart of the server process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startServeProcess, tempDir } from './helpers.ts';

test('CLI: every group command against a served emulator, then a restart keeps settings and files', { timeout: 120_000 }, async () => {
  const dir = await tempDir();
  const data = join(dir.path, 'device');
  let serve = await startServeProcess(['--data', data]);
  try {
    const at = (): string[] => ['--udp', `127.0.0.1:${serve.port}`];
    const cli = (...args: string[]): ReturnType<typeof runCli> => runCli([...at(), ...args]);
    const json = async (...args: string[]): Promise<Record<string, unknown>> => {
      const r = await cli('--json', ...args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}${r.stdout}`);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    const local = join(dir.path, 'in.bin');
    const payload = new Uint8Array(randomBytes(50_000));
    await writeFile(local, payload);

    // Independent reads in parallel (each is its own process).
    const [taskstat, mpstat, boot, mode, statList, enumList, hashes, shell] = await Promise.all([
      cli('taskstat'),
      json('mpstat'),
      cli('bootloader'),
      json('bootloader', 'mode'),
      json('stat', 'list'),
      json('enum', 'list'),
      cli('fs', 'hashes'),
      cli('shell', 'exec', 'kernel', 'version'),
    ]);
    assert.match(taskstat.stdout, /^task\s+pri\s+tid\s+state/);
    assert.ok(Object.keys(mpstat['pools'] as object).length > 0);
    assert.equal(boot.stdout.trim(), 'bootloader: MCUboot');
    assert.deepEqual(mode, { mode: 3 });
    assert.ok((statList['stat_list'] as string[]).includes('smp_udp'));
    assert.deepEqual((enumList['groups'] as number[]).filter((g) => [2, 3, 8, 9, 10, 63].includes(g)), [2, 3, 8, 9, 10, 63]);
    assert.match(hashes.stdout, /crc32: number, 4 bytes\nsha256: bytes, 32 bytes/);
    assert.equal(shell.stdout, 'Zephyr version 4.3.0\n');

    // Date-time: not set (exit 1, by name), set, read back.
    const unset = await cli('datetime');
    assert.equal(unset.code, 1);
    assert.match(unset.stderr, /OS_MGMT_ERR_RTC_NOT_SET/);
    assert.equal((await cli('datetime', '2030-05-06T07:08:09')).code, 0);
    assert.match(String((await json('datetime'))['datetime']), /^2030-05-06T07:08:(09|10)\.\d{3}$/);

    // Settings: write, read (text and --json hex), errors v2 and v1, save.
    assert.equal((await cli('config', 'app/greeting', 'hello world')).stdout, 'Done\n');
    const [readText, readJson, missing, missing1, tooLong, longName] = await Promise.all([
      cli('config', 'app/greeting'),
      json('settings', 'read', 'app/greeting'),
      cli('--json', 'settings', 'read', 'app/none'),
      cli('--json', '--smp-v1', 'settings', 'read', 'app/none'),
      cli('settings', 'write', 'app/x', 'x'.repeat(300)),
      cli('--smp-v1', 'config', 'app/' + 'n'.repeat(40), 'v'),
    ]);
    assert.equal(readText.stdout, 'hello world\n');
    assert.deepEqual(readJson, { name: 'app/greeting', val: toHexString('hello world') });
    assert.equal(missing.code, 1);
    assert.deepEqual(pick(JSON.parse(missing.stdout).error), { code: 'DEVICE_ERROR', name: 'SETTINGS_MGMT_ERR_KEY_NOT_FOUND', rc: 3, group: 3 });
    assert.deepEqual(pick(JSON.parse(missing1.stdout).error), { code: 'DEVICE_ERROR', name: 'MGMT_ERR_ENOENT', rc: 5, group: undefined });
    assert.equal(tooLong.code, 1);
    assert.match(tooLong.stderr, /SETTINGS_MGMT_ERR_UNKNOWN/);
    assert.match(longName.stderr, /MGMT_ERR_EINVAL/);
    assert.equal((await cli('settings', 'write', 'app/bin', '00ff10', '--hex')).code, 0);
    assert.equal((await cli('settings', 'read', 'app/bin')).stdout, '0x00ff10\n');
    assert.equal((await cli('settings', 'save')).code, 0);

    // Files: upload, stat, hash, download, errors.
    const up = await json('fs', 'upload', local, '/lfs/in.bin');
    assert.equal(up['bytes'], 50_000);
    assert.equal((up['verified'] as { type: string }).type, 'sha256');
    const out = join(dir.path, 'out.bin');
    const [st, crc, dl, notFound, escape] = await Promise.all([
      json('fs', 'stat', '/lfs/in.bin'),
      json('fs', 'hash', '/lfs/in.bin', '--type', 'crc32', '--off', '10', '--len', '100'),
      cli('fs', 'download', '/lfs/in.bin', out),
      cli('fs', 'download', '/lfs/nope', join(dir.path, 'nope.bin')),
      cli('--smp-v1', 'fs', 'upload', local, '/lfs/../escape'),
    ]);
    assert.deepEqual(st, { name: '/lfs/in.bin', len: 50_000 });
    assert.deepEqual([crc['type'], crc['off'], crc['len']], ['crc32', 10, 100]);
    assert.equal(dl.code, 0, dl.stderr);
    assert.deepEqual(new Uint8Array(await readFile(out)), payload);
    assert.equal(notFound.code, 1);
    assert.match(notFound.stderr, /FS_MGMT_ERR_FILE_NOT_FOUND/);
    assert.match(escape.stderr, /MGMT_ERR_EINVAL/);
    assert.equal((await cli('fs', 'close')).code, 0);

    // Stat show, shell errors, enum details, raw, storage-erase of a throwaway.
    const [smp, noStat, frob, details, raw, rawErr] = await Promise.all([
      json('stat', 'smp_udp'),
      cli('stat', 'nope'),
      cli('--json', 'shell', 'exec', 'frobnicate'),
      json('enum', 'details', '3'),
      json('raw', 'read', '0', '0', '{"d":"raw hi"}'),
      cli('raw', 'write', '100', '1'),
    ]);
    assert.ok(((smp['fields'] as Record<string, number>)['requests'] ?? 0) > 10);
    assert.equal(noStat.code, 1);
    assert.match(noStat.stderr, /no statistics group "nope"/);
    // The command's return code (-8, -ENOEXEC) does not fit an exit code: exit 1.
    assert.equal(frob.code, 1);
    assert.deepEqual(JSON.parse(frob.stdout), { o: 'frobnicate: command not found\n', ret: -8 });
    assert.deepEqual(details, { groups: [{ group: 3, name: 'settings mgmt', handlers: 4 }] });
    assert.deepEqual(raw, { r: 'raw hi' });
    assert.equal(rawErr.code, 1);
    assert.match(rawErr.stderr, /MGMT_ERR_ENOTSUP/);

    // Restart the server process: saved settings and files are there; the unsaved value is not.
    assert.equal((await cli('config', 'app/greeting', 'not saved')).code, 0);
    await serve.stop();
    serve = await startServeProcess(['--data', data]);
    assert.equal((await cli('config', 'app/greeting')).stdout, 'hello world\n');
    assert.deepEqual(await json('fs', 'stat', '/lfs/in.bin'), { name: '/lfs/in.bin', len: 50_000 });
    assert.equal((await cli('storage-erase')).stdout, 'Done\n');
    assert.equal((await cli('fs', 'stat', '/lfs/in.bin')).code, 1);
  } finally {
    await serve.stop();
    await dir.remove();
  }
});

function toHexString(s: string): string {
  return Buffer.from(s).toString('hex');
}

function pick(e: Record<string, unknown>): Record<string, unknown> {
  return { code: e['code'], name: e['name'], rc: e['rc'], group: e['group'] };
}
