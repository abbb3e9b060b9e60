/**
 * Every MCUboot mode end to end through the CLI against `mcumgr serve --mcuboot-mode` (real
 * processes, UDP on 127.0.0.1): `upgrade` picks the flow from the bootloader mode, the upgrade and
 * revert story of each mode, and the forbidden requests answered with MCUboot's / img_mgmt's codes.
 * Then a multi-image upgrade from a west DFU package built here, with a dependency that blocks a
 * swap until both images are present.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startServeProcess, tempDir } from './helpers.ts';
import { buildDfuPackage, buildImage, type BuildImageOptions } from '../src/image/index.ts';
import { toHex } from '../src/core/bytes.ts';

type Dir = Awaited<ReturnType<typeof tempDir>>;

async function imageFile(dir: Dir, version: string, extra: Partial<BuildImageOptions> = {}, name = `app-${version}.bin`): Promise<{ file: string; hash: string; bytes: Uint8Array }> {
  const payload = new Uint8Array(30_000).map((_, i) => (i * 17 + version.charCodeAt(0) * 5 + name.length) & 0xff);
  const built = await buildImage({ payload, version, ...extra });
  const file = join(dir.path, name);
  await writeFile(file, built.bytes);
  return { file, hash: toHex(built.hash), bytes: built.bytes };
}

/** Runs one story against a fresh `serve` with the given flags. */
async function withDevice(serveArgs: string[], story: (cli: (...args: string[]) => ReturnType<typeof runCli>, dir: Dir) => Promise<void>): Promise<void> {
  const dir = await tempDir('mcuboot-cli-');
  const serve = await startServeProcess(['--data', join(dir.path, 'device'), '--slot-size', '262144', ...serveArgs]);
  try {
    await story((...args) => runCli(['--udp', `127.0.0.1:${serve.port}`, '-t', '1', ...args]), dir);
  } finally {
    await serve.stop();
    await dir.remove();
  }
}

function ok(r: { code: number | null; stderr: string; stdout: string }): void {
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
}

describe('MCUboot modes through the CLI (serve --mcuboot-mode, upgrade)', () => {
  it('swap using move: test-confirm upgrade; --no-confirm reverts at the next reset; forbidden requests by name', async () => {
    await withDevice(['--mcuboot-mode', 'swap-move'], async (cli, dir) => {
      const mode = await cli('bootloader', 'mode');
      ok(mode);
      assert.match(mode.stdout, /mode: 3 \(swap using move\)/);
      const v2 = await imageFile(dir, '2.0.0');
      const up = await cli('upgrade', v2.file);
      ok(up);
      assert.match(up.stderr, /flow: test-confirm/);
      assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, confirmed\n');
      const v3 = await imageFile(dir, '3.0.0');
      const test = await cli('upgrade', '--no-confirm', v3.file);
      ok(test);
      assert.equal(test.stdout, 'Upgraded image 0: 2.0.0 → 3.0.0, in test (not confirmed)\n');
      // Unconfirmed: the next reset reverts to 2.0.0.
      ok(await cli('reset'));
      let list = '';
      for (let i = 0; i < 50 && !/slot=0\n {4}version: 2\.0\.0\n {4}bootable: true\n {4}flags: active confirmed/.test(list); i++) list = (await cli('image', 'list')).stdout;
      assert.match(list, /image=0 slot=0\n {4}version: 2\.0\.0\n {4}bootable: true\n {4}flags: active confirmed/);
      assert.match(list, /image=0 slot=1\n {4}version: 3\.0\.0\n {4}bootable: true\n {4}flags: \n/);
      // Forbidden: test the running image (33), erase the running slot (9).
      const running = /slot=0\n(?:.*\n){3} {4}hash: ([0-9a-f]{64})/.exec(list)![1]!;
      const t = await cli('image', 'test', running);
      assert.equal(t.code, 1);
      assert.match(t.stderr, /IMG_MGMT_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED/);
      const e = await cli('image', 'erase', '0');
      assert.equal(e.code, 1);
      assert.match(e.stderr, /IMG_MGMT_ERR_NO_FREE_SLOT/);
    });
  });

  for (const [mode, n, label] of [['swap-scratch', 1, 'swap using scratch'], ['swap-offset', 9, 'swap using offset']] as const) {
    it(`${mode}: reported as ${n}, test-confirm upgrade`, async () => {
      await withDevice(['--mcuboot-mode', mode], async (cli, dir) => {
        assert.match((await cli('bootloader', 'mode')).stdout, new RegExp(`mode: ${n} \\(${label}\\)`));
        const up = await cli('upgrade', (await imageFile(dir, '1.1.0')).file);
        ok(up);
        assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 1.1.0, confirmed\n');
      });
    });
  }

  it('overwrite-only with downgrade prevention: confirm-only upgrade; an older image is refused at boot', async () => {
    await withDevice(['--mcuboot-mode', 'overwrite-only', '--downgrade-prevention'], async (cli, dir) => {
      const mode = await cli('--json', 'bootloader', 'mode');
      ok(mode);
      assert.deepEqual(JSON.parse(mode.stdout), { mode: 2, 'no-downgrade': true });
      const up = await cli('upgrade', (await imageFile(dir, '2.0.0')).file);
      ok(up);
      assert.match(up.stderr, /flow: confirm-only/);
      assert.match(up.stderr, /marking 2\.0\.0 permanent/);
      assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, confirmed\n');
      const down = await cli('upgrade', (await imageFile(dir, '1.5.0')).file);
      assert.equal(down.code, 1);
      assert.match(down.stderr, /running 2\.0\.0 instead of 1\.5\.0/);
      const list = (await cli('image', 'list')).stdout;
      assert.doesNotMatch(list, /slot=1/, 'the refused image was erased');
    });
  });

  it('overwrite-only without downgrade prevention: the older image is installed; the running slot cannot be erased', async () => {
    await withDevice(['--mcuboot-mode', 'overwrite-only'], async (cli, dir) => {
      assert.doesNotMatch((await cli('--json', 'bootloader', 'mode')).stdout, /no-downgrade/);
      const up = await cli('upgrade', (await imageFile(dir, '0.9.0')).file);
      ok(up);
      assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 0.9.0, confirmed\n');
      const e = await cli('image', 'erase', '0');
      assert.equal(e.code, 1);
      assert.match(e.stderr, /IMG_MGMT_ERR_NO_FREE_SLOT/);
    });
  });

  it('direct-XIP without revert: no state write (rc 8); the newest image boots; an older one does not', async () => {
    await withDevice(['--mcuboot-mode', 'direct-xip'], async (cli, dir) => {
      const up = await cli('upgrade', (await imageFile(dir, '2.0.0')).file);
      ok(up);
      assert.match(up.stderr, /MCUboot direct-XIP, no downgrade; flow: none/);
      // Nothing to confirm in this mode: the device lists the running image as confirmed.
      assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, confirmed\n');
      const list = (await cli('image', 'list')).stdout;
      assert.match(list, /image=0 slot=1\n {4}version: 2\.0\.0\n {4}bootable: true\n {4}flags: active confirmed/);
      const c = await cli('image', 'confirm');
      assert.equal(c.code, 1);
      assert.match(c.stderr, /MGMT_ERR_ENOTSUP/);
      const old = await cli('upgrade', (await imageFile(dir, '1.5.0')).file);
      assert.equal(old.code, 1);
      assert.match(old.stderr, /running 2\.0\.0 instead of 1\.5\.0/);
    });
  });

  it('direct-XIP with revert: an unconfirmed test image is erased at the next reset; a confirmed one stays', async () => {
    await withDevice(['--mcuboot-mode', 'direct-xip-revert'], async (cli, dir) => {
      const v2 = await imageFile(dir, '2.0.0');
      const test = await cli('upgrade', '--no-confirm', v2.file);
      ok(test);
      assert.match(test.stderr, /flow: test-confirm/);
      assert.equal(test.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, in test (not confirmed)\n');
      const t = await cli('image', 'test', v2.hash);
      assert.equal(t.code, 1);
      assert.match(t.stderr, /IMG_MGMT_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED/);
      ok(await cli('reset'));
      let list = '';
      for (let i = 0; i < 50 && /slot=1/.test(list + 'slot=1'); i++) list = (await cli('image', 'list')).stdout;
      assert.match(list, /image=0 slot=0\n {4}version: 1\.0\.0\n {4}bootable: true\n {4}flags: active confirmed/);
      assert.doesNotMatch(list, /slot=1/, 'the tried, unconfirmed slot was erased');
      const up = await cli('upgrade', v2.file);
      ok(up);
      assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, confirmed\n');
    });
  });

  it('RAM load and single slot: flow none; serial recovery has no erase or state write (rc 8)', async () => {
    await withDevice(['--mcuboot-mode', 'ram-load'], async (cli, dir) => {
      const up = await cli('upgrade', (await imageFile(dir, '2.0.0')).file);
      ok(up);
      assert.match(up.stderr, /MCUboot RAM load, no downgrade; flow: none/);
    });
    await withDevice(['--mcuboot-mode', 'single-slot'], async (cli, dir) => {
      const up = await cli('upgrade', (await imageFile(dir, '2.0.0')).file);
      ok(up);
      assert.match(up.stderr, /MCUboot single slot; flow: none/);
      assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, confirmed\n');
      for (const args of [['image', 'erase'], ['image', 'confirm']]) {
        const r = await cli(...args);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /MGMT_ERR_ENOTSUP/);
      }
    });
  });

  it('several files with -n each and --mode confirm-only overriding swap-move\'s test-confirm: one reset, both images permanent at once; bad --mode and -n counts are usage errors', async () => {
    await withDevice(['--mcuboot-mode', 'swap-move', '--images', '2', '--confirm-non-active', 'secondary'], async (cli, dir) => {
      const app = await imageFile(dir, '2.0.0', {}, 'app.bin');
      const net = await imageFile(dir, '2.1.0', {}, 'net.bin');
      const bad = await cli('upgrade', '--mode', 'swap', app.file);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--mode must be test-confirm, confirm-only or none, got "swap"/);
      const count = await cli('upgrade', '-n', '0', app.file, net.file);
      assert.equal(count.code, 2);
      assert.match(count.stderr, /give -n IMAGE for each file \(2 files, 1 -n\)/);
      const up = await cli('upgrade', '-n', '0', app.file, '-n', '1', net.file, '--mode', 'confirm-only');
      ok(up);
      assert.match(up.stderr, /bootloader: MCUboot swap using move; flow: confirm-only \(chosen\)/);
      assert.match(up.stderr, /image 0: marking 2\.0\.0 permanent \(confirm\)/);
      assert.match(up.stderr, /image 1: marking 2\.1\.0 permanent \(confirm\)/);
      assert.equal((up.stderr.match(/^reset:/gm) ?? []).length, 1, 'one reset');
      assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, confirmed\nUpgraded image 1: 1.0.0 → 2.1.0, confirmed\n');
      // Permanent: another reset keeps both (a test would have reverted without a confirm).
      ok(await cli('reset'));
      let list = '';
      for (let i = 0; i < 50 && !/image=1 slot=0\n {4}version: 2\.1\.0\n {4}bootable: true\n {4}flags: active confirmed/.test(list); i++) list = (await cli('image', 'list')).stdout;
      assert.match(list, /image=0 slot=0\n {4}version: 2\.0\.0\n {4}bootable: true\n {4}flags: active confirmed/);
      assert.match(list, /image=1 slot=0\n {4}version: 2\.1\.0\n {4}bootable: true\n {4}flags: active confirmed/);
    });
  });

  it('multi-image from a west DFU package: a dependency blocks the swap until both images are there, then one reset upgrades both', async () => {
    await withDevice(['--images', '2', '--confirm-non-active', 'any'], async (cli, dir) => {
      const need = { imageId: 1, minVersion: { major: 2, minor: 0, revision: 0, build: 0 } };
      const app = await imageFile(dir, '2.0.0', { dependencies: [need], securityCounter: 'auto' }, 'app_update.bin');
      const net = await imageFile(dir, '2.0.0', {}, 'net_core_app_update.bin');
      // The client refuses a package that cannot boot ...
      const alone = await cli('upgrade', '-n', '0', app.file);
      assert.equal(alone.code, 1);
      assert.match(alone.stderr, /image 0 2\.0\.0 needs image 1 >= 2\.0\.0, but it would run 1\.0\.0: add image 1 to the upgrade/);
      // ... and the device itself does not swap the application alone.
      ok(await cli('image', 'upload', '-n', '0', app.file));
      ok(await cli('image', 'test', app.hash));
      ok(await cli('reset'));
      let list = '';
      for (let i = 0; i < 50 && !/flags: active confirmed[\s\S]*flags: pending/.test(list); i++) list = (await cli('image', 'list')).stdout;
      assert.match(list, /image=0 slot=0\n {4}version: 1\.0\.0\n {4}bootable: true\n {4}flags: active confirmed/);
      assert.match(list, /image=0 slot=1\n {4}version: 2\.0\.0\n {4}bootable: true\n {4}flags: pending\n/);
      // The package as west lays it out: both images and a manifest naming each image number.
      const zip = join(dir.path, 'dfu_application.zip');
      await writeFile(zip, buildDfuPackage([
        { image: 0, file: 'app_update.bin', bytes: app.bytes, info: { board: 'nrf5340dk/nrf5340/cpuapp', soc: 'nRF5340_CPUAPP_QKAA', load_address: 0x10000, version_MCUBOOT: '2.0.0' } },
        { image: 1, file: 'net_core_app_update.bin', bytes: net.bytes, info: { board: 'nrf5340dk/nrf5340/cpunet', soc: 'nRF5340_CPUNET_QKAA', load_address: 0x1008000, version: '2' } },
      ], { name: 'app' }));
      const up = await cli('upgrade', zip);
      ok(up);
      assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, confirmed\nUpgraded image 1: 1.0.0 → 2.0.0, confirmed\n');
      assert.match(up.stderr, /upload: image 0: skipped: the device already holds this image/);
      assert.match(up.stderr, /upload: image 1: \d+ bytes/);
      assert.equal((up.stderr.match(/^reset:/gm) ?? []).length, 1, 'one reset');
      const info = await cli('image', 'info', app.file);
      ok(info);
      assert.match(info.stdout, /DEPENDENCY\*\s+12 B {2}image 1 >= 2\.0\.0\+0/);
      assert.match(info.stdout, /SEC_CNT\*\s+4 B {2}33554432/);
      assert.match(info.stdout, /dependencies: image 1 >= 2\.0\.0\+0/);
    });
  });
});
