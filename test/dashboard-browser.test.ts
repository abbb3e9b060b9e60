/**
 * The dashboard in real Chromium (Debian's, headless, driven by playwright-core), against
 * `mcumgr serve` processes through `mcumgr dashboard`'s bridge: connect and overview, a whole
 * upgrade by dropping a file, a reverted upgrade on a device that boots only signed images, live
 * stats, fs upload then download with identical bytes, the shell, a settings round trip, the SMP
 * log and its export, a visible timeout for a device that does not answer, and axe-core on every
 * panel. Screenshots of each panel go to test-output/dashboard/ (git-ignored) for review.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { buildImage } from '../src/image/build.ts';
import { loadSigningKey } from '../src/image/keys.ts';
import { ROOT, startServeProcess, tempDir } from './helpers.ts';
import { chromiumMissing } from './chromium.ts';
import { axeViolations, dropFile, openDashboardPage, startDashboardProcess, type DashboardPage, type DashboardProcess } from './dashboard-harness.ts';

const SHOTS = join(ROOT, 'test-output', 'dashboard');
const missing = chromiumMissing();

function payload(n: number, seed: number): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 7 + seed) & 0xff);
}

/** A UDP socket that takes every datagram and never answers: a device that hangs. */
async function silentUdpPeer(): Promise<{ port: number; close(): Promise<void> }> {
  const s = createSocket('udp4');
  s.on('message', () => {});
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  return { port: s.address().port, close: () => new Promise<void>((resolve) => s.close(() => resolve())) };
}

describe('dashboard in Chromium against mcumgr serve through the bridge', { skip: missing }, () => {
  let data: Awaited<ReturnType<typeof tempDir>>;
  let serve: Awaited<ReturnType<typeof startServeProcess>>;
  let signedServe: Awaited<ReturnType<typeof startServeProcess>>;
  let dashboard: DashboardProcess;
  let ui: DashboardPage;
  let page: Page;
  const pageErrors: string[] = [];
  const shots: string[] = [];

  const tab = async (name: string): Promise<void> => {
    await page.getByRole('tab', { name, exact: true }).click();
    await page.waitForSelector(`[role=tabpanel][aria-labelledby="tab-${name === 'SMP log' ? 'log' : name.toLowerCase()}"]`);
  };
  const shot = async (name: string): Promise<void> => {
    const file = join(SHOTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
  };
  const axe = async (panel: string): Promise<void> => {
    const v = await axeViolations(page);
    assert.deepEqual(v, [], `axe on ${panel}`);
  };
  const selectDevice = async (label: string): Promise<void> => {
    await page.locator('nav .device', { hasText: label }).click();
    await page.waitForSelector(`.device-head h2:has-text("${label}")`);
  };

  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    data = await tempDir('mcumgr-dash-e2e-');
    serve = await startServeProcess(['--data', join(data.path, 'device')]);
    const fixtures = join(ROOT, 'test', 'fixtures', 'imgtool');
    const key = await loadSigningKey(await readFile(join(fixtures, 'ecdsa-p256.pem'), 'utf8'));
    const factory = join(data.path, 'factory.bin');
    await writeFile(factory, (await buildImage({ payload: payload(20000, 1), version: '1.0.0', signingKey: key })).bytes);
    signedServe = await startServeProcess(['--data', join(data.path, 'signed-device'), '--image-key', join(fixtures, 'ecdsa-p256.pub.pem'), '--factory-image', factory]);
    dashboard = await startDashboardProcess([`udp:127.0.0.1:${serve.port}`]);
    ui = await openDashboardPage(dashboard.url, pageErrors);
    page = ui.page;
  });
  after(async () => {
    await ui?.close();
    await dashboard?.stop();
    await serve?.stop();
    await signedServe?.stop();
    await data?.remove();
    if (shots.length) console.log(`screenshots: ${shots.join(', ')}`);
  });

  it('connects and shows the overview: link online, params, info, MCUboot mode, enumerated groups', async () => {
    await page.waitForSelector('.device-head .state-online');
    await page.waitForFunction(() => document.querySelector('[data-testid=groups]')?.textContent?.includes('img mgmt'));
    // Each fact shows as it comes (the MCUboot mode after the bootloader's name): discovery done first.
    await page.waitForSelector('[data-testid=overview][data-discovered]');
    assert.match((await page.textContent('[data-testid=params]')) ?? '', /4 × 2048 bytes/);
    assert.equal(await page.textContent('[data-testid=bootloader]'), 'MCUboot');
    assert.match((await page.textContent('[data-testid=boot-mode]')) ?? '', /swap using move \(3\)/);
    assert.match((await page.textContent('[data-testid=os-info]')) ?? '', /Zephyr/);
    for (const t of ['Overview', 'Images', 'Stats', 'Files', 'Settings', 'Shell', 'OS', 'Network', 'SMP log']) {
      assert.equal(await page.getByRole('tab', { name: t, exact: true }).count(), 1, `tab ${t}`);
    }
    assert.equal(await page.locator('.error').count(), 0, 'no error shown after connecting');
    await shot('overview');
    await axe('overview');
  });

  it('upgrades by dropping a file: verified in the page, progress moves, verdict upgraded and confirmed, slot grid shows it', async () => {
    await tab('Images');
    await page.waitForSelector('[data-testid="slot-0-0"] [data-testid=version]:has-text("1.0.0")');
    const image = await buildImage({ payload: payload(1024 * 1024 - 4096, 3), version: '2.0.0' });
    await dropFile(page, '[data-testid=dropzone]', 'app-2.0.0.bin', image.bytes);
    await page.waitForSelector('[data-testid=file-version]:has-text("2.0.0")');
    assert.match((await page.textContent('[data-testid=image-check]')) ?? '', /matches the content/);
    await shot('images-file-checked');
    await axe('images (file checked)');
    // Record the progress bar as the page shows it, from inside the page.
    await page.evaluate(() => {
      const seen: number[] = [];
      (globalThis as unknown as { seen: number[] }).seen = seen;
      setInterval(() => {
        const bar = document.querySelector<HTMLProgressElement>('[data-testid=upload-bar]');
        if (bar) seen.push(bar.value / bar.max);
      }, 5);
    });
    await page.getByRole('button', { name: 'Start upgrade' }).click();
    await page.waitForSelector('[data-testid=verdict]', { timeout: 120_000 });
    const verdict = await page.locator('[data-testid=verdict]');
    assert.equal(await verdict.getAttribute('data-verdict'), 'upgraded', (await verdict.textContent()) ?? '');
    assert.match((await verdict.textContent()) ?? '', /Upgraded image 0: 1\.0\.0 → 2\.0\.0, confirmed/);
    const seen = await page.evaluate(() => (globalThis as unknown as { seen: number[] }).seen);
    assert.ok(seen.some((v) => v > 0 && v < 1), `the progress bar showed an intermediate value (saw ${seen.length} samples)`);
    assert.ok(seen.includes(1));
    assert.match((await page.textContent('[data-testid=upload-numbers]')) ?? '', /1020\.5 KiB of 1020\.5 KiB \(100%\) · [\d.]+ (KiB|MiB)\/s · ETA done · window \d+ · \d+ retransmissions/);
    await page.waitForSelector('[data-testid="slot-0-0"] [data-testid=version]:has-text("2.0.0")');
    const flags = (await page.textContent('[data-testid="slot-0-0"] [data-testid=flags]')) ?? '';
    assert.match(flags, /active/);
    assert.match(flags, /confirmed/);
    // MCUboot's rules: the running confirmed image can be neither tested nor erased.
    const row = page.locator('[data-testid="slot-0-0"]');
    assert.equal(await row.getByRole('button', { name: 'Test' }).isDisabled(), true);
    assert.equal(await row.getByRole('button', { name: 'Erase' }).isDisabled(), true);
    assert.equal(await row.getByRole('button', { name: 'Confirm' }).isDisabled(), true);
    const old = page.locator('[data-testid="slot-0-1"]');
    assert.equal(await old.getByRole('button', { name: 'Test' }).isEnabled(), true, 'the old image in slot 1 may be tested');
    await shot('images-upgraded');
    await axe('images (upgraded)');
  });

  it('shows a reverted upgrade as such (a device that boots only signed images, an unsigned file)', async () => {
    const connection = `udp:127.0.0.1:${signedServe.port}`;
    await page.fill('#connection', connection);
    await page.getByRole('button', { name: 'Add device' }).click();
    await selectDevice(connection);
    await page.waitForSelector('.device-head .state-online');
    await page.waitForFunction(() => document.querySelector('[data-testid=groups]')?.textContent?.includes('img mgmt'));
    await tab('Images');
    await page.waitForSelector('[data-testid="slot-0-0"] [data-testid=version]:has-text("1.0.0")');
    const unsigned = await buildImage({ payload: payload(30000, 9), version: '3.0.0' });
    await dropFile(page, '[data-testid=dropzone]', 'unsigned-3.0.0.bin', unsigned.bytes);
    await page.waitForSelector('[data-testid=file-version]:has-text("3.0.0")');
    assert.match((await page.textContent('[data-testid=image-check]')) ?? '', /none: a bootloader that requires signed images will not boot it/);
    await page.getByRole('button', { name: 'Start upgrade' }).click();
    await page.waitForSelector('[data-testid=verdict]', { timeout: 120_000 });
    const verdict = page.locator('[data-testid=verdict]');
    assert.equal(await verdict.getAttribute('data-verdict'), 'reverted', (await verdict.textContent()) ?? '');
    assert.match((await verdict.textContent()) ?? '', /Reverted: the device kept its old image: .*running 1\.0\.0 instead of 3\.0\.0/);
    await page.waitForSelector('[data-testid="slot-0-0"] [data-testid=version]:has-text("1.0.0")');
    assert.match((await page.textContent('[data-testid="slot-0-0"] [data-testid=flags]')) ?? '', /active/);
    await shot('images-reverted');
    await axe('images (reverted)');
    await selectDevice(`udp:127.0.0.1:${serve.port}`);
  });

  it('charts stats live: samples accumulate and the counters move', async () => {
    await tab('Stats');
    await page.selectOption('#stats-period', '250');
    const chart = page.locator('[data-testid=chart-smp_udp]');
    await chart.waitFor();
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=chart-smp_udp]')?.getAttribute('data-points')) >= 2);
    const first = Number(await page.textContent('[data-testid=stat-smp_udp-requests]'));
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid=stat-smp_udp-requests]')?.textContent) > n, first);
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=chart-smp_udp]')?.getAttribute('data-points')) >= 4);
    assert.ok((await chart.locator('canvas').count()) >= 1, 'uPlot drew a canvas');
    await page.getByLabel('Rate (per second)').check();
    await page.waitForSelector('[data-testid=chart-smp_udp] figcaption:has-text("per second")');
    // Polling itself makes requests: their rate is above zero.
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=rate-smp_udp-requests]')?.textContent) > 0);
    await shot('stats');
    await axe('stats');
    await page.getByRole('button', { name: 'Pause' }).click();
  });

  it('uploads a file and downloads it back with identical bytes', async () => {
    await tab('Files');
    const bytes = payload(50_000, 5);
    await page.setInputFiles('#fs-local', { name: 'blob.bin', mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) });
    await page.fill('#fs-name', '/lfs/');
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.waitForSelector('[data-testid=files] td:has-text("uploaded")');
    assert.equal(await page.inputValue('#fs-name'), '/lfs/blob.bin');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download', exact: true }).first().click()]);
    const got = await readFile((await download.path())!);
    assert.equal(download.suggestedFilename(), 'blob.bin');
    assert.deepEqual(new Uint8Array(got), bytes);
    await page.getByRole('button', { name: 'Hash', exact: true }).first().click();
    await page.waitForSelector('[data-testid=files] code.hash:not(:has-text("–"))');
    await shot('files');
    await axe('files');
  });

  it('runs shell commands with output as the device returns it, and keeps a history', async () => {
    await tab('Shell');
    await page.fill('#sh-line', 'kernel version');
    await page.press('#sh-line', 'Enter');
    await page.waitForSelector('[data-testid=shell-output] :text("Zephyr version")');
    await page.fill('#sh-line', 'net iface');
    await page.press('#sh-line', 'Enter');
    await page.waitForFunction(() => (document.querySelector('[data-testid=shell-output]')?.textContent ?? '').includes('$ net iface'));
    await page.press('#sh-line', 'ArrowUp');
    assert.equal(await page.inputValue('#sh-line'), 'net iface');
    await page.press('#sh-line', 'ArrowUp');
    assert.equal(await page.inputValue('#sh-line'), 'kernel version');
    await shot('shell');
    await axe('shell');
  });

  it('round-trips a setting (write, read, save, delete), and shows a missing one by name', async () => {
    await tab('Settings');
    await page.fill('#set-name', 'app/greeting');
    await page.fill('#set-value', 'hello from chromium');
    await page.getByRole('button', { name: 'Write' }).click();
    await page.waitForSelector('[data-testid=setting-result] :text("written")');
    await page.fill('#set-value', '');
    await page.getByRole('button', { name: 'Read' }).click();
    await page.waitForSelector('[data-testid=setting-text]:has-text("hello from chromium")');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForSelector('[data-testid=setting-result] :text("saved to storage")');
    await shot('settings');
    await axe('settings');
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForSelector('[data-testid=setting-result] :text("deleted")');
    await page.fill('#set-name', 'app/never-written');
    await page.getByRole('button', { name: 'Read' }).click();
    await page.waitForSelector('[data-testid=error-name]:has-text("SETTINGS_MGMT_ERR_KEY_NOT_FOUND")');
    assert.match((await page.textContent('.error')) ?? '', /No such setting/);
    await page.getByRole('button', { name: 'Dismiss' }).click();
  });

  it('shows OS thread statistics and the clock, and the network events', async () => {
    await tab('OS');
    await page.waitForSelector('[data-testid=taskstat] tbody tr');
    await page.waitForSelector('[data-testid=datetime]:has-text("OS_MGMT_ERR_RTC_NOT_SET")');
    await page.getByRole('button', { name: "Set to this computer's time" }).click();
    await page.waitForFunction(() => /^\d{4}-\d\d-\d\dT/.test(document.querySelector('[data-testid=datetime]')?.textContent ?? ''));
    await shot('os');
    await axe('os');
    await tab('Network');
    await page.waitForFunction(() => (document.querySelector('[data-testid=net-events]')?.textContent ?? '') !== '');
    await shot('network');
    await axe('network');
  });

  it('logs every exchange decoded (header, command, CBOR as JSON, errors by name) and exports it', async () => {
    await tab('SMP log');
    const rows = page.locator('[data-testid=log-row]');
    assert.ok((await rows.count()) > 10);
    const text = (await page.textContent('[data-testid=smp-log]')) ?? '';
    assert.ok(/settings\.read/.test(text), 'the log shows settings.read');
    assert.ok(/SETTINGS_MGMT_ERR_KEY_NOT_FOUND \(err 3\/3\)/.test(text), 'the log shows the error by name');
    await rows.first().getByRole('button').click();
    assert.match((await page.textContent('pre.json')) ?? '', /"seq": \d+/);
    await shot('smp-log');
    await axe('smp log');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export JSON' }).click()]);
    const exported = JSON.parse(await readFile((await download.path())!, 'utf8')) as { device: string; packets: Array<{ dir: string; messages: Array<{ command: string; body: unknown; error?: string }> }> };
    assert.equal(exported.device, `udp:127.0.0.1:${serve.port}`);
    const cmds = exported.packets.flatMap((p) => p.messages.map((m) => m.command));
    for (const c of ['os.params', 'image.upload', 'image.state.write', 'os.reset', 'stat.show', 'fs.upload', 'fs.download', 'shell.exec', 'settings.write']) assert.ok(cmds.includes(c), `log has ${c}`);
    assert.ok(exported.packets.some((p) => p.messages.some((m) => m.error === 'SETTINGS_MGMT_ERR_KEY_NOT_FOUND (err 3/3)')));
  });

  it('shows a pending request with its timeout for a device that does not answer, then the error by name', async () => {
    const peer = await silentUdpPeer();
    after(() => peer.close());
    const silent = `udp:127.0.0.1:${peer.port}`;
    await page.fill('#connection', silent);
    await page.getByRole('button', { name: 'Add device' }).click();
    await selectDevice(silent);
    await page.waitForSelector('[data-testid=pending]:has-text("Read MCUmgr parameters")');
    assert.match((await page.textContent('[data-testid=pending]')) ?? '', /\d+(\.\d)? s left/);
    await shot('pending-timeout');
    await axe('pending request');
    await page.waitForSelector('[data-testid=error-name]:has-text("TRANSPORT_TIMEOUT")', { timeout: 30_000 });
    assert.equal(await page.locator('[data-testid=pending]').count(), 0);
    await shot('timeout-error');
  });

  it('raised no error in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
