/**
 * `serve --kconfig`: the emulator configured from a Zephyr build's .config. Several .config files
 * (a Zephyr 3.4 smp_svr-like build, a build with everything on, a direct-XIP build) and the answers
 * that change with them, as Zephyr's `#if defined(CONFIG_...)` would: groups and commands present,
 * buffer size and count, os info letters and build date, taskstat columns, fs hash types,
 * bootloader mode, image count and list form. The .config parser is fuzzed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createAgent, type Agent } from '../src/server/agent.ts';
import { kconfigOptions, parseKconfig } from '../src/server/kconfig.ts';
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { commands } from '../src/core/commands/index.ts';
import { deviceError, runCli, tempDir } from './helpers.ts';

const SMP_SVR_34 = `
# Automatically generated file; DO NOT EDIT.
CONFIG_BOARD="nrf52840dk_nrf52840"
CONFIG_ARCH="arm"
CONFIG_REBOOT=y
CONFIG_MCUMGR=y
CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE=384
CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT=4
CONFIG_MCUMGR_TRANSPORT_UDP_MTU=1500
CONFIG_MCUMGR_GRP_IMG=y
CONFIG_MCUMGR_GRP_IMG_UPDATABLE_IMAGE_NUMBER=1
# CONFIG_MCUMGR_GRP_IMG_FRUGAL_LIST is not set
CONFIG_IMG_ENABLE_IMAGE_CHECK=y
CONFIG_MCUMGR_GRP_OS=y
CONFIG_MCUMGR_GRP_OS_ECHO=y
CONFIG_MCUMGR_GRP_OS_INFO=y
# CONFIG_MCUMGR_GRP_OS_INFO_BUILD_DATE_TIME is not set
CONFIG_MCUMGR_GRP_OS_TASKSTAT=y
CONFIG_MCUMGR_GRP_OS_TASKSTAT_STACK_INFO=y
# CONFIG_MCUMGR_GRP_OS_TASKSTAT_ONLY_SUPPORTED_STATS is not set
CONFIG_MCUMGR_GRP_OS_MCUMGR_PARAMS=y
# CONFIG_MCUMGR_GRP_OS_DATETIME is not set
# CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO is not set
CONFIG_MCUMGR_GRP_STAT=y
# CONFIG_MCUMGR_GRP_SETTINGS is not set
CONFIG_MCUMGR_GRP_SHELL=y
CONFIG_MCUBOOT_BOOTLOADER_MODE_SWAP_WITHOUT_SCRATCH=y
CONFIG_SOME_UNRELATED_OPTION=42
`;

const EVERYTHING = `
CONFIG_BOARD="nrf5340dk"
CONFIG_BOARD_REVISION="0.5.0"
CONFIG_ARCH="arm"
CONFIG_NET_HOSTNAME_ENABLE=y
CONFIG_NET_HOSTNAME="gateway-7"
CONFIG_REBOOT=y
CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE=2475
CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT=8
CONFIG_MCUMGR_GRP_OS=y
CONFIG_MCUMGR_GRP_OS_ECHO=y
CONFIG_MCUMGR_GRP_OS_INFO=y
CONFIG_MCUMGR_GRP_OS_INFO_BUILD_DATE_TIME=y
CONFIG_MCUMGR_GRP_OS_TASKSTAT=y
CONFIG_MCUMGR_GRP_OS_TASKSTAT_ONLY_SUPPORTED_STATS=y
CONFIG_MCUMGR_GRP_OS_MPSTAT=y
CONFIG_MCUMGR_GRP_OS_DATETIME=y
CONFIG_MCUMGR_GRP_OS_MCUMGR_PARAMS=y
CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO=y
CONFIG_MCUMGR_GRP_IMG=y
CONFIG_MCUMGR_GRP_IMG_UPDATABLE_IMAGE_NUMBER=2
CONFIG_MCUMGR_GRP_IMG_FRUGAL_LIST=y
CONFIG_MCUMGR_GRP_IMG_SLOT_INFO=y
CONFIG_MCUMGR_GRP_STAT=y
CONFIG_MCUMGR_GRP_SETTINGS=y
CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN=16
CONFIG_MCUMGR_GRP_SETTINGS_VALUE_LEN=8
CONFIG_SHELL_BACKEND_DUMMY_BUF_SIZE=300
CONFIG_MCUMGR_GRP_FS=y
CONFIG_MCUMGR_GRP_FS_FILE_STATUS=y
CONFIG_MCUMGR_GRP_FS_CHECKSUM_HASH=y
CONFIG_MCUMGR_GRP_FS_CHECKSUM_HASH_SUPPORTED_CMD=y
# CONFIG_MCUMGR_GRP_FS_CHECKSUM_IEEE_CRC32 is not set
CONFIG_MCUMGR_GRP_FS_HASH_SHA256=y
CONFIG_FILE_SYSTEM_LITTLEFS=y
CONFIG_MCUMGR_GRP_SHELL=y
CONFIG_MCUMGR_GRP_ENUM=y
# CONFIG_MCUMGR_GRP_ENUM_DETAILS is not set
CONFIG_MCUMGR_GRP_ZBASIC=y
CONFIG_MCUMGR_GRP_ZBASIC_STORAGE_ERASE=y
CONFIG_MCUBOOT_BOOTLOADER_MODE_OVERWRITE_ONLY=y
CONFIG_MCUBOOT_BOOTLOADER_NO_DOWNGRADE=y
`;

const DIRECT_XIP = `
CONFIG_MCUMGR_GRP_OS=y
CONFIG_MCUMGR_GRP_OS_ECHO=y
CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO=y
CONFIG_MCUMGR_GRP_IMG=y
CONFIG_MCUBOOT_BOOTLOADER_MODE_DIRECT_XIP=y
CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE=1024
`;

async function withDevice(config: string, fn: (client: SmpClient, agent: Agent) => Promise<void>): Promise<void> {
  const dir = await tempDir('kconfig-');
  // Two threads, as a small firmware has (the emulator's own process has too many for 384 bytes).
  const threads = (): Array<{ name: string; prio: number; state: number; stksiz: number; stkuse: number; runtime: number }> => [
    { name: 'main', prio: 0, state: 1, stksiz: 512, stkuse: 100, runtime: 1234 },
    { name: 'idle', prio: 15, state: 0, stksiz: 64, stkuse: 20, runtime: 99 },
  ];
  const agent = await createAgent({ dataDir: dir.path, udp: { host: '127.0.0.1', port: 0 }, hostNetwork: false, image: { slotSize: 0x40000 }, device: { threads }, kconfig: { text: config, time: new Date('2026-03-04T05:06:07Z') } });
  const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: agent.udp!.port, mtu: 4096 }), { timeoutMs: 2000, tries: 2 });
  try {
    await fn(client, agent);
  } finally {
    await client.close();
    await agent.close();
    await dir.remove();
  }
}

describe('serve --kconfig: answers follow the firmware configuration', () => {
  it('a Zephyr 3.4 smp_svr-like build: 384-byte buffers, no build date, no datetime, no slot info, no bootloader info', async () => {
    await withDevice(SMP_SVR_34, async (c) => {
      assert.deepEqual(await c.request(commands.os.params, {}), { buf_size: 384, buf_count: 4 });
      assert.equal((await deviceError(c.request(commands.os.info, { format: 'b' }))).errorName, 'OS_MGMT_ERR_INVALID_FORMAT');
      assert.equal((await c.request(commands.os.info, { format: 'i' })).output, 'nrf52840dk_nrf52840');
      assert.equal((await c.request(commands.os.info, { format: 'm' })).output, 'arm');
      assert.equal((await c.request(commands.os.info, { format: 'n' })).output, 'unknown');
      for (const req of [c.request(commands.os.datetimeGet, {}), c.request(commands.image.slotInfo, {}), c.request(commands.os.bootloaderInfo, {}), c.request(commands.os.memPoolStats, {})]) {
        assert.equal((await deviceError(req)).rc, 8);
      }
      // Settings and enumeration are not built in: their groups are unknown (rc 8).
      assert.equal((await deviceError(c.request(commands.settings.read, { name: 'app/x' }))).rc, 8);
      const tasks = (await c.request(commands.os.taskStats, {})).tasks;
      assert.deepEqual(tasks['main'], { prio: 0, tid: 0, state: 1, stksiz: 512, stkuse: 100, runtime: 0, cswcnt: 0, last_checkin: 0, next_checkin: 0 });
      const list = await c.request(commands.image.state, {});
      assert.equal(list.splitStatus, 0);
      assert.equal(list.images[0]!.image, undefined);
    });
  });

  it('a build with everything on: big buffers, build date, hostname, overwrite-only with no-downgrade, two images in a frugal list, sha256 only', async () => {
    await withDevice(EVERYTHING, async (c) => {
      assert.deepEqual(await c.request(commands.os.params, {}), { buf_size: 2475, buf_count: 8 });
      assert.equal((await c.request(commands.os.info, { format: 'b' })).output, '2026-03-04T05:06:07');
      assert.equal((await c.request(commands.os.info, { format: 'ni' })).output, 'gateway-7 nrf5340dk@0.5.0');
      assert.deepEqual(await c.request(commands.os.bootloaderInfo, { query: 'mode' }), { mode: 2, 'no-downgrade': true });
      const list = await c.request(commands.image.state, {});
      assert.equal(list.splitStatus, undefined);
      assert.deepEqual(list.images.map((i) => [i.image, i.slot, i.pending]), [[0, 0, undefined], [1, 0, undefined]]);
      assert.equal((await c.request(commands.image.slotInfo, {})).images.length, 2);
      assert.deepEqual(Object.keys((await c.request(commands.fs.hashTypes, {})).types), ['sha256']);
      assert.equal((await deviceError(c.request(commands.enum.details, {}))).rc, 8);
      assert.equal((await c.request(commands.enum.count, {})).count, 8);
      // Settings names shorter than NAME_LEN (NUL included), reads of at most VALUE_LEN bytes.
      await c.request(commands.settings.write, { name: 'app/abcdefghijk', val: new TextEncoder().encode('0123456789abcdef') });
      assert.equal((await deviceError(c.request(commands.settings.write, { name: 'app/abcdefghijkl', val: new Uint8Array([1]) }))).errorName, 'SETTINGS_MGMT_ERR_KEY_TOO_LONG');
      assert.deepEqual(await c.request(commands.settings.read, { name: 'app/abcdefghijk' }), { val: new TextEncoder().encode('01234567') });
      assert.deepEqual(await c.request(commands.settings.read, { name: 'app/abcdefghijk', max_size: 100 }), { val: new TextEncoder().encode('01234567'), max_size: 8 });
      // Shell output is what the 300-byte dummy backend buffer holds.
      const help = await c.request(commands.shell.exec, { argv: ['help'] });
      assert.ok(help.o.length > 0 && help.o.length <= 300, `help gave ${help.o.length} characters`);
      // ONLY_SUPPORTED_STATS without SCHED_THREAD_USAGE or STACK_INFO: the bare columns.
      assert.deepEqual((await c.request(commands.os.taskStats, {})).tasks['idle'], { prio: 15, tid: 1, state: 0 });
    });
  });

  it('a direct-XIP build: mode 4 with no-downgrade, no image state write, no os info', async () => {
    await withDevice(DIRECT_XIP, async (c) => {
      assert.deepEqual(await c.request(commands.os.bootloaderInfo, { query: 'mode' }), { mode: 4, 'no-downgrade': true });
      assert.equal((await deviceError(c.request(commands.image.stateWrite, { confirm: true }))).rc, 8);
      assert.equal((await deviceError(c.request(commands.os.info, {}))).rc, 8);
      assert.equal((await deviceError(c.request(commands.stat.list, {}))).rc, 8);
      assert.deepEqual(await c.request(commands.os.echo, { d: 'x' }), { r: 'x' });
    });
  });

  it('CONFIG_MCUMGR_TRANSPORT_UDP_MTU=600: a 700-byte datagram is dropped as undecodable (exceeds the MTU), a 500-byte one is answered', async () => {
    const dir = await tempDir('kconfig-udp-');
    const undecodable: string[] = [];
    let onUndecodable: () => void = () => {};
    const agent = await createAgent({
      dataDir: dir.path,
      udp: { host: '127.0.0.1', port: 0 },
      hostNetwork: false,
      image: { slotSize: 0x40000 },
      kconfig: { text: 'CONFIG_MCUMGR_GRP_OS=y\nCONFIG_MCUMGR_GRP_OS_ECHO=y\nCONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE=2048\nCONFIG_MCUMGR_TRANSPORT_UDP_MTU=600\n' },
      onEvent: (e) => {
        if (e.type === 'undecodable') {
          undecodable.push(e.reason);
          onUndecodable();
        }
      },
    });
    const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: agent.udp!.port, mtu: 4096 }), { timeoutMs: 2000, tries: 2 });
    try {
      assert.deepEqual(await client.request(commands.os.echo, { d: 'y'.repeat(480) }), { r: 'y'.repeat(480) });
      const abort = new AbortController();
      onUndecodable = () => abort.abort();
      await assert.rejects(client.request(commands.os.echo, { d: 'x'.repeat(700) }, { signal: abort.signal, timeoutMs: 60_000, tries: 1 }), (e: Error & { code?: string }) => e.code === 'TRANSPORT_ABORTED');
      assert.equal(undecodable.length, 1);
      assert.match(undecodable[0]!, /^datagram of \d+ bytes exceeds the MTU 600$/);
    } finally {
      await client.close();
      await agent.close();
      await dir.remove();
    }
  });

  it('serve --kconfig F --print-config lists the options read and what they set', async () => {
    const dir = await tempDir('kconfig-cli-');
    try {
      const file = join(dir.path, '.config');
      await writeFile(file, SMP_SVR_34);
      const r = await runCli(['serve', '--kconfig', file, '--print-config']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE +384 +buf_size 384$/m);
      assert.match(r.stdout, /^CONFIG_MCUMGR_GRP_OS_DATETIME +n +datetime absent \(rc 8\)$/m);
      assert.match(r.stdout, /^CONFIG_MCUBOOT_BOOTLOADER_MODE_SWAP_WITHOUT_SCRATCH +y +MCUboot mode swap-move$/m);
      assert.doesNotMatch(r.stdout, /SOME_UNRELATED_OPTION/);
      await writeFile(file, EVERYTHING);
      const all = await runCli(['serve', '--kconfig', file, '--print-config']);
      assert.equal(all.code, 0, all.stderr);
      assert.match(all.stdout, /^CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN +16 +settings names shorter than 16 bytes \(NUL included\)$/m);
      assert.match(all.stdout, /^CONFIG_MCUMGR_GRP_SETTINGS_VALUE_LEN +8 +settings reads return at most 8 bytes$/m);
      assert.match(all.stdout, /^CONFIG_SHELL_BACKEND_DUMMY_BUF_SIZE +300 +shell output kept per command: 300 bytes$/m);
    } finally {
      await dir.remove();
    }
  });

  it('the .config parser takes any text without throwing, and reads back what it is given (fast-check)', () => {
    const name = fc.stringMatching(/^CONFIG_[A-Z0-9_]{1,20}$/);
    const value = fc.oneof(fc.boolean(), fc.integer({ min: 0, max: 1e9 }), fc.stringMatching(/^[a-z0-9 ._/-]{0,20}$/));
    fc.assert(
      fc.property(fc.dictionary(name, value), (entries) => {
        const text = Object.entries(entries)
          .map(([k, v]) => (v === false ? `# ${k} is not set` : v === true ? `${k}=y` : typeof v === 'number' ? `${k}=${v}` : `${k}="${v}"`))
          .join('\n');
        const parsed = parseKconfig(text);
        for (const [k, v] of Object.entries(entries)) assert.deepEqual(parsed.get(k), v);
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const parsed = parseKconfig(text);
        try {
          kconfigOptions(parsed);
        } catch (e) {
          // Only a numeric option out of range is refused, with a clear message.
          assert.match((e as Error).message, /is not usable/);
        }
      }),
    );
  });
});
