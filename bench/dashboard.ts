/**
 * `npm run bench -- dashboard`: the web dashboard's budgets.
 *
 * - Production bundle size (gzip) of dist/web (built here into a temporary folder) against the
 *   250 KB budget.
 * - First render to interactive in headless Chromium (already running, a fresh context per
 *   load, so nothing is cached; the tab's renderer process already started by a page of the same
 *   site, as a desktop Chromium's spare renderer is): measured in the page with the Performance
 *   API, from navigation start (`performance.timeOrigin`: the moment the page's navigation began,
 *   after Chromium's own start and the new tab's) to the frame in which the overview shows the emulated device's data
 *   (parameters, enumerated groups, OS info, bootloader: discovery finished) with the panel tabs
 *   of its groups usable. Median of 5 loads, against 1 s, with where the time goes (median of
 *   each phase: HTML received, scripts run, bridge link open, first answer, groups shown).
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
import { chromiumMissing } from '../test/chromium.ts';
import { startDashboardProcess } from '../test/dashboard-harness.ts';
import { launchCdpChromium } from './chromium-cdp.ts';
import { printFigure, section } from './report.ts';

const BUDGET_BYTES = 250 * 1000;
const RUNS = 3;
const LOADS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * In the page: resolves (checked every frame) with `performance.now()` once `condition` holds,
 * i.e. ms since navigation start; rejects after `timeoutMs`.
 */
export function waitInPage(condition: string, timeoutMs: number): string {
  return `new Promise((resolve, reject) => {
    const t0 = performance.now();
    const tick = () => {
      if (${condition}) return resolve(performance.now());
      if (performance.now() - t0 > ${timeoutMs}) return reject(new Error(${JSON.stringify(`timed out waiting for ${condition}`)}));
      requestAnimationFrame(tick);
    };
    tick();
  })`;
}

/** The overview shows the device's data (discovery finished, groups listed) and its panel tabs are there to use. */
export const FIRST_RENDER = "document.querySelector('[data-testid=overview][data-discovered]') && document.querySelector('[data-testid=groups]')?.textContent.includes('img mgmt') && document.querySelector('[role=tab]#tab-images')";

/** In the page: the phases of the first render, ms from navigation start (User Timing marks of web/src/session.ts). */
const READ_PHASES = `(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const out = { 'html received': nav ? nav.responseEnd : NaN };
  const marks = { 'scripts run': 'link-opening', 'bridge link open': 'link-open', 'first answer': 'online', 'groups shown': 'groups', 'discovery done': 'overview' };
  for (const [label, name] of Object.entries(marks)) out[label] = performance.getEntriesByName('dashboard:' + name)[0]?.startTime ?? NaN;
  return out;
})()`;

/** In the page: drops the image on the Images panel, starts an upgrade without confirm, and returns the rate the wizard shows for the upload stage. */
export function uploadInPage(base64: string): string {
  return `(async () => {
    const until = (f) => new Promise((resolve, reject) => {
      const t0 = performance.now();
      const tick = () => {
        const v = f();
        if (v) return resolve(v);
        if (performance.now() - t0 > 120000) return reject(new Error('timed out waiting for ' + f));
        requestAnimationFrame(tick);
      };
      tick();
    });
    document.getElementById('tab-images').click();
    await until(() => document.querySelector('[data-testid=dropzone]'));
    const bin = atob(${JSON.stringify(base64)});
    const data = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) data[i] = bin.charCodeAt(i);
    const dt = new DataTransfer();
    dt.items.add(new File([data], 'app.bin', { type: 'application/octet-stream' }));
    const zone = document.querySelector('[data-testid=dropzone]');
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    await until(() => document.querySelector('[data-testid=file-version]'));
    const box = [...document.querySelectorAll('label')].find((l) => /Confirm the new image/.test(l.textContent)).querySelector('input');
    if (box.checked) box.click();
    const button = () => [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === 'Start upgrade');
    await until(() => !box.checked && !button().disabled);
    button().click();
    const verdict = await until(() => document.querySelector('[data-testid=verdict]'));
    const numbers = document.querySelector('[data-testid=upload-numbers]');
    // Round trips of the image upload chunks (1/1), from the page's SMP log: first send to answer.
    const sent = new Map();
    let sum = 0, n = 0;
    for (const p of dashboard.selected.log) {
      if (p.packet[7] !== 1 || ((p.packet[4] << 8) | p.packet[5]) !== 1) continue;
      if (p.dir === 'tx') { if (!sent.has(p.packet[6])) sent.set(p.packet[6], p.time); }
      else if (sent.has(p.packet[6])) { sum += p.time - sent.get(p.packet[6]); n++; sent.delete(p.packet[6]); }
    }
    return { rate: Number(numbers.dataset.rate), verdict: verdict.dataset.verdict, numbers: numbers.textContent, rttMs: sum / n };
  })()`;
}

/** Resets the device (the image uploaded in test mode reverts) and waits until it runs another version than the upload's. */
async function backToFactory(port: number): Promise<void> {
  const c = new SmpClient(await openUdpClient({ host: '127.0.0.1', port }), { timeoutMs: 3000, tries: 3 });
  try {
    await c.request(commands.os.reset, {}).catch(() => undefined);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const state = await c.request(commands.image.state, {}).catch(() => undefined);
      if (state?.images.some((s) => s.active && s.version !== '2.0.0')) return;
      if (Date.now() > deadline) throw new Error('the device did not come back to its factory image after the reset');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await c.close();
  }
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
    const dashboard = await startDashboardProcess([`udp:127.0.0.1:${serve.port}`]);
    // The same bridge relaying packets as they come (no pacing: the page keeps the device's window).
    const unpaced = await startDashboardProcess([`udp:127.0.0.1:${serve.port}`], ['--quiet', '--no-pace']);
    try {
      const image = (await buildImage({ payload: new Uint8Array(1024 * 1024 - 4096).map((_, i) => (i * 13) & 0xff), version: '2.0.0' })).bytes;
      const file = join(data.path, 'app.bin');
      await writeFile(file, image);

      const origin = dashboard.origin;
      const token = new URLSearchParams(new URL(dashboard.url).hash.slice(1)).get('token')!;
      const WS = class extends NodeWebSocket {
        constructor(url: string) {
          super(url, { origin });
        }
      } as unknown as WebSocketConstructor;
      const missing = chromiumMissing();
      const browser = missing ? undefined : await launchCdpChromium();
      const base64 = Buffer.from(image).toString('base64');
      // Each round: the CLI, Node through the bridge, then a fresh page (its first render, then
      // the wizard's upload), one after the other so that all three see the same machine load.
      const cliRates: number[] = [];
      const nodeRates: number[] = [];
      const loads: number[] = [];
      const phases: Array<Record<string, number>> = [];
      const pageRates: number[] = [];
      const unpacedRates: number[] = [];
      const cliRtts: number[] = [];
      const pageRtts: number[] = [];
      const unpacedRtts: number[] = [];
      let cliShape = '';
      try {
        for (let i = 0; i < LOADS; i++) {
          if (i < RUNS) {
            await eraseSecondary(serve.port);
            const r = await runCli(['--udp', `127.0.0.1:${serve.port}`, '--json', 'image', 'upload', file], { timeoutMs: 60_000 });
            if (r.code !== 0) throw new Error(`CLI upload failed: ${r.stderr}`);
            const cliResult = JSON.parse(r.stdout) as { elapsedMs: number; srttMs: number; windowReached: number; chunkSize: number };
            cliRates.push(image.length / (cliResult.elapsedMs / 1000));
            cliRtts.push(cliResult.srttMs);
            cliShape = `window ${cliResult.windowReached}, ${cliResult.chunkSize}-byte chunks`;

            await eraseSecondary(serve.port);
            const t = await openBridgeTransport({ url: origin.replace('http', 'ws'), token, connection: `udp:127.0.0.1:${serve.port}`, WebSocket: WS });
            const c = new SmpClient(t, { timeoutMs: 3000, tries: 3 });
            const u = await uploadImage(c, image);
            nodeRates.push(image.length / (u.elapsedMs / 1000));
            await c.close();
          }
          if (!browser) continue;
          const page = await browser.open(dashboard.url, { warm: `${origin}/warm-up` });
          try {
            loads.push(await page.evaluate<number>(waitInPage(FIRST_RENDER, 30_000)));
            phases.push(await page.evaluate<Record<string, number>>(READ_PHASES));
            if (i < RUNS) {
              await eraseSecondary(serve.port);
              const r = await page.evaluate<{ rate: number; verdict: string; numbers: string; rttMs: number }>(uploadInPage(base64));
              if (r.verdict !== 'upgraded') throw new Error(`the page's upgrade ended ${r.verdict}: ${r.numbers}`);
              pageRates.push(r.rate);
              pageRtts.push(r.rttMs);
              process.stdout.write(`    round ${i + 1}, paced: ${r.numbers}\n`);
              await backToFactory(serve.port);
            }
          } finally {
            await page.close();
          }
          if (i < RUNS) {
            const other = await browser.open(unpaced.url, { warm: `${unpaced.origin}/warm-up` });
            try {
              await other.evaluate<number>(waitInPage(FIRST_RENDER, 30_000));
              await eraseSecondary(serve.port);
              const r = await other.evaluate<{ rate: number; verdict: string; numbers: string; rttMs: number }>(uploadInPage(base64));
              if (r.verdict !== 'upgraded') throw new Error(`the page's upgrade (bridge not pacing) ended ${r.verdict}: ${r.numbers}`);
              unpacedRates.push(r.rate);
              process.stdout.write(`    round ${i + 1}, not paced: ${r.numbers}\n`);
              unpacedRtts.push(r.rttMs);
              await backToFactory(serve.port);
            } finally {
              await other.close();
            }
          }
        }
      } finally {
        await browser?.close();
      }
      const cli = median(cliRates);
      if (missing) {
        process.stdout.write(`  (browser figures skipped: ${missing})\n`);
      } else {
        printFigure({ name: `first render to interactive (running Chromium, median of ${LOADS})`, value: median(loads), unit: 'ms', limit: { value: 1000, label: 'budget' } });
        process.stdout.write(`    phases from navigation start, ms (median): ${Object.keys(phases[0] ?? {}).map((k) => `${k} ${median(phases.map((p) => p[k] ?? NaN)).toFixed(0)}`).join(', ')}\n`);
        printFigure({ name: '1 MiB upload in the page through the bridge (pacing the device)', value: median(pageRates) / 1e6, unit: 'MB/s', limit: { value: cli / 1e6, label: 'the CLI' } });
        printFigure({ name: '1 MiB upload in the page through the bridge, --no-pace', value: median(unpacedRates) / 1e6, unit: 'MB/s', limit: { value: cli / 1e6, label: 'the CLI' } });
        // The bridge's account of each upload's link (Node's and the page's), from its log.
        for (const l of dashboard.output().split('\n')) {
          const m = /bridge: closed \S+ \(paced: (\d+) forwarded(.*)\)/.exec(l);
          if (m && Number(m[1]) > 500) process.stdout.write(`    the bridge: ${m[1]} forwarded${m[2]}\n`);
        }
        process.stdout.write(
          `    chunk round trip, ms (median of runs): the CLI's smoothed ${median(cliRtts).toFixed(2)} (${cliShape}); the page's mean ${median(unpacedRtts).toFixed(2)} not paced (the same engine, window and chunks), ${median(pageRtts).toFixed(2)} paced (queueing at the bridge included)\n`,
        );
      }
      printFigure({ name: '1 MiB upload from Node through the bridge', value: median(nodeRates) / 1e6, unit: 'MB/s', limit: { value: cli / 1e6, label: 'the CLI' } });
      printFigure({ name: '1 MiB upload by the CLI (image upload, UDP)', value: cli / 1e6, unit: 'MB/s' });
    } finally {
      await unpaced.stop();
      await dashboard.stop();
      await serve.stop();
    }
  } finally {
    await out.remove();
    await data.remove();
  }
}
