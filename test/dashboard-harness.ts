/**
 * The dashboard end to end, for browser tests and the bench: `mcumgr dashboard` as a process
 * (serving the web app and the bridge), emulators as `mcumgr serve` processes on free UDP ports,
 * and headless Chromium (test/chromium.ts) on the page with the printed address.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { CLI } from './helpers.ts';
import { stopChild } from './pty.ts';
import { launchChromium } from './chromium.ts';

export interface DashboardProcess {
  url: string;
  origin: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `mcumgr dashboard --port 0 [devices]` and waits for the address it prints. */
export async function startDashboardProcess(devices: string[], extra: string[] = []): Promise<DashboardProcess> {
  const child = spawn(CLI, ['dashboard', '--port', '0', ...extra, ...devices], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dashboard did not start: ${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Dashboard: (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dashboard exited with ${code}: ${out}`));
    });
  });
  return { url, origin: new URL(url).origin, child, output: () => out, stop: () => stopChild(child) };
}

export interface DashboardPage {
  browser: Browser;
  page: Page;
  close(): Promise<void>;
}

/**
 * Opens the dashboard in headless Chromium (a new one, or a new context of `shared`); page errors
 * are collected in `errors`. `close()` closes what it opened.
 */
export async function openDashboardPage(url: string, errors: string[] = [], shared?: Browser): Promise<DashboardPage> {
  const browser = shared ?? (await launchChromium());
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(url);
    return { browser, page, close: () => (shared ? context.close() : browser.close()) };
  } catch (e) {
    if (!shared) await browser.close();
    throw e;
  }
}

/** Drops a file on an element the way a user's drag and drop does (a DataTransfer with a File). */
export async function dropFile(page: Page, selector: string, name: string, bytes: Uint8Array): Promise<void> {
  const handle = await page.evaluateHandle(
    ({ name, base64 }) => {
      const bin = atob(base64);
      const data = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) data[i] = bin.charCodeAt(i);
      const dt = new DataTransfer();
      dt.items.add(new File([data], name, { type: 'application/octet-stream' }));
      return dt;
    },
    { name, base64: Buffer.from(bytes).toString('base64') },
  );
  await page.dispatchEvent(selector, 'dragover', { dataTransfer: handle });
  await page.dispatchEvent(selector, 'drop', { dataTransfer: handle });
}

const require = createRequire(import.meta.url);

/** Runs axe-core on the page; returns the serious and critical violations, described. */
export async function axeViolations(page: Page): Promise<string[]> {
  const loaded = await page.evaluate(() => 'axe' in globalThis);
  // Evaluated through the DevTools protocol, which the page's Content-Security-Policy does not govern.
  if (!loaded) await page.evaluate(await readFile(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: Array<{ id: string; impact: string; help: string; nodes: Array<{ target: string[] }> }> }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id}: ${v.help} (${v.targets.join('; ')})`);
}
