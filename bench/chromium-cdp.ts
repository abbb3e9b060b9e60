/**
 * Headless Chromium for timing figures, driven over the DevTools protocol with the Target, Page
 * and Runtime domains only: the page is timed as a user's tab runs it, without a driver's
 * instrumentation (Playwright enables the Network domain on every page it drives, and Chromium
 * then reports each resource and each WebSocket frame to it). Measured on this machine, that
 * instrumentation is within the noise for the bridge's round trip (an SMP echo from the page:
 * 2.40 / 1.16 ms without it, 2.11 / 1.41 ms with it, same page, load average 9 on 2 cores), so
 * the figures do not depend on it; what they do depend on is the tab's priority and the renderer
 * process's start, which this driver sets as a desktop Chromium's foreground tab has them (see
 * {@link launchCdpChromium} and `open`'s `warm`).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from '../test/chromium.ts';

export interface CdpPage {
  /** Evaluates an expression in the page (a promise is awaited); returns its value as JSON. */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /** Sends a DevTools protocol command to the tab. */
  send<T = unknown>(method: string, params?: object): Promise<T>;
  close(): Promise<void>;
}

export interface CdpBrowser {
  /**
   * A new tab (its own browser context: nothing cached) navigated to `url`. With `warm`, the tab
   * first loads that address (of the same site), so that its renderer process is up when the
   * navigation to `url` starts, as in a desktop Chromium, which keeps a spare renderer started.
   */
  open(url: string, options?: { warm?: string }): Promise<CdpPage>;
  close(): Promise<void>;
}

/** Starts headless Chromium (a fresh profile) and connects to its DevTools endpoint. */
export async function launchCdpChromium(): Promise<CdpBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'mcumgr-bench-chromium-'));
  // Its own process group: Chromium's helper processes are stopped with it.
  // A headless tab is never visible, and Chromium lowers the priority of tabs that are not (and
  // throttles their timers): the three backgrounding switches give it a foreground tab's, as the
  // user's dashboard tab has (Playwright passes the same).
  const foreground = ['--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows', '--disable-renderer-backgrounding'];
  // Nothing else competing for this machine's two cores: no field trials, no start-up requests
  // (hints, network time, search preconnect: this machine has no network), no paint holding (a
  // first paint held back on a same-origin navigation).
  const quiet = ['--disable-field-trial-config', '--disable-hang-monitor', '--disable-back-forward-cache', '--disable-features=PaintHolding,OptimizationHints,NetworkTimeServiceQuerying,PreconnectToSearch,MediaRouter,LensOverlay,AimEnabled'];
  const child = spawn(CHROMIUM_PATH, ['--headless', ...CHROMIUM_FLAGS, ...foreground, ...quiet, `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`Chromium exited (${code}) before its DevTools endpoint was up: ${stderr}`)));
  });
  const ws = new WebSocket(endpoint, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let nextId = 1;
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
    const w = m.id === undefined ? undefined : waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id!);
    if (m.error) w.reject(new Error(m.error.message));
    else w.resolve(m.result);
  });
  ws.on('close', () => {
    for (const w of waiting.values()) w.reject(new Error('the DevTools connection closed'));
    waiting.clear();
  });
  const send = <T>(method: string, params: object = {}, sessionId?: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });

  return {
    async open(url, options = {}) {
      const { browserContextId } = await send<{ browserContextId: string }>('Target.createBrowserContext', { disposeOnDetach: true });
      const { targetId } = await send<{ targetId: string }>('Target.createTarget', { url: 'about:blank', browserContextId });
      const { sessionId } = await send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true });
      const evaluate = async <T>(expression: string): Promise<T> => {
        const r = await send<{ result: { value?: unknown }; exceptionDetails?: { text: string; exception?: { description?: string } } }>('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
        if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
        return r.result.value as T;
      };
      await send('Page.bringToFront', {}, sessionId);
      // Evaluations go to the new document only once it has replaced the one before.
      const navigate = async (to: string): Promise<void> => {
        await evaluate('window.__left = true').catch(() => undefined);
        await send('Page.navigate', { url: to }, sessionId);
        const deadline = Date.now() + 30_000;
        for (;;) {
          const arrived = await evaluate<boolean>(`location.href === ${JSON.stringify(to)} && !window.__left && document.readyState !== 'loading'`).catch(() => false);
          if (arrived) return;
          if (Date.now() > deadline) throw new Error(`the page did not navigate to ${to}`);
          await evaluate('new Promise((r) => setTimeout(r, 10))').catch(() => undefined);
        }
      };
      if (options.warm) await navigate(options.warm);
      await navigate(url);
      return {
        evaluate,
        send: <T>(method: string, params: object = {}) => send<T>(method, params, sessionId),
        async close() {
          await send('Target.disposeBrowserContext', { browserContextId });
        },
      };
    },
    async close() {
      ws.close();
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      await exited;
      await rm(profile, { recursive: true, force: true, maxRetries: 10 });
    },
  };
}
