/**
 * `npm run bench -- dashboard`: the web dashboard's budgets.
 *
 * - Production bundle size (gzip) of dist/web (built here into a temporary folder) against the
 *   250 KB budget.
 * - First render to interactive in headless Chromium (already running, a fresh context per
 *   load): from navigation start to the emulated device shown online with its groups enumerated
 *   (the panels usable), median of 5 loads, against 1 s.
 * - A 1 MiB image upload through the bridge: in the page (the rate the upgrade wizard shows),
 *   and from Node over the same bridge, each against the same upload by the CLI
 *   (`mcumgr image upload --json`, its elapsed time) to the same `mcumgr serve` (target ≥ 0.8).
 */
import { gzipSync } from 'node:zlib';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WebSocket as NodeWebSocket } from 'ws';
import { buildWeb } from '../src/dashboard/web-build.ts';
import { buildImage } from '../src/image/build.ts';
import { commands } from '../src/core/commands/index.ts';
import { SmpClient } from '../src/client/client.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { openBridgeTransport, type WebSocketConstructor } from '../src/transport/websocket.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { runCli, startServeProcess, tempDir } from '../test/helpers.ts';
import { chromiumMissing, launchChromium } from '../test/chromium.ts';
import { dropFile, openDashboardPage, startDashboardProcess } from '../test/dashboard-harness.ts';
import { printFigure, section } from './report.ts';

const BUDGET_BYTES = 250 * 1000;
const RUNS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function eraseSecondary(port: number): Promise<void> {
  const c = new SmpClient(await openUdpClient({ host: '127.0.0.1', port }), { timeoutMs: 5000, tries: 2 });
  try {
    await c.request(commands.image.erase, {});
  } finally {
    await c.close();
  }
}

export async function benchDashboard(): Promise<void> {
  section('dashboard: bundle, first render, upload through the bridge');
  const out = await tempDir('mcumgr-bench-web-');
  const data = await tempDir('mcumgr-bench-dash-');
  try {
    await buildWeb({ outDir: out.path });
    let gz = 0;
    let raw = 0;
    for (const f of await readdir(out.path, { recursive: true, withFileTypes: true })) {
      if (!f.isFile()) continue;
      const bytes = await readFile(join(f.parentPath, f.name));
      raw += bytes.length;
      gz += gzipSync(bytes, { level: 9 }).length;
    }
    printFigure({ name: `production bundle, all files, gzip (${(raw / 1000).toFixed(0)} KB raw)`, value: gz / 1000, unit: 'KB', limit: { value: BUDGET_BYTES / 1000, label: 'budget' } });

    const serve = await startServeProcess(['--data', join(data.path, 'device')]);
    const dashboard = await startDashboardProcess([`udp:127.0.0.1:${serve.port}`], ['--quiet']);
    try {
      const image = (await buildImage({ payload: new Uint8Array(1024 * 1024 - 4096).map((_, i) => (i * 13) & 0xff), version: '2.0.0' })).bytes;
      const file = join(data.path, 'app.bin');
      await writeFile(file, image);

      // The CLI's rate: its own elapsed time for the upload, median of RUNS fresh uploads.
      const cliRates: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        await eraseSecondary(serve.port);
        const r = await runCli(['--udp', `127.0.0.1:${serve.port}`, '--json', 'image', 'upload', file], { timeoutMs: 60_000 });
        if (r.code !== 0) throw new Error(`CLI upload failed: ${r.stderr}`);
        cliRates.push(image.length / ((JSON.parse(r.stdout) as { elapsedMs: number }).elapsedMs / 1000));
      }
      const cli = median(cliRates);

      // Node over the bridge (the bridge's own cost, no browser).
      const nodeRates: number[] = [];
      const origin = dashboard.origin;
      const token = new URLSearchParams(new URL(dashboard.url).hash.slice(1)).get('token')!;
      const WS = class extends NodeWebSocket {
        constructor(url: string) {
          super(url, { origin });
        }
      } as unknown as WebSocketConstructor;
      for (let i = 0; i < RUNS; i++) {
        await eraseSecondary(serve.port);
        const t = await openBridgeTransport({ url: origin.replace('http', 'ws'), token, connection: `udp:127.0.0.1:${serve.port}`, WebSocket: WS });
        const c = new SmpClient(t, { timeoutMs: 3000, tries: 3 });
        const r = await uploadImage(c, image);
        nodeRates.push(image.length / (r.elapsedMs / 1000));
        await c.close();
      }

      const missing = chromiumMissing();
      if (missing) {
        process.stdout.write(`  (browser figures skipped: ${missing})\n`);
      } else {
        // First render to interactive, then the wizard's upload rate, in fresh pages.
        const loads: number[] = [];
        const pageRates: number[] = [];
        const browser = await launchChromium();
        for (let i = 0; i < 5; i++) {
          const ui = await openDashboardPage(dashboard.url, [], browser);
          try {
            const ms = await ui.page.waitForFunction(() => (document.querySelector('[data-testid=groups]')?.textContent?.includes('img mgmt') ? performance.now() : 0));
            loads.push((await ms.jsonValue()) as number);
            if (i < RUNS) {
              await eraseSecondary(serve.port);
              await ui.page.getByRole('tab', { name: 'Images', exact: true }).click();
              await dropFile(ui.page, '[data-testid=dropzone]', 'app.bin', image);
              await ui.page.waitForSelector('[data-testid=file-version]');
              // Upload only: the wizard's rate is measured over the upload stage.
              await ui.page.getByRole('checkbox', { name: /Confirm the new image/ }).uncheck();
              await ui.page.getByRole('button', { name: 'Start upgrade' }).click();
              await ui.page.waitForSelector('[data-testid=verdict]', { timeout: 120_000 });
              pageRates.push(Number(await ui.page.getAttribute('[data-testid=upload-numbers]', 'data-rate')));
              // Back to the factory image for the next round.
              const c = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: serve.port }), { timeoutMs: 3000, tries: 3 });
              await c.request(commands.os.reset, {}).catch(() => undefined);
              await c.close();
            }
          } finally {
            await ui.close();
          }
        }
        await browser.close();
        printFigure({ name: 'first render to interactive (running Chromium, median of 5)', value: median(loads), unit: 'ms', limit: { value: 1000, label: 'budget' } });
        printFigure({ name: '1 MiB upload in the page through the bridge', value: median(pageRates) / 1e6, unit: 'MB/s', limit: { value: cli / 1e6, label: 'the CLI' } });
      }
      printFigure({ name: '1 MiB upload from Node through the bridge', value: median(nodeRates) / 1e6, unit: 'MB/s', limit: { value: cli / 1e6, label: 'the CLI' } });
      printFigure({ name: '1 MiB upload by the CLI (image upload, UDP)', value: cli / 1e6, unit: 'MB/s' });
    } finally {
      await dashboard.stop();
      await serve.stop();
    }
  } finally {
    await out.remove();
    await data.remove();
  }
}
